//! `OP_CLUSTER_RENAME` (`gnt-cluster rename`): a new name for the cluster
//! and, when the name resolves to another address, a new master IP (which
//! nothing on the network may answer yet). The new values reach every
//! online node's ssconf files before the job ends.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use luxi::error::ErrorCode;
use luxi::opcodes;
use objects::paths::NODED_PORT;
use serde_json::Value;

use super::{inval, Ctx, ExecFuture, LogicalUnit};
use crate::config::{Changes, ConfigData};
use crate::error::Error;
use crate::locking::{LockRequest, Mode};

/// How long the check that the new master IP is free waits for an answer.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// `OP_CLUSTER_RENAME`.
pub struct Rename {
    op: opcodes::ClusterRename,
}

impl Rename {
    pub fn new(op: opcodes::ClusterRename) -> Self {
        Rename { op }
    }
}

/// Whether something accepts TCP connections on `ip`'s node daemon port
/// (Ganeti's `TcpPing`).
async fn answers(ip: IpAddr) -> bool {
    let connect = tokio::net::TcpStream::connect(SocketAddr::new(ip, NODED_PORT));
    matches!(tokio::time::timeout(PING_TIMEOUT, connect).await, Ok(Ok(_)))
}

impl LogicalUnit for Rename {
    fn check_arguments(&mut self) -> Result<(), Error> {
        objects::validate::check_host_name("cluster", &self.op.name)
            .map_err(|e| inval(e.to_string()))
    }

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new().bgl(Mode::Exclusive))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            // The resolution and the address check need the master's tree
            // and the network, so they come first here rather than in
            // check_prereq; nothing has changed when they fail.
            let new_name = self.op.name.clone();
            let new_ip = objects::resolver::resolve(ctx.paths(), &new_name).ok_or_else(|| {
                Error::prereq(
                    format!("Cannot resolve the cluster name '{new_name}'"),
                    ErrorCode::Resolver,
                )
            })?;
            let mut cluster = ctx.config().read().cluster.clone();
            let old_ip: Option<IpAddr> = cluster.master_ip.parse().ok();
            if new_name == cluster.cluster_name && Some(new_ip) == old_ip {
                return Err(inval(
                    "Neither the name nor the IP address of the cluster has changed",
                ));
            }
            if Some(new_ip) != old_ip && answers(new_ip).await {
                return Err(Error::prereq(
                    format!("The given cluster IP address ({new_ip}) is reachable on the network"),
                    ErrorCode::NotUnique,
                ));
            }
            // As Ganeti: the master IP goes down, the name and address
            // change, and the master IP comes up again with the new
            // address (a failure then is a warning).
            let master = ctx
                .config()
                .read()
                .master_node()
                .cloned()
                .ok_or_else(|| Error::exec("The configuration names no master node"))?;
            let down = rpc::api::NodeDeactivateMasterIp {
                params: ctx.master().master_network_params(),
            };
            ctx.rpc().call(&master, &down).await.map_err(|e| {
                Error::exec(format!(
                    "Could not disable the master role: {}",
                    objects::error_chain(&e)
                ))
            })?;
            cluster.cluster_name = new_name.clone();
            cluster.master_ip = new_ip.to_string();
            let mut changes = Changes::new();
            changes.cluster(cluster);
            let committed = ctx.commit(changes);
            if committed.is_ok() {
                // Every online node has the new name when the job ends.
                ctx.master().distribute_ssconf().await;
            }
            let up = rpc::api::NodeActivateMasterIp {
                params: ctx.master().master_network_params(),
            };
            if let Err(e) = ctx.rpc().call(&master, &up).await {
                ctx.log_warning(format!(
                    "Could not re-enable the master role on the master, please restart \
                     manually: {}",
                    objects::error_chain(&e)
                ));
            }
            committed?;
            Ok(Value::from(new_name))
        })
    }
}
