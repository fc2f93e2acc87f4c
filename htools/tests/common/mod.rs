//! Helpers shared by the integration tests.
// Each test binary uses a different part of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Ganeti's example data files.
pub fn ganeti_data_dir() -> Option<PathBuf> {
    let p = PathBuf::from("/work/ganeti-src/test/data/htools");
    p.is_dir().then_some(p)
}

/// Path of Debian's htools binary `name`, installing the package if
/// needed; `None` (with the reason printed) if that is impossible.
pub fn debian_tool(name: &str) -> Option<PathBuf> {
    let candidates = [
        format!("/usr/bin/{name}"),
        format!("/usr/lib/ganeti/iallocators/{name}"),
    ];
    let find = || candidates.iter().map(PathBuf::from).find(|p| p.exists());
    if let Some(p) = find() {
        return Some(p);
    }
    let ok = Command::new("sh")
        .arg("-c")
        .arg("(apt-get install -y -q ganeti-htools || (apt-get update -q && apt-get install -y -q ganeti-htools)) >/dev/null 2>&1")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP: Debian's ganeti-htools is not installed and apt-get could not install it");
        return None;
    }
    find()
}

/// Extracts "<label> <float>" from a tool's output.
pub fn find_score(out: &str, label: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The final score hbal printed (the initial one if nothing improved).
pub fn final_score(out: &str) -> Option<f64> {
    for l in out.lines() {
        if let Some(r) = l.strip_prefix("Cluster score improved from ") {
            return r.split(" to ").nth(1).and_then(|v| v.trim().parse().ok());
        }
    }
    find_score(out, "Initial score:")
}

pub fn our_bin(name: &str) -> PathBuf {
    match name {
        "hbal" => PathBuf::from(env!("CARGO_BIN_EXE_hbal")),
        "hail" => PathBuf::from(env!("CARGO_BIN_EXE_hail")),
        "hspace" => PathBuf::from(env!("CARGO_BIN_EXE_hspace")),
        "hcheck" => PathBuf::from(env!("CARGO_BIN_EXE_hcheck")),
        "hinfo" => PathBuf::from(env!("CARGO_BIN_EXE_hinfo")),
        "hsqueeze" => PathBuf::from(env!("CARGO_BIN_EXE_hsqueeze")),
        "harep" => PathBuf::from(env!("CARGO_BIN_EXE_harep")),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_hroller")),
    }
}

pub fn run(bin: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(bin).args(args).output().expect("run tool");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
