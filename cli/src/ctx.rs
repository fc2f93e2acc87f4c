//! The state of one command run: which binary and subcommand, the generic
//! options, and the connection to the master (opened on first use).

use std::time::{SystemTime, UNIX_EPOCH};

use luxi::client::Client;
use objects::paths::Paths;
use serde_json::{json, Value};

use crate::error::CliError;
use crate::opcodes::OpCode;

/// Options every opcode-submitting command shares (Ganeti's `--submit`,
/// `--print-jobid`, `--dry-run`, `--priority`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct JobOpts {
    /// Submit the job and print its id instead of waiting for it
    #[arg(long = "submit")]
    pub submit_only: bool,
    /// Additionally print the job id as first line on stdout
    #[arg(long)]
    pub print_jobid: bool,
    /// Only check whether the operation could be executed
    #[arg(long)]
    pub dry_run: bool,
    /// Priority of the job
    #[arg(long, value_parser = ["low", "normal", "high"])]
    pub priority: Option<String>,
    /// Set for commands without `--dry-run` in Ganeti: their opcodes keep
    /// `dry_run` at null, as Ganeti's CLI leaves it.
    #[arg(skip)]
    pub no_dry_run_opt: bool,
}

impl JobOpts {
    /// Ganeti's opcode priority: low 10, normal 0, high -10.
    pub fn priority_value(&self) -> Option<i64> {
        self.priority.as_deref().map(|p| match p {
            "low" => 10,
            "high" => -10,
            _ => 0,
        })
    }
}

/// Options all commands take (`-d`, `--reason`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CommonOpts {
    /// Increase the debugging level
    #[arg(short = 'd', long = "debug", action = clap::ArgAction::Count, global = true)]
    pub debug: u8,
    /// The reason for executing the command
    #[arg(long, global = true)]
    pub reason: Option<String>,
}

/// One run of a `gnt-*` command.
pub struct Ctx {
    /// The program name, e.g. `gnt-instance`.
    pub binary: String,
    /// The subcommand as typed (Ganeti records aliases as typed).
    pub command: String,
    pub common: CommonOpts,
    client: Option<Client>,
}

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Ctx {
    pub fn new(binary: &str, command: &str, common: CommonOpts) -> Ctx {
        Ctx {
            binary: binary.to_string(),
            command: command.to_string(),
            common,
            client: None,
        }
    }

    /// The connection to the master, opened on first use.
    pub fn client(&mut self) -> Result<&mut Client, CliError> {
        if self.client.is_none() {
            self.client = Some(connect()?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| CliError::Protocol("no connection".into()))
    }

    /// Calls a LUXI method.
    pub fn call(&mut self, method: &str, args: Value) -> Result<Value, CliError> {
        Ok(self.client()?.call(method, args)?)
    }

    /// Calls a LUXI method; its result as JSON text.
    pub fn call_text(&mut self, method: &str, args: Value) -> Result<String, CliError> {
        Ok(self.client()?.call_text(method, args)?)
    }

    /// Ganeti's `SetGenericOpcodeOpts`: debug level, dry run, priority and
    /// the reason trail (`gnt:user` reason, then `gnt:client:<binary>`).
    pub fn finish_opcode(&self, op: OpCode, jo: Option<&JobOpts>) -> Value {
        let mut op = op.set("debug_level", self.common.debug);
        if let Some(jo) = jo {
            if !jo.no_dry_run_opt {
                op = op.set("dry_run", jo.dry_run);
            }
            if let Some(p) = jo.priority_value() {
                op = op.set("priority", p);
            }
        }
        let mut trail = Vec::new();
        if let Some(r) = &self.common.reason {
            trail.push(json!(["gnt:user", r, now_nanos()]));
        }
        trail.push(json!([
            format!("gnt:client:{}", self.binary),
            self.command,
            now_nanos()
        ]));
        op.set("reason", Value::Array(trail)).into_value()
    }
}

/// Connects to the master's LUXI socket. When that fails, tells apart a
/// node outside any cluster and a node that is not the master, as Ganeti's
/// `GetClient` does.
pub fn connect() -> Result<Client, CliError> {
    let paths = Paths::from_env();
    match Client::connect(&paths.luxi_socket()) {
        Ok(c) => Ok(c),
        Err(e) => {
            let Ok(master) = std::fs::read_to_string(paths.ssconf("master_node")) else {
                return Err(CliError::invalid(
                    "Cluster not initialized or this machine is not part of a cluster",
                ));
            };
            let master = master.trim().to_string();
            let myself = my_hostname();
            let short = |s: &str| s.split('.').next().unwrap_or("").to_string();
            if !master.is_empty() && master != myself && short(&master) != short(&myself) {
                return Err(CliError::invalid(format!(
                    "This is not the master node, please connect to node '{master}' and rerun the command"
                )));
            }
            Err(e.into())
        }
    }
}

/// This node's name: `GANETI_HOSTNAME` (virtual cluster) or the kernel's.
pub fn my_hostname() -> String {
    if let Ok(h) = std::env::var(objects::paths::HOSTNAME_ENV) {
        if !h.is_empty() {
            return h;
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
