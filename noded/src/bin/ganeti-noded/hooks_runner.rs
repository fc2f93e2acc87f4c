//! Hook scripts: `etc/ganeti/hooks/<hpath>-<pre|post>.d/`, run as
//! run-parts does (name order; names of letters, digits, `_` and `-`
//! only; executables only).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use rpc::api::{HookResult, HookStatus, HooksPhase};

use crate::process::{self, Outcome};

/// Default `PATH` of hooks.
const HOOKS_PATH: &str = "/sbin:/bin:/usr/sbin:/usr/bin";
/// Most output kept per script.
const MAX_OUTPUT: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HooksError {
    #[error("invalid hooks path '{0}': letters, digits, '_' and '-' only")]
    InvalidPath(String),
    #[error("cannot list the hooks directory '{dir}'")]
    List {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

fn runnable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Runs the hooks of `hpath` for `phase` under `hooks_dir`.
pub fn run_hooks(
    hooks_dir: &Path,
    hpath: &str,
    phase: HooksPhase,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Vec<HookResult>, HooksError> {
    if !runnable_name(hpath) {
        return Err(HooksError::InvalidPath(hpath.to_string()));
    }
    let suffix = match phase {
        HooksPhase::Pre => "pre",
        HooksPhase::Post => "post",
    };
    let subdir = format!("{hpath}-{suffix}.d");
    let dir = hooks_dir.join(&subdir);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|source| HooksError::List {
            dir: dir.display().to_string(),
            source,
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();

    let mut env = env.clone();
    env.entry("PATH".into())
        .or_insert_with(|| HOOKS_PATH.into());
    env.insert("LC_ALL".into(), "C".into());

    let mut results = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let executable = std::fs::metadata(&path)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        let script = format!("{subdir}/{name}");
        if !runnable_name(&name) || !executable {
            results.push(HookResult {
                script,
                status: HookStatus::Skip,
                output: String::new(),
            });
            continue;
        }
        let (status, output) = match run_one(&path, &dir, &env, timeout) {
            Ok((Outcome::Success, out)) => (HookStatus::Success, out),
            Ok((Outcome::Failed(reason), out)) => {
                let out = if out.is_empty() {
                    reason
                } else {
                    format!("{out}\n({reason})")
                };
                (HookStatus::Fail, out)
            }
            Err(e) => (
                HookStatus::Fail,
                format!("Hook script execution error: {e}"),
            ),
        };
        results.push(HookResult {
            script,
            status,
            output,
        });
    }
    Ok(results)
}

fn run_one(
    path: &Path,
    dir: &Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> std::io::Result<(Outcome, String)> {
    let mut out = tempfile::tempfile()?;
    let outcome = process::run(path, &[], env, dir, out.try_clone()?, timeout)?;
    out.seek(SeekFrom::Start(0))?;
    let mut buf = Vec::new();
    out.take(MAX_OUTPUT).read_to_end(&mut buf)?;
    Ok((outcome, String::from_utf8_lossy(&buf).trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str, mode: u32) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn hooks_run_in_order_with_their_results() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("instance-start-pre.d");
        std::fs::create_dir_all(&dir).unwrap();
        script(&dir, "10-ok", "echo ok $GANETI_INSTANCE_NAME", 0o755);
        script(&dir, "20-fail", "echo bad >&2; exit 2", 0o755);
        script(&dir, "30-noexec", "exit 0", 0o644);
        script(&dir, "40.dotted", "exit 0", 0o755);
        let env = BTreeMap::from([("GANETI_INSTANCE_NAME".to_string(), "i1".to_string())]);
        let r = run_hooks(
            tmp.path(),
            "instance-start",
            HooksPhase::Pre,
            &env,
            Duration::from_secs(30),
        )
        .unwrap();
        let got: Vec<_> = r.iter().map(|h| (h.script.as_str(), h.status)).collect();
        assert_eq!(
            got,
            vec![
                ("instance-start-pre.d/10-ok", HookStatus::Success),
                ("instance-start-pre.d/20-fail", HookStatus::Fail),
                ("instance-start-pre.d/30-noexec", HookStatus::Skip),
                ("instance-start-pre.d/40.dotted", HookStatus::Skip),
            ]
        );
        assert_eq!(r[0].output, "ok i1");
        assert!(
            r[1].output.contains("bad") && r[1].output.contains("exited with code 2"),
            "{}",
            r[1].output
        );
    }

    #[test]
    fn a_missing_directory_means_no_hooks_and_bad_paths_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let r = run_hooks(
            tmp.path(),
            "node-add",
            HooksPhase::Post,
            &BTreeMap::new(),
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(r.is_empty());
        let err = run_hooks(
            tmp.path(),
            "../etc",
            HooksPhase::Post,
            &BTreeMap::new(),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid hooks path '../etc'"));
    }
}
