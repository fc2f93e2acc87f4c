//! Small value types shared by the model, the algorithms and the backends.

use crate::error::{Error, Result};

/// Storage layout of an instance's disks: the cluster model's enum, with
/// what htools needs to know about it in [`TemplateExt`].
pub use objects::DiskTemplate;

/// How (and whether) an instance's disks are mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorType {
    None,
    Internal,
    External,
}

/// Every disk template, in the order htools lists them (the default
/// instance policy's).
pub const DISK_TEMPLATES: [DiskTemplate; 9] = [
    DiskTemplate::Diskless,
    DiskTemplate::File,
    DiskTemplate::SharedFile,
    DiskTemplate::Plain,
    DiskTemplate::Blockdev,
    DiskTemplate::Drbd,
    DiskTemplate::Rbd,
    DiskTemplate::Ext,
    DiskTemplate::Gluster,
];

/// How htools reads and treats a disk template.
pub trait TemplateExt: Sized {
    /// The template named `s` (Ganeti's spelling).
    fn parse(s: &str) -> Result<Self>;
    fn mirror_type(self) -> MirrorType;
    /// Templates whose instances htools may move at all.
    fn supports_moves(self) -> bool;
    /// Templates that consume the node's local disk space.
    fn uses_local_storage(self) -> bool;
    fn required_nodes(self) -> usize;
}

impl TemplateExt for DiskTemplate {
    fn parse(s: &str) -> Result<Self> {
        DISK_TEMPLATES
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| Error::parse("disk template", format!("unknown disk template '{s}'")))
    }

    fn mirror_type(self) -> MirrorType {
        match self {
            DiskTemplate::File | DiskTemplate::Plain => MirrorType::None,
            DiskTemplate::Drbd => MirrorType::Internal,
            _ => MirrorType::External,
        }
    }

    fn supports_moves(self) -> bool {
        matches!(
            self,
            DiskTemplate::Drbd
                | DiskTemplate::Blockdev
                | DiskTemplate::SharedFile
                | DiskTemplate::Gluster
                | DiskTemplate::Rbd
                | DiskTemplate::Ext
        )
    }

    fn uses_local_storage(self) -> bool {
        matches!(self, DiskTemplate::Drbd | DiskTemplate::Plain)
    }

    fn required_nodes(self) -> usize {
        if self == DiskTemplate::Drbd {
            2
        } else {
            1
        }
    }
}

/// The run state of an instance as reported by Ganeti.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceStatus {
    AdminDown,
    AdminOffline,
    ErrorDown,
    ErrorUp,
    NodeDown,
    NodeOffline,
    Running,
    UserDown,
    WrongNode,
}

impl InstanceStatus {
    const ALL: [InstanceStatus; 9] = [
        InstanceStatus::AdminDown,
        InstanceStatus::AdminOffline,
        InstanceStatus::ErrorDown,
        InstanceStatus::ErrorUp,
        InstanceStatus::NodeDown,
        InstanceStatus::NodeOffline,
        InstanceStatus::Running,
        InstanceStatus::UserDown,
        InstanceStatus::WrongNode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::AdminDown => "ADMIN_down",
            InstanceStatus::AdminOffline => "ADMIN_offline",
            InstanceStatus::ErrorDown => "ERROR_down",
            InstanceStatus::ErrorUp => "ERROR_up",
            InstanceStatus::NodeDown => "ERROR_nodedown",
            InstanceStatus::NodeOffline => "ERROR_nodeoffline",
            InstanceStatus::Running => "running",
            InstanceStatus::UserDown => "USER_down",
            InstanceStatus::WrongNode => "ERROR_wrongnode",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        InstanceStatus::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| Error::parse("instance status", format!("unknown status '{s}'")))
    }
}

/// A group's allocation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AllocPolicy {
    Preferred,
    LastResort,
    Unallocable,
}

impl AllocPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            AllocPolicy::Preferred => "preferred",
            AllocPolicy::LastResort => "last_resort",
            AllocPolicy::Unallocable => "unallocable",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "preferred" => Ok(AllocPolicy::Preferred),
            "last_resort" => Ok(AllocPolicy::LastResort),
            "unallocable" => Ok(AllocPolicy::Unallocable),
            _ => Err(Error::parse(
                "allocation policy",
                format!("unknown allocation policy '{s}'"),
            )),
        }
    }
}

/// One instance specification (bounds or the standard size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ISpec {
    pub mem_size: i64,
    pub cpu_count: i64,
    pub disk_size: i64,
    pub disk_count: i64,
    pub nic_count: i64,
    pub spindle_use: i64,
}

impl ISpec {
    pub const DEF_MIN: ISpec = ISpec {
        mem_size: 128,
        cpu_count: 1,
        disk_size: 1024,
        disk_count: 1,
        nic_count: 1,
        spindle_use: 1,
    };
    pub const DEF_STD: ISpec = ISpec::DEF_MIN;
    pub const DEF_MAX: ISpec = ISpec {
        mem_size: 32768,
        cpu_count: 8,
        disk_size: 1024 * 1024,
        disk_count: 16,
        nic_count: 8,
        spindle_use: 12,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinMaxISpecs {
    pub min: ISpec,
    pub max: ISpec,
}

/// An instance policy.
#[derive(Debug, Clone, PartialEq)]
pub struct IPolicy {
    pub minmax: Vec<MinMaxISpecs>,
    pub std: ISpec,
    pub disk_templates: Vec<DiskTemplate>,
    pub vcpu_ratio: f64,
    pub spindle_ratio: f64,
}

impl Default for IPolicy {
    fn default() -> Self {
        IPolicy {
            minmax: vec![MinMaxISpecs {
                min: ISpec::DEF_MIN,
                max: ISpec::DEF_MAX,
            }],
            std: ISpec::DEF_STD,
            disk_templates: DISK_TEMPLATES.to_vec(),
            vcpu_ratio: 4.0,
            spindle_ratio: 32.0,
        }
    }
}

/// Dynamic utilisation (load, or load capacity) of a machine.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DynUtil {
    pub cpu: f64,
    pub mem: f64,
    pub dsk: f64,
    pub net: f64,
}

impl DynUtil {
    pub const ZERO: DynUtil = DynUtil {
        cpu: 0.0,
        mem: 0.0,
        dsk: 0.0,
        net: 0.0,
    };
    pub const BASE: DynUtil = DynUtil {
        cpu: 1.0,
        mem: 1.0,
        dsk: 1.0,
        net: 1.0,
    };
    pub fn plus(self, o: DynUtil) -> DynUtil {
        DynUtil {
            cpu: self.cpu + o.cpu,
            mem: self.mem + o.mem,
            dsk: self.dsk + o.dsk,
            net: self.net + o.net,
        }
    }
    pub fn minus(self, o: DynUtil) -> DynUtil {
        DynUtil {
            cpu: self.cpu - o.cpu,
            mem: self.mem - o.mem,
            dsk: self.dsk - o.dsk,
            net: self.net - o.net,
        }
    }
}

/// Why a node cannot take an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailMode {
    Mem,
    Disk,
    Cpu,
    N1,
    Tags,
    Mig,
    DiskCount,
    Spindles,
    Internal,
}

impl FailMode {
    pub const ALL: [FailMode; 9] = [
        FailMode::Mem,
        FailMode::Disk,
        FailMode::Cpu,
        FailMode::N1,
        FailMode::Tags,
        FailMode::Mig,
        FailMode::DiskCount,
        FailMode::Spindles,
        FailMode::Internal,
    ];
    /// Ganeti's name of the failure mode (as in "FailMem").
    pub fn name(self) -> &'static str {
        match self {
            FailMode::Mem => "FailMem",
            FailMode::Disk => "FailDisk",
            FailMode::Cpu => "FailCPU",
            FailMode::N1 => "FailN1",
            FailMode::Tags => "FailTags",
            FailMode::Mig => "FailMig",
            FailMode::DiskCount => "FailDiskCount",
            FailMode::Spindles => "FailSpindles",
            FailMode::Internal => "FailInternal",
        }
    }
}

pub type OpResult<T> = std::result::Result<T, FailMode>;

/// One instance move, as understood by Ganeti.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IMove {
    Failover,
    FailoverToAny(usize),
    ReplacePrimary(usize),
    ReplaceSecondary(usize),
    ReplaceAndFailover(usize),
    FailoverAndReplace(usize),
}

/// Ganeti's fallback when no secondary node exists.
pub const NO_SECONDARY: usize = usize::MAX;
