//! harep's model: automatic repair of instances, driven by tags (Ganeti's
//! `ganeti:watcher:autorepair:` tags and their meaning).
//!
//! A cluster, node group or instance tag `ganeti:watcher:autorepair:TYPE`
//! allows repairs up to TYPE (the innermost scope wins; the least of several
//! types at one scope); `...:suspend[:TIMESTAMP]` suspends them (forever, or
//! until then). An instance's repair history lives in its tags too:
//! `...:pending:TYPE:ID:TIME:JOBS` while the repair jobs run, then
//! `...:result:TYPE:ID:TIME:RESULT:JOBS` (JOBS joined by `+`).

use serde_json::{json, Value};

use crate::model::{Cluster, Instance};
use crate::types::{DiskTemplate, NO_SECONDARY};

/// The prefix of every auto-repair tag.
pub const TAG_PREFIX: &str = "ganeti:watcher:autorepair:";
const TAG_PENDING: &str = "ganeti:watcher:autorepair:pending:";
const TAG_RESULT: &str = "ganeti:watcher:autorepair:result:";
const TAG_SUSPEND: &str = "ganeti:watcher:autorepair:suspend:";

/// The kinds of repair, from the least destructive to the most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RepairType {
    FixStorage,
    Migrate,
    Failover,
    Reinstall,
}

impl RepairType {
    /// The name in tags.
    pub fn as_str(self) -> &'static str {
        match self {
            RepairType::FixStorage => "fix-storage",
            RepairType::Migrate => "migrate",
            RepairType::Failover => "failover",
            RepairType::Reinstall => "reinstall",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            RepairType::FixStorage,
            RepairType::Migrate,
            RepairType::Failover,
            RepairType::Reinstall,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
    /// The name in Ganeti's messages.
    pub fn ganeti_name(self) -> &'static str {
        match self {
            RepairType::FixStorage => "ArFixStorage",
            RepairType::Migrate => "ArMigrate",
            RepairType::Failover => "ArFailover",
            RepairType::Reinstall => "ArReinstall",
        }
    }
}

/// How a repair ended; a later result in this order wins among the tags of
/// one repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RepairResult {
    /// The policy did not allow it.
    Enoperm,
    Success,
    Failure,
}

impl RepairResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RepairResult::Enoperm => "enoperm",
            RepairResult::Success => "success",
            RepairResult::Failure => "failure",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            RepairResult::Enoperm,
            RepairResult::Success,
            RepairResult::Failure,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// Whether repairs are allowed for an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Repairs up to this kind.
    Enabled(RepairType),
    /// Suspended until this time (seconds), or forever.
    Suspended(Option<i64>),
    NotEnabled,
}

impl Policy {
    /// The name in Ganeti's messages.
    pub fn ganeti_name(self) -> String {
        match self {
            Policy::Enabled(t) => format!("ArEnabled {}", t.ganeti_name()),
            Policy::Suspended(None) => "ArSuspended Forever".into(),
            Policy::Suspended(Some(t)) => format!("ArSuspended (Until {t})"),
            Policy::NotEnabled => "ArNotEnabled".into(),
        }
    }
}

/// The policy the tags of one scope set, if they set one.
pub fn policy_from_tags(tags: &[String], now: i64) -> Option<Policy> {
    let mut enabled = Vec::new();
    let mut forever = false;
    let mut until: Option<i64> = None;
    for t in tags {
        if let Some(s) = t.strip_prefix(TAG_SUSPEND) {
            if s.is_empty() {
                forever = true;
            } else if let Ok(ts) = s.parse::<i64>() {
                if ts > now {
                    until = Some(until.map_or(ts, |u| u.max(ts)));
                }
            }
        } else if let Some(r) = t.strip_prefix(TAG_PREFIX).and_then(RepairType::parse) {
            enabled.push(r);
        }
    }
    // a suspension applies even without an enabling tag at the same scope,
    // so that a group or an instance can suspend what an outer scope allows
    if forever {
        Some(Policy::Suspended(None))
    } else if until.is_some() {
        Some(Policy::Suspended(until))
    } else {
        enabled.into_iter().min().map(Policy::Enabled)
    }
}

/// An instance's policy: its own tags, else its group's, else the
/// cluster's.
pub fn instance_policy(c: &Cluster, inst: &Instance, now: i64) -> Policy {
    policy_from_tags(&inst.tags, now)
        .or_else(|| policy_from_tags(&c.groups[c.nodes[inst.pnode].group].tags, now))
        .or_else(|| policy_from_tags(&c.tags, now))
        .unwrap_or(Policy::NotEnabled)
}

/// One repair, as its tag records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairData {
    pub rtype: RepairType,
    pub id: String,
    /// Seconds since the epoch.
    pub time: i64,
    pub jobs: Vec<u64>,
    pub result: Option<RepairResult>,
    /// The tag this record was read from or will be written as.
    pub tag: String,
}

impl RepairData {
    /// A record of a new repair, with its tag.
    pub fn new(
        rtype: RepairType,
        id: String,
        time: i64,
        jobs: Vec<u64>,
        result: Option<RepairResult>,
    ) -> Self {
        let mut d = RepairData {
            rtype,
            id,
            time,
            jobs,
            result,
            tag: String::new(),
        };
        d.update_tag();
        d
    }

    /// Rewrites the tag from the other fields.
    pub fn update_tag(&mut self) {
        let jobs: Vec<String> = self.jobs.iter().map(u64::to_string).collect();
        let head = format!("{}:{}:{}", self.rtype.as_str(), self.id, self.time);
        self.tag = match self.result {
            None => format!("{TAG_PENDING}{head}:{}", jobs.join("+")),
            Some(r) => format!("{TAG_RESULT}{head}:{}:{}", r.as_str(), jobs.join("+")),
        };
    }

    /// Reads a pending or result tag; `None` for any other tag and for
    /// malformed ones.
    pub fn parse_tag(tag: &str) -> Option<Self> {
        let (rest, pending) = match tag.strip_prefix(TAG_PENDING) {
            Some(r) => (r, true),
            None => (tag.strip_prefix(TAG_RESULT)?, false),
        };
        let f: Vec<&str> = rest.split(':').collect();
        let (rtype, id, ts, result, jobs) = match (pending, f.as_slice()) {
            (true, [t, id, ts, jobs]) => (t, id, ts, None, jobs),
            (false, [t, id, ts, r, jobs]) => (t, id, ts, Some(RepairResult::parse(r)?), jobs),
            _ => return None,
        };
        let jobs = jobs
            .split('+')
            .map(|j| j.parse::<u64>().ok())
            .collect::<Option<Vec<u64>>>()?;
        Some(RepairData {
            rtype: RepairType::parse(rtype)?,
            id: id.to_string(),
            time: ts.parse().ok()?,
            jobs,
            result,
            tag: tag.to_string(),
        })
    }
}

/// Where an instance stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Healthy(Option<RepairData>),
    NeedsRepair(RepairData),
    Pending(RepairData),
    Failed(RepairData),
}

impl Status {
    /// The short name harep counts instances by.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Healthy(_) => "Healthy",
            Status::Failed(_) => "Failure",
            Status::Pending(_) => "Pending repair",
            Status::NeedsRepair(_) => "Needs repair",
        }
    }
    pub fn data(&self) -> Option<&RepairData> {
        match self {
            Status::Healthy(d) => d.as_ref(),
            Status::NeedsRepair(d) | Status::Pending(d) | Status::Failed(d) => Some(d),
        }
    }
}

/// An instance with its repair status and the tags to drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceState {
    pub inst: usize,
    pub status: Status,
    pub tags_to_remove: Vec<String>,
}

impl InstanceState {
    /// The tags to remove once the status changes: the current record's
    /// tag too.
    pub fn with_current_tag_removed(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(d) = self.status.data() {
            v.push(d.tag.clone());
        }
        v.extend(self.tags_to_remove.iter().cloned());
        v
    }
}

/// The status an instance's tags give: the earliest failure wins; else a
/// pending repair; else the newest success. Two pending repairs are an
/// error.
pub fn initial_state(c: &Cluster, idx: usize) -> Result<InstanceState, String> {
    let inst = &c.instances[idx];
    let mut data: Vec<RepairData> = inst
        .tags
        .iter()
        .filter_map(|t| RepairData::parse_tag(t))
        .collect();
    data.sort_by(|a, b| a.id.cmp(&b.id));
    // the records of each repair, repairs from the oldest
    let mut repairs: Vec<Vec<RepairData>> = Vec::new();
    for d in data {
        match repairs.last_mut() {
            Some(r) if r[0].id == d.id => r.push(d),
            _ => repairs.push(vec![d]),
        }
    }
    repairs.sort_by_key(|r| r.iter().map(|d| d.time).min().unwrap_or(0));
    let mut st = InstanceState {
        inst: idx,
        status: Status::Healthy(None),
        tags_to_remove: Vec::new(),
    };
    for mut r in repairs {
        r.sort_by_key(|d| (d.result, d.time));
        let Some(newest) = r.pop() else { continue };
        let new_status = match newest.result {
            Some(RepairResult::Success | RepairResult::Enoperm) => Status::Healthy(Some(newest)),
            Some(RepairResult::Failure) => Status::Failed(newest),
            None => Status::Pending(newest),
        };
        match &st.status {
            Status::Failed(_) => {}
            Status::Healthy(_) => {
                st.tags_to_remove = st.with_current_tag_removed();
                st.status = new_status;
            }
            Status::Pending(old) => {
                let tag = new_status.data().map(|d| d.tag.clone()).unwrap_or_default();
                return Err(format!(
                    "An unfinished repair was found in instance {}: found tag \"{tag}\", but older pending tag \"{}\" exists.",
                    inst.name, old.tag
                ));
            }
            Status::NeedsRepair(_) => {
                return Err("needs-repair is not a state tags can record".into());
            }
        }
    }
    Ok(st)
}

/// What is wrong with an instance whose nodes are offline, and the opcodes
/// that repair it: a DRBD instance whose primary is offline fails over,
/// one whose secondary is offline gets a new one, one with both offline
/// is re-created and reinstalled, as is a plain instance whose node is
/// offline. Other templates are not repaired.
pub fn detect_broken(c: &Cluster, inst: &Instance) -> Option<(RepairType, Vec<Value>)> {
    let name = inst.name.as_str();
    let off = |n: usize| n != NO_SECONDARY && c.nodes[n].s.offline;
    let (off_pri, off_sec) = (off(inst.pnode), off(inst.snode));
    let reinstall = || {
        (
            RepairType::Reinstall,
            vec![
                json!({
                    "OP_ID": "OP_INSTANCE_RECREATE_DISKS",
                    "instance_name": name,
                    "disks": [],
                    "nodes": [],
                    "iallocator": "hail",
                }),
                json!({
                    "OP_ID": "OP_INSTANCE_REINSTALL",
                    "instance_name": name,
                    "force_variant": false,
                }),
            ],
        )
    };
    match inst.template {
        DiskTemplate::Drbd if off_pri && off_sec => Some(reinstall()),
        DiskTemplate::Drbd if off_pri => Some((
            RepairType::Failover,
            vec![json!({
                "OP_ID": "OP_INSTANCE_FAILOVER",
                "instance_name": name,
                "shutdown_timeout": 120,
                "ignore_consistency": false,
                "ignore_ipolicy": false,
                "cleanup": false,
            })],
        )),
        DiskTemplate::Drbd if off_sec => Some((
            RepairType::FixStorage,
            vec![json!({
                "OP_ID": "OP_INSTANCE_REPLACE_DISKS",
                "instance_name": name,
                "mode": "replace_new_secondary",
                "disks": [],
                "iallocator": "hail",
                "early_release": false,
                "ignore_ipolicy": false,
            })],
        )),
        DiskTemplate::Plain if off_pri => Some(reinstall()),
        _ => None,
    }
}

/// The delay opcode put first in a repair job, so that the job does not
/// take the instance's locks before its pending tag is set.
pub fn delay_opcode(seconds: f64) -> Value {
    json!({
        "OP_ID": "OP_TEST_DELAY",
        "duration": seconds,
        "on_master": true,
        "on_nodes": [],
        "repeat": 0,
        "interruptible": false,
        "no_locks": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_least_enabled_type_wins_and_suspension_overrides() {
        let t = tags(&[
            "ganeti:watcher:autorepair:reinstall",
            "ganeti:watcher:autorepair:migrate",
        ]);
        assert_eq!(
            policy_from_tags(&t, 0),
            Some(Policy::Enabled(RepairType::Migrate))
        );
        let t = tags(&[
            "ganeti:watcher:autorepair:failover",
            "ganeti:watcher:autorepair:suspend:200",
        ]);
        assert_eq!(
            policy_from_tags(&t, 100),
            Some(Policy::Suspended(Some(200)))
        );
        // a suspension in the past is none
        assert_eq!(
            policy_from_tags(&t, 300),
            Some(Policy::Enabled(RepairType::Failover))
        );
        assert_eq!(policy_from_tags(&tags(&["other"]), 0), None);
    }

    #[test]
    fn tags_round_trip() {
        let d = RepairData::new(
            RepairType::Failover,
            "abc".into(),
            1234,
            vec![5, 6],
            Some(RepairResult::Success),
        );
        assert_eq!(
            d.tag,
            "ganeti:watcher:autorepair:result:failover:abc:1234:success:5+6"
        );
        assert_eq!(RepairData::parse_tag(&d.tag), Some(d));
        let p = RepairData::new(RepairType::FixStorage, "x".into(), 1, vec![7], None);
        assert_eq!(p.tag, "ganeti:watcher:autorepair:pending:fix-storage:x:1:7");
        assert_eq!(RepairData::parse_tag(&p.tag), Some(p));
        assert_eq!(
            RepairData::parse_tag("ganeti:watcher:autorepair:pending:bogus:x:1:7"),
            None
        );
    }
}
