use super::*;
use objects::{AdminState, AdminStateSource};

fn fresh(dir: &Path) -> ConfigStore {
    let g = NodeGroup::new("g-uuid", "default", 1.0);
    let n = Node::new("n1-uuid", "node1", "127.0.0.1", "g-uuid", 1.0);
    let c = Cluster::new("c-uuid", "cluster", "n1-uuid", "127.0.0.1", 1.0);
    ConfigStore::create(&dir.join("config.db"), c, g, n).unwrap()
}

fn instance(uuid: &str, name: &str) -> Instance {
    Instance {
        uuid: uuid.into(),
        name: name.into(),
        primary_node: "n1-uuid".into(),
        os: "tiny".into(),
        hypervisor: objects::Hypervisor::Fake,
        hvparams: Default::default(),
        beparams: Default::default(),
        osparams: Default::default(),
        admin_state: AdminState::Down,
        admin_state_source: AdminStateSource::Admin,
        disk_template: objects::DiskTemplate::Diskless,
        disks: vec![],
        nics: vec![],
        disks_active: false,
        network_port: None,
        tags: vec![],
        serial_no: 0,
        ctime: 1.0,
        mtime: 1.0,
    }
}

#[test]
fn commit_bumps_serials_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let s1 = store.cluster().serial_no;
    let s2 = store
        .commit({
            let mut c = Changes::new();
            c.instance(instance("i1-uuid", "inst1"));
            c
        })
        .unwrap();
    assert_eq!(s2, s1 + 1);
    assert_eq!(store.read().instance_by_name("inst1").unwrap().serial_no, 1);
    drop(store);
    let store = ConfigStore::open(&dir.path().join("config.db")).unwrap();
    let data = store.read();
    assert_eq!(data.cluster.serial_no, s2);
    assert_eq!(data.instance_by_name("inst1").unwrap().uuid, "i1-uuid");
    assert_eq!(data.node_by_name("node1").unwrap().primary_ip, "127.0.0.1");
}

#[test]
fn rename_updates_the_name_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let mut c = Changes::new();
    c.instance(instance("i1-uuid", "inst1"));
    store.commit(c).unwrap();
    let mut i = store.read().instance_by_name("inst1").unwrap().clone();
    i.name = "inst2".into();
    let mut c = Changes::new();
    c.instance(i);
    store.commit(c).unwrap();
    let data = store.read();
    assert!(data.instance_by_name("inst1").is_none());
    assert_eq!(data.instance_by_name("inst2").unwrap().serial_no, 2);
}

#[test]
fn a_failed_commit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let mut c = Changes::new();
    c.instance(instance("i1-uuid", "inst1"));
    store.commit(c).unwrap();
    let serial = store.cluster().serial_no;
    // A second instance with the same name violates the UNIQUE constraint.
    let mut c = Changes::new();
    c.instance(instance("i2-uuid", "other"));
    c.instance(instance("i3-uuid", "inst1"));
    assert!(store.commit(c).is_err());
    let data = store.read();
    assert_eq!(data.cluster.serial_no, serial);
    assert!(data.instance_by_name("other").is_none());
    drop(data);
    drop(store);
    let store = ConfigStore::open(&dir.path().join("config.db")).unwrap();
    assert!(store.read().instance_by_name("other").is_none());
}

#[test]
fn short_names_expand_when_unique() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let mut c = Changes::new();
    c.instance(instance("i1-uuid", "web.example.com"));
    store.commit(c).unwrap();
    assert_eq!(store.read().expand_instance("web").unwrap().uuid, "i1-uuid");
    assert!(store.read().expand_instance("we").is_none());
}

#[test]
fn create_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(fresh(dir.path()));
    let g = NodeGroup::new("g", "default", 1.0);
    let n = Node::new("n", "node1", "127.0.0.1", "g", 1.0);
    let c = Cluster::new("c", "cluster", "n", "127.0.0.1", 1.0);
    assert!(matches!(
        ConfigStore::create(&dir.path().join("config.db"), c, g, n),
        Err(ConfigError::AlreadyInitialized)
    ));
}
#[test]
fn the_mac_index_follows_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let with_mac = |uuid: &str, name: &str, mac: &str| {
        let mut i = instance(uuid, name);
        i.nics = vec![objects::Nic {
            uuid: format!("{uuid}-nic0"),
            name: None,
            mac: mac.into(),
            ip: None,
            network: None,
            nicparams: Default::default(),
        }];
        i
    };
    let commit = |f: &dyn Fn(&mut Changes)| {
        let mut c = Changes::new();
        f(&mut c);
        store.commit(c).unwrap();
    };
    commit(&|c| {
        c.instance(with_mac("i1-uuid", "inst1", "aa:00:00:00:00:01"));
    });
    assert!(store.read().mac_in_use("AA:00:00:00:00:01"));
    assert_eq!(
        store.read().mac_owner("aa:00:00:00:00:01").unwrap().name,
        "inst1"
    );
    // A changed MAC frees the old one.
    commit(&|c| {
        c.instance(with_mac("i1-uuid", "inst1", "aa:00:00:00:00:02"));
    });
    assert!(!store.read().mac_in_use("aa:00:00:00:00:01"));
    assert!(store.read().mac_in_use("aa:00:00:00:00:02"));
    // So does removing the instance, and reopening rebuilds the index.
    commit(&|c| {
        c.instance(with_mac("i2-uuid", "inst2", "aa:00:00:00:00:03"));
        c.remove_instance("i1-uuid");
    });
    drop(store);
    let store = ConfigStore::open(&dir.path().join("config.db")).unwrap();
    let data = store.read();
    assert!(!data.mac_in_use("aa:00:00:00:00:02"));
    assert!(data.mac_in_use("aa:00:00:00:00:03"));
    assert!(data.mac_owner("aa:00:00:00:00:02").is_none());
}

#[test]
fn instances_by_name_follow_adds_renames_and_removals() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let names = |store: &ConfigStore| -> Vec<String> {
        store
            .read()
            .instances_by_name()
            .map(|i| i.name.clone())
            .collect()
    };
    let commit = |f: &dyn Fn(&mut Changes)| {
        let mut c = Changes::new();
        f(&mut c);
        store.commit(c).unwrap();
    };
    commit(&|c| {
        c.instance(instance("u1", "inst10"));
        c.instance(instance("u2", "inst2"));
    });
    assert_eq!(names(&store), ["inst2", "inst10"]);
    commit(&|c| {
        c.instance(instance("u3", "inst1"));
    });
    assert_eq!(names(&store), ["inst1", "inst2", "inst10"]);
    commit(&|c| {
        c.instance(instance("u1", "inst0"));
    });
    assert_eq!(names(&store), ["inst0", "inst1", "inst2"]);
    commit(&|c| {
        c.remove_instance("u3");
    });
    assert_eq!(names(&store), ["inst0", "inst2"]);
}

#[test]
fn instances_named_are_found_by_full_or_short_name_after_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let named = |lookup: &str| -> Vec<String> {
        store
            .read()
            .instances_named(lookup)
            .iter()
            .map(|i| i.name.clone())
            .collect()
    };
    let commit = |f: &dyn Fn(&mut Changes)| {
        let mut c = Changes::new();
        f(&mut c);
        store.commit(c).unwrap();
    };
    commit(&|c| {
        c.instance(instance("u1", "web1.example.com"));
        c.instance(instance("u2", "web1"));
        c.instance(instance("u3", "web10.example.com"));
        c.instance(instance("u4", "web1-old"));
    });
    assert_eq!(named("web1"), ["web1.example.com", "web1"]);
    assert_eq!(named("web1.example"), ["web1.example.com"]);
    assert_eq!(named("web10"), ["web10.example.com"]);
    assert!(named("web").is_empty());
    assert!(named("nothing").is_empty());
    commit(&|c| {
        c.instance(instance("u1", "db1.example.com"));
        c.remove_instance("u2");
    });
    assert!(named("web1").is_empty());
    assert_eq!(named("db1"), ["db1.example.com"]);
}

#[test]
fn replication_ports_are_handed_out_once_and_reused_after_release() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let a = store.allocate_port().unwrap();
    let b = store.allocate_port().unwrap();
    assert_eq!(
        (a, b),
        (objects::FIRST_DRBD_PORT, objects::FIRST_DRBD_PORT + 1)
    );
    store.release_ports(&[a]).unwrap();
    assert_eq!(
        store.allocate_port().unwrap(),
        a,
        "a released port comes back first"
    );
    assert_eq!(store.allocate_port().unwrap(), b + 1);
    drop(store);
    // What was handed out survives a restart.
    let store = ConfigStore::open(&dir.path().join("config.db")).unwrap();
    assert_eq!(store.allocate_port().unwrap(), b + 2);
    // Concurrent allocations never share a port.
    let store = std::sync::Arc::new(store);
    let ports: Vec<u16> = (0..8)
        .map(|_| {
            let s = store.clone();
            std::thread::spawn(move || s.allocate_port().unwrap())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let mut unique = ports.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ports.len(), "{ports:?}");
}

fn network(uuid: &str, name: &str, subnet: &str) -> Network {
    let mut n = Network {
        uuid: uuid.into(),
        name: name.into(),
        network: subnet.into(),
        gateway: None,
        network6: None,
        gateway6: None,
        mac_prefix: None,
        reservations: String::new(),
        ext_reservations: String::new(),
        tags: vec![],
        serial_no: 0,
        ctime: 1.0,
        mtime: 1.0,
    };
    let net = objects::network::Ipv4Net::parse(subnet).unwrap();
    AddressPool::initialize(net, None).unwrap().store(&mut n);
    n
}

#[test]
fn networks_survive_reopen_and_are_found_by_name_or_uuid() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let mut ch = Changes::new();
    ch.network(network("net-uuid", "net1", "10.0.0.0/29"));
    store.commit(ch).unwrap();
    drop(store);
    let store = ConfigStore::open(&dir.path().join("config.db")).unwrap();
    let data = store.read();
    assert_eq!(data.expand_network("net1").unwrap().uuid, "net-uuid");
    assert_eq!(data.expand_network("net-uuid").unwrap().name, "net1");
    assert_eq!(data.networks["net-uuid"].serial_no, 1);
    assert!(data.expand_network("net2").is_none());
}

#[test]
fn an_address_taken_twice_fails_the_second_commit_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let mut ch = Changes::new();
    ch.network(network("net-uuid", "net1", "10.0.0.0/29"));
    store.commit(ch).unwrap();
    let mut ch = Changes::new();
    ch.reserve_ip("net-uuid", "10.0.0.3");
    store.commit(ch).unwrap();
    assert_eq!(store.read().networks["net-uuid"].reservations, "00010000");
    let serial = store.cluster().serial_no;
    let mut ch = Changes::new();
    ch.instance(instance("i1-uuid", "inst1"))
        .reserve_ip("net-uuid", "10.0.0.3");
    let e = store.commit(ch).unwrap_err();
    assert!(
        objects::error_chain(&e).contains("IP 10.0.0.3 is already used by an instance"),
        "{}",
        objects::error_chain(&e)
    );
    assert_eq!(store.cluster().serial_no, serial);
    assert!(store.read().instance_by_name("inst1").is_none());
    // Given back, it can be taken again.
    let mut ch = Changes::new();
    ch.release_ip("net-uuid", "10.0.0.3");
    store.commit(ch).unwrap();
    assert_eq!(store.read().networks["net-uuid"].reservations, "00000000");
}

#[test]
fn removing_a_network_forgets_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let mut ch = Changes::new();
    ch.network(network("net-uuid", "net1", "10.0.0.0/29"));
    store.commit(ch).unwrap();
    let mut ch = Changes::new();
    ch.remove_network("net-uuid");
    store.commit(ch).unwrap();
    assert!(store.read().network_by_name("net1").is_none());
    drop(store);
    let store = ConfigStore::open(&dir.path().join("config.db")).unwrap();
    assert!(store.read().networks.is_empty());
}

/// What a candidate receives (`snapshot_json`) restores, over another
/// database, to the same configuration with the same serial.
#[test]
fn a_pushed_snapshot_restores_the_whole_configuration_with_its_serial() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path());
    let mut ch = Changes::new();
    ch.instance(instance("i1-uuid", "inst1"));
    store.commit(ch).unwrap();
    let (serial, json) = store.snapshot_json();
    assert_eq!(serial, store.cluster().serial_no);
    let dump: ConfigDump = serde_json::from_str(&json).unwrap();
    // Over a database that holds something else.
    let other = tempfile::tempdir().unwrap();
    let stale = fresh(other.path());
    let mut ch = Changes::new();
    ch.instance(instance("i2-uuid", "stale"));
    stale.commit(ch).unwrap();
    drop(stale);
    let db = other.path().join("config.db");
    ConfigStore::restore(&db, &dump).unwrap();
    let restored = ConfigStore::open(&db).unwrap();
    let cfg = restored.read();
    assert_eq!(cfg.cluster.serial_no, serial);
    let names: Vec<&str> = cfg.instances.values().map(|i| i.name.as_str()).collect();
    assert_eq!(names, vec!["inst1"]);
    assert_eq!(cfg.master_node().map(|n| n.name.as_str()), Some("node1"));
}
