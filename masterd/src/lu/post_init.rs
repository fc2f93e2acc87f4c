//! `OP_CLUSTER_POST_INIT`, the job `gnt-cluster init` submits once the
//! master runs: it runs the `cluster-init` post hooks on the master, with
//! Ganeti's hook environment. As in Ganeti, a failing post hook is
//! reported in the job log and does not fail the job. (Ganeti also sets
//! up Open vSwitch here when the `ovs` ndparam asks for it; ganeti-rs
//! has no Open vSwitch support, so that part does nothing.)

use std::collections::BTreeMap;

use luxi::opcodes;
use objects::error_chain;
use rpc::api::{HookStatus, HooksPhase, RunHooks};
use serde_json::Value;

use super::{Ctx, ExecFuture, LogicalUnit};
use crate::config::ConfigData;
use crate::error::Error;
use crate::locking::{LockRequest, Mode};

/// The hooks path of the cluster's initialisation.
const HPATH: &str = "cluster-init";
/// Ganeti's `HOOKS_PATH`.
const HOOKS_PATH_ENV: &str = "/sbin:/bin:/usr/sbin:/usr/bin";
/// Ganeti's `HOOKS_VERSION`.
const HOOKS_VERSION: &str = "2";

/// `OP_CLUSTER_POST_INIT`.
pub struct PostInit;

impl PostInit {
    pub fn new(_op: opcodes::ClusterPostInit) -> Self {
        PostInit
    }
}

/// The environment of the `cluster-init` post hooks.
pub fn hooks_env(data_dir: &str, cluster: &str, master: &str) -> BTreeMap<String, String> {
    [
        ("PATH", HOOKS_PATH_ENV),
        ("GANETI_HOOKS_VERSION", HOOKS_VERSION),
        ("GANETI_OP_CODE", "OP_CLUSTER_POST_INIT"),
        ("GANETI_DATA_DIR", data_dir),
        ("GANETI_HOOKS_PHASE", "post"),
        ("GANETI_HOOKS_PATH", HPATH),
        ("GANETI_OBJECT_TYPE", "CLUSTER"),
        ("GANETI_CLUSTER", cluster),
        ("GANETI_MASTER", master),
        ("GANETI_OP_TARGET", cluster),
        ("GANETI_POST_OP_TARGET", cluster),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl LogicalUnit for PostInit {
    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new().bgl(Mode::Shared))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let (master, cluster) = {
                let cfg = ctx.config().read();
                let master = cfg
                    .master_node()
                    .cloned()
                    .ok_or_else(|| Error::programmer("the cluster has no master node"))?;
                (master, cfg.cluster.cluster_name.clone())
            };
            let req = RunHooks {
                hpath: HPATH.to_string(),
                phase: HooksPhase::Post,
                env: hooks_env(
                    &ctx.paths().data_dir().display().to_string(),
                    &cluster,
                    &master.name,
                ),
            };
            match ctx.rpc().call(&master, &req).await {
                Ok(results) => {
                    for r in results.iter().filter(|r| r.status == HookStatus::Fail) {
                        let output = if r.output.is_empty() {
                            "(no output)"
                        } else {
                            r.output.as_str()
                        };
                        ctx.feedback(format!(
                            "On {} script {} failed, output: {output}",
                            master.name, r.script
                        ));
                    }
                }
                Err(e) => ctx.feedback(format!(
                    "Communication failure to node {}: {}",
                    master.name,
                    error_chain(&e)
                )),
            }
            Ok(Value::Bool(true))
        })
    }
}
