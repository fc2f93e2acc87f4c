//! The real `ganeti-noded` binary, on a loopback address with its own root, called
//! through the client.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use objects::paths::Paths;
use rpc::api::*;
use rpc::client::{ClientError, NodeClient};
use rpc::tls::{self, ClusterCa};

const NODE: &str = "node1.example.com";

struct Node {
    name: String,
    test_hooks: bool,
    _root: tempfile::TempDir,
    paths: Paths,
    child: Child,
    addr: SocketAddr,
    ca: ClusterCa,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address and port no other test uses at the same time: the
/// address comes from the test process's id (tests may run in parallel
/// processes), the port from a counter (and in parallel threads).
fn unique_addr() -> SocketAddr {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let pid = std::process::id();
    let ip = Ipv4Addr::new(
        127,
        ((pid >> 14) & 0xff) as u8 | 0x80,
        ((pid >> 6) & 0xff) as u8,
        ((pid & 0x3f) + 1) as u8,
    );
    SocketAddr::new(ip.into(), 21000 + NEXT.fetch_add(1, Ordering::SeqCst))
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_certs(paths: &Paths, ca: &ClusterCa, name: &str) {
    tls::write_cluster_ca(paths, ca, true).unwrap();
    let pem = tls::create_node_cert(ca, name, "127.0.0.1".parse().unwrap()).unwrap();
    tls::write_node_cert(paths, &pem).unwrap();
}

/// Starts a node daemon; `certs` says whether its TLS files exist first.
fn spawn_node(test_hooks: bool, certs: bool) -> Node {
    let ca = tls::create_cluster_ca("cluster.example.com").unwrap();
    spawn_named(NODE, ca, test_hooks, certs)
}

/// Runs `ganeti-noded` for node `name` rooted at `paths`.
fn start_process(name: &str, paths: &Paths, addr: SocketAddr, test_hooks: bool) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.root().join("noded.stderr"))
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganeti-noded"));
    cmd.args([
        "--bind",
        &addr.ip().to_string(),
        "--port",
        &addr.port().to_string(),
        "-f",
        "-d",
    ])
    .env("GANETI_ROOTDIR", paths.root())
    .env("GANETI_HOSTNAME", name)
    .env("GANETI_FAKE_MEMORY", "4096")
    .env("GANETI_FAKE_CPUS", "4")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(log);
    if test_hooks {
        cmd.arg("--enable-test-hooks");
    }
    cmd.spawn().unwrap()
}

/// Starts node `name` of the cluster of `ca`.
fn spawn_named(name: &str, ca: ClusterCa, test_hooks: bool, certs: bool) -> Node {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::new(root.path());
    if certs {
        write_certs(&paths, &ca, name);
    }
    let addr = unique_addr();
    let child = start_process(name, &paths, addr, test_hooks);
    let mut node = Node {
        name: name.to_string(),
        test_hooks,
        _root: root,
        paths,
        child,
        addr,
        ca,
    };
    if certs {
        node.wait_serving();
    }
    node
}

impl Node {
    fn wait_serving(&mut self) {
        let addr = self.addr;
        let child = &mut self.child;
        let stderr = self.paths.root().join("noded.stderr");
        wait_until("the node daemon to listen", Duration::from_secs(60), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "ganeti-noded exited ({status}): {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            TcpStream::connect(addr).is_ok()
        });
    }

    /// Kills the daemon and starts a new one on the same port and root.
    fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.restart_after_exit();
    }

    /// Starts the daemon again after it exited.
    fn restart_after_exit(&mut self) {
        wait_until("the port to close", Duration::from_secs(60), || {
            TcpStream::connect(self.addr).is_err()
        });
        self.child = start_process(&self.name, &self.paths, self.addr, self.test_hooks);
        self.wait_serving();
    }

    fn client(&self) -> NodeClient {
        NodeClient::from_paths(&self.paths, &self.name, self.addr).unwrap()
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

fn instance(name: &str, disks: Vec<DiskSpec>) -> InstanceSpec {
    InstanceSpec {
        name: name.into(),
        uuid: format!("{name}-uuid"),
        primary_node: NODE.into(),
        secondary_nodes: vec![],
        hypervisor: "fake".into(),
        hvparams: HvParams::new(),
        beparams: BeParams {
            maxmem: 512,
            minmem: Some(256),
            vcpus: 2,
            auto_balance: true,
            always_failover: false,
            spindle_use: 1,
        },
        os: "tiny+default".into(),
        osparams: BTreeMap::from([("greeting".to_string(), "hello".to_string())]),
        disks,
        nics: vec![NicSpec {
            mac: "aa:00:00:11:22:33".into(),
            ip: None,
            mode: NicMode::Bridged,
            link: "br0".into(),
            network: None,
            uuid: None,
            name: None,
            vlan: None,
        }],
        tags: vec![],
    }
}

fn file_disk(uuid: &str, size: u64) -> DiskSpec {
    DiskSpec {
        uuid: uuid.into(),
        index: 0,
        size,
        dev_type: DiskTemplate::File,
        logical_id: None,
        mode: DiskMode::Rw,
        name: None,
        params: Default::default(),
        children: Vec::new(),
        drbd: None,
    }
}

fn fake() -> Vec<(String, HvParams)> {
    vec![("fake".to_string(), HvParams::new())]
}

#[tokio::test]
async fn an_instance_goes_through_its_life_cycle_on_the_fake_hypervisor() {
    let node = spawn_node(false, true);
    node.install_tiny_os();
    let c = node.client();

    let v = c.call(&Version {}).await.unwrap();
    assert_eq!(v.protocol, PROTOCOL_VERSION);
    assert_eq!(v.software, env!("CARGO_PKG_VERSION"));

    let info = c
        .call(&NodeInfo {
            hypervisors: fake(),
            storage: vec![],
        })
        .await
        .unwrap();
    assert_eq!(info.name, NODE);
    assert_eq!(info.hypervisors[0].info.memory_total, 4096);
    assert_eq!(info.hypervisors[0].info.memory_free, 4096);
    assert_eq!(info.hypervisors[0].info.cpu_total, 4);
    assert_eq!(info.storage[0].kind, DiskTemplate::File);
    assert!(info.storage[0].total_mib > 0);

    let oses = c.call(&OsDiagnose {}).await.unwrap();
    let tiny = oses.iter().find(|o| o.name == "tiny").expect("tiny listed");
    assert!(tiny.valid, "{}", tiny.diagnose);
    assert_eq!(tiny.variants, vec!["default", "verbose"]);
    assert_eq!(tiny.api_versions, vec![20]);
    assert_eq!(tiny.parameters[0].0, "greeting");

    let disk = file_disk("d0", 16);
    let inst = instance("inst1", vec![disk.clone()]);
    let created = c
        .call(&BlockdevCreate {
            instance_name: "inst1".into(),
            disk: disk.clone(),
            size: None,
            on_primary: true,
        })
        .await
        .unwrap();
    let disk_path = PathBuf::from(created.path.unwrap());
    assert!(disk_path.starts_with(node.paths.file_storage_dir()));
    assert_eq!(std::fs::metadata(&disk_path).unwrap().len(), 16 << 20);

    c.call(&InstanceOsAdd {
        instance: inst.clone(),
        reinstall: false,
        debug: 0,
    })
    .await
    .unwrap();
    let header = std::fs::read(&disk_path).unwrap();
    let text = String::from_utf8_lossy(&header[..200]);
    assert!(
        text.starts_with(
            "GANETI-RS TINY OS\ninstance=inst1\nvariant=default\nreinstall=0\ngreeting=hello\n"
        ),
        "{text}"
    );
    assert_eq!(header.len(), 16 << 20, "create must not truncate the disk");
    let logs: Vec<_> = std::fs::read_dir(node.paths.os_log_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        logs.iter()
            .any(|l| l.starts_with("add-tiny+default-inst1-")),
        "{logs:?}"
    );

    c.call(&InstanceStart {
        instance: inst.clone(),
        startup_paused: false,
    })
    .await
    .unwrap();
    // Starting a running instance is accepted (idempotent).
    c.call(&InstanceStart {
        instance: inst.clone(),
        startup_paused: false,
    })
    .await
    .unwrap();
    let list = c
        .call(&InstanceList {
            hypervisors: vec!["fake".into()],
        })
        .await
        .unwrap();
    assert_eq!(list, vec!["inst1"]);
    let one = c
        .call(&InstanceInfo {
            instance: "inst1".into(),
            hypervisor: "fake".into(),
            hvparams: HvParams::new(),
        })
        .await
        .unwrap()
        .expect("inst1 running");
    assert_eq!(
        (one.memory, one.vcpus, one.state),
        (512, 2, InstanceState::Running)
    );
    let all = c
        .call(&AllInstancesInfo {
            hypervisors: fake(),
        })
        .await
        .unwrap();
    assert_eq!(all["inst1"].hypervisor, "fake");
    let info = c
        .call(&NodeInfo {
            hypervisors: fake(),
            storage: vec![],
        })
        .await
        .unwrap();
    assert_eq!(info.hypervisors[0].info.memory_free, 4096 - 512);

    c.call(&InstanceBalloonMemory {
        instance: inst.clone(),
        memory_mib: 300,
    })
    .await
    .unwrap();
    let all = c
        .call(&AllInstancesInfo {
            hypervisors: fake(),
        })
        .await
        .unwrap();
    assert_eq!(all["inst1"].info.memory, 300);
    // The fake hypervisor cannot hotplug: Ganeti's message.
    let err = c
        .call(&HotplugSupported {
            instance: inst.clone(),
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Hotplug is not supported: Hotplug is not supported by this hypervisor"),
        "{err}"
    );
    let err = c
        .call(&HotplugDeviceCall {
            instance: inst.clone(),
            action: HotplugAction::Add,
            device: HotplugDevice::Nic(inst.nics.first().cloned().unwrap_or(NicSpec {
                mac: "aa:00:00:00:00:09".into(),
                ip: None,
                mode: NicMode::Bridged,
                link: String::new(),
                network: None,
                uuid: None,
                name: None,
                vlan: None,
            })),
            seq: 0,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Hotplug is not supported"), "{err}");
    let console = c
        .call(&InstanceConsole {
            instance: inst.clone(),
        })
        .await
        .unwrap();
    assert!(
        matches!(console, ConsoleInfo::Message { .. }),
        "{console:?}"
    );

    c.call(&InstanceReboot {
        instance: inst.clone(),
        reboot_type: RebootType::Hard,
        shutdown_timeout_secs: 5,
    })
    .await
    .unwrap();
    c.call(&InstanceShutdown {
        instance: inst.clone(),
        timeout_secs: 5,
    })
    .await
    .unwrap();
    let list = c
        .call(&InstanceList {
            hypervisors: vec!["fake".into()],
        })
        .await
        .unwrap();
    assert!(list.is_empty());
    let gone = c
        .call(&InstanceInfo {
            instance: "inst1".into(),
            hypervisor: "fake".into(),
            hvparams: HvParams::new(),
        })
        .await
        .unwrap();
    assert!(gone.is_none());

    // Instance rename: the instance's directory moves with it.
    let mut disk = disk;
    c.call(&FileStorageDirRename {
        old_path: "/srv/ganeti/file-storage/inst1".into(),
        new_path: "/srv/ganeti/file-storage/inst9".into(),
    })
    .await
    .unwrap();
    assert!(!disk_path.exists());
    disk.logical_id = Some("/srv/ganeti/file-storage/inst9/d0.file.disk0".into());
    let sizes = c
        .call(&BlockdevInfo {
            instance_name: "inst9".into(),
            disks: vec![disk.clone()],
        })
        .await
        .unwrap();
    assert_eq!(sizes[0].as_ref().map(|i| i.size_mib), Some(16));
    let status = c
        .call(&BlockdevFind {
            instance_name: "inst9".into(),
            disk: disk.clone(),
        })
        .await
        .unwrap()
        .expect("disk found");
    assert_eq!(status.ldisk_status, LocalDiskStatus::Okay);
    assert!(!status.is_degraded);
    assert!(status.dev_path.unwrap().ends_with("inst9/d0.file.disk0"));

    c.call(&BlockdevRemove {
        instance_name: "inst9".into(),
        disk,
    })
    .await
    .unwrap();
    assert!(!node.paths.file_storage_dir().join("inst9").exists());
    let gone = c
        .call(&BlockdevFind {
            instance_name: "inst9".into(),
            disk: file_disk("d0", 16),
        })
        .await
        .unwrap();
    assert!(gone.is_none());
    c.call(&FileStorageDirRemove {
        path: "/srv/ganeti/file-storage/inst9".into(),
    })
    .await
    .unwrap();
    let err = c
        .call(&FileStorageDirCreate {
            path: "/var/tmp/x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Refused));
}

#[tokio::test]
async fn node_errors_come_back_typed_and_explained() {
    let node = spawn_node(false, true);
    node.install_tiny_os();
    let c = node.client();

    // Not enough memory on the fake node.
    let mut big = instance("big", vec![]);
    big.beparams.maxmem = 8192;
    big.beparams.minmem = Some(8192);
    let err = c
        .call(&InstanceStart {
            instance: big,
            startup_paused: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Failed));
    assert!(err.to_string().contains("not enough memory"), "{err}");

    // A disk outside the storage directory.
    let mut disk = file_disk("d0", 1);
    disk.logical_id = Some("/var/tmp/evil.img".into());
    let err = c
        .call(&BlockdevCreate {
            instance_name: "x".into(),
            disk,
            size: None,
            on_primary: true,
        })
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Refused));
    assert!(
        err.to_string()
            .contains("outside the allowed storage directory"),
        "{err}"
    );

    // Unknown OS variant; unknown hypervisor.
    let mut inst = instance("i", vec![]);
    inst.os = "tiny+nosuch".into();
    let err = c
        .call(&InstanceOsAdd {
            instance: inst,
            reinstall: false,
            debug: 0,
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not support variant 'nosuch'"),
        "{err}"
    );
    let mut inst = instance("i", vec![]);
    inst.hypervisor = "xen-hvm".into();
    let err = c
        .call(&InstanceStart {
            instance: inst,
            startup_paused: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Unsupported));
    assert!(
        err.to_string().contains("unknown hypervisor 'xen-hvm'"),
        "{err}"
    );

    // A diskless instance installs fine; parameters are validated.
    c.call(&InstanceOsAdd {
        instance: instance("diskless", vec![]),
        reinstall: true,
        debug: 1,
    })
    .await
    .unwrap();
    let ok = c
        .call(&OsValidate {
            os: "tiny".into(),
            osparams: BTreeMap::from([("greeting".to_string(), "x".repeat(300))]),
            required: true,
        })
        .await
        .unwrap_err();
    assert!(ok.to_string().contains("longer than 200"), "{ok}");

    // Uploads outside the allow-list are refused; ssconf files are written.
    let err = c
        .call(&UploadFile {
            path: "/etc/passwd".into(),
            content: "x".into(),
            mode: 0o644,
        })
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Refused));
    c.call(&UploadFile {
        path: "/var/lib/ganeti/known_hosts".into(),
        content: "k".into(),
        mode: 0o644,
    })
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(node.paths.data_dir().join("known_hosts")).unwrap(),
        "k"
    );
    c.call(&WriteSsconfFiles {
        values: BTreeMap::from([(
            "cluster_name".to_string(),
            "cluster.example.com\n".to_string(),
        )]),
    })
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(node.paths.ssconf("cluster_name")).unwrap(),
        "cluster.example.com\n"
    );
    let err = c
        .call(&WriteSsconfFiles {
            values: BTreeMap::from([("../x".to_string(), String::new())]),
        })
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::BadRequest));
}

#[tokio::test]
async fn clients_without_a_cluster_signed_certificate_are_refused() {
    let node = spawn_node(false, true);

    // No client certificate at all.
    let anon = tls::anonymous_client_config(&node.ca.cert_pem).unwrap();
    let c = NodeClient::new(NODE, node.addr, anon).unwrap();
    let err = c.call(&Version {}).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Handshake { .. } | ClientError::Http { .. }
        ),
        "{err:?}"
    );

    // A certificate from another cluster's CA.
    let other = tls::create_cluster_ca("other").unwrap();
    let pem = tls::create_node_cert(&other, NODE, "127.0.0.1".parse().unwrap()).unwrap();
    let cfg = tls::client_config_from_pem(&node.ca.cert_pem, &pem).unwrap();
    let err = NodeClient::new(NODE, node.addr, cfg)
        .unwrap()
        .call(&Version {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Handshake { .. } | ClientError::Http { .. }
        ),
        "{err:?}"
    );

    // The client checks the server's name too.
    let cfg = tls::client_config(&node.paths).unwrap();
    let err = NodeClient::new("node2.example.com", node.addr, cfg)
        .unwrap()
        .call(&Version {})
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Handshake { .. }), "{err:?}");

    // The daemon still serves proper clients.
    node.client().call(&Version {}).await.unwrap();
}

#[tokio::test]
async fn malformed_requests_get_a_clear_error_and_the_daemon_keeps_serving() {
    let node = spawn_node(false, true);
    let c = node.client();
    let t = Duration::from_secs(30);

    let (status, body) = c
        .call_raw("instance_start", b"{not json".to_vec(), t)
        .await
        .unwrap();
    assert_eq!(status, 400);
    let reply: Reply<()> = serde_json::from_slice(&body).unwrap();
    let Reply::Error(e) = reply else {
        panic!("expected an error")
    };
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert!(
        e.message
            .contains("invalid arguments for call 'instance_start'"),
        "{}",
        e.message
    );

    let (status, body) = c
        .call_raw("instance_start", br#"{"instance": 5}"#.to_vec(), t)
        .await
        .unwrap();
    assert_eq!(status, 400);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("invalid type"), "{text}");

    let (status, body) = c.call_raw("no_such_call", b"{}".to_vec(), t).await.unwrap();
    assert_eq!(status, 404);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("unknown call 'no_such_call'"), "{text}");

    let (status, _) = c
        .call_raw("blockdev_grow", vec![0xff, 0xfe, 0x00], t)
        .await
        .unwrap();
    assert_eq!(status, 400);

    // Hooks are refused without --enable-test-hooks.
    let err = c
        .call(&TestSetFailure {
            call: "version".into(),
            mode: FailureMode::Error,
            count: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Refused));

    // Values of the right type but out of range are named too.
    let err = c.call(&TestDelay { duration: -1.0 }).await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::BadRequest));
    assert!(err.to_string().contains("invalid delay -1"), "{err}");

    assert_eq!(
        c.call(&Version {}).await.unwrap().protocol,
        PROTOCOL_VERSION
    );
}

#[tokio::test]
async fn test_delay_sleeps_on_the_node() {
    let node = spawn_node(false, true);
    let c = node.client();
    let start = Instant::now();
    c.call(&TestDelay { duration: 0.3 }).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    let err = c
        .call_with_timeout(&TestDelay { duration: 5.0 }, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn test_hooks_inject_errors_hangs_and_crashes() {
    let mut node = spawn_node(true, true);
    let c = node.client();

    c.call(&TestSetFailure {
        call: "version".into(),
        mode: FailureMode::Error,
        count: 1,
    })
    .await
    .unwrap();
    let err = c.call(&Version {}).await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Injected));
    c.call(&Version {}).await.unwrap();

    c.call(&TestSetFailure {
        call: "node_info".into(),
        mode: FailureMode::Hang,
        count: 1,
    })
    .await
    .unwrap();
    let start = Instant::now();
    let err = c
        .call_with_timeout(&NodeInfo::default(), Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    // Only the next call hung; the following one answers.
    c.call(&NodeInfo::default()).await.unwrap();

    // A cap on the client bounds the calls' default timeouts.
    c.call(&TestSetFailure {
        call: "instance_start".into(),
        mode: FailureMode::Hang,
        count: 1,
    })
    .await
    .unwrap();
    let capped = c.with_max_timeout(Duration::from_millis(300));
    let err = capped
        .call(&InstanceStart {
            instance: instance("hang", vec![]),
            startup_paused: false,
        })
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("timed out after 300ms"), "{err}");

    // A crash: the call gets no answer and the daemon is gone.
    c.call(&TestSetFailure {
        call: "instance_list".into(),
        mode: FailureMode::Crash,
        count: 1,
    })
    .await
    .unwrap();
    let err = c
        .call(&InstanceList {
            hypervisors: vec!["fake".into()],
        })
        .await
        .unwrap_err();
    // No answer at all (the retry on a fresh connection may meet the
    // dying daemon too).
    assert!(
        matches!(
            err,
            ClientError::Http { .. } | ClientError::Handshake { .. } | ClientError::Connect { .. }
        ),
        "{err:?}"
    );
    let status = node.child.wait().unwrap();
    assert_eq!(status.code(), Some(70));
    assert!(
        node.paths.noded_pid().exists(),
        "a crash leaves the pid file"
    );
    node.restart_after_exit();
    let c = node.client();

    let err = c
        .call(&TestSetFailure {
            call: "no_such_call".into(),
            mode: FailureMode::Error,
            count: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::BadRequest));
}

#[tokio::test]
async fn a_node_without_certificates_waits_for_them_then_serves() {
    let mut node = spawn_node(false, false);
    let pid_file = node.paths.noded_pid();
    // the daemon creates the file, locks it, then writes its pid
    wait_until("the pid in the pid file", Duration::from_secs(60), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| !s.trim().is_empty())
    });
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        node.child.id().to_string()
    );
    let stderr = node.paths.root().join("noded.stderr");
    wait_until("the waiting message", Duration::from_secs(60), || {
        std::fs::read_to_string(&stderr)
            .unwrap_or_default()
            .contains("waiting for the node certificate")
    });
    assert!(
        TcpStream::connect(node.addr).is_err(),
        "serving without certificates"
    );
    assert!(node.child.try_wait().unwrap().is_none(), "daemon exited");

    let ca = node.ca.clone();
    write_certs(&node.paths, &ca, NODE);
    node.wait_serving();
    node.client().call(&Version {}).await.unwrap();
}

#[tokio::test]
async fn a_fake_instance_migrates_between_two_node_daemons() {
    let ca = tls::create_cluster_ca("cluster.example.com").unwrap();
    let src = spawn_named("node1.example.com", ca.clone(), false, true);
    let dst = spawn_named("node2.example.com", ca, false, true);
    // The master's client (here node1's certificate) reaches both nodes.
    let tls_cfg = tls::client_config(&src.paths).unwrap();
    let s = NodeClient::new(&src.name, src.addr, tls_cfg.clone()).unwrap();
    let d = NodeClient::new(&dst.name, dst.addr, tls_cfg).unwrap();
    let both = [s.clone(), d.clone()];

    let pool = rpc::client::NodeClients::new(tls::client_config(&src.paths).unwrap());
    let again = pool.get(&dst.name, dst.addr).unwrap();
    assert_eq!(again.node(), "node2.example.com");
    again.call(&Version {}).await.unwrap();
    let versions = rpc::client::call_all(&both, &Version {}).await;
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].0, "node2.example.com");
    assert!(versions.iter().all(|(_, r)| r.is_ok()));

    let inst = instance("mig", vec![]);
    s.call(&InstanceStart {
        instance: inst.clone(),
        startup_paused: false,
    })
    .await
    .unwrap();
    let info = s
        .call(&MigrationInfo {
            instance: inst.clone(),
        })
        .await
        .unwrap();
    d.call(&AcceptInstance {
        instance: inst.clone(),
        info: info.clone(),
        target: dst.addr.ip().to_string(),
    })
    .await
    .unwrap();
    s.call(&MigrateInstance {
        cluster_name: "cluster.example.com".into(),
        instance: inst.clone(),
        target: dst.addr.ip().to_string(),
        live: true,
    })
    .await
    .unwrap();
    let status = s
        .call(&GetMigrationStatus {
            instance: inst.clone(),
        })
        .await
        .unwrap();
    assert_eq!(status.status, "completed");
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

    let list = |c: NodeClient| async move {
        c.call(&InstanceList {
            hypervisors: vec!["fake".into()],
        })
        .await
        .unwrap()
    };
    assert!(list(s.clone()).await.is_empty());
    assert_eq!(list(d.clone()).await, vec!["mig"]);
}

#[tokio::test]
async fn node_verify_reports_hypervisors_oses_and_storage() {
    let node = spawn_node(false, true);
    node.install_tiny_os();
    let c = node.client();
    let r = c
        .call(&NodeVerify {
            hypervisors: vec![
                ("fake".to_string(), HvParams::new()),
                ("nosuch".to_string(), HvParams::new()),
            ],
            os: true,
            file_storage: true,
        })
        .await
        .unwrap();
    assert_eq!(r.name, NODE);
    assert_eq!(r.hypervisors["fake"], None);
    assert!(r.hypervisors["nosuch"]
        .as_deref()
        .unwrap()
        .contains("unknown hypervisor"));
    assert!(r.os.iter().any(|o| o.name == "tiny" && o.valid));
    assert!(r.file_storage.is_empty(), "{:?}", r.file_storage);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((r.time - now).abs() < 60.0);

    std::fs::remove_dir(node.paths.shared_file_storage_dir()).unwrap();
    let r = c
        .call(&NodeVerify {
            file_storage: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.file_storage.len(), 1, "{:?}", r.file_storage);
    assert!(r.file_storage[0].contains("shared-file-storage"));
}

#[test]
fn a_port_in_use_is_reported_at_once() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ganeti-noded"))
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .env("GANETI_ROOTDIR", root.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot bind 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn bad_options_are_rejected() {
    let out = Command::new(env!("CARGO_BIN_EXE_ganeti-noded"))
        .args(["--port", "notaport"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port"));
}

#[tokio::test]
async fn a_client_survives_a_restart_of_the_node_daemon() {
    let mut node = spawn_node(false, true);
    let c = node.client();
    for _ in 0..20 {
        c.call(&Version {}).await.unwrap();
    }
    let inst = instance("persist", vec![]);
    c.call(&InstanceStart {
        instance: inst,
        startup_paused: false,
    })
    .await
    .unwrap();
    node.restart();
    // Kept connections died with the old daemon; the client notices and
    // reconnects. The fake instance outlives the daemon, as a VM would.
    let list = c
        .call(&InstanceList {
            hypervisors: vec!["fake".into()],
        })
        .await
        .unwrap();
    assert_eq!(list, vec!["persist"]);
}

#[tokio::test]
async fn a_node_that_leaves_the_cluster_waits_to_join_another() {
    let mut node = spawn_node(false, true);
    let c = node.client();
    c.call(&WriteSsconfFiles {
        values: BTreeMap::from([("cluster_name".to_string(), "old".to_string())]),
    })
    .await
    .unwrap();
    c.call(&NodeLeaveCluster {}).await.unwrap();
    let addr = node.addr;
    wait_until(
        "the daemon to stop listening",
        Duration::from_secs(60),
        || TcpStream::connect(addr).is_err(),
    );
    assert!(!node.paths.node_cert().exists());
    assert!(!node.paths.cluster_ca_cert().exists());
    assert!(!node.paths.ssconf("cluster_name").exists());
    assert!(node.child.try_wait().unwrap().is_none(), "daemon exited");

    // Joining a new cluster: new CA, new certificate.
    let new_ca = tls::create_cluster_ca("new.example.com").unwrap();
    write_certs(&node.paths, &new_ca, NODE);
    node.wait_serving();
    node.client().call(&Version {}).await.unwrap();
    // The old cluster's client is no longer accepted.
    assert!(c.call(&Version {}).await.is_err());
}

#[tokio::test]
async fn hooks_run_on_the_node_with_the_given_environment() {
    let node = spawn_node(false, true);
    let dir = node.paths.hooks_dir().join("instance-start-post.d");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("50-record");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"started $GANETI_INSTANCE_NAME\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let r = node
        .client()
        .call(&RunHooks {
            hpath: "instance-start".into(),
            phase: HooksPhase::Post,
            env: BTreeMap::from([("GANETI_INSTANCE_NAME".to_string(), "inst1".to_string())]),
        })
        .await
        .unwrap();
    assert_eq!(
        r,
        vec![HookResult {
            script: "instance-start-post.d/50-record".into(),
            status: HookStatus::Success,
            output: "started inst1".into(),
        }]
    );
}

/// Prints the cost of a call (run with `--ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures, asserts nothing about speed"]
async fn bench_call_latency() {
    let node = spawn_node(false, true);
    let c = node.client();
    c.call(&Version {}).await.unwrap();
    let n = 500;
    let start = Instant::now();
    for _ in 0..n {
        c.call(&Version {}).await.unwrap();
    }
    let reused = start.elapsed() / n;
    let start = Instant::now();
    for _ in 0..n {
        node.client().call(&Version {}).await.unwrap();
    }
    let fresh = start.elapsed() / n;
    println!(
        "version call: {reused:?} on a kept connection, {fresh:?} with a new connection each time"
    );
}

#[test]
fn a_second_daemon_on_the_same_root_is_refused() {
    let node = spawn_node(false, true);
    let addr = unique_addr();
    let out = Command::new(env!("CARGO_BIN_EXE_ganeti-noded"))
        .args([
            "--bind",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
            "-f",
        ])
        .env("GANETI_ROOTDIR", node.paths.root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("another ganeti-noded (pid {})", node.child.id())),
        "{stderr}"
    );
    // The running daemon's pid file is left alone.
    assert_eq!(
        std::fs::read_to_string(node.paths.noded_pid())
            .unwrap()
            .trim(),
        node.child.id().to_string()
    );
}

/// Kills a daemonized noded (by its pid file) when dropped.
struct Daemonized(i32);

impl Drop for Daemonized {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[tokio::test]
async fn a_daemonized_node_logs_to_its_file_and_reopens_it_on_sighup() {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::new(root.path());
    let ca = tls::create_cluster_ca("c").unwrap();
    write_certs(&paths, &ca, NODE);
    let addr = unique_addr();
    let status = Command::new(env!("CARGO_BIN_EXE_ganeti-noded"))
        .args([
            "--bind",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ])
        .env("GANETI_ROOTDIR", root.path())
        .env("GANETI_HOSTNAME", NODE)
        .status()
        .unwrap();
    assert!(status.success(), "the starting process reports success");
    let pid_file = paths.noded_pid();
    wait_until("the pid file", Duration::from_secs(60), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
    });
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let guard = Daemonized(pid);
    wait_until("the daemon to listen", Duration::from_secs(60), || {
        TcpStream::connect(addr).is_ok()
    });
    NodeClient::from_paths(&paths, NODE, addr)
        .unwrap()
        .call(&Version {})
        .await
        .unwrap();

    let log = paths.log_dir().join("node-daemon.log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&format!("listening on {addr}")), "{text}");

    let rotated = paths.log_dir().join("node-daemon.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    wait_until(
        "the log file to be reopened",
        Duration::from_secs(60),
        || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("log file reopened")),
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_until("the pid file to go", Duration::from_secs(60), || {
        !pid_file.exists()
    });
    // Stopped on its own: nothing left to kill.
    std::mem::forget(guard);
}

#[tokio::test]
async fn cluster_verify_helpers_compare_files_and_test_the_network() {
    let ca = tls::create_cluster_ca("cluster.example.com").unwrap();
    let a = spawn_named("node1.example.com", ca.clone(), false, true);
    let b = spawn_named("node2.example.com", ca, false, true);
    let ca_path = "/var/lib/ganeti/cluster-ca.pem".to_string();
    let cert_path = "/var/lib/ganeti/server.pem".to_string();
    let missing = "/var/lib/ganeti/nosuch".to_string();
    let req = FileChecksums {
        paths: vec![ca_path.clone(), cert_path.clone(), missing.clone()],
    };
    let sa = a.client().call(&req).await.unwrap();
    let sb = b.client().call(&req).await.unwrap();
    // Same CA file on both nodes; each node has its own certificate.
    assert!(sa[&ca_path].is_some());
    assert_eq!(sa[&ca_path], sb[&ca_path]);
    assert_ne!(sa[&cert_path], sb[&cert_path]);
    assert_eq!(sa[&missing], None);
    let err = a
        .client()
        .call(&FileChecksums {
            paths: vec!["/var/lib/../../etc/passwd".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::BadRequest));

    // b is reachable from a; a closed port is reported.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let r = a
        .client()
        .call(&NodeNetTest {
            targets: vec![("node2.example.com".into(), b.addr.ip().to_string())],
            port: Some(b.addr.port()),
        })
        .await
        .unwrap();
    assert_eq!(r["node2.example.com"], None);
    let r = a
        .client()
        .call(&NodeNetTest {
            targets: vec![("gone".into(), "127.0.0.1".into())],
            port: Some(closed_port),
        })
        .await
        .unwrap();
    assert!(
        r["gone"].as_deref().unwrap().contains("cannot reach"),
        "{r:?}"
    );
}

#[tokio::test]
async fn plain_disks_live_on_the_nodes_volume_group() {
    let vg = storage::testing::TestVg::new("n");
    let node = spawn_node(false, true);
    let c = node.client();
    let plain = DiskSpec {
        dev_type: DiskTemplate::Plain,
        logical_id: Some(format!("{}/u9.disk0", vg.name)),
        ..file_disk("u9", 12)
    };
    let space = |c: NodeClient, vg: String| async move {
        let info = c
            .call(&NodeInfo {
                hypervisors: vec![],
                storage: vec![StorageUnit {
                    kind: DiskTemplate::Plain,
                    name: Some(vg),
                }],
            })
            .await
            .unwrap();
        (info.storage[0].total_mib, info.storage[0].free_mib)
    };
    let (total, free) = space(c.clone(), vg.name.clone()).await;
    assert!(total >= 120 && free == total, "{total} {free}");

    let created = c
        .call(&BlockdevCreate {
            instance_name: "inst9".into(),
            disk: plain.clone(),
            size: None,
            on_primary: true,
        })
        .await
        .unwrap();
    assert_eq!(created.path, Some(format!("/dev/{}/u9.disk0", vg.name)));
    assert_eq!(vg.lv_names(), vec!["u9.disk0"]);
    assert_eq!(space(c.clone(), vg.name.clone()).await, (total, free - 12));
    c.call(&BlockdevGrow {
        instance_name: "inst9".into(),
        disk: plain.clone(),
        amount: 4,
        dry_run: false,
    })
    .await
    .unwrap();
    assert_eq!(space(c.clone(), vg.name.clone()).await, (total, free - 16));

    // Without device-mapper the volume cannot be activated: said so.
    if !storage::lvm::Lvm::new().can_activate() {
        let err = c
            .call(&BlockdevAssemble {
                instance_name: "inst9".into(),
                disk: plain.clone(),
                on_primary: true,
            })
            .await
            .unwrap_err();
        assert_eq!(err.remote_kind(), Some(ErrorKind::Unsupported));
        assert!(err.to_string().contains("no device-mapper"), "{err}");
    }
    // An unknown group is reported as such, and says which; the rest of
    // the node's report still comes.
    let info = c
        .call(&NodeInfo {
            hypervisors: vec![],
            storage: vec![
                StorageUnit {
                    kind: DiskTemplate::Plain,
                    name: Some("nosuchvg9".into()),
                },
                StorageUnit {
                    kind: DiskTemplate::File,
                    name: None,
                },
            ],
        })
        .await
        .unwrap();
    let missing = &info.storage[0];
    assert_eq!((missing.total_mib, missing.free_mib), (0, 0));
    let why = missing.error.as_deref().unwrap_or_default();
    assert!(why.contains("'nosuchvg9'"), "{why}");
    assert!(info.storage[1].error.is_none() && info.storage[1].total_mib > 0);

    c.call(&BlockdevRemove {
        instance_name: "inst9".into(),
        disk: plain,
    })
    .await
    .unwrap();
    assert!(vg.lv_names().is_empty());
}
