//! harep: automatic repair of instances whose nodes are offline, as far
//! as their `ganeti:watcher:autorepair:` tags allow (Ganeti's harep).
//! Works over LUXI only.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use htools::backend::luxi::{connect, job_statuses, run_job};
use htools::cli::DataOpts;
use htools::model::Cluster;
use htools::repair::{
    delay_opcode, detect_broken, initial_state, instance_policy, InstanceState, Policy, RepairData,
    RepairResult, RepairType, Status,
};

#[derive(Parser, Debug)]
#[command(
    name = "harep",
    about = "Automatic repair of instances, by their tags, for ganeti-rs (Ganeti-compatible)"
)]
struct Opts {
    /// The master's LUXI socket (default when none is given).
    #[arg(short = 'L', long = "luxi", value_name = "SOCKET", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    luxi: Option<String>,
    /// Seconds a repair job waits before it starts, so that its pending
    /// tag is set first.
    #[arg(long = "job-delay", value_name = "SECONDS", default_value_t = 10.0)]
    job_delay: f64,
    /// Reason recorded in the submitted jobs.
    #[arg(long = "reason", value_name = "REASON")]
    reason: Option<String>,
    /// Print the repair jobs instead of submitting them, and change no tags.
    #[arg(long = "dry-run")]
    dry_run: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("HTOOLS_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

struct Repairer<'a> {
    o: &'a Opts,
    c: &'a Cluster,
    client: luxi::client::Client,
}

impl Repairer<'_> {
    /// Marks an opcode as harep's: reason trail and comment.
    fn annotate(&self, mut ops: Vec<Value>) -> Vec<Value> {
        let version = env!("CARGO_PKG_VERSION");
        let reason = self
            .o
            .reason
            .clone()
            .unwrap_or_else(|| format!("harep {version} called"));
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        for op in ops.iter_mut() {
            op["reason"] = json!([["harep", reason, ns]]);
            op["comment"] = json!(format!("automated repairs by harep {version}"));
        }
        ops
    }

    fn run_tag_job(&mut self, ops: Vec<Value>) -> Result<()> {
        if !self.o.dry_run {
            let ops = self.annotate(ops);
            run_job(&mut self.client, ops)?;
        }
        Ok(())
    }

    /// Writes the record of the status to the instance's tags and removes
    /// the tags it replaces.
    fn commit(&mut self, mut st: InstanceState) -> Result<InstanceState> {
        let name = self.c.instances[st.inst].name.clone();
        if let Some(d) = st.status.data() {
            let tag = d.tag.clone();
            println!(">>> Adding the following tag to {name}:\n\"{tag}\"");
            self.run_tag_job(vec![json!({
                "OP_ID": "OP_TAGS_SET", "kind": "instance", "tags": [tag], "name": name,
            })])?;
        }
        if !st.tags_to_remove.is_empty() {
            println!(">>> Removing the following tags from {name}:");
            for t in &st.tags_to_remove {
                println!("\"{t}\"");
            }
            self.run_tag_job(vec![json!({
                "OP_ID": "OP_TAGS_DEL", "kind": "instance", "tags": st.tags_to_remove, "name": name,
            })])?;
        }
        st.tags_to_remove.clear();
        Ok(st)
    }

    /// A pending repair whose jobs all finished becomes a success or a
    /// failure.
    fn process_pending(&mut self, st: InstanceState) -> Result<InstanceState> {
        let Status::Pending(d) = &st.status else {
            return Ok(st);
        };
        let statuses =
            job_statuses(&mut self.client, &d.jobs).context("could not check job status")?;
        let unfinished = ["queued", "waiting", "canceling", "running"];
        if statuses.iter().any(|s| unfinished.contains(&s.as_str())) {
            return Ok(st);
        }
        let result = if statuses.iter().all(|s| s == "success") {
            RepairResult::Success
        } else {
            RepairResult::Failure
        };
        let done = RepairData::new(d.rtype, d.id.clone(), now(), d.jobs.clone(), Some(result));
        let status = match result {
            RepairResult::Success => Status::Healthy(Some(done)),
            _ => Status::Failed(done),
        };
        println!(
            "Moving {} from \"{}\" to \"{}\"",
            self.c.instances[st.inst].name,
            st.status.name(),
            status.name()
        );
        let next = InstanceState {
            inst: st.inst,
            tags_to_remove: st.with_current_tag_removed(),
            status,
        };
        self.commit(next)
    }

    /// Repairs a healthy instance if its policy allows the repair.
    fn repair(
        &mut self,
        st: InstanceState,
        rtype: RepairType,
        ops: Vec<Value>,
    ) -> Result<InstanceState> {
        let inst = &self.c.instances[st.inst];
        let name = inst.name.clone();
        match instance_policy(self.c, inst, now()) {
            Policy::Enabled(max) if rtype > max => {
                let d = RepairData::new(
                    rtype,
                    objects::ids::new_uuid(),
                    now(),
                    Vec::new(),
                    Some(RepairResult::Enoperm),
                );
                println!(
                    "Not performing a repair of type {} on {name} because only repairs up to {} are allowed",
                    rtype.ganeti_name(),
                    max.ganeti_name()
                );
                let next = InstanceState {
                    inst: st.inst,
                    tags_to_remove: st.with_current_tag_removed(),
                    status: Status::NeedsRepair(d),
                };
                self.commit(next)
            }
            Policy::Enabled(_) => {
                println!("Executing {} repair on {name}", rtype.ganeti_name());
                let mut job = Vec::new();
                if self.o.job_delay > 0.0 {
                    job.push(delay_opcode(self.o.job_delay));
                }
                job.extend(ops);
                let job = self.annotate(job);
                let jobs = if self.o.dry_run {
                    println!("jobs: {}", json!([job]));
                    Vec::new()
                } else {
                    vec![self
                        .client
                        .submit_job(job)
                        .context("submitting the repair job")?]
                };
                let d = RepairData::new(rtype, objects::ids::new_uuid(), now(), jobs, None);
                let next = InstanceState {
                    inst: st.inst,
                    tags_to_remove: st.with_current_tag_removed(),
                    status: Status::Pending(d),
                };
                self.commit(next)
            }
            other => {
                println!(
                    "Not repairing {name} because it's in state {}",
                    other.ganeti_name()
                );
                Ok(st)
            }
        }
    }
}

fn run() -> Result<()> {
    let o: Opts = htools::cmdline::parse("harep", false);
    let socket = o.luxi.clone().unwrap_or_default();
    let data = DataOpts {
        luxi: Some(socket.clone()),
        ..Default::default()
    };
    let (c, _) = data.load().context("failed to load data, aborting")?;
    let states = (0..c.instances.len())
        .map(|i| initial_state(&c, i))
        .collect::<Result<Vec<_>, String>>()
        .map_err(anyhow::Error::msg)
        .context("when parsing auto-repair tags")?;
    let mut r = Repairer {
        o: &o,
        c: &c,
        client: connect(&socket)?,
    };
    // first, the repairs whose jobs have finished
    let mut checked = Vec::with_capacity(states.len());
    for st in states {
        checked.push(r.process_pending(st)?);
    }
    // then, new repairs of healthy instances
    let mut done = Vec::with_capacity(checked.len());
    for st in checked {
        let broken = detect_broken(&c, &c.instances[st.inst]);
        match (broken, &st.status) {
            (Some((rtype, ops)), Status::Healthy(_)) => done.push(r.repair(st, rtype, ops)?),
            _ => done.push(st),
        }
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for st in &done {
        *counts.entry(st.status.name()).or_default() += 1;
    }
    println!("---------------------");
    println!("Instance status count");
    println!("---------------------");
    for (k, v) in counts {
        println!("{k}: {v}");
    }
    Ok(())
}
