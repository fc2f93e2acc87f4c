//! Cluster-wide operations on the virtual cluster: `gnt-cluster
//! renew-crypto` and `rename`, `gnt-node restricted-command`,
//! `gnt-storage diagnose` / `info`, and the post-init hooks of
//! `gnt-cluster init`.
//!
//! Needs the workspace binaries built first (`cargo build --workspace
//! --bins`).

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tests::VCluster;

/// Runs Ganeti 3.0's Python `cmd` (Debian's package, unpacked by
/// `scripts/python-ganeti.sh`) against the cluster's master; `None` when
/// `GANETI_SKIP_PYTHON_ORACLE=1` asks not to.
fn python(vc: &VCluster, cmd: &str, args: &[&str]) -> Option<std::process::Output> {
    if std::env::var("GANETI_SKIP_PYTHON_ORACLE").as_deref() == Ok("1") {
        return None;
    }
    let out = std::process::Command::new(tests::repo_root().join("scripts/python-ganeti.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/python-ganeti.sh failed (set GANETI_SKIP_PYTHON_ORACLE=1 to skip): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Some(
        std::process::Command::new("timeout")
            .arg("120")
            .arg("/usr/bin/python3")
            .arg(py.join(cmd))
            .args(args)
            .env("PYTHONPATH", &py)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONHASHSEED", "0")
            .env("GANETI_ROOTDIR", vc.root(1))
            .env("GANETI_HOSTNAME", "node1")
            .output()
            .unwrap(),
    )
}

/// Ganeti's Python `cmd args` prints exactly what ours printed (`ours`).
fn python_agrees(vc: &VCluster, cmd: &str, args: &[&str], ours: &str) {
    if let Some(out) = python(vc, cmd, args) {
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            ours,
            "Python {cmd} {args:?} (stderr: {})",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Whether node `name` at `addr` answers `version` to a client with `tls`
/// (a plain HTTP/1.1 exchange over a blocking TLS stream).
fn answers_with(tls: Arc<rustls::ClientConfig>, name: &str, addr: SocketAddr) -> bool {
    let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(tls, server).unwrap();
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut stream = rustls::Stream::new(&mut conn, &mut sock);
    let req = format!(
        "POST /version HTTP/1.1\r\nHost: {name}\r\nContent-Length: 2\r\n\
         Content-Type: application/json\r\nConnection: close\r\n\r\n{{}}"
    );
    if stream.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200")
}

#[test]
fn renew_crypto_gives_every_node_a_new_ca_and_the_cluster_keeps_working() {
    let vc = VCluster::up("0.140", 3);
    let paths = vc.paths();
    let old_ca = read(&paths.cluster_ca_cert());
    let old_master_pem = read(&paths.node_cert());
    let old_tls = rpc::tls::client_config_from_pem(&old_ca, &old_master_pem).unwrap();
    let node_addr = |k: usize| -> SocketAddr {
        format!("{}.{k}:{}", vc.net, objects::paths::NODED_PORT)
            .parse()
            .unwrap()
    };
    assert!(answers_with(old_tls.clone(), "node2", node_addr(2)));

    // Options ganeti-rs does not implement are refused by name.
    let err = vc.fails(
        "gnt-cluster",
        &["renew-crypto", "-f", "--new-rapi-certificate"],
    );
    assert!(
        err.contains("--new-rapi-certificate is not supported by ganeti-rs yet"),
        "{err}"
    );

    let out = vc.ok(
        "gnt-cluster",
        &["renew-crypto", "-f", "--new-cluster-certificate"],
    );
    assert!(
        out.contains("All requested certificates and keys have been replaced"),
        "{out}"
    );

    let new_ca = read(&paths.cluster_ca_cert());
    assert_ne!(new_ca, old_ca);
    for k in 1..=3 {
        let node = objects::paths::Paths::new(vc.root(k));
        assert_eq!(read(&node.cluster_ca_cert()), new_ca, "node{k}'s CA");
        assert!(!node.data_dir().join("server.pem.staged").exists());
    }
    assert!(paths.cluster_ca_key().is_file());

    // A job touching every node works, now and after the master restarts
    // (and reads its certificates from the files again).
    vc.ok(
        "gnt-debug",
        &[
            "delay",
            "--no-master",
            "-n",
            "node1",
            "-n",
            "node2",
            "-n",
            "node3",
            "0.1",
        ],
    );
    vc.restart_masterd();
    vc.ok(
        "gnt-debug",
        &[
            "delay",
            "--no-master",
            "-n",
            "node1",
            "-n",
            "node2",
            "-n",
            "node3",
            "0.1",
        ],
    );
    let live = vc.list("gnt-node", "name,mfree", &[]);
    assert!(
        live.iter().all(|r| r[1] != "?" && !r[1].is_empty()),
        "{live:?}"
    );

    // The nodes now refuse the old certificates and take the new ones.
    let new_tls = rpc::tls::client_config(&paths).unwrap();
    for k in 2..=3 {
        let name = format!("node{k}");
        assert!(
            !answers_with(old_tls.clone(), &name, node_addr(k)),
            "{name}"
        );
        assert!(answers_with(new_tls.clone(), &name, node_addr(k)), "{name}");
    }
}

#[test]
fn rename_changes_the_name_and_master_ip_everywhere() {
    let vc = VCluster::up("0.141", 2);
    // Names resolve through the master's etc/hosts on the virtual cluster.
    let hosts = vc.root(1).join("etc/hosts");
    let mut text = read(&hosts);
    text.push_str(&format!(
        "{net}.100 renamed.example.com\n{net}.2 taken.example.com\n",
        net = vc.net
    ));
    std::fs::write(&hosts, text).unwrap();

    // An address something already answers on is refused.
    let err = vc.fails("gnt-cluster", &["rename", "-f", "taken.example.com"]);
    assert!(
        err.contains(&format!(
            "The given cluster IP address ({}.2) is reachable on the network",
            vc.net
        )),
        "{err}"
    );
    let err = vc.fails("gnt-cluster", &["rename", "-f", "no-such-name.invalid"]);
    assert!(err.contains("Cannot resolve the cluster name"), "{err}");

    let out = vc.ok("gnt-cluster", &["rename", "-f", "renamed.example.com"]);
    assert!(
        out.contains("Cluster renamed from 'vcluster' to 'renamed.example.com'"),
        "{out}"
    );
    let info = vc.ok("gnt-cluster", &["info"]);
    assert!(info.contains("Cluster name: renamed.example.com"), "{info}");
    // The master IP went down and came up again with the new address.
    let record = read(&vc.paths().master_ip_state());
    assert!(record.starts_with(&format!("{}.100/", vc.net)), "{record}");
    for k in 1..=2 {
        let node = objects::paths::Paths::new(vc.root(k));
        assert_eq!(
            read(&node.ssconf("cluster_name")).trim_end(),
            "renamed.example.com"
        );
        assert_eq!(
            read(&node.ssconf("master_ip")).trim_end(),
            format!("{}.100", vc.net)
        );
    }
    // Renaming to the same name and address changes nothing.
    let err = vc.fails("gnt-cluster", &["rename", "-f", "renamed.example.com"]);
    assert!(
        err.contains("Neither the name nor the IP address of the cluster has changed"),
        "{err}"
    );
}

/// Writes an executable shell script with mode `mode`.
fn script(path: &Path, body: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn restricted_commands_run_only_what_the_node_allows() {
    let vc = VCluster::up("0.142", 3);
    for k in 2..=3 {
        let dir = objects::paths::Paths::new(vc.root(k)).restricted_commands_dir();
        script(
            &dir.join("hello"),
            &format!("echo hello from node{k}"),
            0o755,
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = vc.ok(
        "gnt-node",
        &["restricted-command", "-M", "hello", "node2", "node3"],
    );
    assert_eq!(
        out,
        "------------------------------------------------\nnode2: hello from node2\n\
         ------------------------------------------------\nnode3: hello from node3\n"
    );
    python_agrees(
        &vc,
        "gnt-node",
        &["restricted-command", "-M", "hello", "node2", "node3"],
        &out,
    );
    let out = vc.ok("gnt-node", &["restricted-command", "hello", "node3"]);
    assert_eq!(
        out,
        "------------------------------------------------\nNode: node3\nhello from node3\n\n"
    );
    python_agrees(
        &vc,
        "gnt-node",
        &["restricted-command", "hello", "node3"],
        &out,
    );

    // A name with a path in it, a command the node does not have, and a
    // node without a restricted-commands directory (the master): each
    // refused with Ganeti's message, which hides the reason, after the
    // node's delay (so they all run at once).
    let runs: [(&str, &[&str]); 3] = [
        ("../hello", &["node2"]),
        ("nosuch", &["node2"]),
        ("hello", &["node1", "node2"]),
    ];
    let outs = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(cmd, nodes)| {
                let vc = &vc;
                s.spawn(move || {
                    let mut args = vec!["restricted-command", *cmd];
                    args.extend_from_slice(nodes);
                    vc.gnt("gnt-node", &args)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (out, (cmd, nodes)) in outs.iter().zip(runs) {
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let node = nodes[0];
        assert!(
            stdout.contains(&format!(
                "Command '{cmd}' on node '{node}' failed: Executing command '{cmd}' failed"
            )),
            "{stdout}"
        );
    }
    let stdout = String::from_utf8_lossy(&outs[2].stdout);
    assert!(stdout.contains("Node: node2\nhello from node2"), "{stdout}");
}

/// An ExtStorage provider `name` on node `k`, without the files in `skip`.
fn provider(vc: &VCluster, k: usize, name: &str, skip: &[&str]) {
    let dir = objects::paths::Paths::new(vc.root(k)).extstorage_search_path()[0].join(name);
    for s in [
        "create", "remove", "grow", "attach", "detach", "setinfo", "verify",
    ] {
        if !skip.contains(&s) {
            script(&dir.join(s), "exit 0", 0o755);
        }
    }
    std::fs::write(dir.join("parameters.list"), "pool The pool to use\n").unwrap();
}

#[test]
fn storage_diagnose_lists_providers_and_flags_an_invalid_one() {
    let vc = VCluster::up("0.143", 2);
    for k in 1..=2 {
        provider(&vc, k, "good", &[]);
    }
    provider(&vc, 1, "broken", &[]);
    provider(&vc, 2, "broken", &["grow"]);
    let out = vc.ok("gnt-storage", &["diagnose"]);
    let root2 = vc.root(2);
    let expected = format!(
        "Provider: broken\n---\n\
         \x20 Node: node1, status: valid (path: {r1}/srv/ganeti/extstorage/broken) [parameters: pool]\n\
         \x20 Node: node2, status: invalid - File 'grow' under path '{r2}/srv/ganeti/extstorage/broken' \
         is missing (ENOENT) (path: {r2}/srv/ganeti/extstorage/broken) [no parameters]\n\
         \x20 --\n\
         \x20 For nodegroup: default --> invalid\n\n\
         Provider: good\n---\n\
         \x20 Node: node1, status: valid (path: {r1}/srv/ganeti/extstorage/good) [parameters: pool]\n\
         \x20 Node: node2, status: valid (path: {r2}/srv/ganeti/extstorage/good) [parameters: pool]\n\
         \x20 --\n\
         \x20 For nodegroup: default --> valid\n\n",
        r1 = vc.root(1).display(),
        r2 = root2.display(),
    );
    assert_eq!(out, expected);
    python_agrees(&vc, "gnt-storage", &["diagnose"], &out);
    let out = vc.ok("gnt-storage", &["info", "good", "broken", "missing"]);
    assert_eq!(
        out,
        "broken:\n  - Invalid for all nodegroups\n\n\
         good:\n  - Valid for nodegroups:\n      default\n  - Supported parameters:\n      \
         pool: The pool to use\n\nmissing: Not Found\n\n"
    );
    python_agrees(
        &vc,
        "gnt-storage",
        &["info", "good", "broken", "missing"],
        &out,
    );
}

#[test]
fn post_init_runs_the_cluster_init_post_hooks_on_the_master() {
    let vc = VCluster::up("0.144", 1);
    let record = vc.dir.path().join("hook-env");
    let hook = vc
        .root(1)
        .join("etc/ganeti/hooks/cluster-init-post.d/10-record");
    script(&hook, &format!("env > {}\nexit 1", record.display()), 0o755);
    let mut c = vc.luxi();
    let id = c
        .submit_job(vec![json!({"OP_ID": "OP_CLUSTER_POST_INIT"})])
        .unwrap();
    assert_eq!(vc.wait_job(id), "success");
    let env = read(&record);
    for line in [
        "GANETI_HOOKS_PATH=cluster-init",
        "GANETI_HOOKS_PHASE=post",
        "GANETI_OP_CODE=OP_CLUSTER_POST_INIT",
        "GANETI_OBJECT_TYPE=CLUSTER",
        "GANETI_CLUSTER=vcluster",
        "GANETI_MASTER=node1",
        "GANETI_POST_OP_TARGET=vcluster",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing in:\n{env}");
    }
    // The failing hook shows in the job's log and does not fail the job;
    // `gnt-cluster init` ran one such job too.
    let info = vc.ok("gnt-job", &["info", &id.to_string()]);
    assert!(
        info.contains("script cluster-init-post.d/10-record failed"),
        "{info}"
    );
    let jobs = vc.ok("gnt-job", &["list", "--no-headers", "-o", "summary,status"]);
    assert!(
        jobs.lines()
            .filter(|l| l.contains("CLUSTER_POST_INIT"))
            .count()
            >= 2,
        "{jobs}"
    );
}
