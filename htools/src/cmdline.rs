//! Ganeti's command-line conventions, shared by the h* binaries: what
//! `--version` and `--help-completion` print, getopt's attached values of
//! short options with an optional argument (`-pname,pcnt`, `-C/tmp/cmds`),
//! and the exit codes and messages of bad command lines (an unknown option
//! exits 2, a stray argument or a bad option value exits 1).

use std::ffi::OsString;

use clap::{error::ContextKind, error::ErrorKind, CommandFactory, FromArgMatches};

/// The Ganeti release whose htools these binaries stand in for.
pub const GANETI_VERSION: &str = "3.0.2";

/// What parsing a command line ended with, short of options to run with.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Print this on standard output and exit 0 (`--version`, `--help`,
    /// `--help-completion`).
    Info(String),
    /// Print this on standard error and exit with the code.
    Error(String, u8),
}

/// Parses `args` (the program name first) into `P`. `positional` says
/// whether the program takes arguments besides its options; one that does
/// not refuses them as Ganeti's do.
pub fn try_parse<P: CommandFactory + FromArgMatches>(
    name: &'static str,
    positional: bool,
    args: impl IntoIterator<Item = OsString>,
) -> Result<P, Exit> {
    // getopt takes a long option's unique prefix (`--prio low`)
    let mut cmd = P::command().name(name).bin_name(name).infer_long_args(true);
    // settles each option's number of values, which the two helpers read
    cmd.build();
    let args = attach_optional_values(&cmd, args.into_iter().collect());
    let before_dashes = || args.iter().skip(1).take_while(|a| *a != "--");
    if before_dashes().any(|a| a == "--help-completion") {
        return Err(Exit::Info(completion(&cmd)));
    }
    if before_dashes().any(|a| a == "--version" || a == "-V") {
        return Err(Exit::Info(version(name)));
    }
    let m = match cmd.clone().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return Err(clap_exit(&e, positional)),
    };
    P::from_arg_matches(&m).map_err(|e| clap_exit(&e, positional))
}

/// [`try_parse`] on the process's arguments; prints and exits when there is
/// nothing to run.
pub fn parse<P: CommandFactory + FromArgMatches>(name: &'static str, positional: bool) -> P {
    match try_parse(name, positional, std::env::args_os()) {
        Ok(p) => p,
        Err(Exit::Info(s)) => {
            print!("{s}");
            std::process::exit(0)
        }
        Err(Exit::Error(s, code)) => {
            eprint!("{s}");
            std::process::exit(code.into())
        }
    }
}

/// A job priority as the h* programs take it (`--priority`): Ganeti's
/// names for its opcode priorities.
pub fn parse_priority(s: &str) -> Result<i64, String> {
    match s {
        "low" => Ok(10),
        "normal" => Ok(0),
        "high" => Ok(-10),
        _ => Err(format!("Unknown priority '{s}'")),
    }
}

/// Sets the priority and the reason trail of an opcode a program submits.
pub fn annotate_opcode(
    op: &mut serde_json::Value,
    program: &str,
    priority: Option<i64>,
    reason: Option<&str>,
) {
    if let Some(p) = priority {
        op["priority"] = p.into();
    }
    if let Some(r) = reason {
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        op["reason"] = serde_json::json!([[format!("gnt:client:{program}"), r, ns]]);
    }
}

/// `--version`: the program, ours and Ganeti's release, the platform.
pub fn version(name: &str) -> String {
    format!(
        "{name} (ganeti-rs {}) version {GANETI_VERSION}\nrunning on {} {}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// `--help-completion`: one line per option, its spellings and the kind of
/// value it takes, as Ganeti's shell completion reads them.
pub fn completion(cmd: &clap::Command) -> String {
    let mut out = String::new();
    for a in cmd.get_arguments().filter(|a| !a.is_positional()) {
        let mut names = Vec::new();
        if let Some(s) = a.get_short() {
            names.push(format!("-{s}"));
        }
        if let Some(l) = a.get_long() {
            names.push(format!("--{l}"));
        }
        if names.is_empty() {
            continue;
        }
        out.push_str(&format!("{} {}\n", names.join(","), value_kind(a)));
    }
    out.push_str("--help-completion none\n");
    out
}

fn value_kind(a: &clap::Arg) -> &'static str {
    if !a.get_num_args().is_some_and(|n| n.takes_values()) {
        return "none";
    }
    let vn = a
        .get_value_names()
        .and_then(|v| v.first())
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    match vn.as_str() {
        "FILE" | "SOCKET" | "DIR" => "file",
        "N" | "COUNT" => "integer",
        "RATIO" | "SCORE" | "DELTA" | "EPSILON" => "float",
        "NODE" => "onenode",
        "GROUP" => "onegroup",
        "CLUSTER" | "ADDRESS" => "host",
        _ => "string",
    }
}

/// getopt reads `-pFIELDS` as `-p` with the value `FIELDS` when `-p`'s
/// value is optional; clap wants `--print-nodes=FIELDS` for those.
fn attach_optional_values(cmd: &clap::Command, args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for (i, a) in args.into_iter().enumerate() {
        let s = a.to_str().unwrap_or("");
        if i == 0 || rest || s.starts_with("--") || !s.starts_with('-') || s.len() < 3 {
            rest |= s == "--";
            out.push(a);
            continue;
        }
        let mut chars = s[1..].chars();
        let short = chars.next();
        let value = chars.as_str();
        let optional = cmd.get_arguments().find(|x| {
            x.get_short() == short
                && x.get_long().is_some()
                && x.get_num_args()
                    .is_some_and(|n| n.min_values() == 0 && n.takes_values())
        });
        match optional.and_then(|x| x.get_long()) {
            Some(long) => out.push(format!("--{long}={value}").into()),
            None => out.push(a),
        }
    }
    out
}

fn clap_exit(e: &clap::Error, positional: bool) -> Exit {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Info(e.render().to_string()),
        ErrorKind::UnknownArgument if !positional && stray_argument(e) => Exit::Error(
            "Error: This program doesn't take any arguments.\n".into(),
            1,
        ),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => Exit::Error(
            format!(
                "Error while parsing command line arguments:\n{}",
                e.render()
            ),
            1,
        ),
        _ => Exit::Error(e.render().to_string(), 2),
    }
}

fn stray_argument(e: &clap::Error) -> bool {
    match e.get(ContextKind::InvalidArg) {
        Some(clap::error::ContextValue::String(s)) => !s.starts_with('-'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Opts {
        #[arg(short = 'p', long = "print-nodes", num_args = 0..=1, default_missing_value = "", require_equals = true)]
        print_nodes: Option<String>,
        #[arg(short = 'l', long = "max-length", value_name = "N")]
        max_length: Option<i64>,
        #[arg(short = 'v', action = clap::ArgAction::Count)]
        verbose: u8,
    }

    fn run(args: &[&str]) -> Result<Opts, Exit> {
        let mut v = vec![OsString::from("hbal")];
        v.extend(args.iter().map(OsString::from));
        try_parse("hbal", false, v)
    }

    #[test]
    fn attached_value_of_an_optional_short_is_its_value() {
        let o = run(&["-pname,pcnt", "-vv"]).unwrap();
        assert_eq!(o.print_nodes.as_deref(), Some("name,pcnt"));
        assert_eq!(o.verbose, 2);
        let o = run(&["-p", "-l", "3"]).unwrap();
        assert_eq!(o.print_nodes.as_deref(), Some(""));
        assert_eq!(o.max_length, Some(3));
    }

    #[test]
    fn stray_argument_exits_1_with_ganetis_message() {
        let e = run(&["unexpected"]).unwrap_err();
        assert_eq!(
            e,
            Exit::Error(
                "Error: This program doesn't take any arguments.\n".into(),
                1
            )
        );
    }

    #[test]
    fn unknown_option_exits_2_and_bad_value_exits_1() {
        assert!(matches!(run(&["--no-such-option"]), Err(Exit::Error(_, 2))));
        match run(&["--max-l", "abc"]) {
            Err(Exit::Error(m, 1)) => assert!(m.contains("abc"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn version_and_completion_are_information() {
        match run(&["--version"]) {
            Err(Exit::Info(s)) => assert!(s.starts_with("hbal (ganeti-rs "), "{s}"),
            other => panic!("{other:?}"),
        }
        match run(&["--help-completion"]) {
            Err(Exit::Info(s)) => {
                assert!(s.contains("-p,--print-nodes string\n"), "{s}");
                assert!(s.contains("-l,--max-length integer\n"), "{s}");
            }
            other => panic!("{other:?}"),
        }
    }
}
