//! The storage daemons' TLS credentials: the node's certificate and key
//! (`server.pem`) and the cluster CA, split into the files of QEMU's
//! `tls-creds-x509` directory layout. The same certificate serves the
//! node's NBD server and authenticates it as a client (to its peer, and
//! the guest's QEMU to the local daemon).

use std::path::Path;

use objects::paths::Paths;

use crate::error::{Result, StorageError};

/// The identity QEMU's `authz-list` matches for node `name`: the
/// certificate's subject as GnuTLS prints it (the certificates of
/// `rpc::tls::create_node_cert`).
pub fn node_identity(name: &str) -> String {
    format!("O=ganeti-rs,CN={name}")
}

/// The PEM blocks of `text` as (label, block with its markers).
fn pem_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_string();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let stop = start + end + end_marker.len();
        blocks.push((label, format!("{}\n", &rest[start..stop])));
        rest = &rest[stop..];
    }
    blocks
}

/// Writes `dir`'s files from the node's certificate and the cluster CA,
/// rewriting only what changed (the daemons read them at their start).
pub fn write_creds(paths: &Paths, dir: &Path) -> Result<()> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| StorageError::io("read", p, e));
    let node = read(&paths.node_cert())?;
    let ca = read(&paths.cluster_ca_cert())?;
    let blocks = pem_blocks(&node);
    let certs: String = blocks
        .iter()
        .filter(|(l, _)| l == "CERTIFICATE")
        .map(|(_, b)| b.as_str())
        .collect();
    let key: String = blocks
        .iter()
        .filter(|(l, _)| l.ends_with("PRIVATE KEY"))
        .map(|(_, b)| b.as_str())
        .collect();
    if certs.is_empty() || key.is_empty() {
        return Err(StorageError::InvalidPath {
            path: paths.node_cert().display().to_string(),
            reason: "holds no certificate and private key".into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io("create directory", dir, e))?;
    let files = [
        ("ca-cert.pem", ca.as_str(), 0o644),
        ("server-cert.pem", certs.as_str(), 0o644),
        ("client-cert.pem", certs.as_str(), 0o644),
        ("server-key.pem", key.as_str(), 0o600),
        ("client-key.pem", key.as_str(), 0o600),
    ];
    for (name, content, mode) in files {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(content) {
            continue;
        }
        rpc::tls::write_file_atomically(&path, content.as_bytes(), mode).map_err(|e| {
            StorageError::Io {
                action: "write",
                path: path.clone(),
                source: std::io::Error::other(objects::error_chain(&e)),
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_and_keys_are_told_apart() {
        let text = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
                    -----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n";
        let blocks = pem_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].0, "CERTIFICATE");
        assert_eq!(
            blocks[1].1,
            "-----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n"
        );
        assert!(pem_blocks("no pem").is_empty());
    }
}
