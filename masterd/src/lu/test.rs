//! The test opcodes: `OP_TEST_DELAY` (sleeps on the master; used by tests
//! and benchmarks), `OP_TEST_ALLOCATOR`, `OP_TEST_JQUEUE`,
//! `OP_TEST_OS_PARAMS` and `OP_TEST_DUMMY` (`gnt-debug`).

use std::time::Duration;

use std::sync::Arc;

use crate::error::Error;
use luxi::opcodes;
use serde_json::{json, Value};

use super::{exists, inval, noent, Ctx, ExecFuture, LogicalUnit};
use crate::config::ConfigData;
use crate::jobqueue::OpContext;
use crate::locking::{Level, LockRequest, Mode};
use crate::master::Master;

pub struct TestDelay {
    op: opcodes::TestDelay,
    /// The nodes to sleep on (`on_nodes`, and the master with `on_master`
    /// when it is among them).
    nodes: Vec<objects::Node>,
}

impl TestDelay {
    pub fn new(op: opcodes::TestDelay) -> Self {
        TestDelay {
            op,
            nodes: Vec::new(),
        }
    }

    /// The node UUIDs `on_nodes` names, with the master's when the delay
    /// is on the master too (as Ganeti).
    fn node_uuids(&self, cfg: &ConfigData) -> Result<Vec<String>, Error> {
        let mut uuids = self
            .op
            .on_nodes
            .iter()
            .map(|n| {
                cfg.expand_node(n)
                    .map(|n| n.uuid.clone())
                    .ok_or_else(|| noent(format!("Node '{n}' not known")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !uuids.is_empty() && self.op.on_master {
            if let Some(m) = cfg.master_node() {
                if !uuids.contains(&m.uuid) {
                    uuids.push(m.uuid.clone());
                }
            }
        }
        Ok(uuids)
    }
}

impl LogicalUnit for TestDelay {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if !self.op.duration.is_finite() || self.op.duration < 0.0 {
            return Err(inval(format!(
                "Invalid duration {}: expected a non-negative number of seconds",
                self.op.duration
            )));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let uuids = self.node_uuids(cfg)?;
        Ok(if self.op.no_locks {
            LockRequest::new()
        } else {
            LockRequest::new()
                .bgl(Mode::Shared)
                .some(Level::Node, uuids, Mode::Exclusive)
        })
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let uuids = self.node_uuids(cfg)?;
        self.nodes = uuids
            .iter()
            .filter_map(|u| cfg.nodes.get(u).cloned())
            .collect();
        Ok(())
    }

    fn settled_fields(&self) -> Vec<(&'static str, Value)> {
        if self.op.on_nodes.is_empty() {
            return Vec::new();
        }
        let uuids: Vec<&str> = self.nodes.iter().map(|n| n.uuid.as_str()).collect();
        vec![("on_node_uuids", json!(uuids))]
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let rounds = self.op.repeat.max(1);
            for i in 0..rounds {
                if self.op.repeat > 0 {
                    ctx.log_info(format!("Test delay iteration {i}/{}", rounds - 1));
                }
                if self.op.interruptible {
                    if interruptible_delay(ctx, self.op.duration).await? {
                        break;
                    }
                } else if !self.nodes.is_empty() {
                    // The call lasts as long as the delay, and some more.
                    let rpc = Arc::new(
                        ctx.rpc()
                            .timed(Duration::from_secs_f64(self.op.duration + 5.0)),
                    );
                    let req = rpc::api::TestDelay {
                        duration: self.op.duration,
                    };
                    let results = rpc.call_many(&self.nodes, &req).await;
                    for (node, r) in self.nodes.iter().zip(results) {
                        r.map_err(|e| {
                            Error::exec(format!(
                                "Failure during rpc call to node {}: {}",
                                node.name,
                                objects::error_chain(&e)
                            ))
                        })?;
                    }
                } else if self.op.on_master && self.op.duration > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(self.op.duration)).await;
                }
            }
            Ok(Value::Null)
        })
    }
}

/// A delay on the master that a client may cut short: the job log gets a
/// `delay-test` entry `[socket path]`; a client that connects and sends a
/// byte (or closes) ends the delay. Whether it was interrupted.
async fn interruptible_delay(ctx: &Ctx, duration: f64) -> Result<bool, Error> {
    use tokio::io::AsyncReadExt;
    let total = Duration::from_secs_f64(duration);
    let n: u64 = rand::random();
    let dir = ctx.paths().run_dir().join(format!("delay-test-{n:016x}"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::exec(format!("Cannot create {}: {e}", dir.display())))?;
    let path = dir.join("sock");
    let result = async {
        let listener = tokio::net::UnixListener::bind(&path)
            .map_err(|e| Error::exec(format!("Cannot listen on {}: {e}", path.display())))?;
        ctx.op.log("delay-test", json!([path.to_string_lossy()]));
        let start = std::time::Instant::now();
        let Ok(accepted) = tokio::time::timeout(total, listener.accept()).await else {
            return Ok(false);
        };
        let (mut conn, _) =
            accepted.map_err(|e| Error::exec(format!("Accepting on {}: {e}", path.display())))?;
        let left = total.saturating_sub(start.elapsed());
        ctx.feedback(format!(
            "Received connection, time to go is {}",
            left.as_secs()
        ));
        let mut byte = [0u8; 1];
        if tokio::time::timeout(left, conn.read(&mut byte))
            .await
            .is_err()
        {
            return Ok(false);
        }
        ctx.feedback(format!(
            "Interrupted, time spent waiting: {}",
            start.elapsed().as_secs()
        ));
        Ok(true)
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `OP_TEST_ALLOCATOR`: an iallocator request as the plugin would get it
/// (`in`), or the plugin's unchecked answer to it (`out`).
pub struct TestAllocator {
    op: opcodes::TestAllocator,
    /// The request, built under the locks.
    request: Value,
}

impl TestAllocator {
    pub fn new(op: opcodes::TestAllocator) -> Self {
        TestAllocator {
            op,
            request: Value::Null,
        }
    }

    /// One instance of an `allocate` request, named `name`.
    fn alloc_body(&self, cfg: &ConfigData, name: &str) -> Value {
        let template = self.op.disk_template.as_deref();
        let disks = self.op.disks.clone().unwrap_or_default();
        let total: u64 = disks
            .iter()
            .filter_map(|d| d.get("size").and_then(Value::as_u64))
            .sum();
        let hypervisor = self
            .op
            .hypervisor
            .clone()
            .or_else(|| cfg.cluster.enabled_hypervisors.first().cloned());
        json!({
            "name": name, "disk_template": template, "tags": self.op.tags, "os": self.op.os,
            "vcpus": self.op.vcpus, "memory": self.op.memory, "spindle_use": self.op.spindle_use,
            "disks": disks, "disk_space_total": total,
            "nics": self.op.nics.clone().unwrap_or_default(),
            "required_nodes": if template == Some("drbd") { 2 } else { 1 },
            "hypervisor": hypervisor, "group_name": self.op.group_name,
        })
    }

    /// The instances named by the opcode, each known.
    fn instances(&self, cfg: &ConfigData) -> Result<Vec<String>, Error> {
        let names = self.op.instances.clone().unwrap_or_default();
        if names.is_empty() {
            return Err(inval("Missing instances"));
        }
        names
            .iter()
            .map(|n| {
                cfg.expand_instance(n)
                    .map(|i| i.name.clone())
                    .ok_or_else(|| noent(format!("Instance '{n}' not known")))
            })
            .collect()
    }
}

impl LogicalUnit for TestAllocator {
    fn check_arguments(&mut self) -> Result<(), Error> {
        match self.op.direction.as_str() {
            "in" => Ok(()),
            "out" if self.op.iallocator.is_some() => Ok(()),
            "out" => Err(inval("Missing allocator name")),
            other => Err(inval(format!(
                "Invalid iallocator test direction '{other}' (expected 'in' or 'out')"
            ))),
        }
    }

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new().bgl(Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let mode = self.op.mode.as_str();
        self.request = match mode {
            "allocate" | "multi-allocate" => {
                if let Some(i) = cfg.expand_instance(&self.op.name) {
                    return Err(exists(format!(
                        "Instance '{}' already in the cluster",
                        i.name
                    )));
                }
                let disks_ok = self.op.disks.iter().flatten().all(|d| {
                    d.get("size").is_some_and(Value::is_u64)
                        && matches!(d.get("mode").and_then(Value::as_str), Some("r" | "rw"))
                });
                if !disks_ok {
                    return Err(inval("Invalid contents of the 'disks' parameter"));
                }
                if mode == "allocate" {
                    let mut body = self.alloc_body(cfg, &self.op.name);
                    body["type"] = json!("allocate");
                    body
                } else {
                    let instances: Vec<Value> = (0..self.op.count)
                        .map(|i| self.alloc_body(cfg, &format!("{}{i}", self.op.name)))
                        .collect();
                    json!({"type": "multi-allocate", "instances": instances})
                }
            }
            "relocate" => {
                let inst = cfg
                    .expand_instance(&self.op.name)
                    .ok_or_else(|| noent(format!("Instance '{}' not known", self.op.name)))?;
                let from: Vec<String> = inst
                    .secondary_nodes()
                    .iter()
                    .map(|n| cfg.node_name(n).to_string())
                    .collect();
                json!({"type": "relocate", "name": inst.name, "required_nodes": 1,
                       "relocate_from": from})
            }
            "change-group" => {
                let groups: Vec<String> = self
                    .op
                    .target_groups
                    .iter()
                    .flatten()
                    .map(|g| {
                        cfg.expand_group(g)
                            .map(|g| g.uuid.clone())
                            .ok_or_else(|| noent(format!("Group '{g}' not found")))
                    })
                    .collect::<Result<_, _>>()?;
                json!({"type": "change-group", "instances": self.instances(cfg)?,
                       "target_groups": groups})
            }
            "node-evacuate" => {
                let evac_mode = self.op.evac_mode.clone().unwrap_or_else(|| "all".into());
                if !["primary-only", "secondary-only", "all"].contains(&evac_mode.as_str()) {
                    return Err(inval(format!("Invalid evacuation mode '{evac_mode}'")));
                }
                json!({"type": "node-evacuate", "instances": self.instances(cfg)?,
                       "evac_mode": evac_mode, "ignore_soft_errors": false})
            }
            other => return Err(inval(format!("Invalid test allocator mode '{other}'"))),
        };
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let request = std::mem::take(&mut self.request);
            let text = match self.op.iallocator.as_deref() {
                Some(name) if self.op.direction == "out" => {
                    crate::iallocator::run_text(ctx.master(), name, request).await?
                }
                _ => crate::iallocator::input_text(ctx.master(), request).await,
            };
            Ok(Value::String(text))
        })
    }
}

/// `OP_TEST_OS_PARAMS`: tells that the secret OS parameters arrived. The
/// job log names the parameters, never their values (Ganeti 3.0 logs the
/// values; secrets stay out of logs here).
pub struct TestOsParams {
    op: opcodes::TestOsParams,
}

impl TestOsParams {
    pub fn new(op: opcodes::TestOsParams) -> Self {
        TestOsParams { op }
    }
}

impl LogicalUnit for TestOsParams {
    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new())
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            match &self.op.osparams_secret {
                Some(p) if !p.is_empty() => {
                    let names: Vec<&str> = p.keys().map(String::as_str).collect();
                    ctx.feedback(format!(
                        "Secret OS parameters received: {}",
                        names.join(", ")
                    ));
                    Ok(Value::Null)
                }
                _ => Err(Error::exec("Opcode needs secret parameters")),
            }
        })
    }
}

/// `OP_TEST_DUMMY`: logs its `messages`, fails when `fail` is true
/// ("Error requested (result)"), submits `submit_jobs` when set, else
/// answers with `result` (as Ganeti's job queue tests use it).
pub struct TestDummy {
    op: opcodes::TestDummy,
}

impl TestDummy {
    pub fn new(op: opcodes::TestDummy) -> Self {
        TestDummy { op }
    }
}

impl LogicalUnit for TestDummy {
    fn check_arguments(&mut self) -> Result<(), Error> {
        match &self.op.submit_jobs {
            Value::Null => Ok(()),
            Value::Array(jobs)
                if jobs.iter().all(|j| {
                    j.as_array()
                        .is_some_and(|ops| ops.iter().all(Value::is_object))
                }) =>
            {
                Ok(())
            }
            other => Err(inval(format!(
                "Invalid submit_jobs {other}: expected a list of jobs, each a list of opcodes"
            ))),
        }
    }

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new())
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            for m in self.op.messages.as_array().into_iter().flatten() {
                match m {
                    Value::Array(pair) if pair.len() == 2 && pair[0].is_string() => ctx
                        .op
                        .log(pair[0].as_str().unwrap_or("message"), pair[1].clone()),
                    other => ctx.op.log("message", other.clone()),
                }
            }
            if truthy(&self.op.fail) {
                let shown = match &self.op.result {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return Err(Error::exec(format!("Error requested ({shown})")));
            }
            if let Value::Array(jobs) = &self.op.submit_jobs {
                let jobs: Vec<Vec<Value>> = jobs
                    .iter()
                    .map(|j| j.as_array().cloned().unwrap_or_default())
                    .collect();
                return ctx.submit_raw_jobs(jobs).await;
            }
            Ok(self.op.result.clone())
        })
    }
}

/// Python's truth of a JSON value: `null`, `false`, 0, "" and empty lists
/// and dicts are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `OP_TEST_JQUEUE`: checks the job queue with a client that follows the
/// job's log (`gnt-debug test-jobqueue`). At each step asked for (while
/// waiting for locks, when executing, before and after each log message)
/// the unit opens a Unix socket, tells the client its path with a
/// `jqueue-test` log entry `[path, test, arg]`, and goes on once the client
/// has connected (within 20 s) and sent a byte (within 60 s).
pub struct TestJqueue {
    op: opcodes::TestJqueue,
}

impl TestJqueue {
    pub fn new(op: opcodes::TestJqueue) -> Self {
        TestJqueue { op }
    }
}

/// Seconds the client has to connect, then to confirm.
const JQ_CONNECT: Duration = Duration::from_secs(20);
const JQ_CONFIRM: Duration = Duration::from_secs(60);

/// One notification: `prereq` says which error class a failure gets.
async fn jq_notify(
    master: &Master,
    op: &OpContext,
    prereq: bool,
    test: &str,
    arg: Value,
) -> Result<(), Error> {
    use tokio::io::AsyncReadExt;
    let fail = |m: String| {
        if prereq {
            Error::prereq(m, luxi::ErrorCode::Inval)
        } else {
            Error::exec(m)
        }
    };
    let n: u64 = rand::random();
    let dir = master.paths.run_dir().join(format!("jqueue-test-{n:016x}"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(format!("Cannot create {}: {e}", dir.display())))?;
    let path = dir.join("sock");
    let result = async {
        let listener = tokio::net::UnixListener::bind(&path)
            .map_err(|e| fail(format!("Cannot listen on {}: {e}", path.display())))?;
        op.log("jqueue-test", json!([path.to_string_lossy(), test, arg]));
        let (mut conn, _) = tokio::time::timeout(JQ_CONNECT, listener.accept())
            .await
            .map_err(|_| fail("Client didn't connect in time (timed out)".into()))?
            .map_err(|e| fail(format!("Client didn't connect in time ({e})")))?;
        let mut byte = [0u8; 1];
        tokio::time::timeout(JQ_CONFIRM, conn.read(&mut byte))
            .await
            .map_err(|_| fail("Client failed to confirm notification (timed out)".into()))?
            .map_err(|e| fail(format!("Client failed to confirm notification ({e})")))?;
        Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

impl LogicalUnit for TestJqueue {
    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new().bgl(Mode::Shared))
    }

    fn while_waiting<'a>(
        &'a mut self,
        master: &'a Arc<Master>,
        op: &'a OpContext,
    ) -> Option<ExecFuture<'a>> {
        Some(Box::pin(async move {
            if self.op.notify_waitlock {
                jq_notify(master, op, true, "expandnames", Value::Null).await?;
            }
            op.log("message", json!(" - INFO: Expanding names"));
            Ok(Value::Null)
        }))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let master = ctx.master();
            if self.op.notify_exec {
                jq_notify(master, &ctx.op, false, "exec", Value::Null).await?;
            }
            ctx.log_info("Executing");
            if !self.op.log_messages.is_empty() {
                jq_notify(
                    master,
                    &ctx.op,
                    false,
                    "startmsg",
                    json!(self.op.log_messages.len()),
                )
                .await?;
                for (idx, msg) in self.op.log_messages.iter().enumerate() {
                    ctx.log_info(format!("Sending log message {}", idx + 1));
                    ctx.feedback(format!("TESTMSG={msg}"));
                    jq_notify(master, &ctx.op, false, "logmsg", json!(idx + 1)).await?;
                }
            }
            if self.op.fail {
                return Err(Error::exec("Opcode failure was requested"));
            }
            Ok(json!(true))
        })
    }
}
