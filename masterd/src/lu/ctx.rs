//! What a logical unit sees while it runs: the configuration (read and
//! commit), the node RPC, the job's log and child jobs, and the iallocator.
//! The master itself stays out of reach, so a unit does what its
//! [`Ctx`] offers and nothing else.

use std::sync::Arc;

use crate::error::Error;
use luxi::opcodes::{Common, Input};
use objects::paths::Paths;
use serde_json::{json, Value};

use crate::config::{Changes, ConfigStore};
use crate::iallocator::{self, AllocRequest};
use crate::jobqueue::OpContext;
use crate::lu::os::{self, OsRow};
use crate::master::Master;
use crate::rpc::Rpc;

/// A running unit's view of the master.
pub struct Ctx {
    master: Arc<Master>,
    /// The opcode's place in its job (log, cancellation, status).
    pub op: OpContext,
    /// The opcode's common fields (priority, dry run, ...).
    pub common: Common,
}

impl Ctx {
    pub(crate) fn new(master: Arc<Master>, op: OpContext, common: Common) -> Ctx {
        Ctx { master, op, common }
    }

    /// The configuration, to read.
    pub fn config(&self) -> &ConfigStore {
        &self.master.config
    }

    /// Commits one change set; the new `serial_no`.
    pub fn commit(&self, changes: Changes) -> Result<u64, Error> {
        self.master.commit(changes).map_err(Error::Config)
    }

    /// The node RPC.
    pub fn rpc(&self) -> &Arc<Rpc> {
        &self.master.rpc
    }

    /// The master's paths.
    pub fn paths(&self) -> &Paths {
        &self.master.paths
    }

    /// Sends node `uuid` every ssconf value at the next push (a node added
    /// again may have lost its files).
    pub fn ssconf_resend(&self, uuid: &str) {
        self.master.ssconf_resend(uuid)
    }

    /// Answers a read-only LUXI request (a query, the cluster's info or
    /// configuration values) as the LUXI server does: what `OP_QUERY` and
    /// its kin return. Any other request is a programming error.
    pub async fn luxi_query(&self, req: luxi::request::Request) -> Result<Value, Error> {
        use luxi::request::Request as R;
        match req {
            R::Query(_) | R::QueryFields(_) | R::QueryClusterInfo | R::QueryConfigValues(_) => {
                Ok(crate::luxi_server::dispatch(&self.master, req).await?)
            }
            other => Err(Error::programmer(format!(
                "{other:?} is not a read-only request"
            ))),
        }
    }

    /// Every ssconf value of the current configuration.
    pub fn ssconf_values(&self) -> std::collections::BTreeMap<String, String> {
        self.master.ssconf_values()
    }

    /// A message in the job log.
    pub fn feedback(&self, msg: impl Into<String>) {
        self.op.log("message", json!(msg.into()));
    }

    /// An informational line in the job log, as Ganeti's `LogInfo`
    /// writes it (` - INFO: ...`).
    pub fn log_info(&self, msg: impl AsRef<str>) {
        self.feedback(format!(" - INFO: {}", msg.as_ref()));
    }

    /// A warning in the job log, as Ganeti's `LogWarning` writes it
    /// (` - WARNING: ...`).
    pub fn log_warning(&self, msg: impl AsRef<str>) {
        tracing::warn!("{}", msg.as_ref());
        self.feedback(format!(" - WARNING: {}", msg.as_ref()));
    }

    /// The master.
    pub fn master(&self) -> &Arc<Master> {
        &self.master
    }

    /// Submits `jobs` (each a list of opcode dicts as submitted over LUXI)
    /// and returns Ganeti's `ResultWithJobs` value.
    pub async fn submit_raw_jobs(&self, jobs: Vec<Vec<Value>>) -> Result<Value, Error> {
        let results = self.master.queue().submit_many(jobs).await;
        Ok(json!({ "jobs": results_with_jobs(results) }))
    }

    /// Submits `jobs` (each a list of opcodes) and returns Ganeti's
    /// `ResultWithJobs` value: `{"jobs": [[true, id] | [false, error]]}`.
    pub async fn submit_jobs(&self, jobs: Vec<Vec<Input>>) -> Result<Value, Error> {
        let jobs = jobs
            .iter()
            .map(|ops| ops.iter().map(Input::to_dict).collect())
            .collect::<Result<Vec<Vec<Value>>, luxi::GanetiError>>()?;
        let results = self.master.queue().submit_many(jobs).await;
        Ok(json!({ "jobs": results_with_jobs(results) }))
    }

    /// Asks iallocator `plugin` where to put a new instance.
    pub async fn allocate(&self, plugin: &str, req: &AllocRequest) -> Result<Vec<String>, Error> {
        iallocator::allocate(&self.master, plugin, req).await
    }

    /// Asks iallocator `plugin` where to put several new instances.
    pub async fn multi_allocate(
        &self,
        plugin: &str,
        reqs: &[AllocRequest],
    ) -> Result<iallocator::MultiAllocation, Error> {
        iallocator::multi_allocate(&self.master, plugin, reqs).await
    }

    /// Asks iallocator `plugin` for a new node for `instance`, away from `from`.
    pub async fn relocate(
        &self,
        plugin: &str,
        instance: &str,
        from: &[String],
    ) -> Result<Vec<String>, Error> {
        iallocator::relocate(&self.master, plugin, instance, from).await
    }

    /// Asks iallocator `plugin` how to move `instances` off their node.
    pub async fn node_evacuate(
        &self,
        plugin: &str,
        mode: &str,
        instances: &[String],
        ignore_soft_errors: bool,
    ) -> Result<Value, Error> {
        iallocator::node_evacuate(&self.master, plugin, mode, instances, ignore_soft_errors).await
    }

    /// Asks iallocator `plugin` how to move `instances` into
    /// `target_groups` (UUIDs).
    pub async fn change_group(
        &self,
        plugin: &str,
        instances: &[String],
        target_groups: &[String],
    ) -> Result<Value, Error> {
        iallocator::change_group(&self.master, plugin, instances, target_groups).await
    }

    /// The OS definitions of the online vm-capable nodes, merged.
    pub async fn os_rows(&self) -> Vec<OsRow> {
        os::os_rows(&self.master).await
    }
}

/// `[true, id]` or `[false, error]` for each submitted job.
fn results_with_jobs(results: Vec<Result<u64, luxi::GanetiError>>) -> Vec<Value> {
    results
        .into_iter()
        .map(|r| match r {
            Ok(id) => json!([true, id]),
            Err(e) => json!([false, e.message()]),
        })
        .collect()
}
