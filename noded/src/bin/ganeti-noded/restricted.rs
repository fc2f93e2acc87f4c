//! Restricted commands (`gnt-node restricted-command`): the node runs only
//! executables of its own `etc/ganeti/restricted-commands` directory, with
//! Ganeti's checks. The directory and the command must belong to the user
//! the daemon runs as (root in production, as Ganeti requires) and be
//! writable by it alone; the name must be a plain file name of letters,
//! digits, `_` and `-`. Commands run one at a time (a lock file), with an
//! empty environment. Any refusal is answered only after a delay and
//! without its reason (which goes to the log), so that a caller cannot
//! probe the node's files quickly.

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use objects::paths::Paths;
use rpc::api::{ErrorKind, RestrictedCommand, RpcError};
use tracing::{error, info};

use crate::handlers::{CallResult, State};
use crate::process::{self, Outcome};

/// The most permissive mode of the directory and of a command: writable
/// by the owner only.
const MAX_MODE: u32 = 0o755;
/// Delay before a refusal is answered.
const INVALID_DELAY: Duration = Duration::from_secs(10);
/// How long to wait for the lock (shorter than the delay, as in Ganeti).
const LOCK_TIMEOUT: Duration = Duration::from_millis(8000);
/// Longest a command may run.
const RUN_TIMEOUT: Duration = Duration::from_secs(3000);
/// The most output kept.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// The directory of restricted commands.
pub fn commands_dir(paths: &Paths) -> PathBuf {
    paths.restricted_commands_dir()
}

/// The lock file that lets one command start at a time.
fn lock_file(paths: &Paths) -> PathBuf {
    paths.lock_dir().join("ganeti-restricted-commands.lock")
}

/// `restricted_command`.
pub fn restricted_command(s: &State, r: RestrictedCommand) -> CallResult<String> {
    run(&s.paths, &r.command, INVALID_DELAY)
}

/// Checks and runs `cmd`; a refusal waits `delay` first.
fn run(paths: &Paths, cmd: &str, delay: Duration) -> CallResult<String> {
    info!(command = cmd, "preparing to run a restricted command");
    let outcome = match prepare_and_start(paths, cmd) {
        Ok(o) => o,
        Err(reason) => {
            error!(command = cmd, "restricted command refused: {reason}");
            std::thread::sleep(delay);
            return Err(RpcError::new(
                ErrorKind::Failed,
                format!("Executing command '{cmd}' failed"),
            ));
        }
    };
    let (outcome, output) = outcome;
    match outcome {
        Outcome::Success => Ok(output),
        Outcome::Failed(reason) => Err(RpcError::new(
            ErrorKind::Failed,
            format!("Restricted command '{cmd}' failed: {reason}; output: {output}"),
        )),
    }
}

/// Takes the lock, checks the directory, the name and the file, starts
/// the command (the lock is released once it runs) and waits for it.
fn prepare_and_start(paths: &Paths, cmd: &str) -> Result<(Outcome, String), String> {
    let lock = take_lock(&lock_file(paths))?;
    let dir = commands_dir(paths);
    check_dir(&dir)?;
    check_name(cmd)?;
    let executable = check_command(&dir, cmd)?;
    let out = tempfile::tempfile().map_err(|e| format!("cannot create a temporary file: {e}"))?;
    let out2 = out
        .try_clone()
        .map_err(|e| format!("cannot create a temporary file: {e}"))?;
    drop(lock);
    let outcome = process::run(
        &executable,
        &[],
        &BTreeMap::new(),
        Path::new("/"),
        out2,
        RUN_TIMEOUT,
    )
    .map_err(|e| format!("cannot run '{}': {e}", executable.display()))?;
    Ok((outcome, read_all(out)))
}

fn read_all(mut f: std::fs::File) -> String {
    let mut buf = Vec::new();
    if f.rewind().is_ok() {
        let _ = (&mut f).take(MAX_OUTPUT).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn take_lock(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    }
    let deadline = Instant::now() + LOCK_TIMEOUT;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open the lock file '{}': {e}", path.display()))?;
    loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(l),
            Err((f, _)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err((_, e)) => {
                return Err(format!(
                    "cannot take the lock '{}' within {LOCK_TIMEOUT:?}: {e}",
                    path.display()
                ))
            }
        }
    }
}

/// The owner the directory and the commands must have: the daemon's own
/// user and group (root:root in production, as Ganeti requires).
fn expected_owner() -> (u32, u32) {
    (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    )
}

/// The checks common to the directory and the commands.
fn check_common(path: &Path) -> Result<std::fs::Metadata, String> {
    let st =
        std::fs::metadata(path).map_err(|e| format!("Can't stat(2) '{}': {e}", path.display()))?;
    if st.permissions().mode() & 0o7777 & !MAX_MODE != 0 {
        return Err(format!(
            "Permissions on '{}' are too permissive",
            path.display()
        ));
    }
    let (uid, gid) = expected_owner();
    if (st.uid(), st.gid()) != (uid, gid) {
        return Err(format!("'{}' is not owned by {uid}:{gid}", path.display()));
    }
    Ok(st)
}

fn check_dir(dir: &Path) -> Result<(), String> {
    if !check_common(dir)?.is_dir() {
        return Err(format!("Path '{}' is not a directory", dir.display()));
    }
    Ok(())
}

/// Ganeti's rules for a command name.
pub fn check_name(cmd: &str) -> Result<(), String> {
    if cmd.trim().is_empty() {
        return Err("Missing command name".into());
    }
    if cmd.contains('/') || cmd == "." || cmd == ".." {
        return Err("Invalid command name".into());
    }
    if !cmd
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("Command name contains forbidden characters".into());
    }
    Ok(())
}

fn check_command(dir: &Path, cmd: &str) -> Result<PathBuf, String> {
    let path = dir.join(cmd);
    let st = check_common(&path)?;
    let executable = nix::unistd::access(&path, nix::unistd::AccessFlags::X_OK).is_ok();
    if !st.is_file() || !executable {
        return Err(format!(
            "access(2) thinks '{}' can't be executed",
            path.display()
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn setup(dir: &Path) -> Paths {
        let paths = Paths::new(dir);
        let cmds = commands_dir(&paths);
        std::fs::create_dir_all(&cmds).unwrap();
        std::fs::set_permissions(&cmds, std::fs::Permissions::from_mode(0o755)).unwrap();
        paths
    }

    fn script(paths: &Paths, name: &str, body: &str, mode: u32) {
        let p = commands_dir(paths).join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn an_allowed_command_runs_with_an_empty_environment() {
        let dir = tempfile::tempdir().unwrap();
        let paths = setup(dir.path());
        script(
            &paths,
            "hello",
            "echo hello; echo \"home=$HOME\" >&2",
            0o755,
        );
        let out = run(&paths, "hello", Duration::ZERO).unwrap();
        assert_eq!(out, "hello\nhome=\n");
    }

    #[test]
    fn a_failing_command_reports_its_status_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let paths = setup(dir.path());
        script(&paths, "fail", "echo broken; exit 3", 0o700);
        let e = run(&paths, "fail", Duration::ZERO).unwrap_err();
        assert_eq!(
            e.message,
            "Restricted command 'fail' failed: exited with code 3; output: broken\n"
        );
    }

    #[test]
    fn refusals_say_only_that_the_command_failed() {
        let dir = tempfile::tempdir().unwrap();
        let paths = setup(dir.path());
        script(&paths, "writable", "true", 0o777);
        script(&paths, "noexec", "true", 0o644);
        for cmd in ["../bin/sh", "a b", "", "missing", "writable", "noexec"] {
            let e = run(&paths, cmd, Duration::ZERO).unwrap_err();
            assert_eq!(e.message, format!("Executing command '{cmd}' failed"));
        }
    }

    #[test]
    fn the_reasons_are_ganetis() {
        assert_eq!(check_name(" ").unwrap_err(), "Missing command name");
        assert_eq!(check_name("a/b").unwrap_err(), "Invalid command name");
        assert_eq!(
            check_name("a.b").unwrap_err(),
            "Command name contains forbidden characters"
        );
        check_name("ok_name-1").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let paths = setup(dir.path());
        script(&paths, "loose", "true", 0o775);
        let e = check_command(&commands_dir(&paths), "loose").unwrap_err();
        assert!(e.ends_with("are too permissive"), "{e}");
        let e = check_command(&commands_dir(&paths), "none").unwrap_err();
        assert!(e.starts_with("Can't stat(2) "), "{e}");
    }

    #[test]
    fn a_too_permissive_directory_refuses_every_command() {
        let dir = tempfile::tempdir().unwrap();
        let paths = setup(dir.path());
        script(&paths, "hello", "echo hello", 0o755);
        std::fs::set_permissions(commands_dir(&paths), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        assert!(run(&paths, "hello", Duration::ZERO).is_err());
    }
}
