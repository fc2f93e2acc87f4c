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
    let (kernel, initrd) = test_guest();
    let mut hv = format!(
        "kvm:kvm_flag=disabled,kernel_path={},initrd_path={},serial_console=true,\
         kernel_args=panic=-1 quiet,vnc_bind_address=,machine_version=pc",
        kernel.display(),
        initrd.display()
    );
    if !extra.is_empty() {
        hv.push(',');
        hv.push_str(extra);
    }
    VCluster::up_with(
        net,
        nodes,
        &[
            ("GANETI_VCLUSTER_HV", "kvm"),
            ("GANETI_VCLUSTER_HVPARAMS", &hv),
        ],
    )
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
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let r = f(&l);
                    self.seen.push(l);
                    if let Some(v) = r {
                        return v;
                    }
                }
                Err(e) => panic!(
                    "no {what} on the serial console ({e:?}); last lines: {:?}",
                    &self.seen[self.seen.len().saturating_sub(10)..]
                ),
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
