//! Host name resolution: the node tree's own `etc/hosts` first (so a
//! virtual cluster needs nothing from the machine's resolver), then the
//! system's resolver.

use std::net::{IpAddr, ToSocketAddrs};

use crate::paths::Paths;

/// Looks `name` up in a hosts-format text.
pub fn lookup_hosts(text: &str, name: &str) -> Option<IpAddr> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut parts = line.split_whitespace();
        let Some(addr) = parts.next() else { continue };
        if parts.any(|n| n == name) {
            if let Ok(ip) = addr.parse() {
                return Some(ip);
            }
        }
    }
    None
}

/// Resolves `name` to an IPv4 address, or `None`.
pub fn resolve(paths: &Paths, name: &str) -> Option<IpAddr> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(text) = std::fs::read_to_string(paths.root().join("etc/hosts")) {
        if let Some(ip) = lookup_hosts(&text, name) {
            return Some(ip);
        }
    }
    (name, 0)
        .to_socket_addrs()
        .ok()?
        .map(|a| a.ip())
        .find(IpAddr::is_ipv4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lines_with_aliases_and_comments() {
        let text = "# comment\n127.0.0.2 node2.example.com node2 # second\n127.0.0.3\tnode3\n";
        assert_eq!(
            lookup_hosts(text, "node2"),
            Some("127.0.0.2".parse().unwrap())
        );
        assert_eq!(
            lookup_hosts(text, "node3"),
            Some("127.0.0.3".parse().unwrap())
        );
        assert_eq!(lookup_hosts(text, "second"), None);
        assert_eq!(lookup_hosts(text, "node4"), None);
    }
}
