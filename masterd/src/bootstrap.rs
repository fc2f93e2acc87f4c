//! The first configuration of a new cluster, stored by
//! `ganeti-masterd --init`. `gnt-cluster init` (the `setup` crate) makes
//! the master's tree, the certificates and the first objects, and hands
//! the objects over as JSON; they are checked and stored here, where the
//! configuration's format is known.

use std::io::Read;
use std::path::Path;

use objects::{FirstConfig, FirstConfigError};

use crate::config::{ConfigError, ConfigStore};

/// Why the first configuration was not stored.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("cannot read the first configuration (JSON with the cluster, nodegroup and master)")]
    Decode(#[source] serde_json::Error),
    #[error("invalid first configuration")]
    Invalid(#[from] FirstConfigError),
    #[error("cannot create the configuration")]
    Config(#[from] ConfigError),
}

/// Reads the first configuration from `input`, checks it and creates the
/// configuration database `db` with it.
pub fn init_config(db: &Path, input: impl Read) -> Result<(), InitError> {
    let first: FirstConfig = serde_json::from_reader(input).map_err(InitError::Decode)?;
    first.check()?;
    ConfigStore::create(db, first.cluster, first.nodegroup, first.master)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use objects::{Cluster, Node, NodeGroup};

    fn first() -> FirstConfig {
        FirstConfig {
            cluster: Cluster::new("c", "cluster.example.com", "n", "127.0.0.1", 1.0),
            nodegroup: NodeGroup::new("g", "default", 1.0),
            master: Node::new("n", "node1", "127.0.0.1", "g", 1.0),
        }
    }

    #[test]
    fn the_first_configuration_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("config.db");
        let json = serde_json::to_vec(&first()).unwrap();
        init_config(&db, json.as_slice()).unwrap();
        let store = ConfigStore::open(&db).unwrap();
        let cfg = store.read();
        assert_eq!(cfg.cluster.cluster_name, "cluster.example.com");
        assert_eq!(cfg.master_node().map(|n| n.name.as_str()), Some("node1"));
    }

    #[test]
    fn a_second_first_configuration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("config.db");
        let json = serde_json::to_vec(&first()).unwrap();
        init_config(&db, json.as_slice()).unwrap();
        let e = init_config(&db, json.as_slice()).unwrap_err();
        assert!(matches!(
            e,
            InitError::Config(ConfigError::AlreadyInitialized)
        ));
    }

    #[test]
    fn input_that_is_not_a_first_configuration_is_refused_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("config.db");
        let e = init_config(&db, &b"{\"cluster\": 1}"[..]).unwrap_err();
        assert!(matches!(e, InitError::Decode(_)));
        assert!(
            objects::error_chain(&e).starts_with("cannot read the first configuration"),
            "{e}"
        );
        assert!(!db.exists());
    }

    #[test]
    fn objects_that_do_not_fit_together_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("config.db");
        let mut f = first();
        f.master.group = "elsewhere".into();
        let json = serde_json::to_vec(&f).unwrap();
        let e = init_config(&db, json.as_slice()).unwrap_err();
        assert!(matches!(e, InitError::Invalid(_)));
        assert!(!db.exists());
    }
}
