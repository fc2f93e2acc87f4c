//! Ganeti's description of an export, `config.ini` beside the disk dumps:
//! sections `[export]` (version, timestamp, source node, OS, compression),
//! `[instance]` (name, memory, vcpus, disk template, hypervisor, tags,
//! `nic<N>_*`, `disk<N>_*`), `[hypervisor]`, `[backend]`, `[os]` and
//! `[os_private]`, in the syntax of Python's `ConfigParser` (`key = value`,
//! `None` for a missing value, `True`/`False` for booleans), so that
//! exports move between Ganeti and ganeti-rs clusters.

use objects::params::types::{be_type, hv_type, VType};
use objects::params::ParamDict;
use serde_json::Value;

/// Ganeti's `EXPORT_VERSION`.
pub const EXPORT_VERSION: u32 = 0;

/// Hypervisor parameters that are cluster-wide (Ganeti's `HVC_GLOBALS`),
/// never written into an export.
const HV_GLOBALS: &[&str] = &["migration_port", "migration_bandwidth", "migration_mode"];

/// An ini document: sections in order, each with its keys in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    sections: Vec<(String, Vec<(String, String)>)>,
}

/// Why a `config.ini` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IniError {
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    #[error("section [{0}] is missing")]
    MissingSection(&'static str),
    #[error("option '{key}' of section [{section}] is missing")]
    MissingKey { section: String, key: String },
    #[error("option '{key}' of section [{section}] is not a number: '{value}'")]
    NotANumber {
        section: String,
        key: String,
        value: String,
    },
    #[error("wrong export version {found} (wanted {EXPORT_VERSION})")]
    Version { found: String },
}

impl Ini {
    /// Adds (or replaces) `key` in `section`, adding the section if new.
    pub fn set(&mut self, section: &str, key: &str, value: impl Into<String>) {
        let pos = match self.sections.iter().position(|(s, _)| s == section) {
            Some(p) => p,
            None => {
                self.sections.push((section.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let items = &mut self.sections[pos].1;
        let value = value.into();
        match items.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => items.push((key.to_string(), value)),
        }
    }

    /// Adds an empty section (a no-op when it exists).
    pub fn section(&mut self, section: &str) {
        if !self.has_section(section) {
            self.sections.push((section.to_string(), Vec::new()));
        }
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.sections.iter().any(|(s, _)| s == section)
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.items(section)
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The keys of `section` with their values, in order (none when the
    /// section is missing).
    pub fn items(&self, section: &str) -> &[(String, String)] {
        self.sections
            .iter()
            .find(|(s, _)| s == section)
            .map(|(_, items)| items.as_slice())
            .unwrap_or_default()
    }

    fn require(&self, section: &str, key: &str) -> Result<&str, IniError> {
        self.get(section, key).ok_or_else(|| IniError::MissingKey {
            section: section.into(),
            key: key.into(),
        })
    }

    fn number(&self, section: &str, key: &str) -> Result<Option<u64>, IniError> {
        self.get(section, key)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| IniError::NotANumber {
                    section: section.into(),
                    key: key.into(),
                    value: v.into(),
                })
            })
            .transpose()
    }

    /// The text, as Python's `ConfigParser.write` gives it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (section, items) in &self.sections {
            out.push_str(&format!("[{section}]\n"));
            for (k, v) in items {
                // A value of several lines continues on indented lines.
                out.push_str(&format!("{k} = {}\n", v.replace('\n', "\n\t")));
            }
            out.push('\n');
        }
        out
    }

    /// Parses the syntax `ConfigParser` reads: `[section]` headers,
    /// `key = value` or `key: value` (keys in lower case), comments starting
    /// with `#` or `;`, and indented continuation lines.
    pub fn parse(text: &str) -> Result<Ini, IniError> {
        let mut ini = Ini::default();
        let mut current: Option<usize> = None;
        let mut last_key: Option<usize> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if raw.starts_with([' ', '\t']) {
                let (Some(s), Some(k)) = (current, last_key) else {
                    return Err(IniError::Syntax {
                        line,
                        reason: "continuation line without an option".into(),
                    });
                };
                let value = &mut ini.sections[s].1[k].1;
                value.push('\n');
                value.push_str(trimmed);
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                ini.section(name);
                current = ini.sections.iter().position(|(s, _)| s == name);
                last_key = None;
                continue;
            }
            let Some(s) = current else {
                return Err(IniError::Syntax {
                    line,
                    reason: "option before the first section header".into(),
                });
            };
            let sep = trimmed.find(['=', ':']).ok_or_else(|| IniError::Syntax {
                line,
                reason: format!("'{trimmed}' is neither a section header nor 'key = value'"),
            })?;
            let key = trimmed[..sep].trim().to_lowercase();
            let value = trimmed[sep + 1..].trim().to_string();
            let section = ini.sections[s].0.clone();
            ini.set(&section, &key, value);
            last_key = ini.sections[s].1.iter().position(|(k, _)| *k == key);
        }
        Ok(ini)
    }
}

/// Python's `str()` of a parameter value.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// `Some(value)` unless it is Python's `None`.
fn not_none(v: &str) -> Option<&str> {
    (v != "None" && !v.is_empty()).then_some(v)
}

/// A value read from the ini, typed as parameter type `t` wants it.
fn typed(t: Option<VType>, v: &str) -> Option<Value> {
    if v == "None" {
        return None;
    }
    Some(match t {
        Some(VType::Bool) => match v {
            "True" | "true" | "1" => Value::Bool(true),
            "False" | "false" | "0" => Value::Bool(false),
            _ => Value::from(v),
        },
        Some(VType::Int | VType::Size) => v
            .parse::<u64>()
            .map_or_else(|_| Value::from(v), Value::from),
        Some(VType::Float) => v
            .parse::<f64>()
            .map_or_else(|_| Value::from(v), Value::from),
        _ => Value::from(v),
    })
}

/// One NIC of an export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportNic {
    pub mac: String,
    pub ip: Option<String>,
    pub name: Option<String>,
    pub network: Option<String>,
    /// `mode`, `link` and `vlan`, as set.
    pub params: Vec<(String, String)>,
}

/// One disk of an export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportDisk {
    /// MiB.
    pub size: u64,
    pub name: Option<String>,
    /// The dump's file name in the export directory.
    pub dump: Option<String>,
}

/// What an export says of its instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportedInstance {
    pub name: String,
    pub os: String,
    /// The node it was exported from (Ganeti writes its UUID).
    pub source: String,
    pub timestamp: u64,
    pub disk_template: String,
    pub hypervisor: Option<String>,
    pub tags: Vec<String>,
    pub nics: Vec<ExportNic>,
    pub disks: Vec<ExportDisk>,
    pub hvparams: ParamDict,
    pub beparams: ParamDict,
    pub osparams: ParamDict,
}

/// Highest NIC and disk index Ganeti reads (`MAX_NICS`, `MAX_DISKS`).
const MAX_DEVICES: usize = 32;

impl ExportedInstance {
    /// The `config.ini` Ganeti's `FinalizeExport` writes for it.
    /// `beparams`, `hvparams` and `osparams` are the filled values.
    pub fn to_ini(&self) -> Ini {
        let mut ini = Ini::default();
        ini.set("export", "version", EXPORT_VERSION.to_string());
        ini.set("export", "timestamp", self.timestamp.to_string());
        ini.set("export", "source", &self.source);
        ini.set("export", "os", &self.os);
        ini.set("export", "compression", "none");
        let be = |k: &str| self.beparams.get(k).map(py_str).unwrap_or("None".into());
        ini.set("instance", "name", &self.name);
        ini.set("instance", "maxmem", be("maxmem"));
        ini.set("instance", "minmem", be("minmem"));
        ini.set("instance", "memory", be("maxmem"));
        ini.set("instance", "vcpus", be("vcpus"));
        ini.set("instance", "disk_template", &self.disk_template);
        ini.set(
            "instance",
            "hypervisor",
            self.hypervisor.as_deref().unwrap_or("None"),
        );
        ini.set("instance", "tags", self.tags.join(" "));
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "None".into());
        for (i, nic) in self.nics.iter().enumerate() {
            ini.set("instance", &format!("nic{i}_mac"), &nic.mac);
            ini.set("instance", &format!("nic{i}_ip"), opt(&nic.ip));
            ini.set("instance", &format!("nic{i}_network"), opt(&nic.network));
            ini.set("instance", &format!("nic{i}_name"), opt(&nic.name));
            for p in ["mode", "link", "vlan"] {
                let v = nic
                    .params
                    .iter()
                    .find(|(k, _)| k == p)
                    .map_or("None", |(_, v)| v.as_str());
                ini.set("instance", &format!("nic{i}_{p}"), v);
            }
        }
        ini.set("instance", "nic_count", self.nics.len().to_string());
        let mut count = 0;
        for (i, disk) in self.disks.iter().enumerate() {
            let Some(dump) = &disk.dump else { continue };
            count += 1;
            ini.set("instance", &format!("disk{i}_ivname"), format!("disk/{i}"));
            ini.set("instance", &format!("disk{i}_dump"), dump);
            ini.set("instance", &format!("disk{i}_size"), disk.size.to_string());
            ini.set("instance", &format!("disk{i}_name"), opt(&disk.name));
        }
        ini.set("instance", "disk_count", count.to_string());
        ini.section("hypervisor");
        for (k, v) in &self.hvparams {
            if !HV_GLOBALS.contains(&k.as_str()) {
                ini.set("hypervisor", k, py_str(v));
            }
        }
        ini.section("backend");
        for (k, v) in &self.beparams {
            ini.set("backend", k, py_str(v));
        }
        ini.section("os");
        for (k, v) in &self.osparams {
            ini.set("os", k, py_str(v));
        }
        ini.section("os_private");
        ini
    }

    /// Reads an export's `config.ini` as Ganeti's import does: the
    /// version must be Ganeti's, disks and NICs are read by index until
    /// the first missing one, parameters come typed.
    pub fn from_ini(ini: &Ini) -> Result<ExportedInstance, IniError> {
        if !ini.has_section("export") {
            return Err(IniError::MissingSection("export"));
        }
        if !ini.has_section("instance") {
            return Err(IniError::MissingSection("instance"));
        }
        let version = ini.require("export", "version")?;
        if version.trim().parse::<u32>().ok() != Some(EXPORT_VERSION) {
            return Err(IniError::Version {
                found: version.into(),
            });
        }
        let inst = |k: &str| ini.get("instance", k);
        let mut disks = Vec::new();
        for i in 0..MAX_DEVICES {
            let Some(size) = ini.number("instance", &format!("disk{i}_size"))? else {
                break;
            };
            disks.push(ExportDisk {
                size,
                name: inst(&format!("disk{i}_name"))
                    .and_then(not_none)
                    .map(str::to_string),
                dump: inst(&format!("disk{i}_dump"))
                    .and_then(not_none)
                    .map(str::to_string),
            });
        }
        let mut nics = Vec::new();
        for i in 0..MAX_DEVICES {
            let Some(mac) = inst(&format!("nic{i}_mac")) else {
                break;
            };
            let field = |p: &str| {
                inst(&format!("nic{i}_{p}"))
                    .and_then(not_none)
                    .map(str::to_string)
            };
            let network = field("network");
            // With a network, mode and link come from the group's.
            let params = if network.is_some() {
                Vec::new()
            } else {
                ["mode", "link", "vlan"]
                    .iter()
                    .filter_map(|p| field(p).map(|v| (p.to_string(), v)))
                    .collect()
            };
            nics.push(ExportNic {
                mac: mac.to_string(),
                ip: field("ip"),
                name: field("name"),
                network,
                params,
            });
        }
        let hvparams = ini
            .items("hypervisor")
            .iter()
            .filter_map(|(k, v)| typed(hv_type(k), v).map(|v| (k.clone(), v)))
            .collect();
        let mut beparams: ParamDict = ini
            .items("backend")
            .iter()
            .filter_map(|(k, v)| typed(be_type(k), v).map(|v| (k.clone(), v)))
            .collect();
        // Old exports: "memory" stands for both bounds.
        if let Some(m) = beparams.remove("memory") {
            beparams.entry("maxmem".into()).or_insert(m.clone());
            beparams.entry("minmem".into()).or_insert(m);
        }
        if !ini.has_section("backend") {
            for k in ["maxmem", "minmem", "vcpus"] {
                if let Some(v) = inst(k).and_then(|v| typed(be_type(k), v)) {
                    beparams.insert(k.to_string(), v);
                }
            }
        }
        let osparams = ini
            .items("os")
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        Ok(ExportedInstance {
            name: ini.require("instance", "name")?.to_string(),
            os: ini.require("export", "os")?.to_string(),
            source: ini.get("export", "source").unwrap_or_default().to_string(),
            timestamp: ini.number("export", "timestamp")?.unwrap_or(0),
            disk_template: inst("disk_template").unwrap_or_default().to_string(),
            hypervisor: inst("hypervisor").and_then(not_none).map(str::to_string),
            tags: inst("tags")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            nics,
            disks,
            hvparams,
            beparams,
            osparams,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> ExportedInstance {
        ExportedInstance {
            name: "inst1.example.com".into(),
            os: "tiny+default".into(),
            source: "node-uuid-1".into(),
            timestamp: 1_700_000_000,
            disk_template: "file".into(),
            hypervisor: Some("fake".into()),
            tags: vec!["web".into(), "prod".into()],
            nics: vec![ExportNic {
                mac: "aa:00:00:11:22:33".into(),
                ip: None,
                name: Some("eth0".into()),
                network: None,
                params: vec![
                    ("mode".into(), "bridged".into()),
                    ("link".into(), "br0".into()),
                ],
            }],
            disks: vec![
                ExportDisk {
                    size: 1024,
                    name: None,
                    dump: Some("d-0".into()),
                },
                ExportDisk {
                    size: 512,
                    name: Some("data".into()),
                    dump: Some("d-1".into()),
                },
            ],
            hvparams: [
                ("kernel_path".to_string(), json!("/boot/vmlinuz")),
                ("acpi".to_string(), json!(true)),
                ("migration_port".to_string(), json!(8102)),
            ]
            .into(),
            beparams: [
                ("maxmem".to_string(), json!(256)),
                ("minmem".to_string(), json!(128)),
                ("vcpus".to_string(), json!(2)),
                ("auto_balance".to_string(), json!(true)),
            ]
            .into(),
            osparams: [("greeting".to_string(), json!("hello world"))].into(),
        }
    }

    #[test]
    fn the_ini_is_written_as_ganeti_writes_it() {
        let text = sample().to_ini().to_text();
        let expect = "[export]\nversion = 0\ntimestamp = 1700000000\nsource = node-uuid-1\n\
os = tiny+default\ncompression = none\n\n[instance]\nname = inst1.example.com\n\
maxmem = 256\nminmem = 128\nmemory = 256\nvcpus = 2\ndisk_template = file\n\
hypervisor = fake\ntags = web prod\nnic0_mac = aa:00:00:11:22:33\nnic0_ip = None\n\
nic0_network = None\nnic0_name = eth0\nnic0_mode = bridged\nnic0_link = br0\n\
nic0_vlan = None\nnic_count = 1\ndisk0_ivname = disk/0\ndisk0_dump = d-0\n\
disk0_size = 1024\ndisk0_name = None\ndisk1_ivname = disk/1\ndisk1_dump = d-1\n\
disk1_size = 512\ndisk1_name = data\ndisk_count = 2\n\n[hypervisor]\nacpi = True\n\
kernel_path = /boot/vmlinuz\n\n[backend]\nauto_balance = True\nmaxmem = 256\n\
minmem = 128\nvcpus = 2\n\n[os]\ngreeting = hello world\n\n[os_private]\n\n";
        assert_eq!(text, expect);
    }

    #[test]
    fn an_export_reads_back_to_what_was_written_with_typed_parameters() {
        let written = sample();
        let read =
            ExportedInstance::from_ini(&Ini::parse(&written.to_ini().to_text()).unwrap()).unwrap();
        let mut expect = written;
        // Cluster-wide hypervisor parameters are not exported.
        expect.hvparams.remove("migration_port");
        assert_eq!(read, expect);
        assert_eq!(read.hvparams["acpi"], json!(true));
        assert_eq!(read.beparams["vcpus"], json!(2));
    }

    #[test]
    fn ganetis_own_syntax_reads_comments_colons_and_continuations() {
        let text = "# made by Ganeti\n[export]\nversion: 0\nos = debootstrap\n\
[instance]\nName = old\nmemory = 512\ndisk0_size = 10\ndisk0_dump = x\n\
[os]\nmotd = line one\n\tline two\n";
        let ini = Ini::parse(text).unwrap();
        assert_eq!(ini.get("os", "motd"), Some("line one\nline two"));
        let e = ExportedInstance::from_ini(&ini).unwrap();
        assert_eq!(e.name, "old");
        // No [backend]: the old "memory" option of [instance] is ignored,
        // as Ganeti reads only maxmem, minmem and vcpus there.
        assert_eq!(e.disks.len(), 1);
        assert_eq!(e.disks[0].dump.as_deref(), Some("x"));
        assert!(e.nics.is_empty());
    }

    #[test]
    fn broken_or_foreign_exports_are_refused_with_the_reason() {
        let no_instance = Ini::parse("[export]\nversion = 0\nos = tiny\n").unwrap();
        assert_eq!(
            ExportedInstance::from_ini(&no_instance),
            Err(IniError::MissingSection("instance"))
        );
        let newer = Ini::parse("[export]\nversion = 1\nos = tiny\n[instance]\nname = x\n").unwrap();
        assert!(matches!(
            ExportedInstance::from_ini(&newer),
            Err(IniError::Version { .. })
        ));
        let bad_size =
            Ini::parse("[export]\nversion = 0\nos = t\n[instance]\nname = x\ndisk0_size = big\n")
                .unwrap();
        let e = ExportedInstance::from_ini(&bad_size).unwrap_err();
        assert!(e.to_string().contains("disk0_size"), "{e}");
        let e = Ini::parse("key = value\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
