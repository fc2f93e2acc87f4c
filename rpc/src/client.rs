//! The async client of node RPC.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use rpc::api::Version;
//! use rpc::client::NodeClient;
//! let paths = objects::paths::Paths::from_env();
//! let tls = rpc::tls::client_config(&paths)?;
//! let node = NodeClient::new("node1", "127.0.0.1:1811".parse()?, tls)?;
//! let version = node.call(&Version {}).await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
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

/// A client of one node's daemon. Cheap to clone (clones share their
/// connections); calls may run concurrently, each on its own connection,
/// and finished connections are kept for reuse for a short while.
#[derive(Clone)]
pub struct NodeClient {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    /// Upper bound on every call's timeout (tests of hanging nodes).
    max_timeout: Option<Duration>,
    /// Connections whose last exchange completed, newest last.
    idle: Mutex<Vec<IdleConnection>>,
}

struct IdleConnection {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

/// Connections kept per node.
const MAX_IDLE: usize = 8;
/// How long a connection is kept unused; well below the server's idle
/// limit, so that the server never closes a connection as we reuse it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

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
                max_timeout: None,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The same client with every call's timeout (default or explicit)
    /// capped at `max`, so that a test of a hanging node does not wait for
    /// the production timeouts.
    pub fn with_max_timeout(&self, max: Duration) -> Self {
        NodeClient {
            inner: Arc::new(Inner {
                node: self.inner.node.clone(),
                addr: self.inner.addr,
                server_name: self.inner.server_name.clone(),
                connector: self.inner.connector.clone(),
                max_timeout: Some(max),
                idle: Mutex::new(Vec::new()),
            }),
        }
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
        let (status, answer) = self.post(C::NAME, body, timeout, C::IDEMPOTENT).await?;
        self.decode(C::NAME, status, &answer)
    }

    /// Runs call `call` with a request already encoded as JSON and returns
    /// the node's result as JSON, for callers that hold calls untyped (the
    /// master's transport, which tests replace with a fake node).
    pub async fn call_json(
        &self,
        call: &str,
        body: Vec<u8>,
        timeout: Duration,
        idempotent: bool,
    ) -> Result<serde_json::Value, ClientError> {
        let (status, answer) = self.post(call, body, timeout, idempotent).await?;
        self.decode(call, status, &answer)
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        call: &str,
        status: u16,
        answer: &[u8],
    ) -> Result<T, ClientError> {
        let reply: Reply<T> = serde_json::from_slice(answer).map_err(|e| ClientError::Decode {
            node: self.inner.node.clone(),
            call: call.to_string(),
            status,
            reason: e.to_string(),
        })?;
        match reply {
            Reply::Ok(v) => Ok(v),
            Reply::Error(error) => Err(ClientError::Remote {
                node: self.inner.node.clone(),
                call: call.to_string(),
                error,
            }),
        }
    }

    /// Posts raw bytes to `/<call>`; returns the HTTP status and body.
    /// For tests and tools; use [`NodeClient::call`] otherwise. Never sent
    /// twice.
    pub async fn call_raw(
        &self,
        call: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(u16, Bytes), ClientError> {
        self.post(call, body, timeout, false).await
    }

    async fn post(
        &self,
        call: &str,
        body: Vec<u8>,
        timeout: Duration,
        idempotent: bool,
    ) -> Result<(u16, Bytes), ClientError> {
        let timeout = match self.inner.max_timeout {
            Some(max) => timeout.min(max),
            None => timeout,
        };
        match tokio::time::timeout(timeout, self.exchange(call, body, idempotent)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                node: self.inner.node.clone(),
                call: call.to_string(),
                after: timeout,
            }),
        }
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(conn) = idle.pop() {
            if conn.since.elapsed() < IDLE_TIMEOUT
                && !conn.sender.is_closed()
                && conn.sender.is_ready()
            {
                return Some(conn.sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push(IdleConnection {
            sender,
            since: Instant::now(),
        });
    }

    async fn connect(&self, call: &str) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let inner = &self.inner;
        let tcp = TcpStream::connect(inner.addr)
            .await
            .map_err(|source| ClientError::Connect {
                node: inner.node.clone(),
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
                node: inner.node.clone(),
                call: call.to_string(),
                source,
            })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|source| ClientError::Http {
                node: inner.node.clone(),
                call: call.to_string(),
                source,
            })?;
        // Drives the connection; ends when the sender is dropped or the
        // server closes.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn exchange(
        &self,
        call: &str,
        body: Vec<u8>,
        idempotent: bool,
    ) -> Result<(u16, Bytes), ClientError> {
        let inner = &self.inner;
        let node = || inner.node.clone();
        let http = |source| ClientError::Http {
            node: node(),
            call: call.to_string(),
            source,
        };
        let body = Bytes::from(body);
        let request = || {
            Request::post(format!("/{call}"))
                .header(HOST, inner.node.as_str())
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()))
                .map_err(|e| ClientError::Decode {
                    node: node(),
                    call: call.to_string(),
                    status: 0,
                    reason: format!("cannot build the request: {e}"),
                })
        };
        // Let connection tasks notice a server that went away meanwhile.
        tokio::task::yield_now().await;
        // A call that must not run twice gets a new connection: a kept
        // one may turn out closed, and then whether the node ran the call
        // is unknown.
        let kept = if idempotent { self.take_idle() } else { None };
        let (sender, response) = match kept {
            Some(mut sender) => match sender.send_request(request()?).await {
                Ok(response) => (sender, response),
                // A kept connection that the server closed (a restarted
                // daemon): sent once more on a new connection.
                Err(e) if stale_connection(&e) => {
                    let mut sender = self.connect(call).await?;
                    let response = sender.send_request(request()?).await.map_err(http)?;
                    (sender, response)
                }
                Err(e) => return Err(http(e)),
            },
            None => {
                let mut sender = self.connect(call).await?;
                let response = sender.send_request(request()?).await.map_err(http)?;
                (sender, response)
            }
        };
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
        self.put_idle(sender);
        Ok((status, bytes))
    }
}

/// Clients of many nodes sharing one TLS configuration; hands out the same
/// client (and so the same kept connections) for the same node, which
/// saves a TLS handshake (about a millisecond) per call.
pub struct NodeClients {
    tls: Arc<rustls::ClientConfig>,
    clients: Mutex<std::collections::HashMap<(String, SocketAddr), NodeClient>>,
}

impl NodeClients {
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        NodeClients {
            tls,
            clients: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The client of node `node_name` at `addr`.
    pub fn get(&self, node_name: &str, addr: SocketAddr) -> Result<NodeClient, ClientError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let key = (node_name.to_string(), addr);
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let c = NodeClient::new(node_name, addr, self.tls.clone())?;
        clients.insert(key, c.clone());
        Ok(c)
    }

    /// Forgets every client (e.g. after the certificates changed).
    pub fn clear(&self) {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Whether `e` says the connection was closed before any answer came.
fn stale_connection(e: &hyper::Error) -> bool {
    if e.is_canceled() || e.is_incomplete_message() || e.is_closed() {
        return true;
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            );
        }
        src = s.source();
    }
    false
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
