//! Out-of-band management: running a node's OOB program (on the master, for
//! any node) and the node's own hard powercycle.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::Duration;

use rpc::api::{ErrorKind, NodePowercycle, RpcError, RunOob};
use tracing::{info, warn};

use crate::handlers::{CallResult, State};
use crate::process::{self, Outcome};

/// The commands of Ganeti's OOB API.
const OOB_COMMANDS: &[&str] = &[
    "power-on",
    "power-off",
    "power-cycle",
    "power-status",
    "health",
];

/// The most output kept from an OOB program.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// File (under the data directory) where the fake hypervisor records the
/// powercycles it was asked for.
pub const FAKE_POWERCYCLE_LOG: &str = "fake-powercycle.log";

fn failed(msg: impl Into<String>) -> RpcError {
    RpcError::new(ErrorKind::Failed, msg)
}

fn read_all(mut f: std::fs::File) -> String {
    let mut buf = Vec::new();
    if f.rewind().is_ok() {
        let _ = (&mut f).take(MAX_OUTPUT).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs `<program> <command> <node>` with the timeout; answers its
/// standard output, or fails naming the command and why, with its output.
pub fn run_oob(_s: &State, r: RunOob) -> CallResult<String> {
    let program = Path::new(&r.program);
    if !program.is_absolute() {
        return Err(RpcError::new(
            ErrorKind::BadRequest,
            format!(
                "out-of-band program '{}' is not an absolute path",
                r.program
            ),
        ));
    }
    if !OOB_COMMANDS.contains(&r.command.as_str()) {
        return Err(RpcError::new(
            ErrorKind::BadRequest,
            format!(
                "unknown out-of-band command '{}' (expected one of {})",
                r.command,
                OOB_COMMANDS.join(", ")
            ),
        ));
    }
    if r.timeout == 0 {
        return Err(RpcError::new(
            ErrorKind::BadRequest,
            "out-of-band timeout must be at least one second",
        ));
    }
    let cmd = format!("{} {} {}", r.program, r.command, r.node);
    let io = |e: std::io::Error| failed(format!("'{cmd}' failed: {e}"));
    let out = tempfile::tempfile().map_err(io)?;
    let err = tempfile::tempfile().map_err(io)?;
    let env = BTreeMap::from([(
        "PATH".to_string(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    )]);
    let outcome = process::run_split(
        program,
        &[&r.command, &r.node],
        &env,
        Path::new("/"),
        out.try_clone().map_err(io)?,
        err.try_clone().map_err(io)?,
        Duration::from_secs(r.timeout),
    )
    .map_err(io)?;
    let stdout = read_all(out);
    match outcome {
        Outcome::Success => Ok(stdout),
        Outcome::Failed(reason) => {
            let stderr = read_all(err);
            let output = format!("{stdout}{stderr}");
            warn!(%cmd, %reason, "out-of-band program failed");
            Err(failed(format!(
                "'{cmd}' failed with reason '{reason}'; output: {}",
                output.trim_end()
            )))
        }
    }
}

/// Ganeti's hard powercycle of the node. ganeti-rs never reboots a real
/// machine from a node daemon: with the fake hypervisor (the virtual
/// cluster's) the request is only recorded in the data directory; every
/// other hypervisor refuses.
pub fn node_powercycle(s: &State, r: NodePowercycle) -> CallResult<String> {
    if r.hypervisor != "fake" {
        return Err(RpcError::new(
            ErrorKind::Refused,
            format!(
                "ganeti-rs does not hard-powercycle nodes (hypervisor '{}'); \
                 use the node's out-of-band program (gnt-node power cycle) instead",
                r.hypervisor
            ),
        ));
    }
    let log = s.paths.data_dir().join(FAKE_POWERCYCLE_LOG);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| writeln!(f, "{now} powercycle {}", s.node_name))
        .map_err(|e| {
            failed(format!(
                "cannot record the fake powercycle in {}: {e}",
                log.display()
            ))
        })?;
    info!(log = %log.display(), "fake hypervisor: powercycle recorded, nothing rebooted");
    Ok("Fake powercycle recorded (fake hypervisor: nothing was rebooted)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn state(dir: &Path) -> State {
        let paths = objects::paths::Paths::new(dir);
        State::new(paths, "node1".into(), None)
    }

    fn script(dir: &Path, body: &str) -> String {
        let p = dir.join("oob");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    fn req(program: String, command: &str, timeout: u64) -> RunOob {
        RunOob {
            program,
            command: command.into(),
            node: "node2".into(),
            timeout,
        }
    }

    #[test]
    fn the_program_gets_command_and_node_and_its_stdout_is_answered() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(
            dir.path(),
            "echo \"{\\\"args\\\": \\\"$1 $2\\\"}\"; echo noise >&2",
        );
        let out = run_oob(&state(dir.path()), req(p, "power-status", 5)).unwrap();
        assert_eq!(out.trim(), r#"{"args": "power-status node2"}"#);
    }

    #[test]
    fn a_failing_program_is_an_error_naming_the_command_and_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "echo broken bmc >&2; exit 3");
        let e = run_oob(&state(dir.path()), req(p.clone(), "power-on", 5)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Failed);
        assert!(
            e.message.contains(&format!("'{p} power-on node2'")),
            "{}",
            e.message
        );
        assert!(e.message.contains("exited with code 3"), "{}", e.message);
        assert!(e.message.contains("broken bmc"), "{}", e.message);
    }

    #[test]
    fn a_program_past_its_timeout_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "exec sleep 30");
        let e = run_oob(&state(dir.path()), req(p, "health", 1)).unwrap_err();
        assert!(e.message.contains("timed out"), "{}", e.message);
    }

    #[test]
    fn relative_programs_and_unknown_commands_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        let e = run_oob(&s, req("oob".into(), "health", 5)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let e = run_oob(&s, req("/bin/true".into(), "reboot", 5)).unwrap_err();
        assert!(e.message.contains("unknown out-of-band command 'reboot'"));
    }

    #[test]
    fn powercycle_is_refused_except_by_the_fake_hypervisor_which_only_records_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        let kvm = NodePowercycle {
            hypervisor: "kvm".into(),
            hvparams: Default::default(),
        };
        let e = node_powercycle(&s, kvm).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Refused);
        std::fs::create_dir_all(s.paths.data_dir()).unwrap();
        let fake = NodePowercycle {
            hypervisor: "fake".into(),
            hvparams: Default::default(),
        };
        node_powercycle(&s, fake).unwrap();
        let log = std::fs::read_to_string(s.paths.data_dir().join(FAKE_POWERCYCLE_LOG)).unwrap();
        assert!(log.contains("powercycle node1"), "{log}");
    }
}
