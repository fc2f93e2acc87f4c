//! In-memory nodes for the logical units' tests: each fake node keeps the
//! instances it runs and the disks it holds, answers the calls the units
//! make, and the whole cluster of them can fail its N-th call.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use objects::Node;
use rpc::api::{self, ErrorKind, RpcError};
use rpc::client::ClientError;
use rpc::hypervisor::{HvNodeInfo, InstanceRuntimeInfo, InstanceState, MigrationStatus};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{CallFuture, RpcFailure, Transport};

/// Where the fake nodes keep `sharedfile` disks, which every node sees.
pub const SHARED: &str = "(shared storage)";

/// Memory each fake node has, MiB.
pub const NODE_MEMORY: u64 = 8192;

/// What one fake node holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeState {
    /// Running instances: name to (memory MiB, vcpus).
    pub running: BTreeMap<String, (u64, u32)>,
    /// Instances being received by a migration.
    pub incoming: BTreeMap<String, (u64, u32)>,
    /// Disks: uuid to the name of the instance they were made for.
    pub disks: BTreeMap<String, String>,
    /// Exports and their staging directories: name to files (a dump's
    /// content is the instance and disk it came from; `config.ini`'s is
    /// the text written).
    pub exports: BTreeMap<String, BTreeMap<String, String>>,
    /// Hotplugs done, in order: `<action> <disk|nic> <seq> <instance>`
    /// (hotplug works on running instances of the kvm hypervisor).
    pub hotplugs: Vec<String>,
}

#[derive(Default)]
struct Inner {
    nodes: BTreeMap<String, NodeState>,
    /// Every call so far: (node, call).
    calls: Vec<(String, &'static str)>,
    /// Fail the calls with these 1-based numbers.
    fail_at: std::collections::BTreeSet<usize>,
    /// `sharedfile` disks.
    shared: BTreeMap<String, String>,
}

/// A cluster of fake nodes behind the master's [`Transport`].
#[derive(Default)]
pub struct FakeNodes {
    inner: Mutex<Inner>,
}

impl FakeNodes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the `n`-th call from now on (1-based) fail as the node would
    /// answer an error.
    pub fn fail_call(&self, n: usize) {
        self.fail_calls(&[n]);
    }

    /// Makes each of the `ns`-th calls from now on (1-based) fail.
    pub fn fail_calls(&self, ns: &[usize]) {
        let mut g = self.lock();
        let base = g.calls.len();
        g.fail_at = ns.iter().map(|n| base + n).collect();
    }

    /// How many calls were made.
    pub fn call_count(&self) -> usize {
        self.lock().calls.len()
    }

    /// The calls made, `node:call`.
    pub fn calls(&self) -> Vec<String> {
        self.lock()
            .calls
            .iter()
            .map(|(n, c)| format!("{n}:{c}"))
            .collect()
    }

    /// Stops instance `name` on node `node` behind the master's back, as a
    /// crash would.
    pub fn kill(&self, node: &str, name: &str) {
        if let Some(st) = self.lock().nodes.get_mut(node) {
            st.running.remove(name);
        }
    }

    /// Loses every disk of node `node`, as a broken disk would.
    pub fn lose_disks(&self, node: &str) {
        if let Some(st) = self.lock().nodes.get_mut(node) {
            st.disks.clear();
        }
    }

    /// What every node holds (nodes never called hold nothing).
    /// The shared storage shows as the node [`SHARED`].
    pub fn state(&self) -> BTreeMap<String, NodeState> {
        let g = self.lock();
        let mut out: BTreeMap<String, NodeState> = g
            .nodes
            .iter()
            .filter(|(_, s)| **s != NodeState::default())
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        if !g.shared.is_empty() {
            out.insert(
                SHARED.to_string(),
                NodeState {
                    disks: g.shared.clone(),
                    ..NodeState::default()
                },
            );
        }
        out
    }

    fn handle(&self, node: &str, call: &'static str, body: &[u8]) -> Result<Value, RpcError> {
        let mut g = self.lock();
        // ssconf pushes run in the background after commits: they are not
        // a unit's steps, and would make the numbering of calls vary.
        if call != "write_ssconf_files" {
            g.calls.push((node.to_string(), call));
        }
        if call != "write_ssconf_files" && g.fail_at.contains(&g.calls.len()) {
            return Err(RpcError::new(
                ErrorKind::Injected,
                format!("call {} ({call}) fails on purpose", g.calls.len()),
            ));
        }
        let mut shared = std::mem::take(&mut g.shared);
        let st = g.nodes.entry(node.to_string()).or_default();
        let r = answer(node, call, body, st, &mut shared);
        g.shared = shared;
        r
    }
}

/// Answers one call on `node`, whose state is `st`; `shared` holds the
/// disks on the storage every node sees.
fn answer(
    node: &str,
    call: &'static str,
    body: &[u8],
    st: &mut NodeState,
    shared: &mut BTreeMap<String, String>,
) -> Result<Value, RpcError> {
    {
        match call {
            // An OOB program answers as a healthy, powered machine; one
            // whose path ends in "fail" fails, one ending in "junk" prints
            // something that is not JSON.
            "run_oob" => {
                let req: api::RunOob = decode(body)?;
                if req.program.ends_with("fail") {
                    return Err(RpcError::new(
                        ErrorKind::Failed,
                        format!(
                            "'{} {} {}' failed with reason 'exited with code 1'; output: ",
                            req.program, req.command, req.node
                        ),
                    ));
                }
                if req.program.ends_with("junk") {
                    return ok("not json");
                }
                ok(match req.command.as_str() {
                    "power-status" => r#"{"powered": true}"#,
                    "health" => r#"[["disk0", "OK"], ["fan1", "WARNING"]]"#,
                    _ => "",
                })
            }
            "node_powercycle" => ok("Fake powercycle recorded"),
            // The master IP: nothing to bring up or down on a fake node
            // (the call is recorded like every call).
            "node_activate_master_ip" | "node_deactivate_master_ip" => ok(()),
            "version" => ok(api::VersionInfo {
                protocol: api::PROTOCOL_VERSION,
                software: crate::VERSION.to_string(),
            }),
            "node_info" => {
                let req: api::NodeInfo = decode(body)?;
                let used: u64 = st.running.values().map(|(m, _)| m).sum();
                ok(api::NodeInfoResult {
                    name: node.to_string(),
                    bootid: format!("boot-{node}"),
                    hypervisors: req
                        .hypervisors
                        .iter()
                        .map(|(name, _)| api::HvInfo {
                            name: name.clone(),
                            info: HvNodeInfo {
                                memory_total: NODE_MEMORY,
                                memory_free: NODE_MEMORY.saturating_sub(used),
                                memory_dom0: 0,
                                memory_instances: used,
                                cpu_total: 4,
                                cpu_dom0: 0,
                                cpu_nodes: 1,
                                cpu_sockets: 1,
                            },
                        })
                        .collect(),
                    storage: Vec::new(),
                })
            }
            "instance_start" => {
                let req: api::InstanceStart = decode(body)?;
                let i = req.instance;
                st.running
                    .insert(i.name.clone(), (i.beparams.maxmem, i.beparams.vcpus));
                ok(())
            }
            "instance_shutdown" => {
                let req: api::InstanceShutdown = decode(body)?;
                st.running.remove(&req.instance.name);
                ok(())
            }
            "instance_reboot" => {
                let req: api::InstanceReboot = decode(body)?;
                if st.running.contains_key(&req.instance.name) {
                    ok(())
                } else {
                    Err(not_found(&req.instance.name))
                }
            }
            "instance_info" => {
                let req: api::InstanceInfo = decode(body)?;
                ok(st
                    .running
                    .get(&req.instance)
                    .map(|&(memory, vcpus)| runtime(&req.instance, memory, vcpus)))
            }
            "instance_list" => ok(st.running.keys().cloned().collect::<Vec<_>>()),
            "all_instances_info" => ok(st
                .running
                .iter()
                .map(|(name, &(memory, vcpus))| {
                    (
                        name.clone(),
                        api::RunningInstance {
                            hypervisor: "fake".into(),
                            info: runtime(name, memory, vcpus),
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>()),
            "instance_balloon_memory" => {
                let req: api::InstanceBalloonMemory = decode(body)?;
                match st.running.get_mut(&req.instance.name) {
                    Some(slot) => {
                        slot.0 = req.memory_mib;
                        ok(())
                    }
                    None => Err(not_found(&req.instance.name)),
                }
            }
            "hotplug_supported" => {
                let req: api::HotplugSupported = decode(body)?;
                hotplug_check(st, &req.instance)?;
                ok(())
            }
            "hotplug_device" => {
                let req: api::HotplugDeviceCall = decode(body)?;
                hotplug_check(st, &req.instance)?;
                st.hotplugs.push(format!(
                    "{} {} {} {}",
                    req.action.as_str(),
                    req.device.kind(),
                    req.seq,
                    req.instance.name
                ));
                ok(())
            }
            "blockdev_create" => {
                let req: api::BlockdevCreate = decode(body)?;
                disks_of(st, shared, &req.disk).insert(req.disk.uuid, req.instance_name);
                ok(api::BlockdevCreateResult { path: None })
            }
            "blockdev_remove" => {
                let req: api::BlockdevRemove = decode(body)?;
                disks_of(st, shared, &req.disk).remove(&req.disk.uuid);
                ok(())
            }
            "blockdev_convert" => {
                let req: api::BlockdevConvert = decode(body)?;
                present(
                    st,
                    shared,
                    &req.instance_name,
                    &[req.src.clone(), req.dst.clone()],
                )?;
                ok(())
            }
            "disk_export_start" => {
                let req: api::DiskExportStart = decode(body)?;
                present(
                    st,
                    shared,
                    &req.instance_name,
                    std::slice::from_ref(&req.disk),
                )?;
                ok(())
            }
            "disk_export_stop" => {
                let _: api::DiskExportStop = decode(body)?;
                ok(())
            }
            "disk_import" => {
                let req: api::DiskImport = decode(body)?;
                present(
                    st,
                    shared,
                    &req.instance_name,
                    std::slice::from_ref(&req.disk),
                )?;
                ok(())
            }
            "instance_console" => {
                let req: api::InstanceConsole = decode(body)?;
                ok(rpc::hypervisor::ConsoleInfo::Message {
                    instance: req.instance.name,
                    message: "fake console".into(),
                })
            }
            "blockdev_getmirrorstatus" => {
                let req: api::BlockdevGetMirrorStatus = decode(body)?;
                let status: Vec<Option<api::BlockDevStatus>> = req
                    .disks
                    .iter()
                    .map(|d| {
                        disks_of(st, shared, d).contains_key(&d.uuid).then_some(
                            api::BlockDevStatus {
                                dev_path: None,
                                sync_percent: None,
                                estimated_time: None,
                                is_degraded: false,
                                ldisk_status: api::LocalDiskStatus::Okay,
                                drbd: None,
                            },
                        )
                    })
                    .collect();
                ok(status)
            }
            "drbd_attach_net" | "drbd_disconnect_net" => {
                let req: api::DrbdAttachNet = decode(body)?;
                present(st, shared, &req.instance_name, &req.disks)?;
                ok(())
            }
            "drbd_wait_sync" => {
                let req: api::DrbdWaitSync = decode(body)?;
                present(st, shared, &req.instance_name, &req.disks)?;
                ok(api::DrbdSyncState {
                    all_done: true,
                    min_resync: 100.0,
                })
            }
            "blockdev_assemble" => {
                let req: api::BlockdevAssemble = decode(body)?;
                present(
                    st,
                    shared,
                    &req.instance_name,
                    std::slice::from_ref(&req.disk),
                )?;
                ok(api::AttachedDisk {
                    index: req.disk.index,
                    path: None,
                    uri: None,
                    mode: req.disk.mode,
                    tls: None,
                })
            }
            "blockdev_shutdown" => {
                let _: api::BlockdevShutdown = decode(body)?;
                ok(())
            }
            "export_disk_dump" => {
                let req: api::ExportDiskDump = decode(body)?;
                let disk = req
                    .instance
                    .disks
                    .iter()
                    .find(|d| d.index == req.index)
                    .cloned()
                    .ok_or_else(|| RpcError::new(ErrorKind::BadRequest, "no such disk"))?;
                present(st, shared, &req.instance.name, std::slice::from_ref(&disk))?;
                st.exports.entry(req.dir).or_default().insert(
                    disk.uuid.clone(),
                    format!("{}/{}", req.instance.name, disk.index),
                );
                ok(disk.size * 1024 * 1024)
            }
            "export_file_serve" => {
                let req: api::ExportFileServe = decode(body)?;
                match st.exports.get(&req.dir).and_then(|d| d.get(&req.file)) {
                    Some(content) => ok(content.len() as u64),
                    None => Err(RpcError::new(
                        ErrorKind::NotFound,
                        format!("no dump '{}' in export '{}'", req.file, req.dir),
                    )),
                }
            }
            "export_file_fetch" => {
                let req: api::ExportFileFetch = decode(body)?;
                st.exports
                    .entry(req.dir)
                    .or_default()
                    .insert(req.file, "(copied)".into());
                ok(())
            }
            "finalize_export" => {
                let req: api::FinalizeExport = decode(body)?;
                let Some(mut files) = st.exports.remove(&req.dir) else {
                    return Err(RpcError::new(
                        ErrorKind::NotFound,
                        format!("no export being made in '{}'", req.dir),
                    ));
                };
                files.insert("config.ini".into(), req.config);
                st.exports.insert(req.name, files);
                ok(())
            }
            "export_info" => {
                let req: api::ExportInfo = decode(body)?;
                match st.exports.get(&req.name).and_then(|d| d.get("config.ini")) {
                    Some(text) => ok(text.clone()),
                    None => Err(RpcError::new(
                        ErrorKind::NotFound,
                        format!("no export '{}'", req.name),
                    )),
                }
            }
            "export_list" => ok(st
                .exports
                .keys()
                .filter(|n| !n.starts_with('.'))
                .cloned()
                .collect::<Vec<_>>()),
            "export_remove" => {
                let req: api::ExportRemove = decode(body)?;
                match st.exports.remove(&req.name) {
                    Some(_) => ok(()),
                    None => Err(RpcError::new(
                        ErrorKind::NotFound,
                        format!("no export '{}'", req.name),
                    )),
                }
            }
            "import_disk_dump" => {
                let req: api::ImportDiskDump = decode(body)?;
                if !st
                    .exports
                    .get(&req.dir)
                    .is_some_and(|d| d.contains_key(&req.file))
                {
                    return Err(RpcError::new(
                        ErrorKind::NotFound,
                        format!("no dump '{}' in '{}'", req.file, req.dir),
                    ));
                }
                let disk = req
                    .instance
                    .disks
                    .iter()
                    .find(|d| d.index == req.index)
                    .cloned()
                    .ok_or_else(|| RpcError::new(ErrorKind::BadRequest, "no such disk"))?;
                present(st, shared, &req.instance.name, std::slice::from_ref(&disk))?;
                ok(())
            }
            "instance_os_add" => {
                let req: api::InstanceOsAdd = decode(body)?;
                let name = &req.instance.name;
                let missing = req
                    .instance
                    .disks
                    .iter()
                    .any(|d| !disks_of(st, shared, d).contains_key(&d.uuid));
                if missing {
                    Err(RpcError::new(
                        ErrorKind::NotFound,
                        format!("a disk of {name} is missing"),
                    ))
                } else {
                    ok(())
                }
            }
            "instance_run_rename" => {
                let _: api::OsRename = decode(body)?;
                let _: api::OsRename = decode(body)?;
                ok(())
            }
            "migration_info" => ok(String::from("fake-migration-info")),
            "accept_instance" => {
                let req: api::AcceptInstance = decode(body)?;
                let i = req.instance;
                st.incoming
                    .insert(i.name.clone(), (i.beparams.maxmem, i.beparams.vcpus));
                ok(())
            }
            "migrate_instance" => ok(()),
            "migration_status" => ok(MigrationStatus {
                status: "completed".into(),
                transferred_ram: None,
                total_ram: None,
                total_time_ms: None,
                downtime_ms: None,
            }),
            "finalize_migration_dst" => {
                let req: api::FinalizeMigrationDst = decode(body)?;
                if let Some(v) = st.incoming.remove(&req.instance.name) {
                    if req.success {
                        st.running.insert(req.instance.name.clone(), v);
                    }
                }
                ok(())
            }
            "finalize_migration_src" => {
                let req: api::FinalizeMigrationSrc = decode(body)?;
                if req.success {
                    st.running.remove(&req.instance.name);
                }
                ok(())
            }
            "write_ssconf_files" | "upload_file" | "node_leave_cluster" => ok(()),
            "crypto_stage" | "crypto_activate" | "crypto_abort" => ok(()),
            "restricted_command" => {
                let req: api::RestrictedCommand = decode(body)?;
                if req.command == "hello" {
                    ok(format!("hello from {node}\n"))
                } else {
                    Err(RpcError::new(
                        ErrorKind::Failed,
                        format!("Executing command '{}' failed", req.command),
                    ))
                }
            }
            "extstorage_diagnose" => ok(fake_extstorage(node)),
            "hooks_runner" => ok(Vec::<api::HookResult>::new()),
            other => Err(RpcError::new(
                ErrorKind::UnknownCall,
                format!("the fake node has no call '{other}'"),
            )),
        }
    }
}

/// The ExtStorage providers of a fake node: `good` everywhere, valid with
/// one parameter; `flaky`, valid on `node1` only.
fn fake_extstorage(node: &str) -> Vec<api::ExtStorageProvider> {
    let provider = |name: &str, valid: bool| api::ExtStorageProvider {
        name: name.to_string(),
        path: format!("/srv/ganeti/extstorage/{name}"),
        valid,
        diagnose: if valid {
            String::new()
        } else {
            format!("File 'verify' under path '/srv/ganeti/extstorage/{name}' is missing (ENOENT)")
        },
        parameters: if valid {
            vec![("pool".to_string(), "The pool".to_string())]
        } else {
            Vec::new()
        },
    };
    vec![provider("flaky", node == "node1"), provider("good", true)]
}

/// `Err` as a node answers when one of `disks` of `instance` is not there.
fn present(
    st: &mut NodeState,
    shared: &mut BTreeMap<String, String>,
    instance: &str,
    disks: &[api::DiskSpec],
) -> Result<(), RpcError> {
    match disks
        .iter()
        .find(|d| !disks_of(st, shared, d).contains_key(&d.uuid))
    {
        Some(d) => Err(RpcError::new(
            ErrorKind::NotFound,
            format!("disk {} of {instance} is missing", d.index),
        )),
        None => Ok(()),
    }
}

/// Where a disk lives: on the node, or on the shared storage.
fn disks_of<'a>(
    st: &'a mut NodeState,
    shared: &'a mut BTreeMap<String, String>,
    disk: &api::DiskSpec,
) -> &'a mut BTreeMap<String, String> {
    if disk.dev_type == objects::DiskTemplate::SharedFile {
        shared
    } else {
        &mut st.disks
    }
}

fn runtime(name: &str, memory: u64, vcpus: u32) -> InstanceRuntimeInfo {
    InstanceRuntimeInfo {
        name: name.to_string(),
        id: format!("fake-{name}"),
        memory,
        vcpus,
        state: InstanceState::Running,
        cpu_time: 0.0,
    }
}

fn not_found(instance: &str) -> RpcError {
    RpcError::new(
        ErrorKind::NotFound,
        format!("instance {instance} is not running"),
    )
}

fn ok<T: Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v)
        .map_err(|e| RpcError::new(ErrorKind::Internal, format!("cannot encode: {e}")))
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, RpcError> {
    serde_json::from_slice(body).map_err(|e| RpcError::new(ErrorKind::BadRequest, e.to_string()))
}

impl Transport for FakeNodes {
    fn call_json<'a>(
        &'a self,
        node: &'a Node,
        call: &'static str,
        body: Vec<u8>,
        _timeout: Duration,
        _idempotent: bool,
    ) -> CallFuture<'a> {
        let result = self.handle(&node.name, call, &body).map_err(|error| {
            RpcFailure::Call(ClientError::Remote {
                node: node.name.clone(),
                call: call.to_string(),
                error,
            })
        });
        Box::pin(async move { result })
    }
}

/// Whether devices can be hotplugged into `instance` here: it runs here,
/// under kvm (Ganeti's messages otherwise).
fn hotplug_check(st: &NodeState, instance: &api::InstanceSpec) -> Result<(), RpcError> {
    let why = if instance.hypervisor != "kvm" {
        "Hotplug is not supported by this hypervisor"
    } else if !st.running.contains_key(&instance.name) {
        "Instance is probably down"
    } else {
        return Ok(());
    };
    Err(RpcError::new(
        ErrorKind::Failed,
        format!("Hotplug is not supported: {why}"),
    ))
}
