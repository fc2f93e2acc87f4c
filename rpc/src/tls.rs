//! The cluster's certificates and the TLS configurations of node RPC.
//!
//! One CA per cluster (`cluster-ca.pem` on every node, its key
//! `cluster-ca.key` on the master and the master candidates) signs one certificate per node
//! (`server.pem`, certificate and key in one file). A node daemon serves
//! with its certificate and accepts only clients presenting a certificate
//! signed by the CA; a client presents its own node's certificate and
//! checks that the server's is signed by the CA and names the node it
//! meant to reach.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use objects::paths::Paths;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate {what}")]
    Generate {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("invalid node name '{name}' for a certificate")]
    InvalidName {
        name: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("cannot {action} '{path}'")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid PEM in {what}: {reason}")]
    Pem { what: String, reason: String },
    #[error("cannot build the TLS configuration")]
    Config(#[source] rustls::Error),
    #[error("cannot build the client certificate verifier: {0}")]
    Verifier(String),
}

/// A cluster CA: certificate and private key, PEM.
#[derive(Clone)]
pub struct ClusterCa {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

/// Creates a new CA for the cluster `cluster_name`.
pub fn create_cluster_ca(cluster_name: &str) -> Result<ClusterCa, TlsError> {
    let generate = |source| TlsError::Generate {
        what: format!("the CA of cluster '{cluster_name}'"),
        source,
    };
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "ganeti-rs");
    dn.push(DnType::CommonName, format!("{cluster_name} cluster CA"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).map_err(generate)?;
    Ok(ClusterCa {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Creates the certificate of node `node_name` (subject alternative names:
/// the name and `ip`) signed by `ca`; returns certificate and key as one
/// PEM text, the content of `server.pem`.
pub fn create_node_cert(ca: &ClusterCa, node_name: &str, ip: IpAddr) -> Result<String, TlsError> {
    let generate = |source| TlsError::Generate {
        what: format!("the certificate of node '{node_name}'"),
        source,
    };
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(|e| TlsError::Pem {
        what: "the CA key".into(),
        reason: e.to_string(),
    })?;
    let ca_params =
        CertificateParams::from_ca_cert_pem(&ca.cert_pem).map_err(|e| TlsError::Pem {
            what: "the CA certificate".into(),
            reason: e.to_string(),
        })?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(generate)?;

    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::new(vec![node_name.to_string()]).map_err(|source| {
        TlsError::InvalidName {
            name: node_name.to_string(),
            source,
        }
    })?;
    if node_name.parse::<IpAddr>().ok() != Some(ip) {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "ganeti-rs");
    dn.push(DnType::CommonName, node_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .map_err(generate)?;
    Ok(format!("{}{}", cert.pem(), key.serialize_pem()))
}

/// Writes `content` to `path` atomically (a reader sees the old file or
/// the whole new one) with permission bits `mode`.
pub fn write_file_atomically(path: &Path, content: &[u8], mode: u32) -> Result<(), TlsError> {
    let io = |action, source| TlsError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("write", e));
    }
    Ok(())
}

/// Writes the CA certificate (0644) and, if given, its key (0600): the
/// master keeps both, other nodes only the certificate.
pub fn write_cluster_ca(paths: &Paths, ca: &ClusterCa, with_key: bool) -> Result<(), TlsError> {
    write_file_atomically(&paths.cluster_ca_cert(), ca.cert_pem.as_bytes(), 0o644)?;
    if with_key {
        write_file_atomically(&paths.cluster_ca_key(), ca.key_pem.as_bytes(), 0o600)?;
    }
    Ok(())
}

/// Reads the CA (certificate and key) from the master's files.
pub fn read_cluster_ca(paths: &Paths) -> Result<ClusterCa, TlsError> {
    Ok(ClusterCa {
        cert_pem: read(&paths.cluster_ca_cert())?,
        key_pem: read(&paths.cluster_ca_key())?,
    })
}

/// Writes the node certificate (`server.pem`, 0600).
pub fn write_node_cert(paths: &Paths, pem: &str) -> Result<(), TlsError> {
    write_file_atomically(&paths.node_cert(), pem.as_bytes(), 0o600)
}

/// Gives a node (whose tree is `node_paths`) what it needs to join the
/// cluster of `ca`: the CA certificate (not its key) and a new node
/// certificate for `node_name` / `ip`. A waiting `ganeti-noded` starts
/// serving once both are there.
pub fn install_node_files(
    node_paths: &Paths,
    ca: &ClusterCa,
    node_name: &str,
    ip: IpAddr,
) -> Result<(), TlsError> {
    let pem = create_node_cert(ca, node_name, ip)?;
    // Each file appears whole (written aside, then renamed), so a waiting
    // daemon never reads half of one.
    write_node_cert(node_paths, &pem)?;
    write_cluster_ca(node_paths, ca, false)
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_string(),
            reason: "no certificate found".into(),
        });
    }
    Ok(certs)
}

fn parse_key(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| TlsError::Pem {
            what: what.to_string(),
            reason: e.to_string(),
        })?
        .ok_or_else(|| TlsError::Pem {
            what: what.to_string(),
            reason: "no private key found".into(),
        })
}

fn roots(ca_cert_pem: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(ca_cert_pem, "the cluster CA certificate")? {
        roots.add(cert).map_err(TlsError::Config)?;
    }
    Ok(roots)
}

/// The node daemon's TLS configuration: serves `node_pem` and requires a
/// client certificate signed by the CA.
pub fn server_config_from_pem(
    ca_cert_pem: &str,
    node_pem: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(ca_cert_pem)?),
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            parse_certs(node_pem, "the node certificate")?,
            parse_key(node_pem, "the node certificate")?,
        )
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The TLS configuration of RPC clients: presents `node_pem` and trusts
/// servers signed by the CA.
pub fn client_config_from_pem(
    ca_cert_pem: &str,
    node_pem: &str,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_root_certificates(roots(ca_cert_pem)?)
        .with_client_auth_cert(
            parse_certs(node_pem, "the node certificate")?,
            parse_key(node_pem, "the node certificate")?,
        )
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration that presents no certificate (tools and tests
/// that only check a node is up; a node daemon refuses it).
pub fn anonymous_client_config(ca_cert_pem: &str) -> Result<Arc<ClientConfig>, TlsError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_root_certificates(roots(ca_cert_pem)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The server configuration from the node's files.
pub fn server_config(paths: &Paths) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_from_pem(&read(&paths.cluster_ca_cert())?, &read(&paths.node_cert())?)
}

/// The client configuration from the node's files.
pub fn client_config(paths: &Paths) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_from_pem(&read(&paths.cluster_ca_cert())?, &read(&paths.node_cert())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_cert_is_signed_by_the_ca_and_both_configs_build() {
        let ca = create_cluster_ca("cluster.example.com").unwrap();
        assert!(ca.cert_pem.contains("BEGIN CERTIFICATE"));
        let node =
            create_node_cert(&ca, "node1.example.com", "127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(parse_certs(&node, "n").unwrap().len(), 1);
        parse_key(&node, "n").unwrap();
        server_config_from_pem(&ca.cert_pem, &node).unwrap();
        client_config_from_pem(&ca.cert_pem, &node).unwrap();
    }

    #[test]
    fn files_round_trip_through_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path());
        let ca = create_cluster_ca("c").unwrap();
        write_cluster_ca(&paths, &ca, true).unwrap();
        let back = read_cluster_ca(&paths).unwrap();
        assert_eq!(back.cert_pem, ca.cert_pem);
        let node = create_node_cert(&back, "node1", "127.0.0.1".parse().unwrap()).unwrap();
        write_node_cert(&paths, &node).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(paths.node_cert())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        server_config(&paths).unwrap();
        client_config(&paths).unwrap();
    }

    /// Runs a TLS handshake over an in-memory pipe; returns the client's
    /// and the server's outcome.
    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        server_name: &str,
    ) -> (Result<(), String>, Result<(), String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, b) = tokio::io::duplex(64 * 1024);
        let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).unwrap();
        let srv = async move {
            let mut s = tokio_rustls::TlsAcceptor::from(server)
                .accept(b)
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            s.write_all(b"pong").await.map_err(|e| e.to_string())?;
            s.shutdown().await.map_err(|e| e.to_string())
        };
        let cli = async move {
            let mut s = tokio_rustls::TlsConnector::from(client)
                .connect(name, a)
                .await
                .map_err(|e| e.to_string())?;
            s.write_all(b"ping").await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            Ok(())
        };
        tokio::join!(cli, srv)
    }

    #[tokio::test]
    async fn short_names_and_ip_names_verify() {
        let ca = create_cluster_ca("c").unwrap();
        for (name, ip) in [("node1", "127.0.0.1"), ("127.0.0.2", "127.0.0.2")] {
            let node = create_node_cert(&ca, name, ip.parse().unwrap()).unwrap();
            let server = server_config_from_pem(&ca.cert_pem, &node).unwrap();
            let client = client_config_from_pem(&ca.cert_pem, &node).unwrap();
            let (c, s) = handshake(server.clone(), client.clone(), name).await;
            assert_eq!((c, s), (Ok(()), Ok(())), "{name}");
            // The IP in the certificate is a valid server name as well.
            let (c, _) = handshake(server, client, ip).await;
            assert_eq!(c, Ok(()), "{name} by {ip}");
        }
    }

    #[tokio::test]
    async fn the_server_refuses_clients_of_another_ca() {
        let ca = create_cluster_ca("c").unwrap();
        let other = create_cluster_ca("other").unwrap();
        let node = create_node_cert(&ca, "node1", "127.0.0.1".parse().unwrap()).unwrap();
        let stranger = create_node_cert(&other, "node1", "127.0.0.1".parse().unwrap()).unwrap();
        let server = server_config_from_pem(&ca.cert_pem, &node).unwrap();
        let client = client_config_from_pem(&ca.cert_pem, &stranger).unwrap();
        let (_, s) = handshake(server.clone(), client, "node1").await;
        assert!(s.is_err(), "server accepted a foreign client certificate");
        let anon = anonymous_client_config(&ca.cert_pem).unwrap();
        let (_, s) = handshake(server, anon, "node1").await;
        assert!(s.is_err(), "server accepted a client without certificate");
    }

    #[tokio::test]
    async fn the_client_refuses_a_server_of_another_name() {
        let ca = create_cluster_ca("c").unwrap();
        let node = create_node_cert(&ca, "node1", "127.0.0.1".parse().unwrap()).unwrap();
        let server = server_config_from_pem(&ca.cert_pem, &node).unwrap();
        let client = client_config_from_pem(&ca.cert_pem, &node).unwrap();
        let (c, _) = handshake(server, client, "node2").await;
        assert!(c.is_err());
    }

    #[test]
    fn installed_node_files_hold_no_ca_key() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path());
        let ca = create_cluster_ca("c").unwrap();
        install_node_files(&paths, &ca, "node2", "127.0.0.2".parse().unwrap()).unwrap();
        assert!(!paths.cluster_ca_key().exists());
        server_config(&paths).unwrap();
        client_config(&paths).unwrap();
    }

    #[test]
    fn garbage_pem_is_reported() {
        let err = server_config_from_pem("nope", "nope").unwrap_err();
        assert!(err.to_string().contains("cluster CA certificate"), "{err}");
    }
}
