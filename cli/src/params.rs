//! Parsing of `key=val,key=val` and `ident:key=val` option values and the
//! type conversion Ganeti's CLI applies before sending parameters
//! (`ForceDictType`: sizes with units, integers, booleans).

use serde_json::{json, Map, Value};

use crate::error::CliError;
use crate::units::parse_unit;

fn parameter_error(msg: String) -> CliError {
    CliError::Ganeti(luxi::GanetiError::parameter(msg))
}

fn type_error(msg: String) -> CliError {
    CliError::Ganeti(luxi::GanetiError::new(
        "TypeEnforcementError",
        vec![json!(msg)],
    ))
}

/// Splits on `sep`, where `\,` is a literal separator (`UnescapeAndSplit`).
pub fn unescape_and_split(text: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some(&n) if n == sep => {
                    cur.push(n);
                    chars.next();
                }
                Some('\\') => {
                    cur.push('\\');
                    chars.next();
                }
                _ => cur.push(c),
            }
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// `key=val,...` into a dict; bare `key` is true, `no_key` false and
/// `-key` null (reset to default).
pub fn split_key_val(opt: &str, data: &str) -> Result<Map<String, Value>, CliError> {
    let mut m = Map::new();
    if data.is_empty() {
        return Ok(m);
    }
    for elem in unescape_and_split(data, ',') {
        let (key, val) = match elem.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => {
                if let Some(k) = elem.strip_prefix("no_") {
                    (k.to_string(), json!(false))
                } else if let Some(k) = elem.strip_prefix('-') {
                    (k.to_string(), Value::Null)
                } else {
                    (elem.clone(), json!(true))
                }
            }
        };
        if m.contains_key(&key) {
            return Err(parameter_error(format!(
                "Duplicate key '{key}' in option {opt}"
            )));
        }
        m.insert(key, val);
    }
    Ok(m)
}

/// `ident:key=val,...` into `(ident, dict)`; `no_ident` gives false and
/// `-ident` null.
pub fn split_ident_key_val(opt: &str, value: &str) -> Result<(String, Value), CliError> {
    let (ident, rest) = value.split_once(':').unwrap_or((value, ""));
    if let Some(id) = ident.strip_prefix("no_") {
        if !rest.is_empty() {
            return Err(parameter_error(format!(
                "Cannot pass options when removing parameter groups: {value}"
            )));
        }
        return Ok((id.to_string(), json!(false)));
    }
    if let Some(id) = ident.strip_prefix('-') {
        if !id.starts_with(|c: char| c.is_ascii_digit()) {
            if !rest.is_empty() {
                return Err(parameter_error(format!(
                    "Cannot pass options when removing parameter groups: {value}"
                )));
            }
            return Ok((id.to_string(), Value::Null));
        }
    }
    Ok((ident.to_string(), Value::Object(split_key_val(opt, rest)?)))
}

pub use objects::params::types::{be_type, disk_dt_type, hv_type, nd_type, nic_type, VType};

fn py_scalar(v: &Value) -> String {
    crate::pyfmt::py_str(v)
}

/// Converts the values of `target` to their parameter types, as Ganeti's
/// `ForceDictType`; `null` (reset) values are left alone when `allow_null`.
pub fn force_dict_type(
    target: &mut Map<String, Value>,
    types: fn(&str) -> Option<VType>,
    allow_null: bool,
) -> Result<(), CliError> {
    for (key, val) in target.iter_mut() {
        let Some(t) = types(key) else {
            return Err(type_error(format!("Unknown parameter '{key}'")));
        };
        if allow_null && val.is_null() {
            continue;
        }
        let new = match t {
            VType::Str | VType::MaybeStr => match &*val {
                Value::String(_) => None,
                Value::Null if t == VType::MaybeStr => None,
                Value::Bool(false) => Some(json!("")),
                other => {
                    return Err(type_error(format!(
                        "'{key}' (value {}) is not a valid string",
                        py_scalar(other)
                    )))
                }
            },
            VType::Bool => match &*val {
                Value::String(s) if !s.is_empty() => match s.to_lowercase().as_str() {
                    "false" => Some(json!(false)),
                    "true" => Some(json!(true)),
                    _ => {
                        return Err(type_error(format!(
                            "'{key}' (value {s}) is not a valid boolean"
                        )))
                    }
                },
                Value::Bool(_) => None,
                Value::Null | Value::String(_) => Some(json!(false)),
                _ => Some(json!(true)),
            },
            VType::Size => {
                let text = py_scalar(val);
                match parse_unit(&text) {
                    Ok(n) => Some(json!(n)),
                    Err(e) => {
                        return Err(type_error(format!(
                            "'{key}' (value {text}) is not a valid size. error: {e}"
                        )))
                    }
                }
            }
            VType::Float => {
                let text = py_scalar(val);
                match text.trim().parse::<f64>() {
                    Ok(n) => Some(json!(n)),
                    Err(_) => {
                        return Err(type_error(format!(
                            "'{key}' (value {text}) is not a valid float"
                        )))
                    }
                }
            }
            VType::Int => {
                let text = py_scalar(val);
                match text.trim().parse::<i64>() {
                    Ok(n) => Some(json!(n)),
                    Err(_) => {
                        return Err(type_error(format!(
                            "'{key}' (value {text}) is not a valid integer"
                        )))
                    }
                }
            }
        };
        if let Some(n) = new {
            *val = n;
        }
    }
    Ok(())
}

/// Parses a boolean option value (yes/no/true/false, any case), as
/// Ganeti's `check_bool`.
pub fn parse_yes_no(_opt: &str, v: &str) -> Result<bool, CliError> {
    let v = v.to_lowercase();
    match v.as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(parameter_error(format!("Invalid boolean value '{v}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_val_handles_prefixes_and_escapes() {
        let m = split_key_val("-B", r"maxmem=512M,no_auto_balance,-vcpus,a=x\,y").unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"maxmem": "512M", "auto_balance": false, "vcpus": null, "a": "x,y"})
        );
        assert!(split_key_val("-B", "a=1,a=2").is_err());
    }

    #[test]
    fn ident_key_val_splits_ident() {
        assert_eq!(
            split_ident_key_val("-H", "kvm:kernel_path=/k,acpi=false").unwrap(),
            ("kvm".into(), json!({"kernel_path": "/k", "acpi": "false"}))
        );
        assert_eq!(
            split_ident_key_val("-H", "kvm").unwrap(),
            ("kvm".into(), json!({}))
        );
        assert_eq!(
            split_ident_key_val("--net", "no_0").unwrap(),
            ("0".into(), json!(false))
        );
        assert_eq!(split_ident_key_val("--disk", "-0").unwrap().0, "-0");
    }

    #[test]
    fn backend_params_get_their_types() {
        let mut m = split_key_val("-B", "maxmem=1G,vcpus=2,auto_balance=false").unwrap();
        force_dict_type(&mut m, be_type, false).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"maxmem": 1024, "vcpus": 2, "auto_balance": false})
        );
        let mut bad = split_key_val("-B", "vcpus=many").unwrap();
        assert!(force_dict_type(&mut bad, be_type, false).is_err());
        let mut unknown = split_key_val("-B", "colour=red").unwrap();
        assert!(force_dict_type(&mut unknown, be_type, false).is_err());
    }
}
