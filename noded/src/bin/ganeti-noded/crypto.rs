//! The node's side of `gnt-cluster renew-crypto`: the TLS configuration
//! the server hands each new connection, and the two steps (stage, then
//! activate) by which a node moves to a new cluster CA and certificate
//! without ever refusing the master in between.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use objects::error_chain;
use objects::paths::Paths;
use rpc::api::*;
use rustls::ServerConfig;
use tracing::info;

use crate::handlers::{CallResult, State};

/// The server configuration new connections get; replaced by a renewal
/// (connections already open keep theirs).
#[derive(Default)]
pub struct ServingTls(RwLock<Option<Arc<ServerConfig>>>);

impl ServingTls {
    pub fn set(&self, config: Arc<ServerConfig>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(config);
    }

    pub fn get(&self) -> Option<Arc<ServerConfig>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Where a staged CA certificate waits for `crypto_activate`.
fn staged_ca(paths: &Paths) -> PathBuf {
    paths.data_dir().join("cluster-ca.pem.staged")
}

/// Where a staged node certificate waits for `crypto_activate`.
fn staged_cert(paths: &Paths) -> PathBuf {
    paths.data_dir().join("server.pem.staged")
}

fn failed(msg: impl Into<String>) -> RpcError {
    RpcError::new(ErrorKind::Failed, msg)
}

fn read(path: &std::path::Path) -> CallResult<String> {
    std::fs::read_to_string(path)
        .map_err(|e| failed(format!("cannot read '{}': {e}", path.display())))
}

/// `crypto_stage`: keeps serving the current certificate, stores the new
/// ones aside and accepts clients of both CAs.
pub fn crypto_stage(s: &State, r: CryptoStage) -> CallResult<()> {
    // Both new files must make a working configuration before anything
    // is written.
    rpc::tls::server_config_from_pem(&r.ca_cert, &r.node_pem).map_err(|e| {
        RpcError::new(
            ErrorKind::BadRequest,
            format!("the new certificates are unusable: {}", error_chain(&e)),
        )
    })?;
    let current_ca = read(&s.paths.cluster_ca_cert())?;
    let current_cert = read(&s.paths.node_cert())?;
    let both = format!("{current_ca}{}", r.ca_cert);
    let config = rpc::tls::server_config_from_pem(&both, &current_cert)
        .map_err(|e| failed(error_chain(&e)))?;
    let write = |path: PathBuf, content: &str, mode| {
        rpc::tls::write_file_atomically(&path, content.as_bytes(), mode)
            .map_err(|e| failed(error_chain(&e)))
    };
    write(staged_ca(&s.paths), &r.ca_cert, 0o644)?;
    write(staged_cert(&s.paths), &r.node_pem, 0o600)?;
    s.tls.set(config);
    info!("new cluster certificates staged; clients of both CAs accepted");
    Ok(())
}

/// `crypto_activate`: the staged files replace the current ones and new
/// connections are served with them.
pub fn crypto_activate(s: &State, _r: CryptoActivate) -> CallResult<()> {
    let (ca, cert) = (staged_ca(&s.paths), staged_cert(&s.paths));
    if !ca.is_file() || !cert.is_file() {
        return Err(RpcError::new(
            ErrorKind::NotFound,
            "no staged certificates (crypto_stage comes first)",
        ));
    }
    let config = rpc::tls::server_config_from_pem(&read(&ca)?, &read(&cert)?)
        .map_err(|e| failed(error_chain(&e)))?;
    let rename = |from: &PathBuf, to: PathBuf| {
        std::fs::rename(from, &to).map_err(|e| {
            failed(format!(
                "cannot move '{}' to '{}': {e}",
                from.display(),
                to.display()
            ))
        })
    };
    rename(&cert, s.paths.node_cert())?;
    rename(&ca, s.paths.cluster_ca_cert())?;
    s.tls.set(config);
    info!("serving with the new cluster certificates");
    Ok(())
}

/// `crypto_abort`: drops staged files and trusts the current CA alone.
pub fn crypto_abort(s: &State, _r: CryptoAbort) -> CallResult<()> {
    for path in [staged_ca(&s.paths), staged_cert(&s.paths)] {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(format!("cannot remove '{}': {e}", path.display()))),
        }
    }
    let config = rpc::tls::server_config(&s.paths).map_err(|e| failed(error_chain(&e)))?;
    s.tls.set(config);
    info!("certificate renewal abandoned; serving as before");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(dir: &std::path::Path) -> (State, rpc::tls::ClusterCa) {
        let state = State::new(Paths::new(dir), "node1".into(), None);
        let ca = rpc::tls::create_cluster_ca("c").unwrap();
        rpc::tls::write_cluster_ca(&state.paths, &ca, false).unwrap();
        let pem = rpc::tls::create_node_cert(&ca, "node1", "127.0.0.1".parse().unwrap()).unwrap();
        rpc::tls::write_node_cert(&state.paths, &pem).unwrap();
        (state, ca)
    }

    fn stage_req(name: &str) -> (CryptoStage, rpc::tls::ClusterCa) {
        let ca = rpc::tls::create_cluster_ca(name).unwrap();
        let pem = rpc::tls::create_node_cert(&ca, "node1", "127.0.0.1".parse().unwrap()).unwrap();
        (
            CryptoStage {
                ca_cert: ca.cert_pem.clone(),
                node_pem: pem,
            },
            ca,
        )
    }

    #[test]
    fn staging_keeps_the_current_files_and_activation_replaces_them() {
        let dir = tempfile::tempdir().unwrap();
        let (s, old) = node(dir.path());
        let (req, new) = stage_req("c2");
        crypto_stage(&s, req.clone()).unwrap();
        assert!(s.tls.get().is_some());
        assert_eq!(read(&s.paths.cluster_ca_cert()).unwrap(), old.cert_pem);
        crypto_activate(&s, CryptoActivate {}).unwrap();
        assert_eq!(read(&s.paths.cluster_ca_cert()).unwrap(), new.cert_pem);
        assert_eq!(read(&s.paths.node_cert()).unwrap(), req.node_pem);
        assert!(!staged_ca(&s.paths).exists());
        // Nothing left to activate a second time.
        let e = crypto_activate(&s, CryptoActivate {}).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }

    #[test]
    fn abort_drops_the_staged_files() {
        let dir = tempfile::tempdir().unwrap();
        let (s, old) = node(dir.path());
        crypto_stage(&s, stage_req("c2").0).unwrap();
        crypto_abort(&s, CryptoAbort {}).unwrap();
        assert!(!staged_ca(&s.paths).exists() && !staged_cert(&s.paths).exists());
        assert_eq!(read(&s.paths.cluster_ca_cert()).unwrap(), old.cert_pem);
    }

    #[test]
    fn unusable_certificates_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = node(dir.path());
        let e = crypto_stage(
            &s,
            CryptoStage {
                ca_cert: "not a certificate".into(),
                node_pem: "nor this".into(),
            },
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(!staged_ca(&s.paths).exists());
        assert!(s.tls.get().is_none());
    }
}
