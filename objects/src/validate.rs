//! Validation of names and values that come from users.

use thiserror::Error;

/// A value a user gave that cannot be accepted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidValue {
    #[error("invalid {kind} name '{name}': {why}")]
    Name {
        kind: &'static str,
        name: String,
        why: &'static str,
    },
    #[error("invalid MAC address '{0}': expected six colon-separated hex bytes")]
    Mac(String),
    #[error("invalid IPv4 address '{0}'")]
    Ip(String),
}

/// Checks a host-like name (instance, node): letters, digits, `-` and `.`,
/// starting with a letter or digit, at most 255 characters, no empty label.
pub fn check_host_name(kind: &'static str, name: &str) -> Result<(), InvalidValue> {
    let bad = |why| {
        Err(InvalidValue::Name {
            kind,
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 255 {
        return bad("it is longer than 255 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return bad("only letters, digits, '-', '_' and '.' are allowed");
    }
    if name.split('.').any(|l| l.is_empty()) {
        return bad("it has an empty label");
    }
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return bad("it must start with a letter or digit");
    }
    Ok(())
}

/// Checks a volume group or logical volume name as lvm accepts it: 1 to
/// 127 letters, digits and `+_.-`, not starting with `-`, not `.` or `..`.
/// `kind` names it in the error (`volume group`, `logical volume`).
pub fn check_lvm_name(kind: &'static str, name: &str) -> Result<(), InvalidValue> {
    let bad = |why| {
        Err(InvalidValue::Name {
            kind,
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() || name.len() > 127 {
        return bad("it must be 1 to 127 characters");
    }
    if name.starts_with('-') || name == "." || name == ".." {
        return bad("it must not start with '-' or be '.' or '..'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+_.-".contains(&b))
    {
        return bad("only letters, digits and '+_.-' are allowed");
    }
    Ok(())
}

/// Checks a group name: non-empty, printable, no whitespace or '/'.
pub fn check_group_name(name: &str) -> Result<(), InvalidValue> {
    let bad = |why| {
        Err(InvalidValue::Name {
            kind: "group",
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 255 {
        return bad("it is longer than 255 characters");
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return bad("whitespace, control characters and '/' are not allowed");
    }
    Ok(())
}

/// Normalises and checks a MAC address (`aa:00:00:12:34:56`).
pub fn normalize_mac(mac: &str) -> Result<String, InvalidValue> {
    let parts: Vec<&str> = mac.split(':').collect();
    if parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        Ok(mac.to_ascii_lowercase())
    } else {
        Err(InvalidValue::Mac(mac.to_string()))
    }
}

/// Checks an IPv4 address.
pub fn check_ipv4(ip: &str) -> Result<(), InvalidValue> {
    ip.parse::<std::net::Ipv4Addr>()
        .map(|_| ())
        .map_err(|_| InvalidValue::Ip(ip.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(check_host_name("instance", "inst1.example.com").is_ok());
        assert!(check_host_name("instance", "").is_err());
        assert!(check_host_name("instance", "a..b").is_err());
        assert!(check_host_name("instance", "-a").is_err());
        let e = check_host_name("instance", "bad name").unwrap_err();
        assert!(e.to_string().contains("'bad name'"), "{e}");
    }

    #[test]
    fn macs() {
        assert_eq!(
            normalize_mac("AA:00:00:12:34:56").unwrap(),
            "aa:00:00:12:34:56"
        );
        assert!(normalize_mac("aa:00:00:12:34").is_err());
    }
}
