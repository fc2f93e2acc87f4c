//! The README's RAPI examples work as written: every command of its
//! "The REST API" section runs against a virtual cluster (its address in
//! place of 127.0.0.1) and answers without an error; the jobs they submit
//! succeed (each is waited for before the next command).

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use tests::{repo_root, VCluster};

/// The commands of the README's RAPI section (its indented lines).
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("The REST API"))
        .expect("README has a section \"The REST API\"");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with("curl ") || l.starts_with("echo "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readmes_curl_examples_work_as_written() {
    let cmds = readme_commands();
    assert!(cmds.iter().filter(|c| c.starts_with("curl")).count() >= 5);
    let vc = VCluster::up("0.51", 3);
    for cmd in cmds {
        let cmd = cmd.replace("127.0.0.1", &vc.master_ip());
        let out = Command::new("bash")
            .arg("-c")
            .arg(&cmd)
            .env("GANETI_ROOTDIR", vc.root(1))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{cmd}: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!stdout.starts_with("{\"code\""), "{cmd}: {stdout}");
        if cmd.starts_with("curl") {
            let answer = serde_json::from_str::<serde_json::Value>(&stdout)
                .unwrap_or_else(|e| panic!("{cmd}: not JSON ({e}): {stdout}"));
            // A write answers with a job id: wait for the job, as a user
            // typing the next command would have.
            if let Some(job) = answer.as_u64() {
                assert_eq!(vc.wait_job(job), "success", "{cmd}: job {job}");
            }
        }
    }
}
