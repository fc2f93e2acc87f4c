//! Helpers for the end-to-end tests: a virtual cluster of real processes
//! (ganeti-masterd, one ganeti-noded per node) in a temporary directory,
//! and ways to run the gnt-* commands and LUXI calls against it.
//!
//! The binaries must be built first (`cargo build --workspace --bins`, which
//! `scripts/test.sh` does before running the tests).

// This crate is test support: a setup step that fails (a daemon that does
// not start, a file that cannot be written) fails the test that asked for
// it, which is what unwrap and expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod guest;
pub mod rapi_client;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use luxi::client::Client;
use serde_json::Value;

/// The profile directory of this build (`target/debug`), from the
/// running executable's path: `<target>/<profile>/deps/<test>` or
/// `<target>/<profile>/<bin>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let mut dir = exe
        .parent()
        .expect("executable has a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The directory of the built binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let dir = profile_dir();
    for b in [
        "ganeti-masterd",
        "ganeti-noded",
        "gnt-cluster",
        "gnt-instance",
    ] {
        assert!(
            dir.join(b).exists(),
            "{} is missing: build the binaries first (cargo build --workspace --bins)",
            dir.join(b).display()
        );
    }
    dir
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// A running virtual cluster; torn down when dropped.
pub struct VCluster {
    pub dir: tempfile::TempDir,
    pub net: String,
    pub nodes: usize,
    bin: PathBuf,
    /// `GANETI_WATCHER` for the daemons this cluster starts: "off" unless
    /// the test asks for the watcher (`up_with` and `GANETI_WATCHER=on`),
    /// so that tests that stop instances behind the master's back see
    /// them stay stopped.
    watcher: String,
}

impl VCluster {
    /// Brings up `nodes` nodes on `127.<net>.k`; `net` must be unique among
    /// tests that run at the same time (e.g. "0.11").
    pub fn up(net: &str, nodes: usize) -> VCluster {
        VCluster::up_with(net, nodes, &[])
    }

    /// Like [`VCluster::up`], with extra environment for
    /// `scripts/vcluster.sh` (e.g. `GANETI_VCLUSTER_HV`).
    pub fn up_with(net: &str, nodes: usize, env: &[(&str, &str)]) -> VCluster {
        let dir = tempfile::Builder::new()
            .prefix("ganeti-vcluster-")
            .tempdir()
            .expect("temporary directory");
        let bin = bin_dir();
        let watcher = env
            .iter()
            .find(|(k, _)| *k == "GANETI_WATCHER")
            .map_or("off", |(_, v)| *v)
            .to_string();
        let vc = VCluster {
            dir,
            net: format!("127.{net}"),
            nodes,
            bin,
            watcher,
        };
        let out = vc.script_env(&["up", &nodes.to_string()], env);
        assert!(
            out.status.success(),
            "vcluster up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        vc
    }

    fn base(&self) -> PathBuf {
        self.dir.path().join("vc")
    }

    fn script(&self, args: &[&str]) -> Output {
        self.script_env(args, &[])
    }

    fn script_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(repo_root().join("scripts/vcluster.sh"))
            .args(args)
            .env("GANETI_VCLUSTER", self.base())
            .env("GANETI_BIN", &self.bin)
            .env("GANETI_VCLUSTER_NET", &self.net)
            .env("GANETI_WATCHER", &self.watcher)
            .envs(env.iter().copied())
            .output()
            .expect("running scripts/vcluster.sh")
    }

    /// The tree of node `k` (1-based).
    pub fn root(&self, k: usize) -> PathBuf {
        self.base().join(format!("node{k}"))
    }

    /// The master's address (`127.<net>.1`), where RAPI listens.
    pub fn master_ip(&self) -> String {
        format!("{}.1", self.net)
    }

    /// The master's paths.
    pub fn paths(&self) -> objects::paths::Paths {
        objects::paths::Paths::new(self.root(1))
    }

    /// Runs a command of ours (`gnt-instance`, ...) on node1, the first
    /// master.
    pub fn gnt(&self, cmd: &str, args: &[&str]) -> Output {
        self.gnt_on(1, cmd, args)
    }

    /// Runs a command of ours on node `k`, as an operator logged in
    /// there: with that node's tree and name.
    pub fn gnt_on(&self, k: usize, cmd: &str, args: &[&str]) -> Output {
        Command::new(self.bin.join(cmd))
            .args(args)
            .env("GANETI_ROOTDIR", self.root(k))
            .env("GANETI_HOSTNAME", format!("node{k}"))
            .env("GANETI_WATCHER", &self.watcher)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {cmd} on node{k}: {e}"))
    }

    /// Runs a command that must succeed on node `k`; returns its standard
    /// output.
    pub fn ok_on(&self, k: usize, cmd: &str, args: &[&str]) -> String {
        let out = self.gnt_on(k, cmd, args);
        assert!(
            out.status.success(),
            "{cmd} {args:?} on node{k} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Runs a command that must fail on node `k`; returns stdout and
    /// stderr together.
    pub fn fails_on(&self, k: usize, cmd: &str, args: &[&str]) -> String {
        let out = self.gnt_on(k, cmd, args);
        assert!(
            !out.status.success(),
            "{cmd} {args:?} on node{k} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// A LUXI connection to the master daemon of node `k`.
    pub fn luxi_on(&self, k: usize) -> Client {
        let paths = objects::paths::Paths::new(self.root(k));
        Client::connect(&paths.luxi_socket())
            .unwrap_or_else(|e| panic!("connecting to the master on node{k}: {e}"))
    }

    /// Stops the node daemon of node `k` (SIGKILL, as a node that dies)
    /// and waits until it is gone.
    pub fn kill_noded(&self, k: usize) {
        let paths = objects::paths::Paths::new(self.root(k));
        kill_daemon(&paths.noded_pid());
    }

    /// Stops the master daemon of node `k` (SIGKILL, as a master that
    /// dies) and waits until it is gone.
    pub fn kill_masterd(&self, k: usize) {
        let paths = objects::paths::Paths::new(self.root(k));
        kill_daemon(&paths.masterd_pid());
    }

    /// Starts the node daemon of node `k` again and waits until it
    /// accepts connections.
    pub fn start_noded(&self, k: usize) {
        let ip = format!("{}.{k}", self.net);
        let port = objects::paths::NODED_PORT.to_string();
        let status = Command::new(self.bin.join("ganeti-noded"))
            .args(["--bind", &ip, "--port", &port])
            .env("GANETI_ROOTDIR", self.root(k))
            .env("GANETI_HOSTNAME", format!("node{k}"))
            .status()
            .expect("starting ganeti-noded");
        assert!(status.success(), "ganeti-noded of node{k} did not start");
        let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            assert!(
                Instant::now() < deadline,
                "ganeti-noded of node{k} does not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Adds instance `name` on `node` with the shipped `tiny` OS and no
    /// name or IP checks; `opts` are the rest (`-t diskless`, `--disk`,
    /// `-B ...`). It must succeed; returns the command's standard output.
    pub fn add_instance(&self, node: &str, name: &str, opts: &[&str]) -> String {
        let mut args = vec![
            "add",
            "-o",
            "tiny",
            "-n",
            node,
            "--no-name-check",
            "--no-ip-check",
        ];
        args.extend_from_slice(opts);
        args.push(name);
        self.ok("gnt-instance", &args)
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, cmd: &str, args: &[&str]) -> String {
        let out = self.gnt(cmd, args);
        assert!(
            out.status.success(),
            "{cmd} {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Runs a command that must fail; returns stdout and stderr together.
    pub fn fails(&self, cmd: &str, args: &[&str]) -> String {
        let out = self.gnt(cmd, args);
        assert!(
            !out.status.success(),
            "{cmd} {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// A LUXI connection to the master.
    pub fn luxi(&self) -> Client {
        Client::connect(&self.paths().luxi_socket()).expect("connecting to the master")
    }

    /// Waits until job `id` is finished; returns its status.
    pub fn wait_job(&self, id: u64) -> String {
        let mut c = self.luxi();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = c.query_jobs(Some(&[id]), &["status"]).expect("QueryJobs");
            let status = r[0][0].as_str().unwrap_or_default().to_string();
            if ["success", "error", "canceled"].contains(&status.as_str()) {
                return status;
            }
            assert!(Instant::now() < deadline, "job {id} did not finish");
            // Block until the job changes (long poll, not a sleep).
            let _ =
                c.wait_for_job_change(id, &["status"], serde_json::json!([status]), Value::Null, 5);
        }
    }

    /// The pid of the master daemon.
    pub fn masterd_pid(&self) -> i32 {
        std::fs::read_to_string(self.paths().masterd_pid())
            .expect("masterd pid file")
            .trim()
            .parse()
            .expect("pid")
    }

    /// Starts the master daemon again (after it was killed).
    pub fn restart_masterd(&self) {
        let status = Command::new(self.bin.join("ganeti-masterd"))
            .env("GANETI_ROOTDIR", self.root(1))
            .env("GANETI_HOSTNAME", "node1")
            .env("GANETI_WATCHER", &self.watcher)
            .status()
            .expect("starting ganeti-masterd");
        assert!(status.success(), "ganeti-masterd did not start");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = Client::connect(&self.paths().luxi_socket()) {
                if c.call("QueryConfigValues", serde_json::json!([["cluster_name"]]))
                    .is_ok()
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "ganeti-masterd did not come back"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The rows of `gnt-<what> list -o <fields> --no-headers --separator=|`.
    pub fn list(&self, cmd: &str, fields: &str, extra: &[&str]) -> Vec<Vec<String>> {
        let mut args = vec!["list", "--no-headers", "--separator=|", "-o", fields];
        args.extend_from_slice(extra);
        self.ok(cmd, &args)
            .lines()
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect()
    }
}

/// Kills the daemon of `pidfile` and waits until it is gone.
fn kill_daemon(pidfile: &Path) {
    let pid: i32 = std::fs::read_to_string(pidfile)
        .unwrap_or_else(|e| panic!("{}: {e}", pidfile.display()))
        .trim()
        .parse()
        .expect("pid");
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(30);
    while nix::sys::signal::kill(pid, None).is_ok() {
        assert!(
            Instant::now() < deadline,
            "{} did not die",
            pidfile.display()
        );
        std::thread::yield_now();
    }
    let _ = std::fs::remove_file(pidfile);
}

impl Drop for VCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log_tails(40);
        }
        let _ = self.script(&["down"]);
    }
}

impl VCluster {
    /// Prints the end of every daemon's log, for a test that failed: the
    /// cluster and its logs are gone once it is dropped.
    pub fn print_log_tails(&self, lines: usize) {
        for k in 1..=self.nodes {
            let dir = self.root(k).join("var/log/ganeti");
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut logs: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect();
            logs.sort();
            for log in logs {
                let Ok(text) = std::fs::read_to_string(&log) else {
                    continue;
                };
                let all: Vec<&str> = text.lines().collect();
                let tail = &all[all.len().saturating_sub(lines)..];
                eprintln!(
                    "==== node{k}: {} (last {} lines)",
                    log.display(),
                    tail.len()
                );
                for l in tail {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// The target directory of this build (`target/` or `$CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("the executable is in <target>/<profile>")
        .to_path_buf()
}

/// Builds (or finds cached) the test guest of `scripts/build-test-guest.sh`;
/// returns (vmlinuz, initrd.img).
pub fn test_guest() -> (PathBuf, PathBuf) {
    let out_dir = target_dir().join("test-guest");
    let script = repo_root().join("scripts/build-test-guest.sh");
    let out = Command::new(&script)
        .arg(&out_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}): {}{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (kernel, initrd) = (out_dir.join("vmlinuz"), out_dir.join("initrd.img"));
    assert!(kernel.is_file(), "{} was not built", kernel.display());
    assert!(initrd.is_file(), "{} was not built", initrd.display());
    (kernel, initrd)
}
