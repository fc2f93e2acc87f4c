//! Running a helper program (OS script, hook) with a clean environment,
//! its output in a file, and a deadline.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Failed; the reason in words ("exited with code 3").
    Failed(String),
}

/// Runs `program args` in `cwd` with exactly `env`, standard output and
/// error going to `output`; after `timeout` the program and everything it
/// started (its process group) are killed.
pub fn run(
    program: &Path,
    args: &[&str],
    env: &BTreeMap<String, String>,
    cwd: &Path,
    output: File,
    timeout: Duration,
) -> std::io::Result<Outcome> {
    let err = output.try_clone()?;
    run_split(program, args, env, cwd, output, err, timeout)
}

/// [`run`] with standard output and standard error apart.
pub fn run_split(
    program: &Path,
    args: &[&str],
    env: &BTreeMap<String, String>,
    cwd: &Path,
    output: File,
    err: File,
    timeout: Duration,
) -> std::io::Result<Outcome> {
    run_with_input(program, args, env, cwd, None, output, err, timeout)
}

/// [`run_split`] with standard input read from `input` (none when `None`).
#[allow(clippy::too_many_arguments)]
pub fn run_with_input(
    program: &Path,
    args: &[&str],
    env: &BTreeMap<String, String>,
    cwd: &Path,
    input: Option<File>,
    output: File,
    err: File,
    timeout: Duration,
) -> std::io::Result<Outcome> {
    let stdin = input.map_or_else(Stdio::null, Stdio::from);
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .stdin(stdin)
        .stdout(output)
        .stderr(err)
        .process_group(0)
        .spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait()? {
            Some(status) if status.success() => return Ok(Outcome::Success),
            Some(status) => {
                let reason = match (status.code(), status.signal()) {
                    (Some(code), _) => format!("exited with code {code}"),
                    (None, Some(sig)) => format!("killed by signal {sig}"),
                    _ => "failed".to_string(),
                };
                return Ok(Outcome::Failed(reason));
            }
            None if Instant::now() >= deadline => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.kill();
                let _ = child.wait();
                return Ok(Outcome::Failed(format!("timed out after {timeout:?}")));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
