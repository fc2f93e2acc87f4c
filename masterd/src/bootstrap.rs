//! Cluster initialisation (`gnt-cluster init`) and destruction: the cluster
//! CA and the master's certificate, the first configuration, ssconf.

use std::path::PathBuf;

use objects::paths::Paths;
use objects::{Cluster, Node, NodeGroup};

use crate::config::{new_uuid, timestamp, ConfigError, ConfigStore};

/// What `gnt-cluster init` was asked for.
#[derive(Debug, Clone)]
pub struct InitParams {
    pub cluster_name: String,
    pub master_name: String,
    pub master_ip: String,
    pub enabled_hypervisors: Vec<String>,
    pub enabled_disk_templates: Vec<String>,
    pub file_storage_dir: Option<String>,
    pub shared_file_storage_dir: Option<String>,
    pub hvparams: Vec<(String, objects::ParamDict)>,
    pub beparams: objects::ParamDict,
    pub nicparams: objects::ParamDict,
    pub candidate_pool_size: Option<u32>,
    pub mac_prefix: Option<String>,
    pub master_netdev: Option<String>,
    /// The default iallocator plugin; `hail` when unset and found.
    pub default_iallocator: Option<String>,
}

/// Why initialisation failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("Cluster is already initialised (found {0})")]
    AlreadyInitialized(PathBuf),
    #[error("cannot create directory {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the cluster certificates")]
    Tls(#[from] rpc::tls::TlsError),
    #[error("cannot create the configuration")]
    Config(#[from] ConfigError),
    #[error("cannot write the ssconf files")]
    Ssconf(#[source] std::io::Error),
    #[error("invalid parameter: {0}")]
    Invalid(String),
}

fn mkdir(p: PathBuf) -> Result<(), BootstrapError> {
    std::fs::create_dir_all(&p).map_err(|source| BootstrapError::Dir { path: p, source })
}

/// Creates the cluster under `paths`.
pub fn init_cluster(paths: &Paths, p: &InitParams) -> Result<(), BootstrapError> {
    let db = paths.config_db();
    if db.exists() {
        return Err(BootstrapError::AlreadyInitialized(db));
    }
    objects::validate::check_host_name("cluster", &p.cluster_name)
        .map_err(|e| BootstrapError::Invalid(e.to_string()))?;
    objects::validate::check_host_name("node", &p.master_name)
        .map_err(|e| BootstrapError::Invalid(e.to_string()))?;
    let ip: std::net::IpAddr = p
        .master_ip
        .parse()
        .map_err(|_| BootstrapError::Invalid(format!("invalid master IP '{}'", p.master_ip)))?;
    for hv in &p.enabled_hypervisors {
        if !objects::enums::KNOWN_HYPERVISORS.contains(&hv.as_str()) {
            return Err(BootstrapError::Invalid(format!(
                "unknown hypervisor '{hv}'"
            )));
        }
    }
    for t in &p.enabled_disk_templates {
        if !objects::enums::KNOWN_DISK_TEMPLATES.contains(&t.as_str()) {
            return Err(BootstrapError::Invalid(format!(
                "unsupported disk template '{t}'"
            )));
        }
    }
    for d in [
        paths.data_dir(),
        paths.socket_dir(),
        paths.log_dir(),
        paths.os_log_dir(),
        paths.file_storage_dir(),
        paths.shared_file_storage_dir(),
    ] {
        mkdir(d)?;
    }
    let ca = rpc::tls::create_cluster_ca(&p.cluster_name)?;
    rpc::tls::write_cluster_ca(paths, &ca, true)?;
    let cert = rpc::tls::create_node_cert(&ca, &p.master_name, ip)?;
    rpc::tls::write_node_cert(paths, &cert)?;

    let now = timestamp();
    let group = NodeGroup::new(&new_uuid(), "default", now);
    let master = Node::new(&new_uuid(), &p.master_name, &p.master_ip, &group.uuid, now);
    let mut cluster = Cluster::new(
        &new_uuid(),
        &p.cluster_name,
        &master.uuid,
        &p.master_ip,
        now,
    );
    if !p.enabled_hypervisors.is_empty() {
        cluster.enabled_hypervisors = p.enabled_hypervisors.clone();
    }
    if !p.enabled_disk_templates.is_empty() {
        cluster.enabled_disk_templates = p.enabled_disk_templates.clone();
    }
    if let Some(d) = &p.file_storage_dir {
        cluster.file_storage_dir = d.clone();
    }
    if let Some(d) = &p.shared_file_storage_dir {
        cluster.shared_file_storage_dir = d.clone();
    }
    for (hv, params) in &p.hvparams {
        let cur = cluster.hvparams.entry(hv.clone()).or_default();
        *cur = objects::params::fill(cur, params);
    }
    let be = cluster.beparams.entry("default".into()).or_default();
    *be = objects::params::fill(be, &p.beparams);
    let nic = cluster.nicparams.entry("default".into()).or_default();
    *nic = objects::params::fill(nic, &p.nicparams);
    if let Some(n) = p.candidate_pool_size {
        cluster.candidate_pool_size = n;
    }
    if let Some(m) = &p.mac_prefix {
        cluster.mac_prefix = m.clone();
    }
    if let Some(d) = &p.master_netdev {
        cluster.master_netdev = d.clone();
    }
    match &p.default_iallocator {
        Some(a) if !a.is_empty() => {
            if objects::plugins::find_iallocator(paths.root(), a).is_none() {
                return Err(BootstrapError::Invalid(format!(
                    "Invalid default iallocator script '{a}' specified"
                )));
            }
            cluster.default_iallocator = a.clone();
        }
        Some(_) => {}
        None => {
            if objects::plugins::find_iallocator(paths.root(), "hail").is_some() {
                cluster.default_iallocator = "hail".into();
            }
        }
    }
    ConfigStore::create(&db, cluster, group, master)?;
    Ok(())
}

/// Removes the cluster's configuration, queue, certificates and ssconf
/// files from the master's tree (the daemons must be stopped first).
pub fn destroy_cluster(paths: &Paths) -> std::io::Result<()> {
    let data = paths.data_dir();
    if let Ok(entries) = std::fs::read_dir(&data) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let ours = name.starts_with("config.db")
                || name.starts_with("queue.db")
                || name.starts_with("ssconf_")
                || name == "server.pem"
                || name.starts_with("cluster-ca.");
            if ours {
                std::fs::remove_file(e.path())?;
            }
        }
    }
    Ok(())
}
