//! The async client of node RPC.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use noded::api::Version;
//! use noded::client::NodeClient;
//! let paths = objects::paths::Paths::from_env();
//! let tls = noded::tls::client_config(&paths)?;
//! let node = NodeClient::new("node1", "127.0.0.1:1811".parse()?, tls)?;
//! let version = node.call(&Version {}).await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use objects::paths::Paths;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::api::{Call, ErrorKind, Reply, RpcError};
use crate::tls::TlsError;

/// Why a call did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid node name '{0}' for TLS")]
    InvalidNodeName(String),
    #[error("cannot load the TLS files")]
    Tls(#[from] TlsError),
    #[error("call '{call}' to node {node}: timed out after {after:?}")]
    Timeout {
        node: String,
        call: String,
        after: Duration,
    },
    #[error("call '{call}' to node {node}: cannot connect to {addr}")]
    Connect {
        node: String,
        call: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("call '{call}' to node {node}: TLS handshake failed")]
    Handshake {
        node: String,
        call: String,
        #[source]
        source: std::io::Error,
    },
    #[error("call '{call}' to node {node}: HTTP exchange failed")]
    Http {
        node: String,
        call: String,
        #[source]
        source: hyper::Error,
    },
    #[error("call '{call}' to node {node}: cannot encode the request")]
    Encode {
        node: String,
        call: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("call '{call}' to node {node}: undecodable answer (HTTP {status}): {reason}")]
    Decode {
        node: String,
        call: String,
        status: u16,
        reason: String,
    },
    #[error("call '{call}' to node {node} failed: {error}")]
    Remote {
        node: String,
        call: String,
        error: RpcError,
    },
}

impl ClientError {
    /// The node's error kind, when the node answered an error.
    pub fn remote_kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Remote { error, .. } => Some(error.kind),
            _ => None,
        }
    }

    /// Whether the call timed out (the node may or may not have acted).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout { .. })
    }

    /// Whether the node could not be reached at all (it did not act).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. } | ClientError::Handshake { .. }
        )
    }
}

/// A client of one node's daemon. Cheap to clone; every call opens its own
/// connection, so calls may run concurrently.
#[derive(Clone)]
pub struct NodeClient {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    connector: TlsConnector,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient")
            .field("node", &self.inner.node)
            .field("addr", &self.inner.addr)
            .finish()
    }
}

/// Largest answer accepted (a listing of thousands of instances fits).
const MAX_ANSWER: usize = 256 * 1024 * 1024;

impl NodeClient {
    /// A client of node `node_name` (the name its certificate carries)
    /// listening on `addr`.
    pub fn new(
        node_name: &str,
        addr: SocketAddr,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, ClientError> {
        let server_name = ServerName::try_from(node_name.to_string())
            .map_err(|_| ClientError::InvalidNodeName(node_name.to_string()))?;
        Ok(NodeClient {
            inner: Arc::new(Inner {
                node: node_name.to_string(),
                addr,
                server_name,
                connector: TlsConnector::from(tls),
            }),
        })
    }

    /// A client authenticated with the node files under `paths` (the
    /// cluster CA and this node's `server.pem`).
    pub fn from_paths(
        paths: &Paths,
        node_name: &str,
        addr: SocketAddr,
    ) -> Result<Self, ClientError> {
        Self::new(node_name, addr, crate::tls::client_config(paths)?)
    }

    pub fn node(&self) -> &str {
        &self.inner.node
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Runs `req` with the call's default timeout.
    pub async fn call<C: Call>(&self, req: &C) -> Result<C::Response, ClientError> {
        self.call_with_timeout(req, C::TIMEOUT).await
    }

    /// Runs `req`, giving up after `timeout`.
    pub async fn call_with_timeout<C: Call>(
        &self,
        req: &C,
        timeout: Duration,
    ) -> Result<C::Response, ClientError> {
        let body = serde_json::to_vec(req).map_err(|source| ClientError::Encode {
            node: self.inner.node.clone(),
            call: C::NAME.to_string(),
            source,
        })?;
        let (status, answer) = self.call_raw(C::NAME, body, timeout).await?;
        let reply: Reply<C::Response> =
            serde_json::from_slice(&answer).map_err(|e| ClientError::Decode {
                node: self.inner.node.clone(),
                call: C::NAME.to_string(),
                status,
                reason: e.to_string(),
            })?;
        match reply {
            Reply::Ok(v) => Ok(v),
            Reply::Error(error) => Err(ClientError::Remote {
                node: self.inner.node.clone(),
                call: C::NAME.to_string(),
                error,
            }),
        }
    }

    /// Posts raw bytes to `/<call>`; returns the HTTP status and body.
    /// For tests and tools; use [`NodeClient::call`] otherwise.
    pub async fn call_raw(
        &self,
        call: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(u16, Bytes), ClientError> {
        match tokio::time::timeout(timeout, self.exchange(call, body)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                node: self.inner.node.clone(),
                call: call.to_string(),
                after: timeout,
            }),
        }
    }

    async fn exchange(&self, call: &str, body: Vec<u8>) -> Result<(u16, Bytes), ClientError> {
        let inner = &self.inner;
        let node = || inner.node.clone();
        let tcp = TcpStream::connect(inner.addr)
            .await
            .map_err(|source| ClientError::Connect {
                node: node(),
                call: call.to_string(),
                addr: inner.addr,
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let tls = inner
            .connector
            .connect(inner.server_name.clone(), tcp)
            .await
            .map_err(|source| ClientError::Handshake {
                node: node(),
                call: call.to_string(),
                source,
            })?;
        let http = |source| ClientError::Http {
            node: node(),
            call: call.to_string(),
            source,
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(http)?;
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = Request::post(format!("/{call}"))
            .header(HOST, inner.node.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Decode {
                node: node(),
                call: call.to_string(),
                status: 0,
                reason: format!("cannot build the request: {e}"),
            })?;
        let result = async {
            let response = sender.send_request(request).await.map_err(http)?;
            let status = response.status().as_u16();
            let limited = http_body_util::Limited::new(response.into_body(), MAX_ANSWER);
            let bytes = limited
                .collect()
                .await
                .map_err(|e| ClientError::Decode {
                    node: node(),
                    call: call.to_string(),
                    status,
                    reason: format!("cannot read the answer: {e}"),
                })?
                .to_bytes();
            Ok((status, bytes))
        }
        .await;
        conn.abort();
        result
    }
}

/// Runs `req` on every node in parallel; answers in the order of `clients`.
pub async fn call_all<C>(
    clients: &[NodeClient],
    req: &C,
) -> Vec<(String, Result<C::Response, ClientError>)>
where
    C: Call + Clone + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, client) in clients.iter().enumerate() {
        let client = client.clone();
        let req = req.clone();
        set.spawn(async move { (i, client.call(&req).await) });
    }
    let mut out: Vec<Option<Result<C::Response, ClientError>>> =
        (0..clients.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        // A call future does not panic; a cancelled task leaves its slot empty.
        if let Ok((i, result)) = joined {
            out[i] = Some(result);
        }
    }
    clients
        .iter()
        .zip(out)
        .map(|(c, r)| {
            let r = r.unwrap_or_else(|| {
                Err(ClientError::Decode {
                    node: c.node().to_string(),
                    call: C::NAME.to_string(),
                    status: 0,
                    reason: "the call task ended abnormally".into(),
                })
            });
            (c.node().to_string(), r)
        })
        .collect()
}
