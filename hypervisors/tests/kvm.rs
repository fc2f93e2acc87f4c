//! The kvm hypervisor driving real QEMU processes (TCG, `kvm_flag=disabled`)
//! that run the test guest of `scripts/build-test-guest.sh`: start, console,
//! reboot, stop, ballooning, a QEMU killed behind the driver's back, live
//! migration between two node roots on one host (127.0.0.1 → 127.0.0.2)
//! and migrations that fail, bridged NICs.
//!
//! Every test has its own node root(s) and instance name, and a guard that
//! kills its QEMUs even when the test fails.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hypervisors::kvm::process;
use hypervisors::kvm::runtime::KvmRuntime;
use hypervisors::kvm::KvmHypervisor;
use hypervisors::qmp::Qmp;
use hypervisors::{
    AttachedDisk, BeParams, ConsoleInfo, HvParams, Hypervisor, HypervisorError, InstanceSpec,
    InstanceState, NicMode, NicSpec, StopOptions,
};
use objects::paths::Paths;
use serde_json::{json, Value};

const BOOT_LINE: &str = "ganeti-rs test guest booted";
/// Generous: the guest boots in about 4 s under TCG, slower on a busy host.
const BOOT_DEADLINE: Duration = Duration::from_secs(120);
const NONE: &HvParams = &HvParams::new();

/// The target directory of this build, from the test executable's path:
/// `<target>/<profile>/deps/<test>`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors()
        .nth(3)
        .expect("the test executable is in <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds (or finds cached) the guest; returns (vmlinuz, initrd.img).
fn guest() -> &'static (PathBuf, PathBuf) {
    static GUEST: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    GUEST.get_or_init(|| {
        let out_dir = target_dir().join("test-guest");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-test-guest.sh");
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
        (out_dir.join("vmlinuz"), out_dir.join("initrd.img"))
    })
}

/// One node: its own root and driver.
struct Node {
    root: tempfile::TempDir,
    hv: Arc<KvmHypervisor>,
}

impl Node {
    fn new() -> Node {
        let root = tempfile::tempdir().unwrap();
        let hv = Arc::new(KvmHypervisor::new(&Paths::new(root.path())));
        Node { root, hv }
    }

    fn pid(&self, name: &str) -> Option<i32> {
        process::live_pid(
            &self.hv.dirs().pid_file(name),
            &self.hv.dirs().qmp_socket(name),
        )
    }

    fn qmp(&self, name: &str, command: &str, args: Option<Value>) -> Value {
        let mut q = Qmp::connect(&self.hv.dirs().qmp_socket(name), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("QMP of {name}: {e}"));
        q.execute(command, args)
            .unwrap_or_else(|e| panic!("QMP {command} of {name}: {e}"))
    }

    fn serial(&self, name: &str) -> Serial {
        Serial::connect(&self.hv.dirs().serial_socket(name))
    }
}

/// Kills the QEMUs of the instances it knows when dropped (test failed or
/// not), through the driver and then by pid.
#[derive(Default)]
struct Guard(Vec<(Arc<KvmHypervisor>, String)>);

impl Guard {
    fn watch(&mut self, node: &Node, name: &str) {
        self.0.push((node.hv.clone(), name.to_string()));
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for (hv, name) in &self.0 {
            let force = StopOptions {
                force: true,
                timeout: Duration::from_secs(1),
                retry: true,
            };
            let _ = hv.stop(name, NONE, force);
            let qmp = hv.dirs().qmp_socket(name);
            if let Some(pid) = process::live_pid(&hv.dirs().pid_file(name), &qmp) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            let _ = hv.cleanup(name);
        }
    }
}

/// Lines of a serial console socket, read by a thread.
struct Serial {
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Serial {
    fn connect(path: &Path) -> Serial {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("serial socket {}: {e}", path.display()));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim().to_string();
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Serial {
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until `pred` matches one (returned); fails at
    /// `deadline` or when the console closes.
    fn wait_line(&mut self, what: &str, deadline: Instant, pred: impl Fn(&str) -> bool) -> String {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(e) => {
                    let why = match e {
                        RecvTimeoutError::Timeout => "timed out",
                        RecvTimeoutError::Disconnected => "the console closed",
                    };
                    let tail: Vec<_> = self.seen.iter().rev().take(20).rev().collect();
                    panic!("waiting for {what}: {why}; console (last lines): {tail:?}");
                }
            }
        }
    }

    fn boot_line(&mut self) {
        self.wait_line("the boot line", Instant::now() + BOOT_DEADLINE, |l| {
            l.contains(BOOT_LINE)
        });
    }

    /// The next counter value at least `min`.
    fn counter_at_least(&mut self, min: u64) -> u64 {
        let line = self.wait_line(
            &format!("counter >= {min}"),
            Instant::now() + BOOT_DEADLINE,
            |l| counter(l).is_some_and(|c| c >= min),
        );
        counter(&line).unwrap_or_default()
    }

    /// Throws away what arrived so far.
    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }
}

fn counter(line: &str) -> Option<u64> {
    line.split_once("counter ")?.1.trim().parse().ok()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}.example.com", std::process::id())
}

/// A free TCP port on `ip`.
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spec(name: &str, extra: &[(&str, Value)]) -> InstanceSpec {
    let (kernel, initrd) = guest();
    let mut hvparams: HvParams = [
        ("kvm_flag", json!("disabled")),
        ("kernel_path", json!(kernel.display().to_string())),
        ("initrd_path", json!(initrd.display().to_string())),
        ("kernel_args", json!("panic=-1 quiet")),
        ("root_path", json!("")),
        ("serial_console", json!(true)),
        ("migration_port", json!(free_port("127.0.0.2"))),
        ("migration_bandwidth", json!(1024)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        hvparams.insert(k.to_string(), v.clone());
    }
    InstanceSpec {
        name: name.to_string(),
        uuid: "6f1c7a52-63b4-4e0e-8d34-0c4b8f0e1d2a".into(),
        primary_node: "node1.example.com".into(),
        secondary_nodes: vec![],
        hypervisor: "kvm".into(),
        hvparams,
        beparams: BeParams {
            maxmem: 256,
            minmem: Some(128),
            vcpus: 1,
            auto_balance: true,
            always_failover: false,
            spindle_use: 1,
        },
        os: "test".into(),
        osparams: Default::default(),
        disks: vec![],
        nics: vec![],
        tags: vec![],
    }
}

/// Starts `inst` paused, connects its console, resumes it and waits for
/// the boot line: no line of the guest is missed.
fn start_and_boot(node: &Node, guard: &mut Guard, inst: &InstanceSpec) -> Serial {
    guard.watch(node, &inst.name);
    node.hv.start(inst, &[], true).unwrap();
    let mut serial = node.serial(&inst.name);
    node.qmp(&inst.name, "cont", None);
    serial.boot_line();
    serial
}

fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn soft(timeout_secs: u64) -> StopOptions {
    StopOptions {
        force: false,
        timeout: Duration::from_secs(timeout_secs),
        retry: false,
    }
}

const FORCE: StopOptions = StopOptions {
    force: true,
    timeout: Duration::from_secs(10),
    retry: true,
};

#[test]
fn start_info_console_reboot_and_clean_stop() {
    let node = Node::new();
    let mut guard = Guard::default();
    let inst = spec(&unique("life"), &[]);
    let name = inst.name.as_str();

    guard.watch(&node, name);
    node.hv.start(&inst, &[], true).unwrap();
    let paused = node.hv.instance_info(name, NONE).unwrap().unwrap();
    assert_eq!(paused.state, InstanceState::Paused);
    assert!(matches!(
        node.hv.start(&inst, &[], false),
        Err(HypervisorError::AlreadyRunning(_))
    ));
    let mut serial = node.serial(name);
    node.qmp(name, "cont", None);
    let t0 = Instant::now();
    serial.boot_line();
    eprintln!("booted in {:.1} s", t0.elapsed().as_secs_f64());

    let info = node.hv.instance_info(name, NONE).unwrap().unwrap();
    assert_eq!(
        (info.state, info.memory, info.vcpus),
        (InstanceState::Running, 256, 1)
    );
    let pid = node.pid(name).unwrap();
    assert_eq!(info.id, pid.to_string());
    assert!(info.cpu_time > 0.0, "{info:?}");
    assert_eq!(
        node.hv.list_instances(NONE).unwrap(),
        vec![name.to_string()]
    );
    let all = node.hv.all_instances_info(NONE).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(node.hv.node_info(NONE).unwrap().memory_instances, 256);
    // A new driver on the same root (a restarted node daemon) finds it.
    let restarted = KvmHypervisor::new(&Paths::new(node.root.path()));
    let again = restarted.instance_info(name, NONE).unwrap().unwrap();
    assert_eq!((again.id, again.memory), (info.id.clone(), 256));

    match node.hv.console(&inst, "node1.example.com").unwrap() {
        ConsoleInfo::Ssh { host, command, .. } => {
            assert_eq!(host, "node1.example.com");
            assert_eq!(command[0], "socat");
            let sock = node.hv.dirs().serial_socket(name);
            assert_eq!(command[2], format!("UNIX-CONNECT:{}", sock.display()));
        }
        other => panic!("console: {other:?}"),
    }

    // Reboot: the guest boots again in the same QEMU.
    serial.counter_at_least(2);
    node.hv.reboot(&inst).unwrap();
    serial.boot_line();
    assert_eq!(node.pid(name), Some(pid));

    // A clean stop: the guest powers off, QEMU exits, files go.
    let t0 = Instant::now();
    node.hv.stop(name, NONE, soft(60)).unwrap();
    eprintln!("soft stop took {:.2} s", t0.elapsed().as_secs_f64());
    // The guest itself powered off (its ACPI handler says so).
    serial.wait_line(
        "the power button line",
        Instant::now() + BOOT_DEADLINE,
        |l| l.contains("power button"),
    );
    assert!(!process::is_our_qemu(pid, &node.hv.dirs().qmp_socket(name)));
    assert!(node.hv.instance_info(name, NONE).unwrap().is_none());
    assert!(node.hv.list_instances(NONE).unwrap().is_empty());
    for f in [
        node.hv.dirs().pid_file(name),
        node.hv.dirs().runtime_file(name),
        node.hv.dirs().qmp_socket(name),
        node.hv.dirs().serial_socket(name),
    ] {
        assert!(!f.exists(), "{} left after stop", f.display());
    }
    assert!(matches!(
        node.hv.stop(name, NONE, soft(1)),
        Err(HypervisorError::NotRunning(_))
    ));
}

#[test]
fn a_guest_without_acpi_times_out_on_stop_then_force_kills_it() {
    let node = Node::new();
    let mut guard = Guard::default();
    let inst = spec(&unique("noacpi"), &[("acpi", json!(false))]);
    let name = inst.name.as_str();
    let mut serial = start_and_boot(&node, &mut guard, &inst);
    let pid = node.pid(name).unwrap();

    let err = node.hv.stop(name, NONE, soft(3)).unwrap_err();
    assert!(err.to_string().contains("did not shut down"), "{err}");
    // Still running, still counting.
    assert_eq!(node.pid(name), Some(pid));
    serial.drain();
    serial.counter_at_least(1);

    node.hv.stop(name, NONE, FORCE).unwrap();
    assert!(!process::is_our_qemu(pid, &node.hv.dirs().qmp_socket(name)));
    assert!(node.hv.list_instances(NONE).unwrap().is_empty());
    assert!(!node.hv.dirs().runtime_file(name).exists());
}

#[test]
fn a_qemu_killed_behind_the_drivers_back_is_not_listed() {
    let node = Node::new();
    let mut guard = Guard::default();
    let inst = spec(&unique("killed"), &[]);
    let name = inst.name.as_str();
    guard.watch(&node, name);
    node.hv.start(&inst, &[], false).unwrap();
    let pid = node.pid(name).unwrap();
    assert_eq!(node.hv.list_instances(NONE).unwrap().len(), 1);

    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let qmp = node.hv.dirs().qmp_socket(name);
    poll("QEMU to die", Duration::from_secs(30), || {
        (!process::is_our_qemu(pid, &qmp)).then_some(())
    });
    // Its pid file is still there, but the process is gone.
    assert!(node.hv.dirs().pid_file(name).exists());
    assert!(node.hv.list_instances(NONE).unwrap().is_empty());
    assert!(node.hv.instance_info(name, NONE).unwrap().is_none());
    assert!(node.hv.all_instances_info(NONE).unwrap().is_empty());
    assert!(matches!(
        node.hv.stop(name, NONE, FORCE),
        Err(HypervisorError::NotRunning(_))
    ));
    // The leftovers do not prevent a new start.
    node.hv.start(&inst, &[], false).unwrap();
    assert_ne!(node.pid(name), Some(pid));
    node.hv.stop(name, NONE, FORCE).unwrap();
}

#[test]
fn ballooning_changes_the_guest_memory() {
    let node = Node::new();
    let mut guard = Guard::default();
    let inst = spec(&unique("balloon"), &[]);
    let name = inst.name.as_str();
    let _serial = start_and_boot(&node, &mut guard, &inst);

    node.hv.balloon_memory(&inst, 160).unwrap();
    poll(
        "the guest to give memory back",
        Duration::from_secs(60),
        || {
            let actual = node.qmp(name, "query-balloon", None)["actual"].as_u64()?;
            (actual == 160 << 20).then_some(())
        },
    );
    let info = node.hv.instance_info(name, NONE).unwrap().unwrap();
    assert_eq!(info.memory, 160);
    node.hv.balloon_memory(&inst, 256).unwrap();
    poll("the guest to take memory", Duration::from_secs(60), || {
        let info = node.hv.instance_info(name, NONE).unwrap()?;
        (info.memory == 256).then_some(())
    });
    node.hv.stop(name, NONE, FORCE).unwrap();
}

#[test]
fn live_migration_between_two_roots_keeps_the_guest_running() {
    let src = Node::new();
    let dst = Node::new();
    let mut guard = Guard::default();
    let inst = spec(&unique("migr"), &[]);
    let name = inst.name.as_str();
    // A disk, at a path of each node's own (same content).
    let disk_on = |node: &Node| {
        let path = node.root.path().join("disk0");
        std::fs::write(&path, vec![0u8; 4 << 20]).unwrap();
        AttachedDisk {
            index: 0,
            path: Some(path),
            uri: None,
            mode: Default::default(),
            tls: None,
        }
    };
    let (src_disk, dst_disk) = (disk_on(&src), disk_on(&dst));
    guard.watch(&src, name);
    src.hv.start(&inst, &[src_disk], true).unwrap();
    let mut src_serial = src.serial(name);
    src.qmp(name, "cont", None);
    src_serial.boot_line();
    src_serial.counter_at_least(3);

    let prepare = Instant::now();
    let info = src.hv.migration_info(&inst).unwrap();
    guard.watch(&dst, name);
    dst.hv
        .accept_instance_with_disks(&inst, &info, "127.0.0.2", std::slice::from_ref(&dst_disk))
        .unwrap();
    let prepare = prepare.elapsed();
    // The target's QEMU is the source's: the same machine, CPU, clock,
    // devices in the same order; only the node's own paths and how each
    // started differ (the source paused with `-S`, the target `-incoming`).
    let argv = |node: &Node| {
        let rt = KvmRuntime::load(node.hv.dirs(), name).unwrap().unwrap();
        let root = node.root.path().display().to_string();
        let mut argv: Vec<String> = rt.argv.iter().map(|a| a.replace(&root, "ROOT")).collect();
        if let Some(i) = argv.iter().position(|a| a == "-incoming") {
            argv.drain(i..i + 2);
        }
        argv.retain(|a| a != "-S");
        argv
    };
    assert_eq!(argv(&src), argv(&dst));
    // Waiting for the data, the instance does not run on the target yet.
    assert!(dst.pid(name).is_some());
    assert!(dst.hv.list_instances(NONE).unwrap().is_empty());
    assert!(dst.hv.instance_info(name, NONE).unwrap().is_none());
    let mut dst_serial = dst.serial(name);

    let t0 = Instant::now();
    src.hv
        .migrate_instance("cluster", &inst, "127.0.0.2", true)
        .unwrap();
    let took = t0.elapsed();
    let status = src.hv.migration_status(&inst).unwrap();
    assert_eq!(status.status, "completed");
    let total = status.total_time_ms.expect("total time");
    let downtime = status.downtime_ms.expect("downtime");
    assert!(status.transferred_ram.unwrap() > 0, "{status:?}");
    eprintln!(
        "migration: {} ms by QEMU, {} ms downtime, {} ms seen by the caller, {} MiB sent",
        total,
        downtime,
        took.as_millis(),
        status.transferred_ram.unwrap() >> 20
    );

    src_serial.drain();
    let last_on_src = src_serial
        .seen
        .iter()
        .rev()
        .find_map(|l| counter(l))
        .unwrap();
    let finalize = Instant::now();
    dst.hv.finalize_migration_dst(&inst, &info, true).unwrap();
    src.hv.finalize_migration_src(&inst, true, true).unwrap();
    let finalize = finalize.elapsed();
    eprintln!(
        "orchestration around QEMU's migration: {} ms to prepare the target, \
         {} ms of polling after QEMU, {} ms to finalize both sides",
        prepare.as_millis(),
        took.as_millis().saturating_sub(u128::from(total)),
        finalize.as_millis()
    );

    // The guest keeps counting on the target, without booting again.
    let next = dst_serial.counter_at_least(last_on_src + 1);
    let later = dst_serial.counter_at_least(next + 5);
    assert!(later > next);
    assert!(
        !dst_serial.seen.iter().any(|l| l.contains(BOOT_LINE)),
        "the guest rebooted: {:?}",
        dst_serial.seen
    );
    assert_eq!(dst.hv.list_instances(NONE).unwrap(), vec![name.to_string()]);
    let info = dst.hv.instance_info(name, NONE).unwrap().unwrap();
    assert_eq!((info.state, info.memory), (InstanceState::Running, 256));
    let block = dst.qmp(name, "query-block", None);
    let file = block
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["device"] == "disk0")
        .map(|b| b["inserted"]["file"].clone());
    assert_eq!(
        file,
        Some(json!(dst_disk.path.unwrap().display().to_string())),
        "{block}"
    );
    assert!(src.hv.list_instances(NONE).unwrap().is_empty());
    assert!(src.pid(name).is_none());
    assert!(!src.hv.dirs().runtime_file(name).exists());

    // And the target owns it now: a clean stop works there.
    dst.hv.stop(name, NONE, soft(60)).unwrap();
    assert!(dst.hv.list_instances(NONE).unwrap().is_empty());
}

#[test]
fn a_migration_to_nowhere_leaves_the_source_running() {
    let src = Node::new();
    let dst = Node::new();
    let mut guard = Guard::default();
    let inst = spec(&unique("nowhere"), &[]);
    let name = inst.name.as_str();
    let mut serial = start_and_boot(&src, &mut guard, &inst);
    let pid = src.pid(name).unwrap();

    // Nobody listens on the target's migration port.
    let err = src
        .hv
        .migrate_instance("cluster", &inst, "127.0.0.2", true)
        .unwrap_err();
    assert!(err.to_string().contains("failed"), "{err}");
    eprintln!("migration error: {err}");
    dst.hv.finalize_migration_dst(&inst, "", false).unwrap();
    src.hv.finalize_migration_src(&inst, false, true).unwrap();

    assert_eq!(src.pid(name), Some(pid));
    let info = src.hv.instance_info(name, NONE).unwrap().unwrap();
    assert_eq!(info.state, InstanceState::Running);
    serial.drain();
    let now = serial.counter_at_least(1);
    serial.counter_at_least(now + 3);
    assert!(dst.hv.list_instances(NONE).unwrap().is_empty());
    assert!(dst.hv.dirs().names().unwrap().is_empty());
}

#[test]
fn a_target_killed_mid_migration_leaves_the_source_running_and_the_target_clean() {
    let src = Node::new();
    let dst = Node::new();
    let mut guard = Guard::default();
    // 1 MiB/s: the migration lasts long enough to kill the target.
    let inst = spec(&unique("midway"), &[("migration_bandwidth", json!(1))]);
    let name = inst.name.clone();
    let mut serial = start_and_boot(&src, &mut guard, &inst);

    let info = src.hv.migration_info(&inst).unwrap();
    guard.watch(&dst, &name);
    dst.hv.accept_instance(&inst, &info, "127.0.0.2").unwrap();
    let target_pid = dst.pid(&name).unwrap();

    let migrating = {
        let hv = src.hv.clone();
        let inst = inst.clone();
        std::thread::spawn(move || hv.migrate_instance("cluster", &inst, "127.0.0.2", false))
    };
    poll(
        "the migration to send data",
        Duration::from_secs(60),
        || {
            let st = src.hv.migration_status(&inst).ok()?;
            (st.status == "active" && st.transferred_ram.unwrap_or(0) > 0).then_some(())
        },
    );
    Command::new("kill")
        .args(["-9", &target_pid.to_string()])
        .status()
        .unwrap();
    let err = migrating.join().unwrap().unwrap_err();
    eprintln!("migration error: {err}");

    dst.hv.finalize_migration_dst(&inst, &info, false).unwrap();
    src.hv.finalize_migration_src(&inst, false, false).unwrap();

    // Non-live: the source was paused for the migration and runs again.
    let info = src.hv.instance_info(&name, NONE).unwrap().unwrap();
    assert_eq!(info.state, InstanceState::Running);
    serial.drain();
    let now = serial.counter_at_least(1);
    serial.counter_at_least(now + 3);
    assert!(dst.pid(&name).is_none());
    assert!(dst.hv.dirs().names().unwrap().is_empty());
    assert!(!dst.hv.dirs().runtime_file(&name).exists());
}

#[test]
fn a_bridged_nic_joins_its_bridge_and_its_tap_goes_with_the_instance() {
    // A bridge of our own, with no address: nothing reaches the host.
    let bridge = format!("gtbr{:x}", std::process::id() & 0x00ff_ffff);
    let made = Command::new("ip")
        .args(["link", "add", &bridge, "type", "bridge"])
        .output();
    match made {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "SKIPPED: cannot create bridge {bridge}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED: cannot run ip: {e}");
            return;
        }
    }
    struct DelBridge(String);
    impl Drop for DelBridge {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
    let _bridge_guard = DelBridge(bridge.clone());

    let node = Node::new();
    let mut guard = Guard::default();
    let mut inst = spec(&unique("nic"), &[]);
    inst.nics = vec![NicSpec {
        mac: "aa:00:00:12:34:56".into(),
        ip: None,
        mode: NicMode::Bridged,
        link: bridge.clone(),
        network: None,
        uuid: None,
        name: None,
        vlan: None,
    }];
    let name = inst.name.clone();
    let _serial = start_and_boot(&node, &mut guard, &inst);

    let tap = hypervisors::kvm::nics::tap_name(node.root.path(), &name, 0);
    let master = std::fs::read_link(format!("/sys/class/net/{tap}/master")).unwrap();
    assert_eq!(master.file_name().unwrap().to_str(), Some(bridge.as_str()));
    // The guest sees a NIC with the instance's MAC.
    let nics = node.qmp(&name, "query-rx-filter", None);
    assert_eq!(nics[0]["main-mac"], "aa:00:00:12:34:56", "{nics}");

    node.hv.stop(&name, NONE, FORCE).unwrap();
    assert!(
        !Path::new("/sys/class/net").join(&tap).exists(),
        "tap {tap} left after stop"
    );

    // A NIC on a bridge that does not exist is refused, nothing left.
    inst.nics[0].link = format!("{bridge}x");
    let err = node.hv.start(&inst, &[], false).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(node.hv.list_instances(NONE).unwrap().is_empty());
}

#[test]
fn verify_and_start_name_a_missing_qemu() {
    let node = Node::new();
    assert_eq!(node.hv.verify(NONE).unwrap(), None, "default kvm_path");
    let mut bad = HvParams::new();
    bad.insert("kvm_path".into(), json!("/nonexistent/qemu"));
    let problem = node.hv.verify(&bad).unwrap().unwrap();
    assert!(problem.contains("/nonexistent/qemu"), "{problem}");

    let inst = spec(
        &unique("noqemu"),
        &[("kvm_path", json!("/nonexistent/qemu"))],
    );
    let err = node.hv.start(&inst, &[], false).unwrap_err();
    assert!(err.to_string().contains("kvm_path"), "{err}");
    assert!(node.hv.list_instances(NONE).unwrap().is_empty());
}

#[test]
fn a_qemu_that_refuses_to_start_says_why_and_leaves_nothing() {
    let node = Node::new();
    let mut guard = Guard::default();
    let inst = spec(
        &unique("badopt"),
        &[("kvm_extra", json!("-no-such-option"))],
    );
    guard.watch(&node, &inst.name);
    let err = node.hv.start(&inst, &[], false).unwrap_err().to_string();
    assert!(err.contains("failed to start"), "{err}");
    assert!(err.contains("no-such-option"), "QEMU's message: {err}");
    assert!(node.hv.list_instances(NONE).unwrap().is_empty());
    assert!(node.hv.dirs().names().unwrap().is_empty());
    assert!(!node.hv.dirs().runtime_file(&inst.name).exists());
}

#[test]
fn with_user_shutdown_a_guest_power_off_is_reported_then_stop_quits() {
    let node = Node::new();
    let mut guard = Guard::default();
    let inst = spec(&unique("usershut"), &[("user_shutdown", json!(true))]);
    let name = inst.name.as_str();
    let mut serial = start_and_boot(&node, &mut guard, &inst);
    let pid = node.pid(name).unwrap();

    // The guest powers itself off (here: on the power button).
    node.qmp(name, "system_powerdown", None);
    serial.wait_line(
        "the power button line",
        Instant::now() + BOOT_DEADLINE,
        |l| l.contains("power button"),
    );
    poll("the shutdown state", Duration::from_secs(60), || {
        let info = node.hv.instance_info(name, NONE).unwrap()?;
        (info.state == InstanceState::Shutdown).then_some(())
    });
    assert_eq!(node.pid(name), Some(pid), "QEMU stays for the user to see");

    node.hv.stop(name, NONE, soft(30)).unwrap();
    assert!(node.pid(name).is_none());
    assert!(node.hv.list_instances(NONE).unwrap().is_empty());
}

#[test]
fn a_routed_nic_gets_a_route_that_goes_with_its_tap() {
    let node = Node::new();
    let mut guard = Guard::default();
    let mut inst = spec(&unique("routed"), &[]);
    // A documentation address in a table of its own: nothing is routed.
    let table = (std::process::id() % 1000 + 1000).to_string();
    inst.nics = vec![NicSpec {
        mac: "aa:00:00:12:34:57".into(),
        ip: Some("192.0.2.77".into()),
        mode: NicMode::Routed,
        link: table.clone(),
        network: None,
        uuid: None,
        name: None,
        vlan: None,
    }];
    let name = inst.name.clone();
    guard.watch(&node, &name);
    if let Err(e) = node.hv.start(&inst, &[], true) {
        let msg = e.to_string();
        if msg.contains("tuntap") || msg.contains("'ip'") {
            eprintln!("SKIPPED: cannot make tap devices here: {msg}");
            return;
        }
        panic!("start: {msg}");
    }
    let tap = hypervisors::kvm::nics::tap_name(node.root.path(), &name, 0);
    let routes = Command::new("ip")
        .args(["route", "show", "table", &table])
        .output()
        .unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout).into_owned();
    assert!(
        routes.contains(&format!("192.0.2.77 dev {tap}")),
        "routes of table {table}: {routes}"
    );
    node.hv.stop(&name, NONE, FORCE).unwrap();
    assert!(!Path::new("/sys/class/net").join(&tap).exists());
    let routes = Command::new("ip")
        .args(["route", "show", "table", &table])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&routes.stdout).contains("192.0.2.77"));
}

#[test]
fn non_live_migration_pauses_moves_and_resumes_the_guest() {
    let src = Node::new();
    let dst = Node::new();
    let mut guard = Guard::default();
    let inst = spec(&unique("nonlive"), &[("migration_mode", json!("non-live"))]);
    let name = inst.name.as_str();
    let mut src_serial = start_and_boot(&src, &mut guard, &inst);
    let before = src_serial.counter_at_least(2);

    let info = src.hv.migration_info(&inst).unwrap();
    guard.watch(&dst, name);
    dst.hv.accept_instance(&inst, &info, "127.0.0.2").unwrap();
    let mut dst_serial = dst.serial(name);
    src.hv
        .migrate_instance("cluster", &inst, "127.0.0.2", false)
        .unwrap();
    dst.hv.finalize_migration_dst(&inst, &info, true).unwrap();
    src.hv.finalize_migration_src(&inst, true, false).unwrap();

    let info = dst.hv.instance_info(name, NONE).unwrap().unwrap();
    assert_eq!(info.state, InstanceState::Running);
    let next = dst_serial.counter_at_least(before + 1);
    dst_serial.counter_at_least(next + 3);
    assert!(!dst_serial.seen.iter().any(|l| l.contains(BOOT_LINE)));
    assert!(src.pid(name).is_none());
    dst.hv.stop(name, NONE, FORCE).unwrap();
}

#[test]
fn without_a_serial_console_the_console_is_vnc() {
    let node = Node::new();
    let mut guard = Guard::default();
    let inst = spec(
        &unique("vnc"),
        &[
            ("serial_console", json!(false)),
            ("vnc_bind_address", json!("127.0.0.1")),
        ],
    );
    let name = inst.name.as_str();
    guard.watch(&node, name);
    node.hv.start(&inst, &[], true).unwrap();
    match node.hv.console(&inst, "node1.example.com").unwrap() {
        ConsoleInfo::Vnc {
            host,
            port,
            display,
            ..
        } => {
            assert_eq!(host, "127.0.0.1");
            assert!(port >= 5900, "{port}");
            assert_eq!(display, port - 5900);
        }
        other => panic!("console: {other:?}"),
    }
    assert!(!node.hv.dirs().serial_socket(name).exists());
    node.hv.stop(name, NONE, FORCE).unwrap();

    let plain = spec(&unique("noconsole"), &[("serial_console", json!(false))]);
    assert!(matches!(
        node.hv.console(&plain, "node1").unwrap(),
        ConsoleInfo::Message { .. }
    ));
}

#[test]
fn many_instances_start_concurrently_and_are_listed_quickly() {
    const N: usize = 8;
    let node = Node::new();
    let mut guard = Guard::default();
    let specs: Vec<InstanceSpec> = (0..N)
        .map(|i| {
            let mut s = spec(&unique(&format!("many{i}")), &[]);
            s.beparams.maxmem = 128;
            s.beparams.minmem = Some(128);
            s
        })
        .collect();
    for s in &specs {
        guard.watch(&node, &s.name);
    }
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        for s in &specs {
            let hv = &node.hv;
            // Paused: the guests take no CPU while we measure.
            scope.spawn(move || hv.start(s, &[], true).unwrap());
        }
    });
    let started = t0.elapsed();

    let t0 = Instant::now();
    let names = node.hv.list_instances(NONE).unwrap();
    let listed = t0.elapsed();
    assert_eq!(names.len(), N);
    let t0 = Instant::now();
    let all = node.hv.all_instances_info(NONE).unwrap();
    let queried = t0.elapsed();
    assert_eq!(all.len(), N);
    assert!(all
        .iter()
        .all(|i| i.state == InstanceState::Paused && i.memory == 128));
    eprintln!(
        "{N} instances: started in {} ms (concurrently), listed in {:.1} ms, \
         all_instances_info in {:.1} ms ({:.1} ms each)",
        started.as_millis(),
        listed.as_secs_f64() * 1e3,
        queried.as_secs_f64() * 1e3,
        queried.as_secs_f64() * 1e3 / N as f64
    );
    std::thread::scope(|scope| {
        for s in &specs {
            let hv = &node.hv;
            scope.spawn(move || hv.stop(&s.name, NONE, FORCE).unwrap());
        }
    });
    assert!(node.hv.list_instances(NONE).unwrap().is_empty());
}

#[test]
fn two_roots_on_one_host_each_see_and_stop_only_their_own_qemu() {
    let a = Node::new();
    let b = Node::new();
    let mut guard = Guard::default();
    let inst = spec(&unique("twice"), &[]);
    let name = inst.name.as_str();
    guard.watch(&a, name);
    guard.watch(&b, name);
    a.hv.start(&inst, &[], true).unwrap();
    b.hv.start(&inst, &[], true).unwrap();
    let (pid_a, pid_b) = (a.pid(name).unwrap(), b.pid(name).unwrap());
    assert_ne!(pid_a, pid_b);
    assert_eq!(
        a.hv.instance_info(name, NONE).unwrap().unwrap().id,
        pid_a.to_string()
    );
    assert_eq!(
        b.hv.instance_info(name, NONE).unwrap().unwrap().id,
        pid_b.to_string()
    );

    a.hv.stop(name, NONE, FORCE).unwrap();
    assert!(a.hv.list_instances(NONE).unwrap().is_empty());
    assert_eq!(b.pid(name), Some(pid_b), "the other root's QEMU survives");
    assert_eq!(b.hv.list_instances(NONE).unwrap(), vec![name.to_string()]);
    b.hv.stop(name, NONE, FORCE).unwrap();
}

#[test]
fn a_pid_file_naming_another_process_is_not_an_instance_and_is_not_killed() {
    let node = Node::new();
    let name = unique("foreign");
    let dirs = node.hv.dirs();
    dirs.prepare(&name).unwrap();
    // A stale pid file whose pid now belongs to someone else (us).
    std::fs::write(dirs.pid_file(&name), std::process::id().to_string()).unwrap();
    assert!(node.hv.list_instances(NONE).unwrap().is_empty());
    assert!(node.hv.instance_info(&name, NONE).unwrap().is_none());
    assert!(matches!(
        node.hv.stop(&name, NONE, FORCE),
        Err(HypervisorError::NotRunning(_))
    ));
    // Still alive to assert it; the leftovers go with cleanup.
    node.hv.cleanup(&name).unwrap();
    assert!(!dirs.pid_file(&name).exists());
}

/// Guest RAM pages that differ between two RAM dumps (of the same size).
fn differing_pages(a: &Path, b: &Path) -> usize {
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert_eq!(a.len(), b.len(), "RAM dumps of different sizes");
    a.chunks(4096)
        .zip(b.chunks(4096))
        .filter(|(x, y)| x != y)
        .count()
}

/// Live migrations under TCG, each checked page by page: once QEMU says
/// the migration completed, the source is paused for good and the target
/// (told to stay paused) holds what it received; their RAM must be equal.
/// With Debian's QEMU 7.2 and RAM a multiple of 256 KiB, about one
/// migration in ten on a loaded machine loses a write (see
/// `hypervisors::kvm::qemu`). `#[ignore]`d: minutes;
/// `scripts/stress-migrate.sh` runs it with the cores loaded.
/// `STRESS_RAM_MIGRATIONS` (default 30) sets how many.
#[test]
#[ignore = "minutes of migrations: scripts/stress-migrate.sh"]
fn live_migrations_under_tcg_lose_no_write() {
    let rounds: usize = std::env::var("STRESS_RAM_MIGRATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut lossy = Vec::new();
    for round in 1..=rounds {
        let src = Node::new();
        let dst = Node::new();
        let mut guard = Guard::default();
        // Ganeti's default bandwidth: several passes, as in a cluster.
        let inst = spec(
            &unique(&format!("ram{round}")),
            &[("migration_bandwidth", json!(32))],
        );
        let name = inst.name.as_str();
        let mut serial = start_and_boot(&src, &mut guard, &inst);
        serial.counter_at_least(5);
        let info = src.hv.migration_info(&inst).unwrap();
        guard.watch(&dst, name);
        dst.hv.accept_instance(&inst, &info, "127.0.0.2").unwrap();
        // While it waits for the data, `stop` makes the target stay
        // paused once the migration is in.
        dst.qmp(name, "stop", None);
        src.hv
            .migrate_instance("cluster", &inst, "127.0.0.2", true)
            .unwrap();
        poll("the target to load the migration", BOOT_DEADLINE, || {
            (dst.qmp(name, "query-status", None)["status"] != "inmigrate").then_some(())
        });
        let size = src.qmp(name, "query-memory-size-summary", None)["base-memory"]
            .as_u64()
            .unwrap();
        let mut differing = 0;
        // Low memory, then from 1 MiB up (between them: VGA and ROMs).
        for (part, start, len) in [("low", 0, 0xa0000), ("high", 0x100000, size - 0x100000)] {
            let dump = |node: &Node| {
                let file = node.root.path().join(format!("{part}.ram"));
                node.qmp(
                    name,
                    "pmemsave",
                    Some(
                        json!({"val": start, "size": len, "filename": file.display().to_string()}),
                    ),
                );
                file
            };
            differing += differing_pages(&dump(&src), &dump(&dst));
        }
        eprintln!("round {round}: RAM {size} bytes, {differing} pages differ");
        if differing > 0 {
            lossy.push(format!("round {round}: {differing} pages"));
        }
        dst.hv.finalize_migration_dst(&inst, &info, false).unwrap();
        src.hv.stop(name, NONE, FORCE).unwrap();
    }
    eprintln!(
        "{rounds} migrations, {} with pages that differ",
        lossy.len()
    );
    assert!(lossy.is_empty(), "lost writes: {lossy:?}");
}

/// Starts a guest on `src`, prepares `dst` for it and starts migrating it
/// (slowly, so that the test can act during the migration) in a thread.
fn begin_migration(
    src: &Node,
    dst: &Node,
    guard: &mut Guard,
    inst: &InstanceSpec,
) -> (String, std::thread::JoinHandle<hypervisors::Result<()>>) {
    let mut serial = start_and_boot(src, guard, inst);
    serial.counter_at_least(2);
    let info = src.hv.migration_info(inst).unwrap();
    guard.watch(dst, &inst.name);
    dst.hv.accept_instance(inst, &info, "127.0.0.2").unwrap();
    let hv = src.hv.clone();
    let moving = inst.clone();
    let migration =
        std::thread::spawn(move || hv.migrate_instance("cluster", &moving, "127.0.0.2", true));
    (info, migration)
}

#[test]
fn a_guest_that_resets_during_its_migration_is_not_reported_as_migrated() {
    let src = Node::new();
    let dst = Node::new();
    let mut guard = Guard::default();
    // 4 MiB/s: the migration lasts long enough (seconds) to reset the
    // guest in it.
    let inst = spec(&unique("resetmig"), &[("migration_bandwidth", json!(4))]);
    let name = inst.name.as_str();
    let (info, migration) = begin_migration(&src, &dst, &mut guard, &inst);
    poll("the migration to be under way", BOOT_DEADLINE, || {
        (src.qmp(name, "query-migrate", None)["status"] == "active").then_some(())
    });
    // What a guest's own reboot does (QEMU handles both alike).
    src.qmp(name, "system_reset", None);
    migration.join().unwrap().unwrap();
    let err = dst
        .hv
        .finalize_migration_dst(&inst, &info, true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("reset or powered off during the migration"),
        "{err}"
    );
    // The guest did not boot again: QEMU keeps it stopped on the target.
    assert_eq!(dst.qmp(name, "query-status", None)["status"], "shutdown");
    assert_eq!(
        dst.hv.instance_info(name, NONE).unwrap().unwrap().state,
        InstanceState::Shutdown
    );
    src.hv.finalize_migration_src(&inst, true, true).unwrap();
    assert!(src.pid(name).is_none(), "QEMU left on the source");
    // Stopping it does not wait for a power button nobody listens to.
    let t = Instant::now();
    dst.hv.stop(name, NONE, soft(60)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert!(dst.pid(name).is_none());
}

#[test]
fn right_after_a_migration_a_reset_stops_the_guest_but_a_reboot_asked_for_reboots_it() {
    let src = Node::new();
    let dst = Node::new();
    let mut guard = Guard::default();
    let inst = spec(&unique("resetafter"), &[]);
    let name = inst.name.as_str();
    let (info, migration) = begin_migration(&src, &dst, &mut guard, &inst);
    migration.join().unwrap().unwrap();
    dst.hv.finalize_migration_dst(&inst, &info, true).unwrap();
    src.hv.finalize_migration_src(&inst, true, true).unwrap();
    let mut serial = dst.serial(name);
    serial.counter_at_least(1);
    // The driver's own reboot is a reboot, watch or not.
    dst.hv.reboot(&inst).unwrap();
    serial.boot_line();
    assert_eq!(dst.qmp(name, "query-status", None)["status"], "running");

    // Migrated back: a reset within the watch leaves the guest stopped.
    let info = dst.hv.migration_info(&inst).unwrap();
    src.hv.accept_instance(&inst, &info, "127.0.0.1").unwrap();
    dst.hv
        .migrate_instance("cluster", &inst, "127.0.0.1", true)
        .unwrap();
    src.hv.finalize_migration_dst(&inst, &info, true).unwrap();
    dst.hv.finalize_migration_src(&inst, true, true).unwrap();
    src.qmp(name, "system_reset", None);
    poll("the guest to be stopped", BOOT_DEADLINE, || {
        (src.qmp(name, "query-status", None)["status"] == "shutdown").then_some(())
    });
    assert_eq!(
        src.hv.instance_info(name, NONE).unwrap().unwrap().state,
        InstanceState::Shutdown
    );
}
