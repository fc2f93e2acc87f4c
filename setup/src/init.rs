//! `gnt-cluster init`: the checks, the master's tree, the cluster CA and
//! the master's certificate, the first configuration (stored by
//! `ganeti-masterd --init`), the RAPI certificate `rapi.pem`, then the
//! master's node, master and RAPI daemons.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;

use objects::enums::{KNOWN_DISK_TEMPLATES, KNOWN_HYPERVISORS};
use objects::ids::{new_uuid, timestamp};
use objects::paths::Paths;
use objects::plugins::find_iallocator;
use objects::{Cluster, FirstConfig, Node, NodeGroup};

use crate::daemons::{self, DaemonError, MASTERD};

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
    /// The volume group of `plain` and `drbd` disks, checked on this node.
    pub vg_name: Option<String>,
    /// The instance policy's bounds (`[{"min": {...}, "max": {...}}]`),
    /// when not Ganeti's default.
    pub ipolicy_minmax: Option<serde_json::Value>,
}

/// Ganeti's smallest volume group, in MiB.
const MIN_VG_SIZE: u64 = 20480;

/// Why the cluster could not be created.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("Cluster is already initialised (found {})", .0.display())]
    AlreadyInitialized(PathBuf),
    #[error("cannot create directory {}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the cluster certificates")]
    Tls(#[from] rpc::tls::TlsError),
    #[error("invalid parameter: {0}")]
    Invalid(String),
    /// `ganeti-masterd --init` could not be run.
    #[error("cannot create the configuration: cannot run {binary} --init")]
    RunMaster {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the configuration: cannot encode it")]
    Encode(#[source] serde_json::Error),
    /// `ganeti-masterd --init` refused or failed; its message.
    #[error("{0}")]
    Store(String),
    /// A daemon did not start.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

/// Creates the cluster under `paths` with this node, `p.master_name`, as
/// its master, and starts its node and master daemons.
pub fn create_cluster(paths: &Paths, p: &InitParams) -> Result<(), InitError> {
    let first = prepare(paths, p)?;
    store(paths, &p.master_name, &first)?;
    let ip = parse_ip(&p.master_ip)?;
    daemons::start_noded(paths, &p.master_name, ip)?;
    daemons::start_masterd(paths, &p.master_name)?;
    daemons::start_rapi(paths, &p.master_name, ip)?;
    Ok(())
}

fn parse_ip(ip: &str) -> Result<IpAddr, InitError> {
    ip.parse()
        .map_err(|_| InitError::Invalid(format!("invalid master IP '{ip}'")))
}

/// Checks `p`, makes the master's tree, the cluster CA and the master's
/// certificate, and returns the first configuration.
pub fn prepare(paths: &Paths, p: &InitParams) -> Result<FirstConfig, InitError> {
    let db = paths.config_db();
    if db.exists() {
        return Err(InitError::AlreadyInitialized(db));
    }
    let invalid = |e: objects::validate::InvalidValue| InitError::Invalid(e.to_string());
    objects::validate::check_host_name("cluster", &p.cluster_name).map_err(invalid)?;
    objects::validate::check_host_name("node", &p.master_name).map_err(invalid)?;
    let ip = parse_ip(&p.master_ip)?;
    for hv in &p.enabled_hypervisors {
        if !KNOWN_HYPERVISORS.contains(&hv.as_str()) {
            return Err(InitError::Invalid(format!("unknown hypervisor '{hv}'")));
        }
    }
    for t in &p.enabled_disk_templates {
        if !KNOWN_DISK_TEMPLATES.contains(&t.as_str()) {
            return Err(InitError::Invalid(format!(
                "unsupported disk template '{t}'"
            )));
        }
    }
    if let Some(vg) = p.vg_name.as_deref().filter(|v| !v.is_empty()) {
        objects::validate::check_lvm_name("volume group", vg).map_err(invalid)?;
        crate::lvm::check_volume_group(paths, vg, MIN_VG_SIZE).map_err(InitError::Invalid)?;
    }
    for path in crate::tree::master_dirs(paths) {
        std::fs::create_dir_all(&path).map_err(|source| InitError::Dir { path, source })?;
    }
    let ca = rpc::tls::create_cluster_ca(&p.cluster_name)?;
    rpc::tls::write_cluster_ca(paths, &ca, true)?;
    let cert = rpc::tls::create_node_cert(&ca, &p.master_name, ip)?;
    rpc::tls::write_node_cert(paths, &cert)?;
    // RAPI's certificate, signed by the cluster CA too, for the master's
    // name and address; the users file goes next to it, in rapi/.
    let rapi_cert = rpc::tls::create_node_cert(&ca, &p.master_name, ip)?;
    rpc::tls::write_file_atomically(&paths.rapi_cert(), rapi_cert.as_bytes(), 0o400)?;
    let rapi_dir = paths.data_dir().join("rapi");
    std::fs::create_dir_all(&rapi_dir).map_err(|source| InitError::Dir {
        path: rapi_dir,
        source,
    })?;

    let now = timestamp();
    let nodegroup = NodeGroup::new(&new_uuid(), "default", now);
    let master = Node::new(
        &new_uuid(),
        &p.master_name,
        &p.master_ip,
        &nodegroup.uuid,
        now,
    );
    let mut cluster = Cluster::new(
        &new_uuid(),
        &p.cluster_name,
        &master.uuid,
        &p.master_ip,
        now,
    );
    apply_params(&mut cluster, p);
    match &p.default_iallocator {
        Some(a) if !a.is_empty() => {
            if find_iallocator(paths.root(), a).is_none() {
                return Err(InitError::Invalid(format!(
                    "Invalid default iallocator script '{a}' specified"
                )));
            }
            cluster.default_iallocator = a.clone();
        }
        Some(_) => {}
        None => {
            if find_iallocator(paths.root(), "hail").is_some() {
                cluster.default_iallocator = "hail".into();
            }
        }
    }
    Ok(FirstConfig {
        cluster,
        nodegroup,
        master,
    })
}

/// Puts the options of `p` over the cluster's defaults.
fn apply_params(cluster: &mut Cluster, p: &InitParams) {
    if !p.enabled_hypervisors.is_empty() {
        cluster.enabled_hypervisors = p.enabled_hypervisors.clone();
    }
    if !p.enabled_disk_templates.is_empty() {
        cluster.enabled_disk_templates = p.enabled_disk_templates.clone();
    }
    if let Some(mm) = &p.ipolicy_minmax {
        cluster.ipolicy.insert("minmax".into(), mm.clone());
    }
    // The policy allows only the templates the cluster enables, as
    // Ganeti's init makes it.
    let enabled = &cluster.enabled_disk_templates;
    if let Some(serde_json::Value::Array(allowed)) = cluster.ipolicy.get_mut("disk-templates") {
        allowed.retain(|t| t.as_str().is_some_and(|t| enabled.iter().any(|e| e == t)));
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
    if let Some(vg) = &p.vg_name {
        cluster.volume_group_name = vg.clone();
    }
}

/// Has `ganeti-masterd --init` store `first` as the configuration of the
/// tree `paths` (node `node`).
pub fn store(paths: &Paths, node: &str, first: &FirstConfig) -> Result<(), InitError> {
    let run = |source| InitError::RunMaster {
        binary: MASTERD.to_string(),
        source,
    };
    let json = serde_json::to_vec(first).map_err(InitError::Encode)?;
    let mut child = daemons::command(MASTERD, paths.root(), node)
        .arg("--init")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(run)?;
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(&json),
        None => Ok(()),
    };
    let out = child.wait_with_output().map_err(run)?;
    if out.status.success() {
        return written.map_err(run);
    }
    let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(InitError::Store(if message.is_empty() {
        format!(
            "cannot create the configuration: {MASTERD} --init failed ({})",
            out.status
        )
    } else {
        message
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> InitParams {
        InitParams {
            cluster_name: "cluster.example.com".into(),
            master_name: "node1".into(),
            master_ip: "127.0.0.1".into(),
            enabled_hypervisors: vec!["kvm".into(), "fake".into()],
            enabled_disk_templates: vec![],
            file_storage_dir: None,
            shared_file_storage_dir: Some("/srv/shared".into()),
            hvparams: vec![],
            beparams: [("maxmem".to_string(), serde_json::json!(256))].into(),
            nicparams: Default::default(),
            candidate_pool_size: Some(3),
            mac_prefix: None,
            master_netdev: None,
            default_iallocator: Some(String::new()),
            vg_name: None,
            ipolicy_minmax: None,
        }
    }

    #[test]
    fn a_volume_group_this_node_lacks_is_refused_before_anything_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let p = InitParams {
            enabled_disk_templates: vec!["plain".into()],
            vg_name: Some("gntnosuchvg".into()),
            ..params()
        };
        let err = prepare(&paths, &p).unwrap_err().to_string();
        assert!(err.contains("volume group 'gntnosuchvg' missing"), "{err}");
        assert!(!paths.config_db().exists());
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn prepare_writes_the_certificates_and_returns_a_consistent_config() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let first = prepare(&paths, &params()).unwrap();
        assert_eq!(first.check(), Ok(()));
        assert_eq!(first.cluster.cluster_name, "cluster.example.com");
        assert_eq!(first.cluster.enabled_hypervisors, ["kvm", "fake"]);
        assert_eq!(first.cluster.shared_file_storage_dir, "/srv/shared");
        assert_eq!(first.cluster.candidate_pool_size, 3);
        assert_eq!(first.cluster.beparams["default"]["maxmem"], 256);
        assert_eq!(first.master.name, "node1");
        assert_eq!(first.nodegroup.name, "default");
        for f in [
            paths.cluster_ca_cert(),
            paths.cluster_ca_key(),
            paths.node_cert(),
            paths.rapi_cert(),
        ] {
            assert!(f.is_file(), "{} is missing", f.display());
        }
        for d in crate::tree::master_dirs(&paths) {
            assert!(d.is_dir(), "{} is missing", d.display());
        }
        // Nothing of the configuration is written here.
        assert!(!paths.config_db().exists());
    }

    #[test]
    fn an_existing_configuration_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        std::fs::write(paths.config_db(), "").unwrap();
        let e = prepare(&paths, &params()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Cluster is already initialised (found "),
            "{e}"
        );
        assert!(!paths.cluster_ca_cert().exists());
    }

    #[test]
    fn unknown_hypervisors_and_disk_templates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let mut p = params();
        p.enabled_hypervisors = vec!["xen-pvm".into()];
        assert_eq!(
            prepare(&paths, &p).unwrap_err().to_string(),
            "invalid parameter: unknown hypervisor 'xen-pvm'"
        );
        let mut p = params();
        p.enabled_disk_templates = vec!["rbd".into()];
        assert_eq!(
            prepare(&paths, &p).unwrap_err().to_string(),
            "invalid parameter: unsupported disk template 'rbd'"
        );
        assert!(!paths.data_dir().exists());
    }

    #[test]
    fn a_bad_master_ip_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = params();
        p.master_ip = "not-an-ip".into();
        assert_eq!(
            prepare(&Paths::new(dir.path()), &p)
                .unwrap_err()
                .to_string(),
            "invalid parameter: invalid master IP 'not-an-ip'"
        );
    }

    #[test]
    fn a_default_iallocator_that_is_not_found_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = params();
        p.default_iallocator = Some("no-such-iallocator-plugin".into());
        assert_eq!(
            prepare(&Paths::new(dir.path()), &p)
                .unwrap_err()
                .to_string(),
            "invalid parameter: Invalid default iallocator script \
             'no-such-iallocator-plugin' specified"
        );
    }
}
