//! `OP_INSTANCE_MULTI_ALLOC` (`gnt-instance batch-create`, RAPI's
//! `/2/instances-multi-alloc`): several instances placed by one
//! iallocator `multi-allocate` request (or on the nodes each names), then
//! created by one job each.

use luxi::opcodes::{self, Input, OpCode};
use objects::DiskTemplate;
use serde_json::{json, Value};

use super::create::{alloc_request, chosen_hypervisor};
use crate::config::ConfigData;
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};
use crate::lu::common::expand_node;
use crate::lu::{inval, Ctx, ExecFuture, LogicalUnit};

pub struct MultiAlloc {
    op: opcodes::InstanceMultiAlloc,
    /// The instances' create opcodes, parsed.
    creates: Vec<Input>,
    plugin: Option<String>,
}

impl MultiAlloc {
    pub fn new(op: opcodes::InstanceMultiAlloc) -> Self {
        MultiAlloc {
            op,
            creates: Vec::new(),
            plugin: None,
        }
    }

    fn create_ops(&self) -> impl Iterator<Item = &opcodes::InstanceCreate> {
        self.creates.iter().filter_map(|i| match &i.op {
            OpCode::InstanceCreate(c) => Some(c),
            _ => None,
        })
    }
}

impl LogicalUnit for MultiAlloc {
    fn check_arguments(&mut self) -> Result<(), Error> {
        for (i, v) in self.op.instances.iter().enumerate() {
            let mut dict = match v {
                Value::Object(m) => m.clone(),
                other => {
                    return Err(inval(format!(
                        "Instance {i} of the allocation is not a dict: {other}"
                    )))
                }
            };
            let id = dict
                .entry("OP_ID")
                .or_insert_with(|| json!("OP_INSTANCE_CREATE"));
            if id != "OP_INSTANCE_CREATE" {
                return Err(inval(format!(
                    "Instance {i} of the allocation is an {id}, not an OP_INSTANCE_CREATE"
                )));
            }
            let input = opcodes::parse(&Value::Object(dict))
                .map_err(|e| inval(format!("Instance {i} of the allocation: {}", e.message())))?;
            self.creates.push(input);
        }
        let mut nodes = Vec::new();
        for c in self.create_ops() {
            if c.iallocator.is_some() {
                return Err(inval(
                    "iallocator are not allowed to be set on instance objects",
                ));
            }
            nodes.push(c.pnode.is_some() || c.pnode_uuid.is_some());
            if c.disk_template == DiskTemplate::Drbd.as_str() {
                nodes.push(c.snode.is_some() || c.snode_uuid.is_some());
            }
        }
        let has_nodes = nodes.iter().any(|b| *b);
        if nodes.iter().all(|b| *b) != has_nodes {
            return Err(inval(
                "There are instance objects providing pnode/snode while others do not",
            ));
        }
        if has_nodes && self.op.iallocator.is_some() {
            return Err(inval(
                "Give either an iallocator or the instances' nodes, not both",
            ));
        }
        let mut names: Vec<&str> = self
            .create_ops()
            .map(|c| c.instance_name.as_str())
            .collect();
        names.sort_unstable();
        let mut dups: Vec<&str> = names
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        dups.dedup();
        if !dups.is_empty() {
            return Err(inval(format!(
                "There are duplicate instance names: {}",
                dups.join(", ")
            )));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let placed = self
            .create_ops()
            .any(|c| c.pnode.is_some() || c.pnode_uuid.is_some());
        if placed || self.creates.is_empty() {
            let mut nodes = Vec::new();
            for c in self.create_ops() {
                for n in [&c.pnode_uuid, &c.pnode, &c.snode_uuid, &c.snode]
                    .into_iter()
                    .flatten()
                {
                    nodes.push(expand_node(cfg, n)?.uuid.clone());
                }
            }
            nodes.sort();
            nodes.dedup();
            return Ok(LockRequest::new()
                .some(Level::Node, nodes.clone(), Mode::Shared)
                .some(Level::NodeRes, nodes, Mode::Shared));
        }
        let plugin = match &self.op.iallocator {
            Some(p) => p.clone(),
            None => cfg
                .cluster
                .default_allocator()
                .map(str::to_string)
                .ok_or_else(|| {
                    inval(
                        "No iallocator or nodes on the instances given and no cluster-wide \
                     default iallocator found; please specify either an iallocator or nodes \
                     on the instances or set a cluster-wide default iallocator",
                    )
                })?,
        };
        self.plugin = Some(plugin);
        Ok(LockRequest::new()
            .all(Level::Node, Mode::Shared)
            .all(Level::NodeRes, Mode::Shared))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let Some(plugin) = self.plugin.clone() else {
                let names: Vec<String> =
                    self.create_ops().map(|c| c.instance_name.clone()).collect();
                let jobs = self.creates.drain(..).map(|i| vec![i]).collect();
                return with_keys(ctx.submit_jobs(jobs).await?, names, Vec::new());
            };
            let reqs = {
                let cfg = ctx.config().read();
                let mut reqs = Vec::new();
                for c in self.create_ops() {
                    let template = c.disk_template.parse::<DiskTemplate>().map_err(|_| {
                        inval(format!(
                            "Instance {}: invalid disk template '{}'",
                            c.instance_name, c.disk_template
                        ))
                    })?;
                    let hv = chosen_hypervisor(&cfg, c.hypervisor.as_deref()).map_err(|e| {
                        inval(format!("Instance {}: {}", c.instance_name, e.message()))
                    })?;
                    reqs.push(alloc_request(&cfg, c, template, hv));
                }
                reqs
            };
            let (allocatable, failed) = ctx.multi_allocate(&plugin, &reqs).await?;
            let mut jobs = Vec::new();
            let mut placed = Vec::new();
            for (name, nodes) in &allocatable {
                let Some(pos) = self.create_ops().position(|c| c.instance_name == *name) else {
                    return Err(Error::exec(format!(
                        "Iallocator '{plugin}' placed '{name}', which was not asked for"
                    )));
                };
                let mut input = self.creates.remove(pos);
                if let OpCode::InstanceCreate(c) = &mut input.op {
                    c.pnode = nodes.first().cloned();
                    c.snode = nodes.get(1).cloned();
                }
                jobs.push(vec![input]);
                placed.push(name.clone());
            }
            let missing: Vec<&str> = self
                .create_ops()
                .map(|c| c.instance_name.as_str())
                .filter(|n| !failed.iter().any(|f| f == n))
                .collect();
            if !missing.is_empty() {
                return Err(Error::exec(format!(
                    "Iallocator '{plugin}' did return incomplete result: {}",
                    missing.join(", ")
                )));
            }
            for f in &failed {
                ctx.log_warning(format!(
                    "Iallocator '{plugin}' could not place instance {f}"
                ));
            }
            with_keys(ctx.submit_jobs(jobs).await?, placed, failed)
        })
    }
}

/// Ganeti's result: the jobs, and the instances allocatable and failed.
fn with_keys(
    mut jobs: Value,
    allocatable: Vec<String>,
    failed: Vec<String>,
) -> Result<Value, Error> {
    let Value::Object(m) = &mut jobs else {
        return Err(Error::programmer(format!(
            "jobs result {jobs} is not a dict"
        )));
    };
    m.insert("allocatable".into(), json!(allocatable));
    m.insert("failed".into(), json!(failed));
    Ok(jobs)
}
