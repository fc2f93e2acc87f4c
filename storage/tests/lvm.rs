//! `plain` disks on a real volume group: two loop devices made for the
//! test, as physical volumes of a group of its own, removed again when the
//! test ends (passed or not). Needs root, `losetup` and lvm2 (installed by
//! `scripts/install-deps.sh`).
//!
//! This machine's kernel has no device-mapper: volumes can be created,
//! grown, renamed, listed and removed, but not activated; the test checks
//! that activating says so.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use storage::lvm::Lvm;
use storage::testing::TestVg;
use storage::{open, DiskMode, DiskSpec, DiskTemplate, StorageContext, StorageError};

fn disk(vg: &str, lv: &str, size: u64) -> DiskSpec {
    DiskSpec {
        uuid: "0b9e3c52-1c43-4f7e-9a8e-6c6a3f2f2d11".into(),
        index: 0,
        size,
        dev_type: DiskTemplate::Plain,
        logical_id: Some(format!("{vg}/{lv}")),
        mode: DiskMode::Rw,
        name: None,
        params: Default::default(),
        children: Vec::new(),
        drbd: None,
    }
}

fn ctx() -> StorageContext {
    let root = tempfile::tempdir().unwrap();
    StorageContext::from_paths(&objects::paths::Paths::new(root.path())).unwrap()
}

#[test]
fn plain_volumes_are_created_grown_renamed_listed_and_removed() {
    let vg = TestVg::new("a");
    let lvm = Lvm::new();
    let group = lvm.vg(&vg.name).unwrap().expect("the test's group");
    assert_eq!(group.pv_count, 2);
    assert!(group.size_mib >= 120, "{group:?}");
    assert_eq!(group.free_mib, group.size_mib);

    let ctx = ctx();
    let d0 = open(&ctx, "inst1", &disk(&vg.name, "u0.disk0", 16)).unwrap();
    let d1 = open(&ctx, "inst1", &disk(&vg.name, "u0.disk1", 8)).unwrap();
    assert!(!d0.exists().unwrap());
    assert_eq!(
        d0.create(16).unwrap(),
        PathBuf::from(format!("/dev/{}/u0.disk0", vg.name))
    );
    d1.create(8).unwrap();
    assert_eq!(vg.lv_names(), vec!["u0.disk0", "u0.disk1"]);
    assert_eq!(d0.info().unwrap().size_mib, 16);
    assert_eq!(
        lvm.vg(&vg.name).unwrap().unwrap().free_mib,
        group.free_mib - 24
    );
    // Creating it again at its size is fine; at another size it is not.
    d0.create(16).unwrap();
    let err = d0.create(32).unwrap_err();
    assert!(matches!(err, StorageError::VolumeExists(_)), "{err}");

    d0.grow(8, true).unwrap();
    assert_eq!(d0.info().unwrap().size_mib, 16, "a dry run grew it");
    d0.grow(8, false).unwrap();
    assert_eq!(d0.info().unwrap().size_mib, 24);

    lvm.rename(&vg.name, "u0.disk1", "u1.disk0").unwrap();
    assert_eq!(vg.lv_names(), vec!["u0.disk0", "u1.disk0"]);
    assert!(!d1.exists().unwrap());

    d0.remove().unwrap();
    d0.remove().unwrap();
    lvm.remove(&vg.name, "u1.disk0").unwrap();
    assert!(vg.lv_names().is_empty());
    assert_eq!(lvm.vg(&vg.name).unwrap().unwrap().free_mib, group.free_mib);
}

#[test]
fn bad_requests_name_the_problem_and_change_nothing() {
    let vg = TestVg::new("b");
    let lvm = Lvm::new();
    let free = lvm.vg(&vg.name).unwrap().unwrap().free_mib;

    let err = lvm.create("nosuchvg0", "x", 8).unwrap_err().to_string();
    assert_eq!(err, "volume group 'nosuchvg0' does not exist on this node");
    let err = lvm
        .create(&vg.name, "big", free + 4)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "not enough free space in volume group '{}': {} MiB needed, {free} MiB free",
            vg.name,
            free + 4
        )
    );
    assert!(lvm.create(&vg.name, "-x", 8).is_err());
    assert!(lvm.create(&vg.name, "x", 0).is_err());
    lvm.create(&vg.name, "x", 8).unwrap();
    assert!(matches!(
        lvm.grow(&vg.name, "x", free, false),
        Err(StorageError::NoSpace { .. })
    ));
    assert!(matches!(
        lvm.grow(&vg.name, "missing", 4, false),
        Err(StorageError::NoVolume(_))
    ));
    assert!(matches!(
        lvm.rename(&vg.name, "missing", "y"),
        Err(StorageError::NoVolume(_))
    ));
    lvm.create(&vg.name, "y", 4).unwrap();
    assert!(matches!(
        lvm.rename(&vg.name, "x", "y"),
        Err(StorageError::VolumeExists(_))
    ));
    assert_eq!(vg.lv_names(), vec!["x", "y"]);
    assert_eq!(lvm.lv(&vg.name, "x").unwrap().unwrap().size_mib, 8);
}

#[test]
fn assembling_a_plain_disk_needs_device_mapper_and_says_so() {
    let vg = TestVg::new("c");
    let dev = open(&ctx(), "inst1", &disk(&vg.name, "u2.disk0", 8)).unwrap();
    dev.create(8).unwrap();
    let lvm = Lvm::new();
    if lvm.can_activate() {
        let path = dev.assemble().unwrap().unwrap();
        assert!(path.exists(), "{}", path.display());
        assert_eq!(dev.info().unwrap().path, Some(path));
    } else {
        let err = dev.assemble().unwrap_err().to_string();
        assert!(err.contains("no device-mapper"), "{err}");
        assert!(err.contains(&format!("{}/u2.disk0", vg.name)), "{err}");
        assert_eq!(dev.info().unwrap().path, None);
    }
    dev.remove().unwrap();
    assert!(vg.lv_names().is_empty());
}

#[test]
fn physical_volumes_and_the_volumes_on_them_are_listed_and_allocation_can_be_switched_off() {
    let vg = TestVg::new("d");
    let lvm = Lvm::new();
    let pvs: Vec<_> = lvm
        .pvs()
        .unwrap()
        .into_iter()
        .filter(|p| p.vg == vg.name)
        .collect();
    assert_eq!(pvs.len(), 2, "{pvs:?}");
    assert!(pvs
        .iter()
        .all(|p| p.allocatable && p.free_mib == p.size_mib));

    lvm.create(&vg.name, "u3.disk0", 8).unwrap();
    let vols: Vec<_> = lvm
        .volumes()
        .unwrap()
        .into_iter()
        .filter(|v| v.vg == vg.name)
        .collect();
    assert_eq!(vols.len(), 1, "{vols:?}");
    assert_eq!((vols[0].name.as_str(), vols[0].size_mib), ("u3.disk0", 8));
    assert!(pvs.iter().any(|p| p.name == vols[0].device), "{vols:?}");

    lvm.set_allocatable(&pvs[0].name, false).unwrap();
    let now = lvm.pvs().unwrap();
    let first = now.iter().find(|p| p.name == pvs[0].name).unwrap();
    assert!(!first.allocatable);
    lvm.set_allocatable(&pvs[0].name, true).unwrap();
    assert!(matches!(
        lvm.set_allocatable("/dev/no-such-pv", false),
        Err(StorageError::NoVolume(_))
    ));
    // Nothing is missing: the repair finds nothing to remove.
    lvm.repair_vg(&vg.name).unwrap();
    assert!(matches!(
        lvm.repair_vg("nosuchvg1"),
        Err(StorageError::NoVolumeGroup(_))
    ));
}

#[test]
fn a_drbd_disk_on_logical_volumes_needs_device_mapper_and_leaves_no_volume() {
    let vg = TestVg::new("e");
    let root = tempfile::tempdir().unwrap();
    let ctx = StorageContext::from_paths(&objects::paths::Paths::new(root.path()))
        .unwrap()
        .with_node_name("node1");
    let drbd = DiskSpec {
        dev_type: DiskTemplate::Drbd,
        logical_id: None,
        children: vec![
            disk(&vg.name, "u1.disk0_data", 16),
            disk(&vg.name, "u1.disk0_meta", 8),
        ],
        drbd: Some(rpc::storage::DrbdLink {
            nodes: [
                rpc::storage::DrbdEndpoint {
                    node: "node1".into(),
                    ip: "127.0.0.1".into(),
                },
                rpc::storage::DrbdEndpoint {
                    node: "node2".into(),
                    ip: "127.0.0.2".into(),
                },
            ],
            port: 11000,
        }),
        ..disk(&vg.name, "unused", 16)
    };
    let dev = storage::drbd::DrbdDevice::open(&ctx, "inst1", &drbd).unwrap();
    let err = dev.create(true).unwrap_err();
    assert!(
        matches!(err, StorageError::NoDeviceMapper(_)),
        "{err}: activating the volumes needs device-mapper"
    );
    assert!(vg.lv_names().is_empty(), "left {:?}", vg.lv_names());
}
