//! RAPI's API tokens, end to end: `gnt-cluster rapi-token` makes a
//! read-only token and one that may submit two opcodes only, stored
//! hashed; `ganeti-rapi` takes them as `Authorization: Bearer`, without a
//! restart, and forgets a revoked one.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;
use tests::VCluster;

/// `curl` with the token; returns (HTTP status, body).
fn curl(vc: &VCluster, token: &str, method: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-k", "-s", "-w", "\n%{http_code}", "-X", method])
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("https://{}:5080{path}", vc.master_ip()))
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').expect("curl printed the status");
    (code.trim().parse().expect("a status"), body.to_string())
}

fn token(vc: &VCluster, args: &[&str]) -> String {
    let mut a = vec!["rapi-token", "add"];
    a.extend_from_slice(args);
    let t = vc.ok("gnt-cluster", &a).trim().to_string();
    assert!(t.starts_with("grt_"), "{t}");
    t
}

#[test]
fn scoped_tokens_read_and_write_what_they_may() {
    let vc = VCluster::up("0.52", 2);
    vc.add_instance("node2", "web1", &["-t", "diskless"]);
    let monitor = token(&vc, &["--read-only", "monitor"]);
    let starter = token(
        &vc,
        &[
            "--opcodes",
            "OP_INSTANCE_STARTUP,OP_INSTANCE_SHUTDOWN",
            "starter",
        ],
    );
    // Hashes only.
    let file = std::fs::read_to_string(vc.paths().rapi_tokens()).unwrap();
    assert!(
        !file.contains(&monitor) && !file.contains(&starter),
        "{file}"
    );
    assert_eq!(
        vc.ok("gnt-cluster", &["rapi-token", "list"]),
        "Name Scope\nmonitor read\nstarter write:OP_INSTANCE_STARTUP,OP_INSTANCE_SHUTDOWN\n"
    );
    let e = vc.fails(
        "gnt-cluster",
        &["rapi-token", "add", "--opcodes", "OP_NOPE", "x"],
    );
    assert!(e.contains("Unknown opcode 'OP_NOPE'"), "{e}");

    // The read-only token reads, including what needs `read`, and
    // cannot write.
    let (code, body) = curl(&vc, &monitor, "GET", "/2/query/instance?fields=name");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["data"],
        serde_json::json!([[[0, "web1"]]])
    );
    assert_eq!(
        curl(&vc, &monitor, "PUT", "/2/instances/web1/shutdown").0,
        403
    );

    // The write token submits its opcodes, and nothing else.
    let (code, body) = curl(&vc, &starter, "PUT", "/2/instances/web1/shutdown");
    assert_eq!(code, 200, "{body}");
    let job: u64 = body.trim().parse().expect("a job id");
    assert_eq!(vc.wait_job(job), "success");
    let (code, body) = curl(&vc, &starter, "DELETE", "/2/instances/web1");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("may not submit OP_INSTANCE_REMOVE"), "{body}");

    // A wrong or revoked token is no credential.
    assert_eq!(
        curl(&vc, "grt_0000", "PUT", "/2/instances/web1/startup").0,
        401
    );
    vc.ok("gnt-cluster", &["rapi-token", "remove", "starter"]);
    assert_eq!(
        curl(&vc, &starter, "PUT", "/2/instances/web1/startup").0,
        401
    );
    assert_eq!(
        curl(&vc, &monitor, "GET", "/2/query/instance?fields=name").0,
        200
    );
}
