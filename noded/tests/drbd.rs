//! `drbd` disks through the node RPC: two real `ganeti-noded` processes,
//! each with its own root and loopback address, their storage daemons
//! replicating over NBD with TLS; and a kvm guest (TCG) on such a disk
//! that survives the crash of its primary node.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use objects::paths::Paths;
use rpc::api::*;
use rpc::client::NodeClient;
use rpc::tls::{self, ClusterCa};
use serde_json::json;
use storage::drbd::DrbdDirs;

const DEADLINE: Duration = Duration::from_secs(120);

/// A `ganeti-noded` of its own root on a loopback address of its own.
struct Node {
    name: String,
    root: tempfile::TempDir,
    paths: Paths,
    ip: Ipv4Addr,
    addr: SocketAddr,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever a failed test left running on this node.
        storage::testing::kill_drbd_daemons(&self.paths);
        let kvm = self.paths.hypervisor_run_dir("kvm").join("pid");
        for pidfile in std::fs::read_dir(kvm).into_iter().flatten().flatten() {
            if let Some(pid) = read_pid(&pidfile.path()) {
                let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| {
                        String::from_utf8_lossy(&c).contains(&*self.root.path().to_string_lossy())
                    })
                    .unwrap_or(false);
                if ours {
                    kill9(pid);
                }
            }
        }
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn kill9(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// The loopback address of node `k` of this test process.
fn node_ip(k: u8) -> Ipv4Addr {
    let pid = std::process::id();
    Ipv4Addr::new(127, 130 + (pid % 100) as u8, (pid >> 7) as u8, k)
}

fn free_port(ips: &[Ipv4Addr]) -> u16 {
    loop {
        let l = TcpListener::bind((ips[0], 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        if ips[1..]
            .iter()
            .all(|ip| TcpListener::bind((*ip, port)).is_ok())
        {
            return port;
        }
    }
}

fn start_noded(name: &str, paths: &Paths, addr: SocketAddr) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.root().join("noded.stderr"))
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_ganeti-noded"))
        .args([
            "--bind",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
            "-f",
            "-d",
        ])
        .env("GANETI_ROOTDIR", paths.root())
        .env("GANETI_HOSTNAME", name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

impl Node {
    fn spawn(k: u8, ca: &ClusterCa) -> Node {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path());
        let name = format!("node{k}");
        let ip = node_ip(k);
        tls::write_cluster_ca(&paths, ca, true).unwrap();
        let pem = tls::create_node_cert(ca, &name, ip.into()).unwrap();
        tls::write_node_cert(&paths, &pem).unwrap();
        let addr = SocketAddr::new(ip.into(), free_port(&[ip]));
        let child = start_noded(&name, &paths, addr);
        let mut node = Node {
            name,
            root,
            paths,
            ip,
            addr,
            child,
        };
        node.wait_serving();
        node
    }

    fn wait_serving(&mut self) {
        let (addr, child) = (self.addr, &mut self.child);
        wait_until("the node daemon to listen", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("ganeti-noded exited ({status})");
            }
            TcpStream::connect(addr).is_ok()
        });
    }

    /// Kills the node daemon and starts a new one on the same root.
    fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        wait_until("the port to close", || {
            TcpStream::connect(self.addr).is_err()
        });
        self.child = start_noded(&self.name, &self.paths, self.addr);
        self.wait_serving();
    }

    fn client(&self) -> NodeClient {
        NodeClient::from_paths(&self.paths, &self.name, self.addr).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.paths.root().join("noded.stderr")).unwrap_or_default()
    }

    fn dirs(&self) -> DrbdDirs {
        DrbdDirs::new(&self.paths)
    }

    fn data_file(&self, disk: &DiskSpec) -> PathBuf {
        self.paths
            .file_storage_dir()
            .join("inst1")
            .join(format!("{}_data", disk.uuid))
    }

    fn daemon_pid(&self, disk: &DiskSpec) -> i32 {
        read_pid(&self.dirs().pid_file(&disk.uuid)).expect("a storage daemon pid file")
    }

    /// Files, processes and mounts the disk's daemon left on this node.
    fn leftovers(&self, disk: &DiskSpec) -> Vec<PathBuf> {
        storage::drbd::leftovers(&self.dirs(), &disk.uuid)
    }

    fn install_tiny_os(&self) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../share/os/tiny");
        let dst = self.paths.os_search_path()[0].join("tiny");
        std::fs::create_dir_all(&dst).unwrap();
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
        }
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` (a node call) until it says yes.
async fn poll_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn drbd_disk(a: &Node, b: &Node, size: u64) -> DiskSpec {
    DiskSpec {
        uuid: "8d2f7c1a-4e5b-4a3c-9f1e-2b6d8c0a7e31".into(),
        index: 0,
        size,
        dev_type: DiskTemplate::Drbd,
        logical_id: None,
        mode: DiskMode::Rw,
        name: None,
        params: Default::default(),
        children: Vec::new(),
        drbd: Some(DrbdLink {
            nodes: [
                DrbdEndpoint {
                    node: a.name.clone(),
                    ip: a.ip.to_string(),
                },
                DrbdEndpoint {
                    node: b.name.clone(),
                    ip: b.ip.to_string(),
                },
            ],
            port: free_port(&[a.ip, b.ip]),
        }),
    }
}

fn instance(
    primary: &Node,
    disks: Vec<DiskSpec>,
    hypervisor: &str,
    hvparams: HvParams,
) -> InstanceSpec {
    InstanceSpec {
        name: "inst1".into(),
        uuid: "3c9a1f0e-7b2d-4e6a-8c5f-1d0e9b8a7c62".into(),
        primary_node: primary.name.clone(),
        secondary_nodes: vec![],
        hypervisor: hypervisor.into(),
        hvparams,
        beparams: BeParams {
            maxmem: 128,
            minmem: Some(128),
            vcpus: 1,
            auto_balance: true,
            always_failover: false,
            spindle_use: 1,
        },
        os: "tiny+default".into(),
        osparams: BTreeMap::new(),
        disks,
        nics: vec![],
        tags: vec![],
    }
}

async fn find(c: &NodeClient, disk: &DiskSpec) -> BlockDevStatus {
    c.call(&BlockdevFind {
        instance_name: "inst1".into(),
        disk: disk.clone(),
    })
    .await
    .unwrap()
    .expect("the disk is on the node")
}

fn in_sync(s: &BlockDevStatus) -> bool {
    !s.is_degraded && s.sync_percent.is_none()
}

async fn create(c: &NodeClient, disk: &DiskSpec, on_primary: bool) {
    c.call(&BlockdevCreate {
        instance_name: "inst1".into(),
        disk: disk.clone(),
        size: None,
        on_primary,
    })
    .await
    .unwrap();
}

async fn assemble(c: &NodeClient, disk: &DiskSpec, on_primary: bool) -> AttachedDisk {
    c.call(&BlockdevAssemble {
        instance_name: "inst1".into(),
        disk: disk.clone(),
        on_primary,
    })
    .await
    .unwrap()
}

/// Writes `len` bytes of `byte` at `offset` through an attached disk, as
/// its hypervisor would reach it (NBD with TLS), and flushes.
fn write_through(attached: &AttachedDisk, offset: u64, len: usize, byte: u8) -> Result<(), String> {
    let tls = attached.tls.as_ref().expect("TLS for the disk");
    let uri = attached.uri.as_deref().expect("a URI");
    let (hostport, export) = uri.strip_prefix("nbd://").unwrap().split_once('/').unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap();
    let out = Command::new("qemu-io")
        .arg("--object")
        .arg(format!(
            "tls-creds-x509,id=tls0,dir={},endpoint=client",
            tls.creds_dir.display()
        ))
        .arg("--image-opts")
        .arg(format!(
            "driver=nbd,server.type=inet,server.host={host},server.port={port},export={export},\
             tls-creds=tls0,tls-hostname={}",
            tls.hostname
        ))
        .args([
            "-c",
            &format!("write -P {byte} {offset} {len}"),
            "-c",
            "flush",
        ])
        .output()
        .map_err(|e| format!("cannot run qemu-io ({e}): scripts/install-deps.sh installs it"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains("wrote") {
        Ok(())
    } else {
        Err(text)
    }
}

fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, offset).unwrap();
    buf
}

#[tokio::test]
async fn a_drbd_disk_replicates_survives_a_dead_secondary_and_leaves_nothing() {
    let ca = tls::create_cluster_ca("cluster.example.com").unwrap();
    let mut n1 = Node::spawn(1, &ca);
    let n2 = Node::spawn(2, &ca);
    n1.install_tiny_os();
    let (c1, c2) = (n1.client(), n2.client());
    let disk = drbd_disk(&n1, &n2, 32);
    let inst = instance(&n1, vec![disk.clone()], "fake", HvParams::new());

    // Secondary first, then primary; the node daemons' supervisors run the
    // rest: the initial sync, the secondary's own connection.
    create(&c2, &disk, false).await;
    create(&c1, &disk, true).await;
    poll_until("the initial sync", || async {
        in_sync(&find(&c1, &disk).await) && in_sync(&find(&c2, &disk).await)
    })
    .await;
    let s = find(&c2, &disk).await;
    assert_eq!(s.ldisk_status, LocalDiskStatus::Okay, "{s:?}");
    let done = c1
        .call(&DrbdWaitSync {
            instance_name: "inst1".into(),
            disks: vec![disk.clone()],
        })
        .await
        .unwrap();
    assert!(done.all_done && done.min_resync == 100.0, "{done:?}");

    // The OS is installed through the primary (a FUSE path for its
    // script): what it writes is on the secondary's volume.
    c1.call(&InstanceOsAdd {
        instance: inst.clone(),
        reinstall: false,
        debug: 0,
    })
    .await
    .unwrap();
    let header = read_at(&n2.data_file(&disk), 0, 17);
    assert_eq!(header, b"GANETI-RS TINY OS");
    assert!(n1
        .leftovers(&disk)
        .iter()
        .all(|p| !p.ends_with(format!("{}.disk", disk.uuid))));

    // What a hypervisor gets: the local daemon over NBD with TLS.
    let attached = assemble(&c1, &disk, true).await;
    write_through(&attached, 1 << 20, 65536, 0xab).unwrap();
    assert_eq!(
        read_at(&n2.data_file(&disk), 1 << 20, 65536),
        vec![0xab; 65536]
    );

    // The secondary's daemon dies while the primary writes: the writes go
    // on, the disk is degraded, and the secondary's node says its daemon
    // died.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (attached, done) = (attached.clone(), done.clone());
        std::thread::spawn(move || {
            for n in 0..30u64 {
                let offset = (4 << 20) + n * 65536;
                write_through(&attached, offset, 65536, n as u8 + 1)?;
                done.store(n + 1, std::sync::atomic::Ordering::SeqCst);
            }
            Ok::<(), String>(())
        })
    };
    wait_until("a few writes", || {
        done.load(std::sync::atomic::Ordering::SeqCst) >= 3
    });
    kill9(n2.daemon_pid(&disk));
    let at_kill = done.load(std::sync::atomic::Ordering::SeqCst);
    writer
        .join()
        .unwrap()
        .expect("writes go on once the secondary died");
    assert!(at_kill < 30, "the writes ended before the secondary died");
    write_through(&attached, 8 << 20, 65536, 0xcd).unwrap();
    let s1 = find(&c1, &disk).await;
    assert!(s1.is_degraded, "{s1:?}");
    let d1 = s1.drbd.unwrap();
    assert!(
        !d1.peer_reachable && d1.out_of_sync_bytes >= 65536,
        "{d1:?}"
    );
    assert!(
        d1.out_of_sync_bytes <= 8 << 20,
        "only what was written is out of sync: {d1:?}"
    );
    let s2 = find(&c2, &disk).await;
    assert_eq!(s2.ldisk_status, LocalDiskStatus::Faulty, "{s2:?}");
    wait_until("the secondary to report its dead daemon", || {
        n2.log().contains("storage daemon of drbd disk") && n2.log().contains("died")
    });
    let err = c1
        .call(&DrbdWaitSync {
            instance_name: "inst1".into(),
            disks: vec![disk.clone()],
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not connected"), "{err}");

    // Assembled again, the secondary is resynced with what it missed.
    assemble(&c2, &disk, false).await;
    poll_until("the resync", || async {
        in_sync(&find(&c1, &disk).await) && in_sync(&find(&c2, &disk).await)
    })
    .await;
    assert_eq!(
        read_at(&n2.data_file(&disk), 8 << 20, 65536),
        vec![0xcd; 65536]
    );
    assert!(
        std::fs::read(n1.data_file(&disk)).unwrap() == std::fs::read(n2.data_file(&disk)).unwrap(),
        "the copies differ after the resync"
    );

    // A restarted node daemon finds its running storage daemon again.
    let pid = n1.daemon_pid(&disk);
    n1.restart();
    let c1 = n1.client();
    assert!(n1.log().contains("found an assembled drbd disk"));
    assert!(alive(pid) && in_sync(&find(&c1, &disk).await));

    // Disconnected on request, it stays so; attached, it syncs in full.
    let req = DrbdDisconnectNet {
        instance_name: "inst1".into(),
        disks: vec![disk.clone()],
    };
    c1.call(&req).await.unwrap();
    let s = find(&c1, &disk).await;
    assert!(
        s.is_degraded && !s.drbd.as_ref().unwrap().replicating,
        "{s:?}"
    );
    c1.call(&DrbdAttachNet {
        instance_name: "inst1".into(),
        disks: vec![disk.clone()],
        multimaster: true,
        primary: Some(n1.name.clone()),
    })
    .await
    .unwrap();
    poll_until("the sync after reattaching", || async {
        c1.call(&DrbdWaitSync {
            instance_name: "inst1".into(),
            disks: vec![disk.clone()],
        })
        .await
        .is_ok_and(|s| s.all_done)
            && in_sync(&find(&c1, &disk).await)
    })
    .await;
    let paused = c1
        .call(&BlockdevPauseResumeSync {
            instance_name: "inst1".into(),
            disks: vec![disk.clone()],
            pause: true,
        })
        .await
        .unwrap();
    assert_eq!(paused, vec![(true, None)]);

    // Shut down on both nodes: no daemon, socket, mount or file is left;
    // removed: neither are the volumes.
    for (c, n) in [(&c1, &n1), (&c2, &n2)] {
        let pid = n.daemon_pid(&disk);
        c.call(&BlockdevShutdown {
            instance_name: "inst1".into(),
            disk: disk.clone(),
        })
        .await
        .unwrap();
        assert!(!alive(pid), "{} kept its storage daemon", n.name);
        assert_eq!(n.leftovers(&disk), Vec::<PathBuf>::new());
    }
    for (c, n) in [(&c1, &n1), (&c2, &n2)] {
        c.call(&BlockdevRemove {
            instance_name: "inst1".into(),
            disk: disk.clone(),
        })
        .await
        .unwrap();
        assert!(!n.data_file(&disk).exists());
        assert!(c
            .call(&BlockdevFind {
                instance_name: "inst1".into(),
                disk: disk.clone(),
            })
            .await
            .unwrap()
            .is_none());
        let run: Vec<_> = std::fs::read_dir(n.dirs().run_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|f| f != "tls")
            .collect();
        assert!(run.is_empty(), "{} left {run:?}", n.name);
    }
}

/// Lines of a guest's serial console, read by a thread until it closes.
struct Serial {
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Serial {
    fn connect(path: &Path) -> Serial {
        let mut stream = None;
        wait_until("the serial socket", || {
            stream = UnixStream::connect(path).ok();
            stream.is_some()
        });
        let stream = stream.unwrap();
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

    /// Waits for a line for which `f` says something.
    fn wait<T>(&mut self, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
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

    /// Every line left until the console closes.
    fn drain(&mut self) {
        while let Ok(l) = self.lines.recv_timeout(DEADLINE) {
            self.seen.push(l);
        }
    }
}

fn counter_of(line: &str) -> Option<u64> {
    line.strip_prefix("counter ")?.trim().parse().ok()
}

fn resumed_from(line: &str) -> Option<u64> {
    line.strip_prefix("resumed from ")?.trim().parse().ok()
}

/// The test guest of `scripts/build-test-guest.sh` (built if needed).
fn test_guest() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/<test>
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let out_dir = target.join("test-guest");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-test-guest.sh");
    let out = Command::new(&script).arg(&out_dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    (out_dir.join("vmlinuz"), out_dir.join("initrd.img"))
}

#[tokio::test]
async fn a_kvm_guest_on_a_drbd_disk_resumes_on_its_secondary_after_its_primary_crashed() {
    let (kernel, initrd) = test_guest();
    let ca = tls::create_cluster_ca("cluster.example.com").unwrap();
    let n1 = Node::spawn(1, &ca);
    let n2 = Node::spawn(2, &ca);
    let (c1, c2) = (n1.client(), n2.client());
    let disk = drbd_disk(&n1, &n2, 16);
    let hvparams: HvParams = [
        ("kvm_flag", json!("disabled")),
        ("kernel_path", json!(kernel.display().to_string())),
        ("initrd_path", json!(initrd.display().to_string())),
        // The guest keeps its counter on its disk.
        ("kernel_args", json!("panic=-1 quiet counter_disk=/dev/vda")),
        ("root_path", json!("")),
        ("serial_console", json!(true)),
        ("vnc_bind_address", json!("")),
        ("machine_version", json!("pc")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    create(&c2, &disk, false).await;
    create(&c1, &disk, true).await;
    poll_until("the initial sync", || async {
        in_sync(&find(&c1, &disk).await) && in_sync(&find(&c2, &disk).await)
    })
    .await;

    // The guest boots on node1 from its node's storage daemon.
    let on_n1 = instance(&n1, vec![disk.clone()], "kvm", hvparams.clone());
    c1.call(&InstanceStart {
        instance: on_n1.clone(),
        startup_paused: false,
    })
    .await
    .unwrap();
    let kvm_run = |n: &Node| n.paths.hypervisor_run_dir("kvm");
    let mut serial = Serial::connect(&kvm_run(&n1).join("ctrl/inst1.serial"));
    assert_eq!(serial.wait("the first boot", resumed_from), 0);
    while serial.wait("counters", counter_of) < 20 {}

    // Node1 crashes: its guest, its storage daemon, its node daemon.
    let qemu = read_pid(&kvm_run(&n1).join("pid/inst1")).expect("QEMU's pid");
    let qsd = n1.daemon_pid(&disk);
    let mut n1 = n1;
    kill9(qemu);
    kill9(qsd);
    n1.child.kill().unwrap();
    n1.child.wait().unwrap();
    serial.drain();
    let last = serial
        .seen
        .iter()
        .filter_map(|l| counter_of(l))
        .max()
        .unwrap();

    // Started on node2 (now its primary), it goes on from the disk.
    let mut on_n2 = instance(&n2, vec![disk.clone()], "kvm", hvparams);
    on_n2.secondary_nodes = vec![n1.name.clone()];
    c2.call(&InstanceStart {
        instance: on_n2.clone(),
        startup_paused: false,
    })
    .await
    .unwrap();
    let mut serial = Serial::connect(&kvm_run(&n2).join("ctrl/inst1.serial"));
    let resumed = serial.wait("the boot on node2", resumed_from);
    assert!(
        resumed >= last,
        "the guest resumed from {resumed}, but printed {last} before node1 crashed"
    );
    let next = serial.wait("a counter on node2", counter_of);
    assert_eq!(next, resumed + 1);
    let s = find(&c2, &disk).await;
    assert!(s.is_degraded && s.drbd.as_ref().unwrap().primary, "{s:?}");
    assert_eq!(s.ldisk_status, LocalDiskStatus::Okay);

    c2.call(&InstanceShutdown {
        instance: on_n2,
        timeout_secs: 0,
    })
    .await
    .unwrap();
    c2.call(&BlockdevRemove {
        instance_name: "inst1".into(),
        disk: disk.clone(),
    })
    .await
    .unwrap();
    assert_eq!(n2.leftovers(&disk), Vec::<PathBuf>::new());
}

/// The counter the test guest last wrote to the disk whose data volume
/// is `path` (its first sector).
fn counter_on_disk(path: &Path) -> u64 {
    let sector = read_at(path, 0, 512);
    let text = String::from_utf8_lossy(&sector);
    text.trim_end_matches('\0')
        .trim()
        .strip_prefix("ganeti-rs counter ")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Live-migrates `inst` from `src` to `dst` as the master does, then makes
/// `dst` the disks' primary.
async fn migrate(src: &Node, dst: &Node, inst: &InstanceSpec) {
    let (s, d) = (src.client(), dst.client());
    let info = s
        .call(&MigrationInfo {
            instance: inst.clone(),
        })
        .await
        .unwrap();
    d.call(&AcceptInstance {
        instance: inst.clone(),
        info: info.clone(),
        target: dst.ip.to_string(),
    })
    .await
    .unwrap();
    s.call(&MigrateInstance {
        cluster_name: "cluster.example.com".into(),
        instance: inst.clone(),
        target: dst.ip.to_string(),
        live: true,
    })
    .await
    .unwrap();
    d.call(&FinalizeMigrationDst {
        instance: inst.clone(),
        info,
        success: true,
    })
    .await
    .unwrap();
    s.call(&FinalizeMigrationSrc {
        instance: inst.clone(),
        success: true,
        live: true,
    })
    .await
    .unwrap();
    for c in [&s, &d] {
        c.call(&DrbdAttachNet {
            instance_name: inst.name.clone(),
            disks: inst.disks.clone(),
            multimaster: false,
            primary: Some(dst.name.clone()),
        })
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_kvm_guest_on_a_drbd_disk_migrates_back_and_forth_and_its_writes_reach_both_nodes() {
    let (kernel, initrd) = test_guest();
    let ca = tls::create_cluster_ca("cluster.example.com").unwrap();
    let n1 = Node::spawn(1, &ca);
    let n2 = Node::spawn(2, &ca);
    let (c1, c2) = (n1.client(), n2.client());
    let disk = drbd_disk(&n1, &n2, 16);
    let hvparams: HvParams = [
        ("kvm_flag", json!("disabled")),
        ("kernel_path", json!(kernel.display().to_string())),
        ("initrd_path", json!(initrd.display().to_string())),
        ("kernel_args", json!("panic=-1 quiet counter_disk=/dev/vda")),
        ("root_path", json!("")),
        ("serial_console", json!(true)),
        ("vnc_bind_address", json!("")),
        ("machine_version", json!("pc")),
        ("migration_port", json!(free_port(&[n1.ip, n2.ip]))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    create(&c2, &disk, false).await;
    create(&c1, &disk, true).await;
    poll_until("the initial sync", || async {
        in_sync(&find(&c1, &disk).await) && in_sync(&find(&c2, &disk).await)
    })
    .await;
    let inst = instance(&n1, vec![disk.clone()], "kvm", hvparams);
    c1.call(&InstanceStart {
        instance: inst.clone(),
        startup_paused: false,
    })
    .await
    .unwrap();
    let serial_of = |n: &Node| n.paths.hypervisor_run_dir("kvm").join("ctrl/inst1.serial");
    let mut serial = Serial::connect(&serial_of(&n1));
    serial.wait("the boot", resumed_from);
    let mut last = serial.wait("a counter", counter_of);

    for (src, dst) in [(&n1, &n2), (&n2, &n1)] {
        migrate(src, dst, &inst).await;
        // The guest counts on, on the other node, without a reboot.
        let mut s = Serial::connect(&serial_of(dst));
        let now = s.wait("a counter after the migration", counter_of);
        assert!(now > last, "the counter went from {last} to {now}");
        while s.wait("counters", counter_of) < now + 10 {}
        assert!(
            !s.seen.iter().any(|l| resumed_from(l).is_some()),
            "the guest rebooted: {:?}",
            s.seen
        );
        // What it wrote on its new node is on both volumes.
        last = s.wait("a counter", counter_of);
        for n in [&n1, &n2] {
            let on_disk = counter_on_disk(&n.data_file(&disk));
            assert!(
                on_disk >= last,
                "{}'s volume holds counter {on_disk}, the guest printed {last}",
                n.name
            );
        }
        let s = find(&dst.client(), &disk).await;
        assert!(in_sync(&s) && s.drbd.as_ref().unwrap().primary, "{s:?}");
        drop(serial);
        serial = Serial::connect(&serial_of(dst));
    }

    c1.call(&InstanceShutdown {
        instance: inst,
        timeout_secs: 0,
    })
    .await
    .unwrap();
    for (c, n) in [(&c1, &n1), (&c2, &n2)] {
        c.call(&BlockdevRemove {
            instance_name: "inst1".into(),
            disk: disk.clone(),
        })
        .await
        .unwrap();
        assert_eq!(n.leftovers(&disk), Vec::<PathBuf>::new());
    }
}
