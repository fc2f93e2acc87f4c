//! `gnt-debug`: debugging commands (Ganeti's test opcodes).

use clap::Subcommand;
use serde_json::{json, Map, Value};

use crate::ctx::{Ctx, JobOpts};
use crate::error::{exit, CliError};
use crate::jobs::{submit_opcode, submit_or_send, JobExecutor};
use crate::opcodes::OpCode;
use crate::output;
use crate::params::split_key_val;
use crate::units::parse_unit;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Executes a TestDelay OpCode
    Delay {
        /// Do not sleep in the master code
        #[arg(long = "no-master")]
        no_master: bool,
        /// Select nodes to sleep on (repeatable)
        #[arg(short = 'n')]
        on_nodes: Vec<String>,
        /// Number of times to repeat the sleep
        #[arg(short = 'r', long, default_value_t = 0)]
        repeat: u64,
        /// Allows the opcode to be interrupted by using a domain socket
        #[arg(short = 'i', long)]
        interruptible: bool,
        /// Don't take locks while performing the delay
        #[arg(short = 'l', long = "no-locks")]
        no_locks: bool,
        #[command(flatten)]
        job: JobOpts,
        /// Seconds to sleep
        duration: f64,
    },
    /// Submits jobs built from JSON files containing a list of serialized
    /// opcodes
    SubmitJob {
        /// Repeat the opcode sequence this number of times
        #[arg(long = "op-repeat", default_value_t = 1)]
        op_repeat: usize,
        /// Repeat the job this number of times
        #[arg(long = "job-repeat", default_value_t = 1)]
        job_repeat: usize,
        /// Show timing stats
        #[arg(long = "timing-stats")]
        timing_stats: bool,
        /// Submit each job separately
        #[arg(long)]
        each: bool,
        /// Verbose output
        #[arg(short = 'v', long)]
        verbose: bool,
        #[arg(long, value_parser = ["low", "normal", "high"])]
        priority: Option<String>,
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Executes a TestAllocator OpCode
    #[command(alias = "allocator")]
    Iallocator {
        /// Show allocator input (in) or allocator results (out)
        #[arg(long = "dir", default_value = "in", value_parser = ["in", "out"])]
        direction: String,
        /// The iallocator to run (with --dir out)
        #[arg(short = 'I', long = "iallocator")]
        iallocator: Option<String>,
        /// Request mode
        #[arg(short = 'm', long, default_value = "relocate",
              value_parser = ["allocate", "multi-allocate", "relocate", "change-group", "node-evacuate"])]
        mode: String,
        /// Memory size for the instance
        #[arg(long, default_value = "128")]
        memory: String,
        /// Comma separated list of disk sizes
        #[arg(long, default_value = "4096,4096")]
        disks: String,
        /// Disk template
        #[arg(short = 't', long = "disk-template")]
        disk_template: Option<String>,
        /// Comma separated list of nics, each nic definition is of form
        /// mac/ip/bridge, missing values are None
        #[arg(long, default_value = "00:11:22:33:44:55")]
        nics: String,
        /// The OS
        #[arg(short = 'o', long = "os-type")]
        os: Option<String>,
        /// Number of VCPUs for the instance
        #[arg(short = 'p', long, default_value_t = 1)]
        vcpus: u64,
        /// Comma separated list of tags
        #[arg(long)]
        tags: Option<String>,
        /// Node evacuation mode
        #[arg(long = "evac-mode", default_value = "all",
              value_parser = ["primary-only", "secondary-only", "all"])]
        evac_mode: String,
        /// Target groups for relocation (repeatable)
        #[arg(long = "target-groups")]
        target_groups: Vec<String>,
        /// How many spindles to use
        #[arg(long = "spindle-use", default_value_t = 1)]
        spindle_use: u64,
        /// How many instances to allocate
        #[arg(long, default_value_t = 2)]
        count: u64,
        #[command(flatten)]
        job: JobOpts,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Test secret OS parameter transmission
    TestOsparams {
        /// Secret OS parameters: key=val,...
        #[arg(long = "os-parameters-secret", allow_hyphen_values = true)]
        osparams_secret: Option<String>,
        #[command(flatten)]
        job: JobOpts,
    },
}

/// Entry point of `gnt-debug`.
pub fn main() -> i32 {
    crate::commands::run::<Cmd>("gnt-debug", "Ganeti debugging commands", dispatch)
}

fn dispatch(ctx: &mut Ctx, cmd: Cmd) -> Result<i32, CliError> {
    match cmd {
        Cmd::Delay {
            no_master,
            on_nodes,
            repeat,
            interruptible,
            no_locks,
            job,
            duration,
        } => {
            let op = OpCode::new("OP_TEST_DELAY")
                .set("duration", duration)
                .set("on_master", !no_master)
                .set("on_nodes", json!(on_nodes))
                .set("repeat", repeat)
                .set("interruptible", interruptible)
                .set("no_locks", no_locks);
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::SubmitJob {
            op_repeat,
            job_repeat,
            timing_stats,
            each,
            verbose,
            priority,
            files,
        } => submit_job(
            ctx,
            &files,
            op_repeat,
            job_repeat,
            timing_stats,
            each,
            verbose,
            &JobOpts {
                priority,
                ..JobOpts::default()
            },
        ),
        Cmd::Iallocator {
            direction,
            iallocator,
            mode,
            memory,
            disks,
            disk_template,
            nics,
            os,
            vcpus,
            tags,
            evac_mode,
            target_groups,
            spindle_use,
            count,
            job,
            names,
        } => {
            let mut disk_list = Vec::new();
            for d in disks.split(',') {
                match parse_unit(d) {
                    Ok(size) => disk_list.push(json!({"size": size, "mode": "rw"})),
                    Err(e) => {
                        output::err(&format!("Invalid disks parameter '{disks}': {e}"));
                        return Ok(exit::FAILURE);
                    }
                }
            }
            let memory = parse_unit(&memory)
                .map_err(|e| CliError::invalid(format!("Invalid memory size '{memory}': {e}")))?;
            let nic_list: Vec<Value> = nics
                .split(',')
                .map(|n| {
                    let mut parts: Vec<Value> = n
                        .split('/')
                        .map(|p| if p.is_empty() { Value::Null } else { json!(p) })
                        .collect();
                    parts.resize(3, Value::Null);
                    json!({"mac": parts[0], "ip": parts[1], "bridge": parts[2]})
                })
                .collect();
            let tags: Vec<String> = tags
                .map(|t| t.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            let op = OpCode::new("OP_TEST_ALLOCATOR")
                .set("mode", mode)
                .set("name", names[0].clone())
                .set("instances", json!(names))
                .set("memory", memory)
                .set("disks", json!(disk_list))
                .set("disk_template", json!(disk_template))
                .set("nics", json!(nic_list))
                .set("os", json!(os))
                .set("vcpus", vcpus)
                .set("tags", json!(tags))
                .set("direction", direction)
                .set("iallocator", json!(iallocator))
                .set("evac_mode", evac_mode)
                .set("target_groups", json!(target_groups))
                .set("spindle_use", spindle_use)
                .set("count", count);
            let result = submit_opcode(ctx, op, Some(&job))?;
            output::out(&match result {
                Value::String(s) => s,
                other => crate::pyfmt::py_str(&other),
            });
            Ok(exit::SUCCESS)
        }
        Cmd::TestOsparams {
            osparams_secret,
            job,
        } => {
            let secret = match osparams_secret {
                Some(s) => Some(split_key_val("os-parameters-secret", &s)?),
                None => None,
            };
            let op = OpCode::new("OP_TEST_OS_PARAMS").set(
                "osparams_secret",
                secret.map_or(Value::Null, |m: Map<String, Value>| Value::Object(m)),
            );
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
    }
}

/// `submit-job`: each file holds a list of opcodes, one job; sent
/// `job_repeat` times, each with its opcodes `op_repeat` times.
#[allow(clippy::too_many_arguments)]
fn submit_job(
    ctx: &mut Ctx,
    files: &[String],
    op_repeat: usize,
    job_repeat: usize,
    timing_stats: bool,
    each: bool,
    verbose: bool,
    jo: &JobOpts,
) -> Result<i32, CliError> {
    if timing_stats {
        output::out("Loading...");
    }
    let mut jobs: Vec<(String, Vec<Value>)> = Vec::new();
    let mut op_count = 0;
    for job_idx in 0..job_repeat {
        for fname in files {
            let text = std::fs::read_to_string(fname)
                .map_err(|e| CliError::Io(format!("Cannot read {fname}: {e}")))?;
            let data: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::invalid(format!("Invalid JSON in {fname}: {e}")))?;
            let Value::Array(ops) = data else {
                return Err(CliError::invalid(format!(
                    "{fname} must hold a list of opcodes"
                )));
            };
            let mut job = Vec::new();
            for _ in 0..op_repeat {
                for op in &ops {
                    let Value::Object(m) = op else {
                        return Err(CliError::invalid(format!(
                            "{fname}: an opcode must be a dict, got {op}"
                        )));
                    };
                    job.push(ctx.finish_opcode(OpCode(m.clone()), Some(jo)));
                }
            }
            op_count += job.len();
            jobs.push((format!("file {fname}/{job_idx}"), job));
        }
    }
    let started = std::time::Instant::now();
    if timing_stats {
        output::out("Submitting...");
    }
    let mut submitted = Vec::new();
    if each {
        for (name, ops) in &jobs {
            let res = ctx.call("SubmitJob", json!([ops]));
            match res {
                Ok(id) => submitted.push((name.clone(), true, id)),
                Err(e) => submitted.push((name.clone(), false, json!(e.to_string()))),
            }
        }
    } else {
        let all: Vec<&Vec<Value>> = jobs.iter().map(|(_, ops)| ops).collect();
        let res = ctx.call("SubmitManyJobs", json!([all]))?;
        for ((name, _), row) in jobs.iter().zip(res.as_array().into_iter().flatten()) {
            let ok = row.get(0).and_then(Value::as_bool).unwrap_or(false);
            submitted.push((name.clone(), ok, row.get(1).cloned().unwrap_or(Value::Null)));
        }
    }
    let submit_time = started.elapsed();
    if timing_stats {
        output::out("Executing...");
    }
    let outcomes = JobExecutor::new(verbose).follow(ctx, submitted)?;
    if timing_stats {
        let total = started.elapsed();
        output::out(&format!("C:op     {op_count:4}"));
        output::out(&format!("C:job    {:4}", jobs.len()));
        output::out(&format!("T:submit {:4.4}", submit_time.as_secs_f64()));
        output::out(&format!(
            "T:exec   {:4.4}",
            (total - submit_time).as_secs_f64()
        ));
        output::out(&format!("T:total  {:4.4}", total.as_secs_f64()));
    }
    Ok(if outcomes.iter().all(|o| o.success) {
        exit::SUCCESS
    } else {
        exit::FAILURE
    })
}
