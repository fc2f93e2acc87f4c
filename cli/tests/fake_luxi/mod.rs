//! A fake master for the CLI tests: a unix socket at the LUXI path of a
//! temporary root that answers each method from canned replies (one after
//! the other when several are given) and records the requests.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use luxi::framing::{read_message, write_message};
use luxi::protocol::parse_request;
use luxi::GanetiError;
use serde_json::{json, Value};

/// Per method, the responses (`{"success", "result"}`) still to give; the
/// last one is repeated.
type Replies = HashMap<String, Vec<Value>>;

pub struct FakeMaster {
    /// The directory holding the node's root (`<base>/node1`), as in
    /// Ganeti's virtual cluster where a root is named after its node.
    pub base: tempfile::TempDir,
    replies: Arc<Mutex<Replies>>,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

impl FakeMaster {
    pub fn start() -> FakeMaster {
        let base = tempfile::tempdir().unwrap();
        let sock_dir = base.path().join("node1/var/run/ganeti/socket");
        std::fs::create_dir_all(&sock_dir).unwrap();
        let listener = UnixListener::bind(sock_dir.join("ganeti-query")).unwrap();
        let replies: Arc<Mutex<Replies>> = Arc::default();
        let requests: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let (r2, q2) = (replies.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (replies, requests) = (r2.clone(), q2.clone());
                std::thread::spawn(move || {
                    let mut w = stream.try_clone().unwrap();
                    let mut r = BufReader::new(stream);
                    while let Ok(msg) = read_message(&mut r) {
                        let req = parse_request(&msg).unwrap();
                        requests
                            .lock()
                            .unwrap()
                            .push((req.method.clone(), req.args.clone()));
                        let reply = {
                            let mut map = replies.lock().unwrap();
                            match map.get_mut(&req.method) {
                                Some(list) if list.len() > 1 => list.remove(0),
                                Some(list) if list.len() == 1 => list[0].clone(),
                                _ => json!({"success": false, "result": GanetiError::luxi(
                                    format!("no canned reply for {}", req.method)
                                ).encode()}),
                            }
                        };
                        let _ = write_message(&mut w, &reply.to_string());
                        let _ = w.flush();
                    }
                });
            }
        });
        FakeMaster {
            base,
            replies,
            requests,
        }
    }

    /// Adds a successful reply for `method`.
    pub fn reply(&self, method: &str, v: Value) -> &Self {
        self.replies
            .lock()
            .unwrap()
            .entry(method.to_string())
            .or_default()
            .push(json!({"success": true, "result": v}));
        self
    }

    /// Adds a raw response (`{"success": ..., "result": ...}`) for `method`.
    pub fn raw(&self, method: &str, response: Value) -> &Self {
        self.replies
            .lock()
            .unwrap()
            .entry(method.to_string())
            .or_default()
            .push(response);
        self
    }

    /// Adds a failure reply for `method`.
    pub fn fail(&self, method: &str, e: GanetiError) -> &Self {
        self.replies
            .lock()
            .unwrap()
            .entry(method.to_string())
            .or_default()
            .push(json!({"success": false, "result": e.encode()}));
        self
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().unwrap().clone()
    }

    /// The node's root directory (`GANETI_ROOTDIR`).
    pub fn root(&self) -> PathBuf {
        self.base.path().join("node1")
    }

    /// Runs a CLI binary against this master.
    pub fn run(&self, bin: &str, args: &[&str]) -> Output {
        run_with_root(&self.root(), bin, args)
    }
}

pub fn bin_path(bin: &str) -> PathBuf {
    match bin {
        "gnt-instance" => PathBuf::from(env!("CARGO_BIN_EXE_gnt-instance")),
        "gnt-node" => PathBuf::from(env!("CARGO_BIN_EXE_gnt-node")),
        "gnt-job" => PathBuf::from(env!("CARGO_BIN_EXE_gnt-job")),
        "gnt-cluster" => PathBuf::from(env!("CARGO_BIN_EXE_gnt-cluster")),
        "gnt-group" => PathBuf::from(env!("CARGO_BIN_EXE_gnt-group")),
        "gnt-os" => PathBuf::from(env!("CARGO_BIN_EXE_gnt-os")),
        other => panic!("unknown binary {other}"),
    }
}

pub fn run_with_root(root: &Path, bin: &str, args: &[&str]) -> Output {
    Command::new(bin_path(bin))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("GANETI_ROOTDIR", root)
        .env("GANETI_HOSTNAME", "node1")
        // The expected outputs are in UTC.
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A query field definition.
pub fn fdef(name: &str, title: &str, kind: &str) -> Value {
    json!({"name": name, "title": title, "kind": kind, "doc": ""})
}
