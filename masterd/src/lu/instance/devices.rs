//! The disk and NIC changes of `OP_INSTANCE_SET_PARAMS` (`gnt-instance
//! modify --disk ...` and `--net ...`): Ganeti's container modifications,
//! parsed and checked before anything changes.
//!
//! A change is `[action, identifier, params]`: `add` at an index (`-1`:
//! at the end), `remove` or `modify` the device with that index (`-1`: the
//! last), name or UUID. Ganeti's older form `[op, params]` (`op` being
//! `add`, `remove` or an index to modify) is read too. The changes apply
//! in order, each to the devices as the previous ones left them.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::error::Error;
use crate::lu::{inval, noent};
use objects::validate::normalize_mac;

/// Ganeti's `MAX_DISKS` and `MAX_NICS`.
pub const MAX_DISKS: usize = 16;
pub const MAX_NICS: usize = 8;

/// Disks or NICs, as Ganeti names them in messages and change keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Disk,
    Nic,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Disk => "disk",
            Kind::Nic => "NIC",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
    Modify,
}

/// Which device a change is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ident {
    Index(i64),
    /// A device's name or UUID.
    Name(String),
}

impl std::fmt::Display for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ident::Index(i) => write!(f, "{i}"),
            Ident::Name(n) => f.write_str(n),
        }
    }
}

/// One change.
#[derive(Debug, Clone, PartialEq)]
pub struct Mod {
    pub action: Action,
    pub ident: Ident,
    pub params: Map<String, Value>,
}

fn ident_of(v: &Value) -> Result<Ident, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(Ident::Index)
            .ok_or_else(|| format!("invalid identifier {n}")),
        Value::String(s) => Ok(s
            .parse::<i64>()
            .map(Ident::Index)
            .unwrap_or_else(|_| Ident::Name(s.clone()))),
        other => Err(format!("invalid identifier {other}")),
    }
}

fn action_of(kind: Kind, s: &str) -> Result<Option<Action>, Error> {
    match s {
        "add" => Ok(Some(Action::Add)),
        "remove" => Ok(Some(Action::Remove)),
        "modify" => Ok(Some(Action::Modify)),
        "attach" | "detach" if kind == Kind::Nic => Err(inval(format!(
            "{} operation is not supported for NICs",
            if s == "attach" { "Attach" } else { "Detach" }
        ))),
        "attach" | "detach" => Err(inval(format!(
            "Disk '{s}' is not supported by ganeti-rs yet (add, remove and modify are)"
        ))),
        _ => Ok(None),
    }
}

/// Parses the `disks` or `nics` of the opcode (both of Ganeti's forms).
pub fn parse(kind: Kind, mods: &[Value]) -> Result<Vec<Mod>, Error> {
    let bad =
        |m: &Value, why: &str| inval(format!("Invalid {} modification {m}: {why}", kind.as_str()));
    let legacy = mods
        .first()
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() == 2);
    let mut out = Vec::new();
    let mut addremove = 0;
    for m in mods {
        let Some(parts) = m.as_array() else {
            return Err(bad(m, "expected a list"));
        };
        let (action, ident, params) = match (legacy, parts.as_slice()) {
            (true, [op, params]) => {
                let named = op
                    .as_str()
                    .map(|s| action_of(kind, s))
                    .transpose()?
                    .flatten();
                match named {
                    Some(Action::Modify) | None => (
                        Action::Modify,
                        ident_of(op).map_err(|e| bad(m, &e))?,
                        params,
                    ),
                    Some(a) => {
                        addremove += 1;
                        if addremove > 1 {
                            return Err(inval(format!(
                                "Only one {} add/attach/remove/detach operation is supported \
                                 at a time",
                                kind.as_str()
                            )));
                        }
                        (a, Ident::Index(-1), params)
                    }
                }
            }
            (false, [op, ident, params]) => {
                let action = op
                    .as_str()
                    .map(|s| action_of(kind, s))
                    .transpose()?
                    .flatten()
                    .ok_or_else(|| bad(m, "unknown action"))?;
                (action, ident_of(ident).map_err(|e| bad(m, &e))?, params)
            }
            _ => {
                return Err(bad(
                    m,
                    "expected [action, identifier, parameters] (or all [action, parameters])",
                ))
            }
        };
        let params = match params {
            Value::Object(p) => p.clone(),
            Value::Null => Map::new(),
            _ => return Err(bad(m, "the parameters must be a dict")),
        };
        if action == Action::Remove && !params.is_empty() {
            return Err(inval(format!(
                "No settings should be passed when removing or detaching a {}",
                kind.as_str()
            )));
        }
        out.push(Mod {
            action,
            ident,
            params,
        });
    }
    Ok(out)
}

/// Where an `add` puts the new device among `len` (Ganeti's
/// `GetIndexFromIdentifier`).
pub fn add_index(kind: Kind, ident: &Ident, len: usize) -> Result<usize, Error> {
    match ident {
        Ident::Index(-1) => Ok(len),
        Ident::Index(i) if *i < 0 => Err(inval("Not accepting negative indices other than -1")),
        Ident::Index(i) if *i as usize > len => Err(inval(format!(
            "Got {} index {i}, but there are only {len}",
            kind.as_str()
        ))),
        Ident::Index(i) => Ok(*i as usize),
        Ident::Name(_) => Err(inval("Only positive integer or -1 is accepted")),
    }
}

/// The position of the existing device `ident` (Ganeti's
/// `GetItemFromContainer`); `ids` gives each device's UUID and name.
pub fn existing_index<'a>(
    kind: Kind,
    ident: &Ident,
    ids: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<usize, Error> {
    let len = ids.len();
    match ident {
        Ident::Index(-1) if len > 0 => Ok(len - 1),
        Ident::Index(i) if *i < -1 => Err(inval("Not accepting negative indices other than -1")),
        Ident::Index(i) if *i >= 0 && (*i as usize) < len => Ok(*i as usize),
        Ident::Index(i) => Err(inval(format!(
            "Got {} index {i}, but there are only {len}",
            kind.as_str()
        ))),
        Ident::Name(n) => {
            let mut ids = ids;
            ids.position(|(uuid, name)| uuid == n || name == Some(n.as_str()))
                .ok_or_else(|| noent(format!("Cannot find {} with identifier {n}", kind.as_str())))
        }
    }
}

/// A device name as given: `none` (any case) unsets it.
fn name_param(v: &Value, kind: Kind) -> Result<Option<String>, Error> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.eq_ignore_ascii_case("none") => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(inval(format!(
            "Invalid {} name {other}: expected a string",
            kind.as_str()
        ))),
    }
}

/// The devices after the changes, checked: no more than Ganeti allows
/// (`MAX_DISKS`, `MAX_NICS`), and names as [`check_names`] wants them.
pub fn check_devices<'a>(
    kind: Kind,
    devices: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), Error> {
    let (max, what) = match kind {
        Kind::Disk => (MAX_DISKS, "disks"),
        Kind::Nic => (MAX_NICS, "network interfaces"),
    };
    if devices.len() > max {
        return Err(crate::lu::wrong_state(format!(
            "Instance has too many {what} ({}), cannot add more",
            devices.len()
        )));
    }
    check_names(kind, devices)
}

/// Ganeti's `ValidateDeviceNames`: names unique among the devices (and
/// not another device's UUID), and not purely numeric.
pub fn check_names<'a>(
    kind: Kind,
    devices: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), Error> {
    let mut seen: Vec<&str> = Vec::new();
    let devices: Vec<_> = devices.collect();
    seen.extend(devices.iter().map(|(uuid, _)| *uuid));
    for (_, name) in devices {
        let Some(name) = name else { continue };
        if name.parse::<i64>().is_ok() {
            return Err(inval(format!(
                "Invalid name '{name}'. Purely numeric {} names are not allowed",
                kind.as_str()
            )));
        }
        if seen.contains(&name) {
            return Err(Error::prereq(
                format!("{} name '{name}' already used", kind.as_str()),
                luxi::ErrorCode::NotUnique,
            ));
        }
        seen.push(name);
    }
    Ok(())
}

/// A new or changed disk's parameters, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskParams {
    /// MiB (`add` only).
    pub size: Option<u64>,
    pub mode: Option<objects::DiskMode>,
    /// `Some(None)`: unset the name.
    pub name: Option<Option<String>>,
    pub vg: Option<String>,
    pub metavg: Option<String>,
    /// The disk template of a disk added to a diskless instance.
    pub template: Option<objects::DiskTemplate>,
}

fn size_param(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Checks the parameters of a disk change (what can be checked without
/// the instance).
pub fn disk_params(action: Action, p: &Map<String, Value>) -> Result<DiskParams, Error> {
    let mut out = DiskParams::default();
    for (k, v) in p {
        match (action, k.as_str()) {
            (Action::Add, "size") => {
                out.size = Some(size_param(v).filter(|s| *s > 0).ok_or_else(|| {
                    inval(format!(
                        "Invalid disk size {v}: expected a positive number of MiB"
                    ))
                })?);
            }
            (Action::Modify, "size") => {
                return Err(inval("Disk size change not possible, use grow-disk"))
            }
            (_, "mode") => {
                out.mode = Some(match v.as_str() {
                    Some("rw") => objects::DiskMode::Rw,
                    Some("ro") => objects::DiskMode::Ro,
                    _ => {
                        return Err(inval(format!(
                            "Invalid disk access mode '{}'",
                            v.as_str().map_or(v.to_string(), str::to_string)
                        )))
                    }
                });
            }
            (_, "name") => out.name = Some(name_param(v, Kind::Disk)?),
            (Action::Add, "vg" | "metavg") => {
                let vg = v.as_str().unwrap_or_default();
                objects::validate::check_lvm_name("volume group", vg)
                    .map_err(|e| inval(e.to_string()))?;
                if k == "vg" {
                    out.vg = Some(vg.to_string());
                } else {
                    out.metavg = Some(vg.to_string());
                }
            }
            (Action::Add, "spindles") if !v.is_null() => {
                return Err(inval(
                    "Spindles in instance disks cannot be specified when exclusive storage \
                     is not active",
                ))
            }
            (Action::Add, "spindles") => {}
            (Action::Add, "type") => {
                let t = v
                    .as_str()
                    .and_then(|s| s.parse::<objects::DiskTemplate>().ok())
                    .ok_or_else(|| inval(format!("Invalid disk type {v}")))?;
                out.template = Some(t);
            }
            (Action::Add, "adopt" | "provider" | "access") => {
                return Err(inval(format!(
                    "Disk parameter '{k}' is not supported by ganeti-rs (got {v})"
                )))
            }
            _ => return Err(inval(format!("Unknown parameter '{k}'"))),
        }
    }
    if action == Action::Add && out.size.is_none() {
        return Err(inval("Required disk parameter 'size' missing"));
    }
    Ok(out)
}

/// What a NIC change sets, checked. `Some(None)` unsets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NicParams {
    /// A MAC address, or `generate` for a new one.
    pub mac: Option<String>,
    pub ip: Option<Option<String>>,
    pub name: Option<Option<String>>,
    pub network: Option<Option<String>>,
    /// `mode`, `link`, `vlan` (the NIC's own parameters).
    pub nicparams: Map<String, Value>,
}

/// Checks the parameters of a NIC change (Ganeti's
/// `_VerifyNicModification`).
pub fn nic_params(action: Action, p: &Map<String, Value>) -> Result<NicParams, Error> {
    let mut out = NicParams::default();
    for (k, v) in p {
        match k.as_str() {
            "mac" => {
                let mac = v
                    .as_str()
                    .ok_or_else(|| inval("Cannot unset the NIC MAC address"))?;
                out.mac = Some(match mac {
                    "auto" if action == Action::Modify => {
                        return Err(inval(
                            "'auto' is not a valid MAC address when modifying an existing NIC",
                        ))
                    }
                    "auto" | "generate" => "generate".to_string(),
                    m => normalize_mac(m).map_err(|e| inval(e.to_string()))?,
                });
            }
            "ip" => {
                out.ip = Some(match v {
                    Value::Null => None,
                    Value::String(s) if s.eq_ignore_ascii_case("none") => None,
                    Value::String(s) if s.eq_ignore_ascii_case("pool") => Some("pool".to_string()),
                    Value::String(s) if s.parse::<IpAddr>().is_ok() => Some(s.clone()),
                    other => {
                        return Err(inval(format!(
                            "Invalid IP address '{}'",
                            other.as_str().map_or(other.to_string(), str::to_string)
                        )))
                    }
                });
            }
            "name" => out.name = Some(name_param(v, Kind::Nic)?),
            "network" => {
                out.network = Some(match v {
                    Value::Null => None,
                    Value::String(s) if s.eq_ignore_ascii_case("none") => None,
                    Value::String(s) => Some(s.clone()),
                    other => return Err(inval(format!("Invalid network {other}"))),
                });
            }
            "mode" => {
                let mode = v.as_str().unwrap_or_default();
                if !["bridged", "routed", "openvswitch"].contains(&mode) {
                    return Err(inval(format!("Invalid NIC mode '{mode}'")));
                }
                out.nicparams.insert(k.clone(), v.clone());
            }
            "link" | "vlan" => {
                if !v.is_string() {
                    return Err(inval(format!("Invalid NIC {k} {v}: expected a string")));
                }
                out.nicparams.insert(k.clone(), v.clone());
            }
            _ => return Err(inval(format!("Unknown parameter '{k}'"))),
        }
    }
    if let Some(Some(_)) = &out.network {
        if out.nicparams.contains_key("mode") || out.nicparams.contains_key("link") {
            return Err(inval("If network is given mode or link should not"));
        }
    }
    if action == Action::Add
        && matches!(&out.ip, Some(Some(ip)) if ip == "pool")
        && !matches!(&out.network, Some(Some(_)))
    {
        return Err(inval("If ip=pool, parameter network cannot be none"));
    }
    if action == Action::Add && out.mac.is_none() {
        out.mac = Some("generate".to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(kind: Kind, v: Value) -> Result<Vec<Mod>, Error> {
        parse(kind, v.as_array().unwrap())
    }

    #[test]
    fn both_forms_parse_to_the_same_changes() {
        let new = one(
            Kind::Disk,
            json!([["add", -1, {"size": 1024}], ["modify", 0, {"mode": "ro"}]]),
        )
        .unwrap();
        assert_eq!(new[0].action, Action::Add);
        assert_eq!(new[0].ident, Ident::Index(-1));
        assert_eq!(new[1].action, Action::Modify);
        let old = one(Kind::Disk, json!([["add", {"size": 1024}]])).unwrap();
        assert_eq!(old[0], new[0]);
        let old = one(Kind::Disk, json!([["0", {"mode": "ro"}]])).unwrap();
        assert_eq!(old[0], new[1]);
        let named = one(Kind::Nic, json!([["remove", "eth1", {}]])).unwrap();
        assert_eq!(named[0].ident, Ident::Name("eth1".into()));
    }

    #[test]
    fn bad_changes_are_refused_with_what_is_wrong() {
        let msg = |r: Result<Vec<Mod>, Error>| r.unwrap_err().to_string();
        assert!(msg(one(Kind::Disk, json!([["add", {}], ["remove", {}]])))
            .contains("Only one disk add/attach/remove/detach operation"));
        assert!(msg(one(Kind::Disk, json!([["remove", 0, {"size": 1}]])))
            .contains("No settings should be passed when removing"));
        assert!(msg(one(Kind::Nic, json!([["attach", 0, {}]])))
            .contains("Attach operation is not supported for NICs"));
        assert!(msg(one(Kind::Disk, json!([["attach", 0, {}]]))).contains("not supported"));
        assert!(msg(one(Kind::Disk, json!([["grow", 0, {}]]))).contains("unknown action"));
        assert!(msg(one(Kind::Disk, json!(["add"]))).contains("expected a list"));
    }

    #[test]
    fn indices_resolve_as_ganeti_resolves_them() {
        let ids = [("u0", Some("a")), ("u1", None)];
        let at = |i: Ident| existing_index(Kind::Disk, &i, ids.iter().copied());
        assert_eq!(at(Ident::Index(-1)).unwrap(), 1);
        assert_eq!(at(Ident::Index(0)).unwrap(), 0);
        assert_eq!(at(Ident::Name("a".into())).unwrap(), 0);
        assert_eq!(at(Ident::Name("u1".into())).unwrap(), 1);
        assert!(at(Ident::Index(2))
            .unwrap_err()
            .to_string()
            .contains("Got disk index 2, but there are only 2"));
        assert!(at(Ident::Name("b".into()))
            .unwrap_err()
            .to_string()
            .contains("Cannot find disk with identifier b"));
        assert_eq!(add_index(Kind::Nic, &Ident::Index(-1), 2).unwrap(), 2);
        assert_eq!(add_index(Kind::Nic, &Ident::Index(0), 2).unwrap(), 0);
        assert!(add_index(Kind::Nic, &Ident::Index(3), 2).is_err());
        assert!(add_index(Kind::Nic, &Ident::Name("x".into()), 2).is_err());
    }

    #[test]
    fn disk_and_nic_parameters_are_checked() {
        let p = |v: Value| v.as_object().unwrap().clone();
        let d = disk_params(
            Action::Add,
            &p(json!({"size": 2048, "mode": "ro", "name": "data"})),
        )
        .unwrap();
        assert_eq!(d.size, Some(2048));
        assert_eq!(d.mode, Some(objects::DiskMode::Ro));
        assert_eq!(d.name, Some(Some("data".into())));
        let err = |r: Result<DiskParams, Error>| r.unwrap_err().to_string();
        assert!(err(disk_params(Action::Add, &p(json!({})))).contains("'size' missing"));
        assert!(err(disk_params(Action::Modify, &p(json!({"size": 1})))).contains("use grow-disk"));
        assert!(err(disk_params(
            Action::Add,
            &p(json!({"size": 1, "mode": "rx"}))
        ))
        .contains("Invalid disk access mode 'rx'"));
        assert!(
            err(disk_params(Action::Add, &p(json!({"size": 1, "bogus": 1}))))
                .contains("Unknown parameter 'bogus'")
        );
        assert!(err(disk_params(
            Action::Add,
            &p(json!({"size": 1, "adopt": "lv"}))
        ))
        .contains("'adopt' is not supported"));
        let n = nic_params(Action::Add, &p(json!({"ip": "192.0.2.7", "link": "br1"}))).unwrap();
        assert_eq!(n.mac.as_deref(), Some("generate"));
        assert_eq!(n.ip, Some(Some("192.0.2.7".into())));
        let err = |r: Result<NicParams, Error>| r.unwrap_err().to_string();
        assert!(err(nic_params(Action::Add, &p(json!({"ip": "1.2.3"})))).contains("Invalid IP"));
        assert!(err(nic_params(Action::Modify, &p(json!({"mac": "auto"}))))
            .contains("'auto' is not a valid MAC"));
        assert!(err(nic_params(Action::Add, &p(json!({"mode": "bridge"})))).contains("mode"));
        assert!(err(nic_params(
            Action::Add,
            &p(json!({"network": "n1", "link": "br0"}))
        ))
        .contains("If network is given mode or link should not"));
    }

    #[test]
    fn device_names_are_unique_and_not_numbers() {
        let ok = [("u0", Some("a")), ("u1", None), ("u2", Some("b"))];
        check_names(Kind::Disk, ok.iter().copied()).unwrap();
        let dup = [("u0", Some("a")), ("u1", Some("a"))];
        assert!(check_names(Kind::Nic, dup.iter().copied())
            .unwrap_err()
            .to_string()
            .contains("NIC name 'a' already used"));
        let num = [("u0", Some("12"))];
        assert!(check_names(Kind::Disk, num.iter().copied()).is_err());
        let uuid = [("u0", None), ("u1", Some("u0"))];
        assert!(check_names(Kind::Disk, uuid.iter().copied()).is_err());
    }
}
