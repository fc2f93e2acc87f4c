//! Where a `drbd` disk lives on a node: its two volumes, its runtime files
//! and its replication link as this node sees it.

use std::path::{Path, PathBuf};

use objects::paths::Paths;

use crate::context::{check_component, StorageContext};
use crate::error::{Result, StorageError};
use crate::file::FileDevice;
use crate::lvm::PlainDevice;
use crate::{BlockDevice, DiskSpec, DiskTemplate};
use rpc::storage::{DrbdEndpoint, DrbdLink};

/// Size of the meta volume when the disk does not say (Ganeti's
/// `DRBD_META_SIZE`, MiB).
pub const META_SIZE_MIB: u64 = 128;

/// Longest path a unix socket address can hold (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The runtime directories of `drbd` disks on one node:
/// `var/run/ganeti/drbd/` (pid files, QMP sockets, FUSE mount points,
/// the disks' runtime state, the TLS credentials of the storage daemons)
/// and `var/log/ganeti/drbd/` (the daemons' messages).
#[derive(Debug, Clone)]
pub struct DrbdDirs {
    run: PathBuf,
    log: PathBuf,
}

impl DrbdDirs {
    pub fn new(paths: &Paths) -> Self {
        // The daemons run from `/`: their paths must be absolute.
        let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        DrbdDirs {
            run: abs(paths.run_dir().join("drbd")),
            log: abs(paths.log_dir().join("drbd")),
        }
    }

    pub fn run_dir(&self) -> &Path {
        &self.run
    }

    pub fn log_dir(&self) -> &Path {
        &self.log
    }

    /// The storage daemons' TLS credentials (QEMU's `tls-creds-x509`
    /// layout), made from the node's certificate.
    pub fn tls_dir(&self) -> PathBuf {
        self.run.join("tls")
    }

    pub fn pid_file(&self, disk: &str) -> PathBuf {
        self.run.join(format!("{disk}.pid"))
    }

    pub fn qmp_socket(&self, disk: &str) -> PathBuf {
        self.run.join(format!("{disk}.qmp"))
    }

    /// The disk's runtime state (JSON): what the supervisor needs.
    pub fn state_file(&self, disk: &str) -> PathBuf {
        self.run.join(format!("{disk}.json"))
    }

    /// The record written into the peer's meta volume, while it is sent.
    pub fn push_file(&self, disk: &str) -> PathBuf {
        self.run.join(format!("{disk}.push"))
    }

    /// The FUSE export of the disk (a regular file as mount point) that
    /// gives local programs (OS scripts) a path.
    pub fn fuse_mount(&self, disk: &str) -> PathBuf {
        self.run.join(format!("{disk}.disk"))
    }

    pub fn fuse_pid_file(&self, disk: &str) -> PathBuf {
        self.run.join(format!("{disk}.fuse.pid"))
    }

    pub fn fuse_qmp_socket(&self, disk: &str) -> PathBuf {
        self.run.join(format!("{disk}.fuse.qmp"))
    }

    pub fn log_file(&self, disk: &str) -> PathBuf {
        self.log.join(format!("{disk}.log"))
    }

    pub fn fuse_log_file(&self, disk: &str) -> PathBuf {
        self.log.join(format!("{disk}.fuse.log"))
    }

    /// Every runtime file of `disk` (what a shutdown removes).
    pub fn runtime_files(&self, disk: &str) -> Vec<PathBuf> {
        vec![
            self.pid_file(disk),
            self.qmp_socket(disk),
            self.state_file(disk),
            self.push_file(disk),
            self.fuse_mount(disk),
            self.fuse_pid_file(disk),
            self.fuse_qmp_socket(disk),
        ]
    }

    /// Creates the directories; refuses socket paths too long for a unix
    /// socket (a deep `GANETI_ROOTDIR`).
    pub fn prepare(&self, disk: &str) -> Result<()> {
        self.prepare_for(disk, &[self.qmp_socket(disk), self.fuse_qmp_socket(disk)])
    }

    /// Creates the directories; refuses any of `sockets` (of `disk`) too
    /// long for a unix socket.
    pub fn prepare_for(&self, disk: &str, sockets: &[PathBuf]) -> Result<()> {
        for dir in [&self.run, &self.log] {
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::io("create directory", dir, e))?;
        }
        for sock in sockets {
            let len = sock.as_os_str().len();
            if len > MAX_SOCKET_PATH {
                return Err(StorageError::InvalidDrbd {
                    disk: disk.to_string(),
                    reason: format!(
                        "socket path '{}' is {len} bytes long, more than the \
                         {MAX_SOCKET_PATH} a unix socket allows",
                        sock.display()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The disks with runtime state on this node, sorted.
    pub fn disks(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.run) else {
            return Vec::new();
        };
        let mut disks: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                name.strip_suffix(".json").map(str::to_string)
            })
            .filter(|d| check_disk_id(d).is_ok())
            .collect();
        disks.sort();
        disks
    }
}

/// Checks a disk's uuid: it names files and QEMU objects, so only
/// letters, digits, `-`, `_` and `.` (QEMU's option syntax gives commas a
/// meaning).
pub fn check_disk_id(uuid: &str) -> Result<()> {
    check_component("disk uuid", uuid)?;
    if uuid.len() > 64
        || !uuid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(StorageError::InvalidName {
            what: "disk uuid",
            value: uuid.to_string(),
            reason: "must be at most 64 letters, digits, '-', '_' or '.'",
        });
    }
    Ok(())
}

/// The replication link as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    pub local: DrbdEndpoint,
    pub peer: DrbdEndpoint,
    pub port: u16,
}

impl Link {
    /// This node's view of `disk`'s link: it must be one of its two nodes.
    pub fn of(ctx: &StorageContext, disk: &DiskSpec) -> Result<Link> {
        let link = disk
            .drbd
            .as_ref()
            .ok_or_else(|| StorageError::InvalidDrbd {
                disk: disk.uuid.clone(),
                reason: "the disk has no replication link (drbd)".into(),
            })?;
        Link::from_ends(ctx, &disk.uuid, link)
    }

    /// This node's view of `link` (between two nodes, for disk `disk`).
    pub fn from_ends(ctx: &StorageContext, disk: &str, link: &DrbdLink) -> Result<Link> {
        let invalid = |reason: String| StorageError::InvalidDrbd {
            disk: disk.to_string(),
            reason,
        };
        let me = ctx
            .node_name()
            .ok_or_else(|| invalid("this node does not know its own name".into()))?;
        let [a, b] = &link.nodes;
        if a.node == b.node {
            return Err(invalid(format!(
                "both ends of the link are node '{}'",
                a.node
            )));
        }
        let (local, peer) = if a.node == me {
            (a, b)
        } else if b.node == me {
            (b, a)
        } else {
            return Err(invalid(format!(
                "this node ('{me}') is neither of its nodes ('{}', '{}')",
                a.node, b.node
            )));
        };
        for end in [local, peer] {
            end.ip.parse::<std::net::IpAddr>().map_err(|_| {
                invalid(format!(
                    "node '{}' has the invalid address '{}'",
                    end.node, end.ip
                ))
            })?;
            if end.node.is_empty()
                || !end
                    .node
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(invalid(format!("invalid node name '{}'", end.node)));
            }
        }
        if link.port == 0 {
            return Err(invalid("port 0".into()));
        }
        Ok(Link {
            local: local.clone(),
            peer: peer.clone(),
            port: link.port,
        })
    }
}

/// `ip:port` with IPv6 addresses in brackets.
pub fn host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The NBD export names of a disk's storage daemon.
pub mod exports {
    /// The disk as its local users see it: writes go to both nodes.
    pub fn disk(uuid: &str) -> String {
        uuid.to_string()
    }
    /// The raw data volume, written by the peer's replication.
    pub fn data(uuid: &str) -> String {
        format!("{uuid}.data")
    }
    /// The meta volume, where the peer records the state of our copy.
    pub fn meta(uuid: &str) -> String {
        format!("{uuid}.meta")
    }
}

/// The two volumes of a `drbd` disk on this node.
#[derive(Debug)]
pub struct Volumes {
    pub data: Box<dyn BlockDevice>,
    pub data_size_mib: u64,
    pub meta: Box<dyn BlockDevice>,
    pub meta_size_mib: u64,
}

impl Volumes {
    /// The volumes of `disk` (of instance `instance`): its two children
    /// (data, meta), or files in the node's file storage directory
    /// (`<instance>/<uuid>_data` and `_meta`: named after the disk alone,
    /// as its position changes when other disks are removed) when it has
    /// none.
    pub fn of(ctx: &StorageContext, instance: &str, disk: &DiskSpec) -> Result<Volumes> {
        let invalid = |reason: String| StorageError::InvalidDrbd {
            disk: disk.uuid.clone(),
            reason,
        };
        match disk.children.as_slice() {
            [] => {
                check_component("instance name", instance)?;
                let dir = ctx.file_storage_dir();
                let file = |suffix: &str| -> Result<Box<dyn BlockDevice>> {
                    let path = dir.join(instance).join(format!("{}_{suffix}", disk.uuid));
                    Ok(Box::new(FileDevice::at(path, dir, DiskTemplate::File)?))
                };
                Ok(Volumes {
                    data: file("data")?,
                    data_size_mib: disk.size,
                    meta: file("meta")?,
                    meta_size_mib: META_SIZE_MIB,
                })
            }
            [data, meta] => {
                if data.size != disk.size {
                    return Err(invalid(format!(
                        "its data volume is {} MiB, the disk {} MiB",
                        data.size, disk.size
                    )));
                }
                let child = |c: &DiskSpec| -> Result<Box<dyn BlockDevice>> {
                    match c.dev_type {
                        DiskTemplate::File | DiskTemplate::SharedFile => {
                            Ok(Box::new(FileDevice::open(ctx, instance, c)?))
                        }
                        DiskTemplate::Plain => Ok(Box::new(PlainDevice::open(c)?)),
                        other => Err(invalid(format!(
                            "a volume of type '{other}' (expected plain or file)"
                        ))),
                    }
                };
                if meta.size < 1 {
                    return Err(invalid("its meta volume is empty".into()));
                }
                Ok(Volumes {
                    data: child(data)?,
                    data_size_mib: data.size,
                    meta: child(meta)?,
                    meta_size_mib: meta.size,
                })
            }
            other => Err(invalid(format!(
                "{} volumes (expected two: data and meta)",
                other.len()
            ))),
        }
    }
}
