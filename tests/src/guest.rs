//! The test guest under the kvm hypervisor: a virtual cluster whose
//! default hypervisor is kvm (TCG) booting the guest of
//! `scripts/build-test-guest.sh`, and a reader of its serial console.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::{test_guest, VCluster};

/// What the guest prints once it is up (then `counter N` every 100 ms).
pub const BOOT_LINE: &str = "ganeti-rs test guest booted";
/// Generous: under TCG on a loaded machine the guest may take 10 s.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A virtual cluster of `nodes` nodes whose default hypervisor is kvm,
/// under TCG, booting the test guest; `extra` are more kvm hvparams
/// (`key=value,...`, may be empty).
pub fn kvm_cluster_with(net: &str, nodes: usize, extra: &str) -> VCluster {
    kvm_cluster_booting(net, nodes, "panic=-1 quiet", extra)
}

/// [`kvm_cluster_with`] with the guest kernel's command line
/// `kernel_args` (e.g. without `quiet`, to see every kernel message in the
/// serial logs).
pub fn kvm_cluster_booting(net: &str, nodes: usize, kernel_args: &str, extra: &str) -> VCluster {
    kvm_cluster_env(net, nodes, kernel_args, extra, &[])
}

/// [`kvm_cluster_booting`] with more environment for the cluster's daemons
/// (e.g. `GANETI_WATCHER=on`).
pub fn kvm_cluster_env(
    net: &str,
    nodes: usize,
    kernel_args: &str,
    extra: &str,
    env: &[(&str, &str)],
) -> VCluster {
    let (kernel, initrd) = test_guest();
    let mut hv = format!(
        "kvm:kvm_flag=disabled,kernel_path={},initrd_path={},serial_console=true,\
         kernel_args={kernel_args},vnc_bind_address=,machine_version=pc",
        kernel.display(),
        initrd.display()
    );
    if !extra.is_empty() {
        hv.push(',');
        hv.push_str(extra);
    }
    let mut all = vec![
        ("GANETI_VCLUSTER_HV", "kvm"),
        ("GANETI_VCLUSTER_HVPARAMS", hv.as_str()),
    ];
    all.extend_from_slice(env);
    VCluster::up_with(net, nodes, &all)
}

/// An instance's serial socket, from `gnt-instance console --show-cmd`
/// (a local node's console command: `socat ... UNIX-CONNECT:<socket>`).
pub fn serial_socket(vc: &VCluster, name: &str) -> PathBuf {
    let cmd = vc.ok("gnt-instance", &["console", "--show-cmd", name]);
    let sock = cmd
        .split_whitespace()
        .find_map(|w| w.trim_matches('\'').strip_prefix("UNIX-CONNECT:"))
        .unwrap_or_else(|| panic!("no serial socket in the console command: {cmd}"));
    PathBuf::from(sock)
}

/// What instance `name` printed on its serial console while it ran on
/// node `node` (the node's serial log; empty if it never ran there).
pub fn serial_log(vc: &VCluster, node: usize, name: &str) -> String {
    let path = vc
        .root(node)
        .join("var/log/ganeti/kvm")
        .join(format!("{name}.serial"));
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Every node's serial log of instance `name` that is not empty, each
/// headed by its node, for a failure's message.
pub fn serial_logs(vc: &VCluster, name: &str) -> String {
    (1..=vc.nodes)
        .map(|k| (k, serial_log(vc, k, name)))
        .filter(|(_, log)| !log.is_empty())
        .map(|(k, log)| format!("--- node{k} ---\n{log}"))
        .collect()
}

/// Runs QMP `command` on the QEMU of instance `name` on node `node`;
/// returns its answer's `return` value.
pub fn qmp(vc: &VCluster, node: usize, name: &str, command: &str) -> serde_json::Value {
    use std::io::Write;
    let sock = vc
        .root(node)
        .join("var/run/ganeti/kvm-hypervisor/ctrl")
        .join(format!("{name}.qmp"));
    let stream = UnixStream::connect(&sock)
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", sock.display()));
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    let mut writer = stream.try_clone().expect("QMP socket");
    let mut reader = BufReader::new(stream);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).expect("QMP greeting");
    // Events may come before an answer.
    let mut answer = |msg: serde_json::Value| -> serde_json::Value {
        writeln!(writer, "{msg}").expect("QMP write");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("QMP read");
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("QMP sent {line:?}: {e}"));
            if let Some(err) = v.get("error") {
                panic!("QMP {msg} failed: {err}");
            }
            if let Some(r) = v.get("return") {
                return r.clone();
            }
        }
    };
    answer(serde_json::json!({"execute": "qmp_capabilities"}));
    answer(serde_json::json!({ "execute": command }))
}

/// Adds the counting test guest as instance `name` on `node`: 128 MiB,
/// a 16 MiB `sharedfile` disk (so it migrates to any node), no NIC.
pub fn add_guest(vc: &VCluster, node: &str, name: &str) {
    vc.add_instance(
        node,
        name,
        &[
            "-t",
            "sharedfile",
            "--disk",
            "0:size=16M",
            "--no-nics",
            "-B",
            "maxmem=128,minmem=128",
        ],
    );
}

/// [`kvm_cluster_with`] three nodes and the default parameters.
pub fn kvm_cluster(net: &str) -> VCluster {
    kvm_cluster_with(net, 3, "")
}

/// A connection to an instance's serial console; lines arrive through a
/// reader thread.
pub struct Serial {
    lines: Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Serial {
    pub fn connect(path: &Path) -> Serial {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", path.display()));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line.trim().to_string()).is_err() {
                    break;
                }
            }
        });
        Serial {
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line for which `f` says something; returns it.
    pub fn wait<T>(&mut self, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
        match self.wait_for(DEADLINE, f) {
            Ok(v) => v,
            Err(e) => panic!(
                "no {what} on the serial console ({e:?}); last lines: {:?}",
                &self.seen[self.seen.len().saturating_sub(10)..]
            ),
        }
    }

    /// Waits up to `timeout` for a line for which `f` says something.
    pub fn wait_for<T>(
        &mut self,
        timeout: Duration,
        f: impl Fn(&str) -> Option<T>,
    ) -> Result<T, mpsc::RecvTimeoutError> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let l = self.lines.recv_timeout(left)?;
            let r = f(&l);
            self.seen.push(l);
            if let Some(v) = r {
                return Ok(v);
            }
        }
    }

    /// The next counter value.
    pub fn counter(&mut self) -> u64 {
        self.wait("counter", counter_of)
    }
}

pub fn counter_of(line: &str) -> Option<u64> {
    line.strip_prefix("counter ")?.trim().parse().ok()
}
