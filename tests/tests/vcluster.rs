//! The virtual cluster comes up with one node daemon per node and the master
//! on node1, and `vcluster.sh down` leaves no process or file behind.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use tests::{bin_dir, repo_root};

fn script(base: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(repo_root().join("scripts/vcluster.sh"))
        .args(args)
        .env("GANETI_VCLUSTER", base)
        .env("GANETI_BIN", bin_dir())
        .env("GANETI_VCLUSTER_NET", "127.0.41")
        .output()
        .unwrap()
}

fn pid(path: &std::path::Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[test]
fn up_starts_every_daemon_and_down_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("vc");
    let out = script(&base, &["up", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pids = vec![pid(&base.join("node1/var/run/ganeti/ganeti-masterd.pid"))];
    for k in 1..=3 {
        pids.push(pid(
            &base.join(format!("node{k}/var/run/ganeti/ganeti-noded.pid"))
        ));
    }
    assert!(pids.iter().all(|p| alive(*p)), "a daemon is not running");
    let env = String::from_utf8(script(&base, &["env"]).stdout).unwrap();
    assert!(
        env.contains(&format!("GANETI_ROOTDIR={}", base.join("node1").display())),
        "{env}"
    );

    let out = script(&base, &["down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in pids {
        // A daemon that exited may linger as a zombie of init; it is gone
        // when kill(0) fails or its state is Z.
        let state = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let zombie = state.split_whitespace().nth(2) == Some("Z");
        assert!(!alive(p) || zombie, "daemon {p} survived vcluster down");
    }
    assert!(!base.exists(), "{} is left behind", base.display());
}
