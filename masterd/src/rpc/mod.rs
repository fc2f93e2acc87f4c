//! The master's side of node RPC: one typed call to a node, or the same call
//! to many nodes in parallel, each with the call's timeout.

#[cfg(test)]
pub mod fake;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use objects::paths::Paths;
use objects::Node;
use rpc::api::Call;
use rpc::client::{ClientError, NodeClient, NodeClients};
use serde_json::Value;

/// A failed call to a node, naming the node and the call.
#[derive(Debug, thiserror::Error)]
pub enum RpcFailure {
    #[error("node {node} is marked offline")]
    Offline { node: String },
    #[error("node {node} has an invalid address '{ip}'")]
    BadAddress { node: String, ip: String },
    #[error("cannot load the cluster certificates for node RPC")]
    Tls(#[source] ClientError),
    #[error(transparent)]
    Call(#[from] ClientError),
}

impl RpcFailure {
    /// Whether the node could not be reached at all (as opposed to a node
    /// that answered with an error).
    pub fn is_unreachable(&self) -> bool {
        match self {
            RpcFailure::Offline { .. } => true,
            RpcFailure::Call(e) => e.is_unreachable() || e.is_timeout(),
            _ => false,
        }
    }
}

/// The future of one call through a [`Transport`].
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, RpcFailure>> + Send + 'a>>;

/// How the master's calls reach a node: HTTPS with mutual TLS to its
/// `ganeti-noded` ([`Https`]), or an in-memory fake node in tests.
pub trait Transport: Send + Sync + 'static {
    /// Sends call `call` with its JSON-encoded request to `node`; returns
    /// the node's result as JSON, or why there is none.
    fn call_json<'a>(
        &'a self,
        node: &'a Node,
        call: &'static str,
        body: Vec<u8>,
        timeout: Duration,
        idempotent: bool,
    ) -> CallFuture<'a>;

    /// Makes new connections use `tls` (a certificate renewal in
    /// progress), or again the certificate files when `None`. Connections
    /// kept open are dropped. Fake nodes have no TLS: the default does
    /// nothing.
    fn set_client_tls(&self, _tls: Option<Arc<rustls::ClientConfig>>) {}
}

/// Node RPC over HTTPS.
pub struct Https {
    paths: Paths,
    port: u16,
    /// Clients by node, keeping their connections (created on first use).
    clients: Mutex<Option<Arc<NodeClients>>>,
    /// The TLS configuration to use instead of the files (during a
    /// certificate renewal).
    tls_override: Mutex<Option<Arc<rustls::ClientConfig>>>,
}

impl Https {
    fn clients(&self) -> Result<Arc<NodeClients>, RpcFailure> {
        let mut g = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let over = self
            .tls_override
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let tls = match over {
            Some(tls) => tls,
            None => rpc::tls::client_config(&self.paths)
                .map_err(|e| RpcFailure::Tls(ClientError::from(e)))?,
        };
        let c = Arc::new(NodeClients::new(tls));
        *g = Some(c.clone());
        Ok(c)
    }

    fn client(&self, node: &Node) -> Result<NodeClient, RpcFailure> {
        let ip: IpAddr = node
            .primary_ip
            .parse()
            .map_err(|_| RpcFailure::BadAddress {
                node: node.name.clone(),
                ip: node.primary_ip.clone(),
            })?;
        Ok(self
            .clients()?
            .get(&node.name, SocketAddr::new(ip, self.port))?)
    }
}

impl Transport for Https {
    fn call_json<'a>(
        &'a self,
        node: &'a Node,
        call: &'static str,
        body: Vec<u8>,
        timeout: Duration,
        idempotent: bool,
    ) -> CallFuture<'a> {
        Box::pin(async move {
            let client = self.client(node)?;
            Ok(client.call_json(call, body, timeout, idempotent).await?)
        })
    }

    fn set_client_tls(&self, tls: Option<Arc<rustls::ClientConfig>>) {
        // Both under the clients' lock, so that no client is made from
        // the old configuration after the switch.
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        *self.tls_override.lock().unwrap_or_else(|e| e.into_inner()) = tls;
        *clients = None;
    }
}

/// Node RPC for the master.
pub struct Rpc {
    transport: Arc<dyn Transport>,
    /// Overrides every call's timeout (tests).
    timeout_override: Option<Duration>,
}

impl Rpc {
    /// Node RPC with the certificates under `paths`; nodes listen on `port`.
    pub fn new(paths: Paths, port: u16) -> Self {
        Rpc::with_transport(Arc::new(Https {
            paths,
            port,
            clients: Mutex::new(None),
            tls_override: Mutex::new(None),
        }))
    }

    /// Node RPC through `transport`.
    pub fn with_transport(transport: Arc<dyn Transport>) -> Self {
        Rpc {
            transport,
            timeout_override: None,
        }
    }

    /// The same node RPC, every call giving up after `t` (for calls whose
    /// time depends on their arguments).
    pub fn timed(&self, t: Duration) -> Rpc {
        Rpc {
            transport: self.transport.clone(),
            timeout_override: Some(t),
        }
    }

    /// New connections use `tls` instead of the certificate files, or the
    /// files again when `None` (see [`Transport::set_client_tls`]).
    pub fn set_client_tls(&self, tls: Option<Arc<rustls::ClientConfig>>) {
        self.transport.set_client_tls(tls)
    }

    /// Every call gives up after `t` (instead of the call's own timeout).
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout_override = Some(t);
        self
    }

    /// Calls `req` on `node`; an offline node is not contacted.
    pub async fn call<C: Call>(&self, node: &Node, req: &C) -> Result<C::Response, RpcFailure> {
        if node.offline {
            return Err(RpcFailure::Offline {
                node: node.name.clone(),
            });
        }
        self.call_anyway(node, req).await
    }

    /// Calls `req` on `node` even when it is marked offline (node add).
    pub async fn call_anyway<C: Call>(
        &self,
        node: &Node,
        req: &C,
    ) -> Result<C::Response, RpcFailure> {
        let call = || C::NAME.to_string();
        let body = serde_json::to_vec(req).map_err(|source| ClientError::Encode {
            node: node.name.clone(),
            call: call(),
            source,
        })?;
        let timeout = self.timeout_override.unwrap_or(C::TIMEOUT);
        let answer = self
            .transport
            .call_json(node, C::NAME, body, timeout, C::IDEMPOTENT)
            .await?;
        serde_json::from_value(answer).map_err(|e| {
            RpcFailure::Call(ClientError::Decode {
                node: node.name.clone(),
                call: call(),
                status: 200,
                reason: e.to_string(),
            })
        })
    }

    /// Calls `req` on every node in parallel; results in the nodes' order.
    pub async fn call_many<C: Call + Clone + 'static>(
        self: &Arc<Self>,
        nodes: &[Node],
        req: &C,
    ) -> Vec<Result<C::Response, RpcFailure>> {
        let mut set = tokio::task::JoinSet::new();
        for (idx, node) in nodes.iter().enumerate() {
            let rpc = self.clone();
            let node = node.clone();
            let req = req.clone();
            set.spawn(async move { (idx, rpc.call(&node, &req).await) });
        }
        let mut out: Vec<Option<Result<C::Response, RpcFailure>>> =
            (0..nodes.len()).map(|_| None).collect();
        while let Some(res) = set.join_next().await {
            if let Ok((idx, r)) = res {
                out[idx] = Some(r);
            }
        }
        out.into_iter()
            .zip(nodes)
            .map(|(r, n)| {
                r.unwrap_or_else(|| {
                    Err(RpcFailure::Offline {
                        node: n.name.clone(),
                    })
                })
            })
            .collect()
    }
}
