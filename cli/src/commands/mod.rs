//! One module per `gnt-*` binary, plus what they share: the program entry
//! point and the tag commands.

pub mod backup;
pub mod bootstrap;
pub mod cluster;
mod cluster_info;
pub mod debug;
pub mod filter;
pub mod group;
pub mod instance;
mod instance_info;
pub mod job;
pub mod network;
pub mod node;
pub mod os;
pub mod rapi_token;
pub mod storage;
pub mod watcher;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::ctx::{CommonOpts, Ctx, JobOpts};
use crate::error::{exit, CliError};
use crate::jobs::submit_or_send;
use crate::opcodes::OpCode;
use crate::output;

/// Ganeti's version this implementation is compatible with.
pub const GANETI_VERSION: &str = "3.0.2";

/// The command line of a `gnt-*` binary: common options and a subcommand.
#[derive(Parser, Debug)]
#[command(disable_version_flag = true)]
pub struct Top<S: Subcommand> {
    #[command(flatten)]
    pub common: CommonOpts,
    #[command(subcommand)]
    pub cmd: S,
}

/// Parses the command line, runs the subcommand and returns the exit code,
/// printing errors as Ganeti does.
pub fn run<S: Subcommand>(
    binary: &'static str,
    about: &'static str,
    dispatch: impl FnOnce(&mut Ctx, S) -> Result<i32, CliError>,
) -> i32 {
    let mut args: Vec<String> = std::env::args().collect();
    insert_env_args(binary, &mut args);
    if args.get(1).map(String::as_str) == Some("--version") {
        output::out(&format!(
            "{binary} (ganeti-rs {}) {GANETI_VERSION}",
            env!("CARGO_PKG_VERSION")
        ));
        return exit::SUCCESS;
    }
    let cmd = <Top<S> as clap::CommandFactory>::command()
        .name(binary)
        .bin_name(binary)
        .about(about);
    let top = match cmd
        .try_get_matches_from(&args)
        .and_then(|m| <Top<S> as clap::FromArgMatches>::from_arg_matches(&m))
    {
        Ok(t) => t,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::SUCCESS
                }
                _ => exit::FAILURE,
            };
            let _ = e.print();
            return code;
        }
    };
    let command = args.get(1).cloned().unwrap_or_default();
    let mut ctx = Ctx::new(binary, &command, top.common);
    match dispatch(&mut ctx, top.cmd) {
        Ok(code) => code,
        Err(e) => {
            let (code, text) = e.render();
            output::err(&text);
            code
        }
    }
}

/// Commands whose default options can come from the environment
/// (`GNT_INSTANCE_LIST="-o name,status"`), as Ganeti's `env_override`.
const ENV_OVERRIDE: &[(&str, &str)] = &[
    ("gnt-instance", "list"),
    ("gnt-node", "list"),
    ("gnt-group", "list"),
];

/// Inserts the options of `GNT_<BINARY>_<COMMAND>` right after the command.
fn insert_env_args(binary: &str, args: &mut Vec<String>) {
    let Some(cmd) = args.get(1).cloned() else {
        return;
    };
    if !ENV_OVERRIDE.contains(&(binary, cmd.as_str())) {
        return;
    }
    let name = format!("{binary}_{cmd}").replace('-', "_").to_uppercase();
    if let Ok(extra) = std::env::var(&name) {
        let words = shell_split(&extra);
        args.splice(2..2, words);
    }
}

/// Splits a string into words as a POSIX shell does for quoting
/// (single quotes, double quotes, backslashes); no expansions.
pub fn shell_split(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                cur.push(n);
                            }
                        }
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Options of `add-tags` / `remove-tags`.
#[derive(clap::Args, Debug, Clone)]
pub struct TagOpts {
    /// File with tag names, one per line (`-` for stdin)
    #[arg(long = "from", value_name = "FILE")]
    pub tags_source: Option<String>,
    /// Submit the job and print its id instead of waiting for it
    #[arg(long = "submit")]
    pub submit_only: bool,
    /// Additionally print the job id as first line on stdout
    #[arg(long)]
    pub print_jobid: bool,
    /// Priority of the job
    #[arg(long, value_parser = ["low", "normal", "high"])]
    pub priority: Option<String>,
}

impl TagOpts {
    fn job_opts(&self) -> JobOpts {
        JobOpts {
            submit_only: self.submit_only,
            print_jobid: self.print_jobid,
            dry_run: false,
            priority: self.priority.clone(),
            no_dry_run_opt: true,
        }
    }
}

fn read_tags_source(src: &Option<String>, tags: &mut Vec<String>) -> Result<(), CliError> {
    let Some(src) = src else { return Ok(()) };
    let text = if src == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| CliError::Io(e.to_string()))?
    } else {
        std::fs::read_to_string(src)
            .map_err(|e| CliError::Io(crate::output::python_io_error(&e, src)))?
    };
    tags.extend(text.lines().map(|l| l.trim().to_string()));
    Ok(())
}

/// `list-tags`: `QueryTags(kind, name)`, sorted, one per line.
pub fn list_tags(ctx: &mut Ctx, kind: &str, name: &str) -> Result<i32, CliError> {
    let res = ctx.call("QueryTags", json!([kind, name]))?;
    let Some(tags) = res.as_array() else {
        return Err(CliError::bad_reply("QueryTags", res.to_string()));
    };
    let mut tags: Vec<String> = tags.iter().map(crate::pyfmt::py_str).collect();
    tags.sort();
    for t in tags {
        output::out(&t);
    }
    Ok(exit::SUCCESS)
}

/// `add-tags` / `remove-tags`: `OP_TAGS_SET` / `OP_TAGS_DEL`.
pub fn change_tags(
    ctx: &mut Ctx,
    add: bool,
    kind: &str,
    name: &str,
    mut tags: Vec<String>,
    opts: &TagOpts,
) -> Result<i32, CliError> {
    read_tags_source(&opts.tags_source, &mut tags)?;
    if tags.is_empty() {
        return Err(CliError::invalid(if add {
            "No tags to be added"
        } else {
            "No tags to be removed"
        }));
    }
    let op = OpCode::new(if add { "OP_TAGS_SET" } else { "OP_TAGS_DEL" })
        .set("kind", kind)
        .set("name", name)
        .set("tags", json!(tags));
    submit_or_send(ctx, op, &opts.job_opts())?;
    Ok(exit::SUCCESS)
}

/// Expects a JSON list reply.
pub fn expect_list<'a>(method: &str, v: &'a Value) -> Result<&'a Vec<Value>, CliError> {
    v.as_array()
        .ok_or_else(|| CliError::bad_reply(method, v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_consistent() {
        use clap::CommandFactory;
        Top::<cluster::Cmd>::command().debug_assert();
        Top::<group::Cmd>::command().debug_assert();
        Top::<instance::Cmd>::command().debug_assert();
        Top::<job::Cmd>::command().debug_assert();
        Top::<network::Cmd>::command().debug_assert();
        Top::<node::Cmd>::command().debug_assert();
        Top::<os::Cmd>::command().debug_assert();
    }

    #[test]
    fn shell_split_handles_quotes() {
        assert_eq!(
            shell_split(r#"-o name,status  --separator ':' "a b" c\ d"#),
            vec!["-o", "name,status", "--separator", ":", "a b", "c d"]
        );
        assert!(shell_split("   ").is_empty());
    }
}
