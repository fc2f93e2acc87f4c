//! Tags of the cluster, node groups, nodes, instances and networks.

use crate::error::Error;
use luxi::opcodes;
use serde_json::{json, Value};

use super::common::{expand_group, expand_instance, expand_network, expand_node};
use super::{inval, Ctx, ExecFuture, LogicalUnit};
use crate::config::{Changes, ConfigData};
use crate::locking::{Level, LockRequest, Mode};

/// Longest tag and most tags per object (Ganeti's limits).
const MAX_TAG_LEN: usize = 128;
const MAX_TAGS_PER_OBJ: usize = 4096;

/// Checks one tag as Ganeti does.
pub fn check_tag(tag: &str) -> Result<(), Error> {
    if tag.is_empty() {
        return Err(Error::tag("Tags cannot be empty"));
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(Error::tag(format!(
            "Tag too long (>{MAX_TAG_LEN} characters)"
        )));
    }
    if !tag
        .chars()
        .all(|c| c.is_alphanumeric() || "_.+*/:@-".contains(c))
    {
        return Err(Error::tag(format!(
            "Tag contains invalid characters: {tag}"
        )));
    }
    Ok(())
}

/// The object a tag operation is about.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Cluster,
    Node(String),
    Group(String),
    Instance(String),
    Network(String),
}

fn resolve(cfg: &ConfigData, kind: &str, name: Option<&str>) -> Result<Target, Error> {
    let need_name = || name.ok_or_else(|| inval(format!("Tag kind '{kind}' needs an object name")));
    Ok(match kind {
        "cluster" => Target::Cluster,
        "node" => Target::Node(expand_node(cfg, need_name()?)?.uuid.clone()),
        "nodegroup" => Target::Group(expand_group(cfg, need_name()?)?.uuid.clone()),
        "instance" => Target::Instance(expand_instance(cfg, need_name()?)?.uuid.clone()),
        "network" => Target::Network(expand_network(cfg, need_name()?)?.uuid.clone()),
        other => {
            return Err(inval(format!(
                "Invalid tag kind '{other}': expected cluster, node, nodegroup, instance \
                 or network"
            )))
        }
    })
}

fn lock_for(t: &Target, mode: Mode) -> LockRequest {
    match t {
        Target::Cluster => LockRequest::new().bgl(mode),
        Target::Node(u) => {
            LockRequest::new()
                .bgl(Mode::Shared)
                .some(Level::Node, vec![u.clone()], mode)
        }
        Target::Group(u) => {
            LockRequest::new()
                .bgl(Mode::Shared)
                .some(Level::NodeGroup, vec![u.clone()], mode)
        }
        Target::Instance(u) => {
            LockRequest::new()
                .bgl(Mode::Shared)
                .some(Level::Instance, vec![u.clone()], mode)
        }
        Target::Network(u) => {
            LockRequest::new()
                .bgl(Mode::Shared)
                .some(Level::Network, vec![u.clone()], mode)
        }
    }
}

fn tags_of(cfg: &ConfigData, t: &Target) -> Vec<String> {
    match t {
        Target::Cluster => cfg.cluster.tags.clone(),
        Target::Node(u) => cfg.nodes.get(u).map(|n| n.tags.clone()).unwrap_or_default(),
        Target::Group(u) => cfg
            .groups
            .get(u)
            .map(|g| g.tags.clone())
            .unwrap_or_default(),
        Target::Instance(u) => cfg
            .instances
            .get(u)
            .map(|i| i.tags.clone())
            .unwrap_or_default(),
        Target::Network(u) => cfg
            .networks
            .get(u)
            .map(|n| n.tags.clone())
            .unwrap_or_default(),
    }
}

/// The tags of an object (used by the `QueryTags` LUXI call too).
pub fn query_tags(cfg: &ConfigData, kind: &str, name: Option<&str>) -> Result<Vec<String>, Error> {
    let t = resolve(cfg, kind, name)?;
    let mut tags = tags_of(cfg, &t);
    tags.sort();
    Ok(tags)
}

/// `OP_TAGS_GET`.
pub struct Get {
    op: opcodes::TagsGet,
    target: Option<Target>,
}

impl Get {
    pub fn new(op: opcodes::TagsGet) -> Self {
        Get { op, target: None }
    }
}

impl LogicalUnit for Get {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let t = resolve(cfg, &self.op.kind, self.op.name.as_deref())?;
        let req = if self.op.use_locking {
            lock_for(&t, Mode::Shared)
        } else {
            LockRequest::new()
        };
        self.target = Some(t);
        Ok(req)
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let cfg = ctx.config().read();
            let t = self
                .target
                .as_ref()
                .ok_or_else(|| Error::programmer("no target"))?;
            let mut tags = tags_of(&cfg, t);
            tags.sort();
            Ok(json!(tags))
        })
    }
}

/// `OP_TAGS_SET` and `OP_TAGS_DEL`.
pub struct Change {
    op: opcodes::TagsChange,
    add: bool,
    target: Option<Target>,
}

impl Change {
    pub fn new(op: opcodes::TagsChange, add: bool) -> Self {
        Change {
            op,
            add,
            target: None,
        }
    }
}

impl LogicalUnit for Change {
    fn check_arguments(&mut self) -> Result<(), Error> {
        for t in &self.op.tags {
            check_tag(t)?;
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let t = resolve(cfg, &self.op.kind, self.op.name.as_deref())?;
        let req = lock_for(&t, Mode::Exclusive);
        self.target = Some(t);
        Ok(req)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let t = self
            .target
            .as_ref()
            .ok_or_else(|| Error::programmer("no target"))?;
        let current = tags_of(cfg, t);
        if self.add {
            let mut all = current.clone();
            all.extend(self.op.tags.iter().cloned());
            all.sort();
            all.dedup();
            if all.len() > MAX_TAGS_PER_OBJ {
                return Err(Error::tag("Too many tags"));
            }
        } else {
            let mut missing: Vec<&str> = self
                .op
                .tags
                .iter()
                .filter(|t| !current.contains(t))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                missing.sort();
                return Err(inval(format!(
                    "Tag(s) {} not found",
                    missing
                        .iter()
                        .map(|t| format!("'{t}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let t = self
                .target
                .clone()
                .ok_or_else(|| Error::programmer("no target"))?;
            let changes = {
                let cfg = ctx.config().read();
                let apply = |tags: &mut Vec<String>| {
                    if self.add {
                        for tag in &self.op.tags {
                            if !tags.contains(tag) {
                                tags.push(tag.clone());
                            }
                        }
                    } else {
                        tags.retain(|x| !self.op.tags.contains(x));
                    }
                };
                let mut ch = Changes::new();
                match &t {
                    Target::Cluster => {
                        let mut c = cfg.cluster.clone();
                        apply(&mut c.tags);
                        ch.cluster(c);
                    }
                    Target::Node(u) => {
                        let mut n = cfg
                            .nodes
                            .get(u)
                            .cloned()
                            .ok_or_else(|| Error::exec("Node vanished while locked"))?;
                        apply(&mut n.tags);
                        ch.node(n);
                    }
                    Target::Group(u) => {
                        let mut g = cfg
                            .groups
                            .get(u)
                            .cloned()
                            .ok_or_else(|| Error::exec("Group vanished while locked"))?;
                        apply(&mut g.tags);
                        ch.group(g);
                    }
                    Target::Instance(u) => {
                        let mut i = cfg
                            .instances
                            .get(u)
                            .cloned()
                            .ok_or_else(|| Error::exec("Instance vanished while locked"))?;
                        apply(&mut i.tags);
                        ch.instance(i);
                    }
                    Target::Network(u) => {
                        let mut n = cfg
                            .networks
                            .get(u)
                            .cloned()
                            .ok_or_else(|| Error::exec("Network vanished while locked"))?;
                        apply(&mut n.tags);
                        ch.network(n);
                    }
                }
                ch
            };
            ctx.commit(changes)?;
            Ok(Value::Null)
        })
    }
}

/// `OP_TAGS_SEARCH`: every `(path, tag)` whose tag matches a regex.
pub struct Search {
    op: opcodes::TagsSearch,
    re: Option<regex::Regex>,
}

impl Search {
    pub fn new(op: opcodes::TagsSearch) -> Self {
        Search { op, re: None }
    }
}

impl LogicalUnit for Search {
    fn check_arguments(&mut self) -> Result<(), Error> {
        self.re =
            Some(regex::Regex::new(&self.op.pattern).map_err(|e| {
                inval(format!("Invalid search pattern '{}': {e}", self.op.pattern))
            })?);
        Ok(())
    }

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new())
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let re = self
                .re
                .as_ref()
                .ok_or_else(|| Error::programmer("no regex"))?;
            let cfg = ctx.config().read();
            let mut out = Vec::new();
            let mut add = |path: String, tags: &[String]| {
                for t in tags {
                    if re.is_match(t) {
                        out.push(json!([path, t]));
                    }
                }
            };
            add("/cluster".into(), &cfg.cluster.tags);
            for i in cfg.instances.values() {
                add(format!("/instances/{}", i.name), &i.tags);
            }
            for n in cfg.nodes.values() {
                add(format!("/nodes/{}", n.name), &n.tags);
            }
            for g in cfg.groups.values() {
                add(format!("/nodegroup/{}", g.name), &g.tags);
            }
            for n in cfg.networks.values() {
                add(format!("/network/{}", n.name), &n.tags);
            }
            Ok(Value::Array(out))
        })
    }
}
