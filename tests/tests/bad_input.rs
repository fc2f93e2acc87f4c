//! Bad input gets Ganeti's error class and a clear message, loses nothing,
//! and the master keeps serving.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use luxi::client::ClientError;
use serde_json::{json, Value};
use tests::VCluster;

fn raw(vc: &VCluster) -> UnixStream {
    UnixStream::connect(vc.paths().luxi_socket()).unwrap()
}

fn reply(s: &mut UnixStream) -> Value {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let n = s.read(&mut b).unwrap();
        assert_eq!(n, 1, "connection closed before a reply");
        if b[0] == 3 {
            break;
        }
        buf.push(b[0]);
    }
    serde_json::from_slice(&buf).unwrap()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn server_error(e: ClientError) -> luxi::GanetiError {
    match e {
        ClientError::Server(g) => g,
        other => panic!("expected an error from the server, got {other}"),
    }
}

#[test]
fn malformed_and_oversized_frames_get_errors_and_masterd_keeps_serving() {
    let vc = VCluster::up("0.32", 1);
    let mut s = raw(&vc);
    s.write_all(b"{not json\x03").unwrap();
    let r = reply(&mut s);
    assert_eq!(r["success"], json!(false));
    assert_eq!(r["result"][0], json!("LuxiError"));
    // The same connection still answers a good request.
    s.write_all(b"{\"method\": \"QueryConfigValues\", \"args\": [[\"cluster_name\"]]}\x03")
        .unwrap();
    assert_eq!(reply(&mut s)["result"], json!(["vcluster"]));

    s.write_all(b"[1, 2]\x03").unwrap();
    assert!(reply(&mut s)["result"][1][0]
        .as_str()
        .unwrap()
        .contains("not a dict"));

    let mut s = raw(&vc);
    s.write_all(&[0xff, 0xfe, 0x03]).unwrap();
    let r = reply(&mut s);
    assert!(r["result"][1][0].as_str().unwrap().contains("UTF-8"), "{r}");

    // 65 MiB without a terminator.
    let mut s = raw(&vc);
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..65 {
        if s.write_all(&chunk).is_err() {
            break;
        }
    }
    let r = reply(&mut s);
    assert!(
        r["result"][1][0].as_str().unwrap().contains("larger than"),
        "{r}"
    );

    let mut c = vc.luxi();
    let e = server_error(c.call("NoSuchMethod", json!([])).unwrap_err());
    assert_eq!(e.class, "LuxiError");
    assert!(e.message().contains("NoSuchMethod"), "{e}");
    let e = server_error(c.call("QueryJobs", json!("not a list")).unwrap_err());
    assert!(e.message().contains("QueryJobs"), "{e}");
    assert_eq!(
        c.call("QueryConfigValues", json!([["cluster_name"]]))
            .unwrap(),
        json!(["vcluster"])
    );
}

#[test]
fn bad_opcodes_are_refused_with_ganeti_error_classes() {
    let vc = VCluster::up("0.33", 1);
    let mut c = vc.luxi();
    // The jobs before (gnt-cluster init's post-init job).
    let before = c.query_jobs(None, &["id"]).unwrap();
    let e = server_error(
        c.submit_job(vec![json!({"OP_ID": "OP_NO_SUCH"})])
            .unwrap_err(),
    );
    assert_eq!(e.class, "OpCodeUnknown");
    let e = server_error(
        c.submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": "soon"})])
            .unwrap_err(),
    );
    assert_eq!(e.class, "OpPrereqError");
    assert_eq!(e.args[1], json!("wrong_input"));
    assert!(
        e.message().contains("duration") || e.message().contains("OP_TEST_DELAY"),
        "{e}"
    );
    let e = server_error(
        c.submit_job(vec![
            json!({"OP_ID": "OP_TEST_DELAY", "duration": 0, "bogus": 1}),
        ])
        .unwrap_err(),
    );
    assert!(e.message().contains("'bogus'"), "{e}");
    // A refused job is not in the queue.
    let jobs = c.query_jobs(None, &["id"]).unwrap();
    assert_eq!(jobs, before);
}

#[test]
fn duplicate_names_unknown_nodes_and_a_dead_node() {
    let vc = VCluster::up("0.34", 3);
    let add = |name: &str, node: &str| {
        vec![
            "add".to_string(),
            "-t".into(),
            "file".into(),
            "--disk".into(),
            "0:size=16M".into(),
            "-o".into(),
            "tiny".into(),
            "-n".into(),
            node.into(),
            "--no-name-check".into(),
            "--no-ip-check".into(),
            name.into(),
        ]
    };
    let a = add("inst1", "node2");
    vc.ok("gnt-instance", &args(&a));
    let err = vc.fails("gnt-instance", &args(&a));
    assert!(err.contains("already in the cluster"), "{err}");
    let a = add("inst2", "node9");
    let err = vc.fails("gnt-instance", &args(&a));
    assert!(err.contains("Node 'node9' not known"), "{err}");
    let err = vc.fails(
        "gnt-instance",
        &[
            "add",
            "-t",
            "diskless",
            "-o",
            "tiny",
            "-n",
            "node2",
            "--no-name-check",
            "--no-ip-check",
            "bad name",
        ],
    );
    assert!(err.contains("bad name"), "{err}");

    // node3's daemon dies.
    let pid: i32 = std::fs::read_to_string(vc.root(3).join("var/run/ganeti/ganeti-noded.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
        std::thread::yield_now();
    }
    let rows = vc.list("gnt-node", "name,mfree", &[]);
    assert_eq!(rows[2], vec!["node3", "?"], "{rows:?}");
    assert_ne!(rows[1][1], "?");
    let a = add("inst3", "node3");
    let err = vc.fails("gnt-instance", &args(&a));
    assert!(err.contains("node3"), "{err}");
    // Nothing was left behind: no half-created instance in the config.
    let names = vc.list("gnt-instance", "name", &[]);
    assert_eq!(names, vec![vec!["inst1"]]);
}
