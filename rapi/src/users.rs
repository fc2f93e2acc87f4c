//! The RAPI users file, `var/lib/ganeti/rapi/users`, in Ganeti's format:
//! one user a line, `name password [option,option...]`, fields separated by
//! whitespace; empty lines and lines starting with `#` are skipped. The
//! password is plain text, `{CLEARTEXT}text` or `{HA1}hex`, the MD5 of
//! `name:Ganeti Remote API:password` (RFC 2617's H(A1)). The options that
//! mean something are `read` and `write`.
//!
//! The file is read again whenever it changes (its inode, size or
//! modification time): a request after an edit sees the new users.

use std::collections::HashMap;
use std::path::Path;

use md5::{Digest, Md5};

use crate::error::AUTH_REALM;
use crate::watched::Watched;

/// One user of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// The password as written, scheme included.
    pub password: String,
    pub options: Vec<String>,
}

impl User {
    pub fn has_option(&self, opt: &str) -> bool {
        self.options.iter().any(|o| o == opt)
    }
}

/// The users, by name.
pub type Users = HashMap<String, User>;

/// Parses the file's contents; lines with fewer than two fields are
/// skipped (logged).
pub fn parse(contents: &str) -> Users {
    let mut users = HashMap::new();
    for (n, line) in contents.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line
            .splitn(3, char::is_whitespace)
            .filter(|p| !p.is_empty());
        let (Some(name), Some(password)) = (parts.next(), parts.next()) else {
            tracing::warn!(
                line = n + 1,
                "users file: skipping a line with less than two fields"
            );
            continue;
        };
        let options = parts
            .next()
            .map(|o| o.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        users.insert(
            name.to_string(),
            User {
                name: name.to_string(),
                password: password.to_string(),
                options,
            },
        );
    }
    users
}

/// Whether `given` is the password of user `name` whose file entry is
/// `expected` (with or without a scheme).
pub fn check_password(name: &str, given: &str, expected: &str) -> bool {
    let expected = if expected.starts_with('{') {
        expected.to_string()
    } else {
        format!("{{CLEARTEXT}}{expected}")
    };
    let Some(end) = expected.find('}').filter(|&i| i > 1) else {
        tracing::warn!(user = name, "users file: invalid password scheme");
        return false;
    };
    let scheme = expected[..=end].to_ascii_uppercase();
    let stored = &expected[end + 1..];
    match scheme.as_str() {
        "{CLEARTEXT}" => constant_time_eq(given.as_bytes(), stored.as_bytes()),
        "{HA1}" => {
            let digest = Md5::digest(format!("{name}:{AUTH_REALM}:{given}").as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            constant_time_eq(hex.as_bytes(), stored.to_ascii_lowercase().as_bytes())
        }
        other => {
            tracing::warn!(
                user = name,
                scheme = other,
                "users file: unknown password scheme"
            );
            false
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The users file, read again when it changes; no file means no users.
pub type UsersFile = Watched<Users>;

/// Watches the users file at `path`.
pub fn users_file(path: &Path) -> UsersFile {
    Watched::new(path, "users file", |_, text| parse(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ganetis_format() {
        let users = parse(
            "# comment\n\n  jack abc123 write\nrose {HA1}0123 read, write \nsolo pw\nbroken\n",
        );
        assert_eq!(users.len(), 3);
        assert_eq!(users["jack"].options, vec!["write"]);
        assert_eq!(users["rose"].options, vec!["read", "write"]);
        assert!(users["solo"].options.is_empty());
        assert!(!users.contains_key("broken"));
    }

    #[test]
    fn passwords_in_every_scheme() {
        assert!(check_password("jack", "abc123", "abc123"));
        assert!(!check_password("jack", "abc", "abc123"));
        assert!(check_password("jack", "abc123", "{cleartext}abc123"));
        // echo -n 'jack:Ganeti Remote API:abc123' | md5sum
        let ha1 = format!(
            "{:x}",
            Md5::digest(b"jack:Ganeti Remote API:abc123")
                .iter()
                .fold(0u128, |a, b| (a << 8) | u128::from(*b))
        );
        assert!(check_password("jack", "abc123", &format!("{{HA1}}{ha1}")));
        assert!(check_password(
            "jack",
            "abc123",
            &format!("{{ha1}}{}", ha1.to_uppercase())
        ));
        assert!(!check_password("jill", "abc123", &format!("{{HA1}}{ha1}")));
        assert!(!check_password("jack", "abc123", "{SHA}abc123"));
        assert!(!check_password("jack", "abc123", "{}abc123"));
    }

    #[test]
    fn the_file_is_read_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let f = users_file(&path);
        assert!(f.current().is_empty());
        std::fs::write(&path, "jack abc write\n").unwrap();
        assert!(f.current().contains_key("jack"));
        // Replaced by rename, as editors and config management do.
        let tmp = dir.path().join("users.new");
        std::fs::write(&tmp, "jill xyz read\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let now = f.current();
        assert!(now.contains_key("jill") && !now.contains_key("jack"));
        std::fs::remove_file(&path).unwrap();
        assert!(f.current().is_empty());
    }
}
