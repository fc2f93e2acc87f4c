//! `OP_RESTRICTED_COMMAND` (`gnt-node restricted-command`): runs one of
//! the nodes' restricted commands on each named node (the node decides
//! what it allows); the result is one `[success, output or error]` pair
//! per node, in the order the nodes were named.

use luxi::opcodes;
use objects::{error_chain, Node};
use rpc::api;
use rpc::client::ClientError;
use serde_json::{json, Value};

use super::common::expand_node;
use super::{inval, noent, Ctx, ExecFuture, LogicalUnit};
use crate::config::ConfigData;
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};
use crate::rpc::RpcFailure;

/// `OP_RESTRICTED_COMMAND`.
pub struct RestrictedCommand {
    op: opcodes::RestrictedCommand,
    uuids: Vec<String>,
    nodes: Vec<Node>,
}

impl RestrictedCommand {
    pub fn new(op: opcodes::RestrictedCommand) -> Self {
        RestrictedCommand {
            op,
            uuids: Vec::new(),
            nodes: Vec::new(),
        }
    }
}

impl LogicalUnit for RestrictedCommand {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if self.op.nodes.is_empty() {
            return Err(inval(
                "Parameter 'nodes' of OP_RESTRICTED_COMMAND needs at least one node",
            ));
        }
        if self.op.command.is_empty() {
            return Err(inval(
                "Parameter 'command' of OP_RESTRICTED_COMMAND must not be empty",
            ));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuids = self
            .op
            .nodes
            .iter()
            .map(|n| expand_node(cfg, n).map(|n| n.uuid.clone()))
            .collect::<Result<_, _>>()?;
        // Shared unless asked to lock, as in Ganeti.
        let mode = if self.op.use_locking {
            Mode::Exclusive
        } else {
            Mode::Shared
        };
        Ok(LockRequest::new().some(Level::Node, self.uuids.clone(), mode))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        self.nodes = self
            .uuids
            .iter()
            .map(|u| {
                cfg.nodes
                    .get(u)
                    .cloned()
                    .ok_or_else(|| noent(format!("Node {u} not found")))
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    fn settled_fields(&self) -> Vec<(&'static str, Value)> {
        vec![("node_uuids", json!(self.uuids))]
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let req = api::RestrictedCommand {
                command: self.op.command.clone(),
            };
            let results = ctx.rpc().call_many(&self.nodes, &req).await;
            let out: Vec<Value> = self
                .nodes
                .iter()
                .zip(results)
                .map(|(node, r)| match r {
                    Ok(output) => json!([true, output]),
                    Err(e) => {
                        // The node's own answer reads as itself.
                        let why = match &e {
                            RpcFailure::Call(ClientError::Remote { error, .. }) => {
                                error.message.clone()
                            }
                            _ => error_chain(&e),
                        };
                        json!([
                            false,
                            format!(
                                "Command '{}' on node '{}' failed: {why}",
                                self.op.command, node.name
                            )
                        ])
                    }
                })
                .collect();
            Ok(Value::Array(out))
        })
    }
}
