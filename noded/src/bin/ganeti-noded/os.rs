//! OS definitions (Ganeti's OS API): finding them, checking them, and
//! running their scripts with the documented environment.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use objects::paths::Paths;
use objects::{DiskTemplate, NicMode};
use rpc::api::{AttachedDisk, InstanceSpec, OsInfo};

use crate::process::{self, Outcome};

/// OS API versions this node speaks, newest first.
pub const SUPPORTED_API_VERSIONS: &[u32] = &[20, 15, 10];
/// `PATH` given to OS scripts (their environment is otherwise clean).
const SCRIPT_PATH: &str = "/sbin:/bin:/usr/sbin:/usr/bin";
/// Lines of a failed script's log quoted in the error.
const TAIL_LINES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum OsError {
    #[error("invalid OS name '{0}'")]
    InvalidName(String),
    #[error("OS '{name}' not found in the search path ({search})")]
    NotFound { name: String, search: String },
    #[error("OS '{name}' is not valid: {reason}")]
    Invalid { name: String, reason: String },
    #[error("OS '{name}' does not support variant '{variant}' (supported: {supported})")]
    UnsupportedVariant {
        name: String,
        variant: String,
        supported: String,
    },
    #[error("OS '{name}' does not declare parameter(s) {unknown} (declared: {declared})")]
    UnknownParameters {
        name: String,
        unknown: String,
        declared: String,
    },
    #[error("cannot {action} '{path}'")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("OS {script} script failed ({reason}); last lines of the log '{log}':\n{tail}")]
    ScriptFailed {
        script: &'static str,
        reason: String,
        log: PathBuf,
        tail: String,
    },
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> OsError {
    OsError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A valid OS definition on this node.
#[derive(Debug, Clone)]
pub struct OsDefinition {
    pub name: String,
    pub path: PathBuf,
    /// Has a `create` script (not only `create_untrusted`).
    pub trusted: bool,
    pub api_versions: Vec<u32>,
    pub variants: Vec<String>,
    pub parameters: Vec<(String, String)>,
}

/// The scripts of an OS definition that the node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Create,
    Rename,
    Verify,
    Export,
    Import,
}

impl Script {
    pub fn file_name(self) -> &'static str {
        match self {
            Script::Create => "create",
            Script::Rename => "rename",
            Script::Verify => "verify",
            Script::Export => "export",
            Script::Import => "import",
        }
    }
}

impl OsDefinition {
    pub fn script(&self, s: Script) -> PathBuf {
        self.path.join(s.file_name())
    }

    /// The API version used with this OS: the newest both sides speak.
    pub fn api_version(&self) -> u32 {
        SUPPORTED_API_VERSIONS
            .iter()
            .copied()
            .find(|v| self.api_versions.contains(v))
            .unwrap_or(0)
    }

    /// The variant to use for `os_name` (`name+variant`): the requested
    /// one, which must be declared, or the first declared.
    pub fn variant(&self, os_name: &str) -> Result<String, OsError> {
        if self.api_version() < 15 || self.variants.is_empty() {
            return Ok(String::new());
        }
        match split_name(os_name).1 {
            None => Ok(self.variants[0].clone()),
            Some(v) if self.variants.iter().any(|d| d == v) => Ok(v.to_string()),
            Some(v) => Err(OsError::UnsupportedVariant {
                name: self.name.clone(),
                variant: v.to_string(),
                supported: self.variants.join(", "),
            }),
        }
    }

    /// Checks that every parameter in `osparams` is declared.
    pub fn check_parameters(&self, osparams: &BTreeMap<String, String>) -> Result<(), OsError> {
        let unknown: Vec<&str> = osparams
            .keys()
            .filter(|k| !self.parameters.iter().any(|(n, _)| n == *k))
            .map(String::as_str)
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(OsError::UnknownParameters {
            name: self.name.clone(),
            unknown: unknown.join(", "),
            declared: self
                .parameters
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Splits `name+variant`.
pub fn split_name(os_name: &str) -> (&str, Option<&str>) {
    match os_name.split_once('+') {
        Some((n, v)) => (n, Some(v)),
        None => (os_name, None),
    }
}

fn check_name(name: &str) -> Result<(), OsError> {
    if name.is_empty() || name.starts_with('.') || name.contains('/') || name.contains('\0') {
        return Err(OsError::InvalidName(name.to_string()));
    }
    Ok(())
}

/// Finds the OS `os_name` (variant allowed) in the search path and checks it.
pub fn find(paths: &Paths, os_name: &str) -> Result<OsDefinition, OsError> {
    let (name, _) = split_name(os_name);
    check_name(name)?;
    let search = paths.os_search_path();
    let dir = search
        .iter()
        .map(|d| d.join(name))
        .find(|d| d.is_dir())
        .ok_or_else(|| OsError::NotFound {
            name: name.to_string(),
            search: search
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        })?;
    load(name, &dir).map_err(|reason| OsError::Invalid {
        name: name.to_string(),
        reason,
    })
}

fn read_lines(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Reads and checks the OS definition in `dir`; the error is the reason
/// the OS is not valid.
pub fn load(name: &str, dir: &Path) -> Result<OsDefinition, String> {
    let api_file = dir.join("ganeti_api_version");
    if !api_file.is_file() {
        return Err(format!(
            "required file 'ganeti_api_version' not found under '{}'",
            dir.display()
        ));
    }
    let api_versions = read_lines(&api_file)?
        .iter()
        .map(|l| l.parse::<u32>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "API version(s) in '{}' are not integers: {e}",
                api_file.display()
            )
        })?;
    let newest = api_versions.iter().copied().max().unwrap_or(0);
    if !api_versions
        .iter()
        .any(|v| SUPPORTED_API_VERSIONS.contains(v))
    {
        return Err(format!(
            "API version mismatch for '{}': found {api_versions:?}, want one of {SUPPORTED_API_VERSIONS:?}",
            dir.display()
        ));
    }
    // (file, required)
    let mut scripts = vec![
        ("create", false),
        ("create_untrusted", false),
        ("import", true),
        ("export", true),
        ("rename", true),
    ];
    if newest >= 20 {
        scripts.push(("verify", true));
    }
    let mut present = Vec::new();
    for (file, required) in scripts {
        let p = dir.join(file);
        let meta = match std::fs::metadata(&p) {
            Ok(m) => m,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(format!(
                    "file '{file}' under '{}' is missing ({e})",
                    dir.display()
                ))
            }
        };
        if !meta.is_file() {
            return Err(format!(
                "file '{file}' under '{}' is not a regular file",
                dir.display()
            ));
        }
        if meta.permissions().mode() & 0o100 == 0 {
            return Err(format!(
                "file '{file}' under '{}' is not executable",
                dir.display()
            ));
        }
        present.push(file);
    }
    let trusted = present.contains(&"create");
    if !trusted && !present.contains(&"create_untrusted") {
        return Err(format!(
            "a create script (create or create_untrusted) must exist under '{}'",
            dir.display()
        ));
    }
    let variants_file = dir.join("variants.list");
    let variants = if newest >= 15 && variants_file.exists() {
        read_lines(&variants_file)?
    } else {
        Vec::new()
    };
    let parameters = if newest >= 20 {
        let pfile = dir.join("parameters.list");
        if !pfile.is_file() {
            return Err(format!(
                "required file 'parameters.list' not found under '{}'",
                dir.display()
            ));
        }
        read_lines(&pfile)?
            .into_iter()
            .map(|l| match l.split_once(char::is_whitespace) {
                Some((n, d)) => (n.to_string(), d.trim().to_string()),
                None => (l, String::new()),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(OsDefinition {
        name: name.to_string(),
        path: dir.to_path_buf(),
        trusted,
        api_versions,
        variants,
        parameters,
    })
}

/// Every (potential) OS in the search path, valid or not.
pub fn diagnose(paths: &Paths) -> Vec<OsInfo> {
    let mut out = Vec::new();
    for dir in paths.os_search_path() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let info = match load(&name, &path) {
                Ok(os) => OsInfo {
                    name,
                    path: path.display().to_string(),
                    valid: true,
                    diagnose: String::new(),
                    variants: os.variants,
                    parameters: os.parameters,
                    api_versions: os.api_versions,
                    trusted: os.trusted,
                },
                Err(reason) => OsInfo {
                    name,
                    path: path.display().to_string(),
                    valid: false,
                    diagnose: reason,
                    variants: vec![],
                    parameters: vec![],
                    api_versions: vec![],
                    trusted: true,
                },
            };
            out.push(info);
        }
    }
    out
}

/// Python's `str()` of a JSON value, as Ganeti puts parameters in the
/// environment.
fn env_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        serde_json::Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// The environment common to the scripts of `os` for an OS named
/// `os_name` with parameters `osparams`.
pub fn core_env(
    os: &OsDefinition,
    os_name: &str,
    osparams: &BTreeMap<String, String>,
    debug: u32,
) -> Result<BTreeMap<String, String>, OsError> {
    let mut env = BTreeMap::new();
    env.insert("OS_API_VERSION".into(), os.api_version().to_string());
    env.insert("OS_NAME".into(), os.name.clone());
    env.insert("DEBUG_LEVEL".into(), debug.to_string());
    env.insert("OS_VARIANT".into(), os.variant(os_name)?);
    for (k, v) in osparams {
        env.insert(
            format!("OSP_{}", k.to_uppercase().replace('-', "_")),
            v.clone(),
        );
    }
    env.insert("PATH".into(), SCRIPT_PATH.into());
    Ok(env)
}

/// The full environment of an instance's OS script.
pub fn instance_env(
    os: &OsDefinition,
    inst: &InstanceSpec,
    disks: &[AttachedDisk],
    debug: u32,
) -> Result<BTreeMap<String, String>, OsError> {
    let mut env = core_env(os, &inst.os, &inst.osparams, debug)?;
    env.insert("INSTANCE_NAME".into(), inst.name.clone());
    env.insert("INSTANCE_OS".into(), inst.os.clone());
    env.insert("INSTANCE_UUID".into(), inst.uuid.clone());
    env.insert("INSTANCE_PRIMARY_NODE".into(), inst.primary_node.clone());
    env.insert(
        "INSTANCE_SECONDARY_NODES".into(),
        inst.secondary_nodes.join(" "),
    );
    env.insert("HYPERVISOR".into(), inst.hypervisor.clone());
    env.insert("DISK_COUNT".into(), inst.disks.len().to_string());
    env.insert("NIC_COUNT".into(), inst.nics.len().to_string());
    for (idx, disk) in inst.disks.iter().enumerate() {
        let attached = disks.iter().find(|d| d.index == disk.index);
        env.insert(format!("DISK_{idx}_ACCESS"), disk.mode.as_str().into());
        env.insert(format!("DISK_{idx}_UUID"), disk.uuid.clone());
        env.insert(format!("DISK_{idx}_SIZE"), disk.size.to_string());
        if let Some(path) = attached.and_then(|a| a.path.as_ref()) {
            env.insert(format!("DISK_{idx}_PATH"), path.display().to_string());
        }
        if let Some(uri) = attached.and_then(|a| a.uri.as_ref()) {
            env.insert(format!("DISK_{idx}_URI"), uri.clone());
        }
        if let Some(name) = &disk.name {
            env.insert(format!("DISK_{idx}_NAME"), name.clone());
        }
        if let Some(t) = inst.hvparams.get("disk_type") {
            env.insert(format!("DISK_{idx}_FRONTEND_TYPE"), env_value(t));
        }
        let backend = match disk.dev_type {
            DiskTemplate::File | DiskTemplate::SharedFile => "file:loop",
            _ => "block",
        };
        env.insert(format!("DISK_{idx}_BACKEND_TYPE"), backend.into());
    }
    for (idx, nic) in inst.nics.iter().enumerate() {
        env.insert(format!("NIC_{idx}_MAC"), nic.mac.clone());
        if let Some(uuid) = &nic.uuid {
            env.insert(format!("NIC_{idx}_UUID"), uuid.clone());
        }
        if let Some(name) = &nic.name {
            env.insert(format!("NIC_{idx}_NAME"), name.clone());
        }
        if let Some(ip) = &nic.ip {
            env.insert(format!("NIC_{idx}_IP"), ip.clone());
        }
        env.insert(format!("NIC_{idx}_MODE"), nic.mode.as_str().into());
        if nic.mode == NicMode::Bridged {
            env.insert(format!("NIC_{idx}_BRIDGE"), nic.link.clone());
        }
        if !nic.link.is_empty() {
            env.insert(format!("NIC_{idx}_LINK"), nic.link.clone());
        }
        if let Some(net) = &nic.network {
            env.insert(format!("NIC_{idx}_NETWORK_NAME"), net.clone());
        }
        if let Some(t) = inst.hvparams.get("nic_type") {
            env.insert(format!("NIC_{idx}_FRONTEND_TYPE"), env_value(t));
        }
    }
    if let Ok(serde_json::Value::Object(be)) = serde_json::to_value(&inst.beparams) {
        for (k, v) in be {
            if !v.is_null() {
                env.insert(format!("INSTANCE_BE_{k}"), env_value(&v));
            }
        }
    }
    for (k, v) in &inst.hvparams {
        env.insert(format!("INSTANCE_HV_{k}"), env_value(v));
    }
    Ok(env)
}

/// Name of the log file of one script run, in the OS log directory.
pub fn log_file(paths: &Paths, kind: &str, os_name: &str, instance: &str) -> PathBuf {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let safe = |s: &str| s.replace(['/', '\0'], "_");
    paths.os_log_dir().join(format!(
        "{kind}-{}-{}-{}.{:06}.log",
        safe(os_name),
        safe(instance),
        now.as_secs(),
        now.subsec_micros()
    ))
}

fn tail(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Runs `script` of `os` with exactly `env`, in the OS directory, its
/// output going to `log`; kills it (and its children) after `timeout`.
pub fn run_script(
    os: &OsDefinition,
    script: Script,
    args: &[&str],
    env: &BTreeMap<String, String>,
    log: &Path,
    timeout: Duration,
) -> Result<(), OsError> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    }
    let out = File::create(log).map_err(|e| io("create", log, e))?;
    let path = os.script(script);
    match process::run(&path, args, env, &os.path, out, timeout).map_err(|e| io("run", &path, e))? {
        Outcome::Success => Ok(()),
        Outcome::Failed(reason) => Err(OsError::ScriptFailed {
            script: script.file_name(),
            reason,
            log: log.to_path_buf(),
            tail: tail(log),
        }),
    }
}

/// Where a script's standard input comes from and its standard output
/// goes, besides the log (Ganeti's import and export scripts stream a
/// disk's dump).
#[derive(Debug, Default)]
pub struct Streams {
    pub input: Option<File>,
    pub output: Option<File>,
}

/// [`run_script`] with standard input and output from `streams` (standard
/// error, and standard output when `streams` has none, to `log`).
pub fn run_script_streams(
    os: &OsDefinition,
    script: Script,
    env: &BTreeMap<String, String>,
    log: &Path,
    streams: Streams,
    timeout: Duration,
) -> Result<(), OsError> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    }
    let err = File::create(log).map_err(|e| io("create", log, e))?;
    let out = match streams.output {
        Some(f) => f,
        None => err.try_clone().map_err(|e| io("open", log, e))?,
    };
    let path = os.script(script);
    let outcome =
        process::run_with_input(&path, &[], env, &os.path, streams.input, out, err, timeout)
            .map_err(|e| io("run", &path, e))?;
    match outcome {
        Outcome::Success => Ok(()),
        Outcome::Failed(reason) => Err(OsError::ScriptFailed {
            script: script.file_name(),
            reason,
            log: log.to_path_buf(),
            tail: tail(log),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use std::time::Instant;

    use objects::DiskMode;
    use rpc::api::{BeParams, DiskSpec, HvParams, NicSpec};

    use super::*;

    fn write_script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// An OS `name` under the node's first search directory; `create` runs
    /// `create_body`.
    fn make_os(paths: &Paths, name: &str, create_body: &str) -> PathBuf {
        let dir = paths.os_search_path()[0].join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ganeti_api_version"), "20\n15\n").unwrap();
        std::fs::write(dir.join("variants.list"), "# comment\nalpha\n\nbeta\n").unwrap();
        std::fs::write(
            dir.join("parameters.list"),
            "greeting  Text to write\nsize\tIn GiB\n",
        )
        .unwrap();
        write_script(&dir, "create", create_body);
        for s in ["import", "export", "rename"] {
            write_script(&dir, s, "exit 0");
        }
        write_script(&dir, "verify", "test \"$OSP_GREETING\" != bad");
        dir
    }

    fn instance() -> InstanceSpec {
        InstanceSpec {
            name: "inst1.example.com".into(),
            uuid: "u-1".into(),
            primary_node: "node1".into(),
            secondary_nodes: vec!["node2".into()],
            hypervisor: "fake".into(),
            hvparams: HvParams::from([(
                "kernel_path".to_string(),
                serde_json::json!("/boot/vmlinuz"),
            )]),
            beparams: BeParams {
                maxmem: 128,
                minmem: None,
                vcpus: 1,
                auto_balance: true,
                always_failover: false,
                spindle_use: 1,
            },
            os: "myos+beta".into(),
            osparams: BTreeMap::from([("greeting".to_string(), "hi".to_string())]),
            disks: vec![DiskSpec {
                uuid: "d-0".into(),
                index: 0,
                size: 10,
                dev_type: DiskTemplate::File,
                logical_id: None,
                mode: DiskMode::Rw,
                name: Some("root".into()),
                params: Default::default(),
                children: Vec::new(),
                drbd: None,
            }],
            nics: vec![NicSpec {
                mac: "aa:00:00:00:00:01".into(),
                ip: Some("192.0.2.10".into()),
                mode: NicMode::Bridged,
                link: "br0".into(),
                network: None,
                uuid: Some("n-0".into()),
                name: None,
                vlan: None,
            }],
            tags: vec![],
        }
    }

    #[test]
    fn a_valid_os_is_loaded_with_variants_and_parameters() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path());
        make_os(&paths, "myos", "exit 0");
        let os = find(&paths, "myos+beta").unwrap();
        assert_eq!(os.api_versions, vec![20, 15]);
        assert_eq!(os.api_version(), 20);
        assert_eq!(os.variants, vec!["alpha", "beta"]);
        assert_eq!(
            os.parameters,
            vec![
                ("greeting".to_string(), "Text to write".to_string()),
                ("size".to_string(), "In GiB".to_string())
            ]
        );
        assert_eq!(os.variant("myos+beta").unwrap(), "beta");
        assert_eq!(os.variant("myos").unwrap(), "alpha");
        let err = os.variant("myos+gamma").unwrap_err();
        assert!(
            err.to_string().contains("does not support variant 'gamma'"),
            "{err}"
        );
    }

    #[test]
    fn diagnose_reports_invalid_definitions_with_the_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path());
        make_os(&paths, "good", "exit 0");
        let bad = make_os(&paths, "noexec", "exit 0");
        std::fs::set_permissions(bad.join("create"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let untrusted = make_os(&paths, "untrusted", "exit 0");
        std::fs::rename(untrusted.join("create"), untrusted.join("create_untrusted")).unwrap();
        let nocreate = make_os(&paths, "nocreate", "exit 0");
        std::fs::remove_file(nocreate.join("create")).unwrap();
        let old = make_os(&paths, "old", "exit 0");
        std::fs::write(old.join("ganeti_api_version"), "5\n").unwrap();
        let list = diagnose(&paths);
        let by_name = |n: &str| list.iter().find(|o| o.name == n).unwrap();
        assert!(by_name("good").valid);
        assert!(!by_name("noexec").valid);
        assert!(by_name("noexec").diagnose.contains("not executable"));
        assert!(by_name("old").diagnose.contains("API version mismatch"));
        assert!(by_name("good").trusted);
        assert!(by_name("untrusted").valid && !by_name("untrusted").trusted);
        assert!(by_name("nocreate").diagnose.contains("a create script"));
        assert!(matches!(
            find(&paths, "noexec"),
            Err(OsError::Invalid { .. })
        ));
        assert!(matches!(
            find(&paths, "missing"),
            Err(OsError::NotFound { .. })
        ));
        assert!(matches!(find(&paths, "../x"), Err(OsError::InvalidName(_))));
    }

    #[test]
    fn the_environment_follows_the_os_api() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path());
        make_os(&paths, "myos", "exit 0");
        let os = find(&paths, "myos").unwrap();
        let disks = vec![AttachedDisk {
            index: 0,
            path: Some("/srv/disk0".into()),
            uri: None,
            mode: DiskMode::Rw,
            tls: None,
        }];
        let env = instance_env(&os, &instance(), &disks, 1).unwrap();
        let expect = [
            ("OS_API_VERSION", "20"),
            ("OS_NAME", "myos"),
            ("OS_VARIANT", "beta"),
            ("INSTANCE_NAME", "inst1.example.com"),
            ("INSTANCE_OS", "myos+beta"),
            ("INSTANCE_PRIMARY_NODE", "node1"),
            ("INSTANCE_SECONDARY_NODES", "node2"),
            ("HYPERVISOR", "fake"),
            ("DEBUG_LEVEL", "1"),
            ("DISK_COUNT", "1"),
            ("DISK_0_PATH", "/srv/disk0"),
            ("DISK_0_ACCESS", "rw"),
            ("DISK_0_UUID", "d-0"),
            ("DISK_0_SIZE", "10"),
            ("DISK_0_NAME", "root"),
            ("DISK_0_BACKEND_TYPE", "file:loop"),
            ("NIC_COUNT", "1"),
            ("NIC_0_MAC", "aa:00:00:00:00:01"),
            ("NIC_0_IP", "192.0.2.10"),
            ("NIC_0_MODE", "bridged"),
            ("NIC_0_BRIDGE", "br0"),
            ("NIC_0_LINK", "br0"),
            ("NIC_0_UUID", "n-0"),
            ("OSP_GREETING", "hi"),
            ("INSTANCE_BE_maxmem", "128"),
            ("INSTANCE_BE_auto_balance", "True"),
            ("INSTANCE_HV_kernel_path", "/boot/vmlinuz"),
            ("PATH", SCRIPT_PATH),
        ];
        for (k, v) in expect {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(!env.contains_key("INSTANCE_BE_minmem"));
    }

    #[test]
    fn a_script_sees_only_its_environment() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path());
        make_os(&paths, "myos", "env > \"$OUT\"");
        let os = find(&paths, "myos").unwrap();
        let out = tmp.path().join("env.txt");
        let env = BTreeMap::from([
            ("OUT".to_string(), out.display().to_string()),
            ("INSTANCE_NAME".to_string(), "x".to_string()),
        ]);
        let log = log_file(&paths, "add", "myos", "x");
        run_script(
            &os,
            Script::Create,
            &[],
            &env,
            &log,
            Duration::from_secs(30),
        )
        .unwrap();
        let seen = std::fs::read_to_string(out).unwrap();
        assert!(seen.contains("INSTANCE_NAME=x"));
        assert!(!seen.contains("HOME="), "environment leaked: {seen}");
    }

    #[test]
    fn a_failing_script_reports_the_end_of_its_log() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path());
        make_os(
            &paths,
            "myos",
            "echo preparing; echo 'disk is on fire' >&2; exit 3",
        );
        let os = find(&paths, "myos").unwrap();
        let log = log_file(&paths, "add", "myos", "inst1");
        let err = run_script(
            &os,
            Script::Create,
            &[],
            &BTreeMap::new(),
            &log,
            Duration::from_secs(30),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("OS create script failed (exited with code 3)"),
            "{msg}"
        );
        assert!(msg.contains("disk is on fire"), "{msg}");
        assert!(log.starts_with(paths.os_log_dir()));
        assert!(std::fs::read_to_string(&log).unwrap().contains("preparing"));
    }

    #[test]
    fn a_hanging_script_is_killed_at_the_timeout() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path());
        make_os(&paths, "myos", "echo started; sleep 600");
        let os = find(&paths, "myos").unwrap();
        let log = log_file(&paths, "add", "myos", "inst1");
        let start = Instant::now();
        let err = run_script(
            &os,
            Script::Create,
            &[],
            &BTreeMap::new(),
            &log,
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn verify_runs_with_the_parameters_argument() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path());
        make_os(&paths, "myos", "exit 0");
        let os = find(&paths, "myos").unwrap();
        let log = log_file(&paths, "verify", "myos", "x");
        let params = |v: &str| BTreeMap::from([("greeting".to_string(), v.to_string())]);
        let env = core_env(&os, "myos", &params("good"), 0).unwrap();
        run_script(
            &os,
            Script::Verify,
            &["parameters"],
            &env,
            &log,
            Duration::from_secs(30),
        )
        .unwrap();
        let env = core_env(&os, "myos", &params("bad"), 0).unwrap();
        assert!(run_script(
            &os,
            Script::Verify,
            &["parameters"],
            &env,
            &log,
            Duration::from_secs(30)
        )
        .is_err());
        let err = os
            .check_parameters(&BTreeMap::from([("colour".to_string(), "x".to_string())]))
            .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
