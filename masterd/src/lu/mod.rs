//! Logical units: one per opcode, all with Ganeti's life cycle.
//!
//! 1. `check_arguments`: the opcode alone, no config.
//! 2. `locks`: expand names against the config and say what to lock.
//! 3. (the driver acquires the locks; the job shows `waiting` meanwhile,
//!    then re-expands names and retries if the config changed under it.)
//! 4. `check_prereq`: check the config, under the locks.
//! 5. `exec`: node RPCs and one config commit.

pub mod backup;
pub mod change_group;
pub mod cluster;
pub mod cluster_rename;
pub mod cluster_verify;
pub mod common;
mod ctx;
pub mod drbd;
pub mod export_config;
pub mod extstorage;
pub mod group;
pub mod instance;
pub mod instance_migration;
pub mod instance_storage;
pub mod ipolicy;
pub mod network;
pub mod node;
pub mod node_storage;
pub mod oob;
pub mod os;
pub mod post_init;
pub mod query_ops;
pub mod recreate_disks;
pub mod renew_crypto;
pub mod repair_disk_sizes;
pub mod replace_disks;
pub mod restricted_command;
pub mod tags;
pub mod test;
#[cfg(test)]
mod tests;
pub mod undo;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use luxi::error::ErrorCode;

use crate::error::Error;
use luxi::opcodes::{Input, OpCode};
use serde_json::Value;

use crate::config::ConfigData;
use crate::jobqueue::OpContext;
use crate::locking::LockRequest;
use crate::master::Master;

pub use ctx::Ctx;

/// The future a logical unit's `exec` returns.
pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, Error>> + Send + 'a>>;

/// One opcode's implementation.
pub trait LogicalUnit: Send {
    /// Checks the opcode's own arguments.
    fn check_arguments(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// Expands names and declares the locks.
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error>;
    /// Checks prerequisites against the config, under the locks.
    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error>;
    /// Does the work.
    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a>;
    /// Runs while the opcode waits for its locks (status `waiting`), before
    /// they are asked for; `None` (the default) for units with nothing to
    /// do then.
    fn while_waiting<'a>(
        &'a mut self,
        _master: &'a Arc<Master>,
        _op: &'a OpContext,
    ) -> Option<ExecFuture<'a>> {
        None
    }
    /// Opcode fields the unit settled that the opcode left unset (Ganeti's
    /// units write them back into their opcode, and the job's input shows
    /// them), besides the UUIDs of the instance and node names, which
    /// [`run`] fills in for every unit.
    fn settled_fields(&self) -> Vec<(&'static str, Value)> {
        Vec::new()
    }
}

/// The UUIDs of the objects an opcode's input names: `instance_uuid` for
/// `instance_name`, `node_uuid` for `node_name`, as Ganeti's name expansion
/// writes them into the opcode.
fn name_uuids(cfg: &ConfigData, input: &Value) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    let name = |k: &str| input.get(k).and_then(Value::as_str);
    if let Some(i) = name("instance_name").and_then(|n| cfg.instance_by_name(n)) {
        out.push(("instance_uuid", Value::from(i.uuid.clone())));
    }
    if let Some(n) = name("node_name").and_then(|n| cfg.node_by_name(n)) {
        out.push(("node_uuid", Value::from(n.uuid.clone())));
    }
    out
}

/// The logical unit for an opcode.
pub fn for_opcode(op: OpCode) -> Box<dyn LogicalUnit> {
    match op {
        OpCode::TestDelay(o) => Box::new(test::TestDelay::new(o)),
        OpCode::TestAllocator(o) => Box::new(test::TestAllocator::new(o)),
        OpCode::TestJqueue(o) => Box::new(test::TestJqueue::new(o)),
        OpCode::TestOsParams(o) => Box::new(test::TestOsParams::new(o)),
        OpCode::TestDummy(o) => Box::new(test::TestDummy::new(o)),
        OpCode::ClusterVerify(o) => Box::new(cluster_verify::Verify::new(o)),
        OpCode::ClusterVerifyConfig(o) => Box::new(cluster_verify::VerifyConfig::new(o)),
        OpCode::ClusterVerifyGroup(o) => Box::new(cluster_verify::VerifyGroup::new(o)),
        OpCode::ClusterSetParams(o) => Box::new(cluster::SetParams::new(o)),
        OpCode::ClusterVerifyDisks(o) => Box::new(cluster_verify::VerifyDisks::new(o)),
        OpCode::ClusterRepairDiskSizes(o) => Box::new(repair_disk_sizes::RepairDiskSizes::new(o)),
        OpCode::GroupVerifyDisks(o) => Box::new(cluster_verify::GroupVerifyDisks::new(o)),
        OpCode::NodeAdd(o) => Box::new(node::Add::new(o)),
        OpCode::NodeRemove(o) => Box::new(node::Remove::new(o)),
        OpCode::NodeSetParams(o) => Box::new(node::SetParams::new(o)),
        OpCode::NodeMigrate(o) => Box::new(node::Migrate::new(o)),
        OpCode::NodeEvacuate(o) => Box::new(node::Evacuate::new(o)),
        OpCode::NodeQueryvols(o) => Box::new(node_storage::QueryVols::new(o)),
        OpCode::NodeQueryStorage(o) => Box::new(node_storage::QueryStorage::new(o)),
        OpCode::NodeModifyStorage(o) => Box::new(node_storage::ModifyStorage::new(o)),
        OpCode::RepairNodeStorage(o) => Box::new(node_storage::RepairStorage::new(o)),
        OpCode::OobCommand(o) => Box::new(oob::OobCommand::new(o)),
        OpCode::NodePowercycle(o) => Box::new(oob::NodePowercycle::new(o)),
        OpCode::GroupAdd(o) => Box::new(group::Add::new(o)),
        OpCode::GroupRemove(o) => Box::new(group::Remove::new(o)),
        OpCode::GroupRename(o) => Box::new(group::Rename::new(o)),
        OpCode::GroupAssignNodes(o) => Box::new(group::AssignNodes::new(o)),
        OpCode::GroupSetParams(o) => Box::new(group::SetParams::new(o)),
        OpCode::InstanceCreate(o) => Box::new(instance::Create::new(o)),
        OpCode::InstanceRemove(o) => Box::new(instance::Remove::new(o)),
        OpCode::InstanceStartup(o) => Box::new(instance::Startup::new(o)),
        OpCode::InstanceShutdown(o) => Box::new(instance::Shutdown::new(o)),
        OpCode::InstanceReboot(o) => Box::new(instance::Reboot::new(o)),
        OpCode::InstanceRename(o) => Box::new(instance::Rename::new(o)),
        OpCode::InstanceSetParams(o) => Box::new(instance::SetParams::new(o)),
        OpCode::InstanceReinstall(o) => Box::new(instance::Reinstall::new(o)),
        OpCode::InstanceQueryData(o) => Box::new(instance::QueryData::new(o)),
        OpCode::InstanceGrowDisk(o) => Box::new(instance_storage::GrowDisk::new(o)),
        OpCode::InstanceActivateDisks(o) => Box::new(instance_storage::ActivateDisks::new(o)),
        OpCode::InstanceRecreateDisks(o) => Box::new(recreate_disks::RecreateDisks::new(o)),
        OpCode::InstanceReplaceDisks(o) => Box::new(replace_disks::ReplaceDisks::new(o)),
        OpCode::InstanceChangeGroup(o) => Box::new(change_group::ChangeGroup::new(o)),
        OpCode::GroupEvacuate(o) => Box::new(change_group::GroupEvacuate::new(o)),
        OpCode::InstanceDeactivateDisks(o) => Box::new(instance_storage::DeactivateDisks::new(o)),
        OpCode::InstanceMigrate(o) => Box::new(instance_migration::Migrate::new(o)),
        OpCode::InstanceFailover(o) => Box::new(instance_migration::Failover::new(o)),
        OpCode::InstanceMove(o) => Box::new(instance::Move::new(o)),
        OpCode::InstanceConsole(o) => Box::new(instance::Console::new(o)),
        OpCode::InstanceMultiAlloc(o) => Box::new(instance::MultiAlloc::new(o)),
        OpCode::BackupPrepare(o) => Box::new(backup::Prepare::new(o)),
        OpCode::BackupExport(o) => Box::new(backup::Export::new(o)),
        OpCode::BackupRemove(o) => Box::new(backup::Remove::new(o)),
        OpCode::Query(o) => Box::new(query_ops::ReadOp::query(o)),
        OpCode::QueryFields(o) => Box::new(query_ops::ReadOp::query_fields(o)),
        OpCode::ClusterQuery(o) => Box::new(query_ops::ReadOp::cluster_query(o)),
        OpCode::ClusterConfigQuery(o) => Box::new(query_ops::ReadOp::config_query(o)),
        OpCode::ClusterRedistConf(o) => Box::new(cluster::RedistConf::new(o)),
        OpCode::ClusterActivateMasterIp(_) => Box::new(cluster::MasterIp::new(true)),
        OpCode::ClusterDeactivateMasterIp(_) => Box::new(cluster::MasterIp::new(false)),
        OpCode::ClusterDestroy(o) => Box::new(cluster::Destroy::new(o)),
        OpCode::ClusterRename(o) => Box::new(cluster_rename::Rename::new(o)),
        OpCode::ClusterRenewCrypto(o) => Box::new(renew_crypto::RenewCrypto::new(o)),
        OpCode::ClusterPostInit(o) => Box::new(post_init::PostInit::new(o)),
        OpCode::RestrictedCommand(o) => Box::new(restricted_command::RestrictedCommand::new(o)),
        OpCode::ExtStorageDiagnose(o) => Box::new(extstorage::Diagnose::new(o)),
        OpCode::OsDiagnose(o) => Box::new(os::Diagnose::new(o)),
        OpCode::TagsGet(o) => Box::new(tags::Get::new(o)),
        OpCode::TagsSet(o) => Box::new(tags::Change::new(o, true)),
        OpCode::TagsDel(o) => Box::new(tags::Change::new(o, false)),
        OpCode::TagsSearch(o) => Box::new(tags::Search::new(o)),
        OpCode::NetworkAdd(o) => Box::new(network::Add::new(o)),
        OpCode::NetworkSetParams(o) => Box::new(network::SetParams::new(o)),
        OpCode::NetworkRemove(o) => Box::new(network::Remove::new(o)),
        OpCode::NetworkConnect(o) => Box::new(network::Connect::new(o)),
        OpCode::NetworkDisconnect(o) => Box::new(network::Disconnect::new(o)),
    }
}

/// Runs one opcode through its logical unit.
pub async fn run(master: Arc<Master>, op: OpContext, input: Input) -> Result<Value, Error> {
    // Instance queries reuse no live data from before or during an opcode:
    // the guard (on a handle of its own to the master) ends with this call.
    let master_handle = master.clone();
    let _running = master_handle.live_cache.op_started();
    let Input { op: opcode, common } = input;
    let mut lu = for_opcode(opcode);
    lu.check_arguments()?;
    let mut attempts = 0;
    let _guard = loop {
        attempts += 1;
        let req = {
            let cfg = master.config.read();
            lu.locks(&cfg)?
        };
        op.set_waiting();
        if attempts == 1 {
            if let Some(fut) = lu.while_waiting(&master, &op) {
                fut.await?;
            }
        }
        let canceled_op = op.clone();
        let guard = master
            .locks
            .acquire(
                req.clone(),
                move || canceled_op.is_canceled(),
                Duration::from_millis(500),
            )
            .await
            .map_err(Error::Locks)?;
        // The config may have changed while we waited: if the same
        // expansion asks for other locks now, start over.
        let again = {
            let cfg = master.config.read();
            lu.locks(&cfg)?
        };
        if again == req {
            break guard;
        }
        drop(guard);
        if attempts > 10 {
            return Err(Error::prereq(
                "The configuration kept changing while waiting for locks",
                ErrorCode::TempNoRes,
            ));
        }
    };
    op.set_running();
    let input = op.input();
    let mut settled = {
        let cfg = master.config.read();
        lu.check_prereq(&cfg)?;
        input.map(|i| name_uuids(&cfg, &i)).unwrap_or_default()
    };
    settled.extend(lu.settled_fields());
    op.fill_input(settled);
    if common.dry_run {
        return Ok(Value::Null);
    }
    let ctx = Ctx::new(master, op, common);
    lu.exec(&ctx).await
}

/// `OpPrereqError(msg, wrong_input)`.
pub fn inval(msg: impl Into<String>) -> Error {
    Error::prereq(msg, ErrorCode::Inval)
}

/// `OpPrereqError(msg, wrong_state)`.
pub fn wrong_state(msg: impl Into<String>) -> Error {
    Error::prereq(msg, ErrorCode::State)
}

/// `OpPrereqError(msg, unknown_entity)`.
pub fn noent(msg: impl Into<String>) -> Error {
    Error::prereq(msg, ErrorCode::NoEnt)
}

/// `OpPrereqError(msg, already_exists)`.
pub fn exists(msg: impl Into<String>) -> Error {
    Error::prereq(msg, ErrorCode::Exists)
}
