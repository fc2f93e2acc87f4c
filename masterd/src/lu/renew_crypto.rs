//! `OP_CLUSTER_RENEW_CRYPTO` (`gnt-cluster renew-crypto
//! --new-cluster-certificate | --new-node-certificates`): a new cluster CA
//! and a new certificate for every online node, signed by it.
//!
//! The nodes never refuse the master on the way:
//! 1. every online node stages its new files and accepts clients of the
//!    old and the new CA (any failure: every node drops what it staged,
//!    nothing changed);
//! 2. the master presents its new certificate and trusts servers of both
//!    CAs;
//! 3. every node, the master's last, puts its new files in place and
//!    serves with them;
//! 4. the master writes its files (with the new CA's key) and trusts the
//!    new CA alone.
//!
//! Offline nodes are skipped: they need `gnt-node add --readd` to come
//! back. Disks replicated between nodes keep their connections; they use
//! the new certificates when their storage daemons next start.

use std::net::IpAddr;

use luxi::opcodes;
use objects::{error_chain, Node};
use rpc::api;
use serde_json::Value;

use super::{Ctx, ExecFuture, LogicalUnit};
use crate::config::ConfigData;
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};

/// `OP_CLUSTER_RENEW_CRYPTO`.
pub struct RenewCrypto {
    op: opcodes::ClusterRenewCrypto,
    cluster_name: String,
    master: Option<Node>,
    /// The online nodes other than the master.
    others: Vec<Node>,
    offline: Vec<String>,
}

impl RenewCrypto {
    pub fn new(op: opcodes::ClusterRenewCrypto) -> Self {
        RenewCrypto {
            op,
            cluster_name: String::new(),
            master: None,
            others: Vec::new(),
            offline: Vec::new(),
        }
    }
}

fn node_ip(node: &Node) -> Result<IpAddr, Error> {
    node.primary_ip.parse().map_err(|_| {
        Error::exec(format!(
            "Node {} has an invalid primary IP '{}'",
            node.name, node.primary_ip
        ))
    })
}

fn tls_error(what: &str, e: rpc::tls::TlsError) -> Error {
    Error::exec(format!("{what}: {}", error_chain(&e)))
}

impl LogicalUnit for RenewCrypto {
    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new().all(Level::Node, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let master = cfg
            .master_node()
            .cloned()
            .ok_or_else(|| Error::programmer("the cluster has no master node"))?;
        let mut others: Vec<Node> = cfg
            .nodes
            .values()
            .filter(|n| n.uuid != master.uuid && !n.offline)
            .cloned()
            .collect();
        luxi::query::nice_sort_by(&mut others, |n| &n.name);
        let mut offline: Vec<String> = cfg
            .nodes
            .values()
            .filter(|n| n.offline)
            .map(|n| n.name.clone())
            .collect();
        offline.sort();
        self.cluster_name = cfg.cluster.cluster_name.clone();
        self.master = Some(master);
        self.others = others;
        self.offline = offline;
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            if !self.op.node_certificates {
                return Ok(Value::Null);
            }
            let master = self
                .master
                .clone()
                .ok_or_else(|| Error::programmer("exec before check_prereq"))?;
            ctx.feedback("Renewing Node SSL certificates");
            for name in &self.offline {
                ctx.log_info(format!("Skipping offline node {name}"));
            }
            let old_ca = std::fs::read_to_string(ctx.paths().cluster_ca_cert()).map_err(|e| {
                Error::exec(format!(
                    "Cannot read the cluster CA certificate {}: {e}",
                    ctx.paths().cluster_ca_cert().display()
                ))
            })?;
            let ca = rpc::tls::create_cluster_ca(&self.cluster_name)
                .map_err(|e| tls_error("Cannot create a new cluster CA", e))?;
            // The master last: it is the last to switch.
            let nodes: Vec<&Node> = self.others.iter().chain([&master]).collect();
            let mut pems = Vec::new();
            for node in &nodes {
                let pem =
                    rpc::tls::create_node_cert(&ca, &node.name, node_ip(node)?).map_err(|e| {
                        tls_error(&format!("Cannot create a certificate for {}", node.name), e)
                    })?;
                pems.push(pem);
            }

            // 1. Stage.
            let mut staged: Vec<&Node> = Vec::new();
            let mut failures = Vec::new();
            for (node, pem) in nodes.iter().zip(&pems) {
                let req = api::CryptoStage {
                    ca_cert: ca.cert_pem.clone(),
                    node_pem: pem.clone(),
                };
                match ctx.rpc().call(node, &req).await {
                    Ok(()) => staged.push(node),
                    Err(e) => failures.push(format!("{}: {}", node.name, error_chain(&e))),
                }
            }
            if !failures.is_empty() {
                for node in staged {
                    if let Err(e) = ctx.rpc().call(node, &api::CryptoAbort {}).await {
                        ctx.log_warning(format!(
                            "Node {} keeps new certificates staged: {}",
                            node.name,
                            error_chain(&e)
                        ));
                    }
                }
                return Err(Error::exec(format!(
                    "Cannot renew the certificates, nothing was changed; mark unreachable \
                     nodes offline first. Failed: {}",
                    failures.join("; ")
                )));
            }

            // 2. The master presents its new certificate, trusts both CAs.
            let master_pem = pems.last().cloned().unwrap_or_default();
            let both = format!("{old_ca}{}", ca.cert_pem);
            let tls = rpc::tls::client_config_from_pem(&both, &master_pem)
                .map_err(|e| tls_error("Cannot use the new master certificate", e))?;
            ctx.rpc().set_client_tls(Some(tls));

            // 3. Every node switches.
            for node in &nodes {
                if let Err(e) = ctx.rpc().call(node, &api::CryptoActivate {}).await {
                    ctx.log_warning(format!(
                        "Node {} did not take its new certificate ({}); the master \
                         cannot reach it any more: re-add it with 'gnt-node add --readd {}'",
                        node.name,
                        error_chain(&e),
                        node.name
                    ));
                }
            }

            // 4. The master's own files; then the new CA alone.
            rpc::tls::write_cluster_ca(ctx.paths(), &ca, true)
                .and_then(|()| rpc::tls::write_node_cert(ctx.paths(), &master_pem))
                .map_err(|e| tls_error("Cannot write the master's new certificates", e))?;
            ctx.rpc().set_client_tls(None);
            ctx.feedback(format!(
                "Renewed the cluster CA and the certificates of {} node(s)",
                nodes.len()
            ));
            Ok(Value::Null)
        })
    }
}
