//! `plain` (LVM) disks on a virtual cluster whose nodes each have a volume
//! group of their own (a sparse loop device that only that node's lvm
//! sees). This machine's kernel has no device-mapper, so volumes are
//! created, listed, grown and removed for real but cannot be activated:
//! what needs activation must fail and say why. Needs root and lvm2.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tests::VCluster;

/// `gnt-node volumes` as rows `node|vg|size in MiB|instance`, sorted.
fn volumes(vc: &VCluster) -> Vec<String> {
    let mut rows: Vec<String> = vc
        .ok(
            "gnt-node",
            &[
                "volumes",
                "--no-headers",
                "--separator=|",
                "--units=m",
                "-o",
                "node,vg,size,instance",
            ],
        )
        .lines()
        .map(str::to_string)
        .collect();
    rows.sort();
    rows
}

fn device_mapper() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/mapper/control")
        .is_ok()
}

#[test]
fn plain_disks_are_volumes_in_their_nodes_group_from_create_to_remove() {
    let vg = format!("gntvc{}", std::process::id());
    let vc = VCluster::up_with("0.61", 2, &[("GANETI_VCLUSTER_VG", &vg)]);
    assert!(volumes(&vc).is_empty());

    vc.add_instance(
        "node2",
        "plain1",
        &[
            "-t",
            "plain",
            "--disk",
            "0:size=1G",
            "--disk",
            "1:size=512M",
            "--no-install",
            "--no-start",
        ],
    );
    assert_eq!(
        volumes(&vc),
        vec![
            format!("node2|{vg}|1024|plain1"),
            format!("node2|{vg}|512|plain1")
        ],
        "the volumes are on node2 only"
    );
    let info = vc.ok("gnt-instance", &["info", "plain1"]);
    assert!(info.contains(&format!("logical_id: {vg}/")), "{info}");

    // The group's space: listed as a storage unit, checked before a create.
    let rows = vc.ok(
        "gnt-node",
        &[
            "list-storage",
            "-t",
            "lvm-vg",
            "--no-headers",
            "--separator=|",
            "--units=m",
            "-o",
            "node,name,size,used",
        ],
    );
    let node2 = rows
        .lines()
        .find(|l| l.starts_with("node2|"))
        .expect("node2's group");
    let cols: Vec<&str> = node2.split('|').collect();
    assert_eq!(cols[1], vg);
    assert!(cols[2].parse::<u64>().unwrap() >= 20480, "{node2}");
    assert_eq!(cols[3], "1536");
    let err = vc.fails(
        "gnt-instance",
        &[
            "add",
            "-o",
            "tiny",
            "-n",
            "node2",
            "--no-name-check",
            "--no-ip-check",
            "-t",
            "plain",
            "--disk",
            "0:size=30G",
            "--no-install",
            "--no-start",
            "plain2",
        ],
    );
    assert!(
        err.contains("Not enough disk space on target node node2 vg")
            && err.contains("required 30720 MiB"),
        "{err}"
    );
    assert_eq!(volumes(&vc).len(), 2, "the refused create made nothing");

    // Growing: relative, absolute, and not below the current size.
    vc.ok("gnt-instance", &["grow-disk", "plain1", "0", "256M"]);
    vc.ok(
        "gnt-instance",
        &["grow-disk", "--absolute", "plain1", "1", "1G"],
    );
    assert_eq!(
        volumes(&vc),
        vec![
            format!("node2|{vg}|1024|plain1"),
            format!("node2|{vg}|1280|plain1")
        ]
    );
    let sizes = vc.list("gnt-instance", "disk.sizes", &["--units=m", "plain1"]);
    assert_eq!(sizes, vec![vec!["1280,1024".to_string()]]);
    let err = vc.fails(
        "gnt-instance",
        &["grow-disk", "--absolute", "plain1", "0", "512M"],
    );
    assert!(err.contains("is smaller than current disk size"), "{err}");
    let err = vc.fails("gnt-instance", &["grow-disk", "plain1", "5", "1G"]);
    assert!(err.contains("Invalid disk index: 5"), "{err}");

    // Activation needs device-mapper.
    if !device_mapper() {
        let err = vc.fails("gnt-instance", &["startup", "plain1"]);
        assert!(err.contains("no device-mapper"), "{err}");
        let err = vc.fails("gnt-instance", &["activate-disks", "plain1"]);
        assert!(err.contains("no device-mapper"), "{err}");
        vc.ok("gnt-instance", &["shutdown", "plain1"]);
    }
    vc.ok("gnt-instance", &["deactivate-disks", "plain1"]);

    vc.ok("gnt-instance", &["remove", "-f", "plain1"]);
    assert!(volumes(&vc).is_empty(), "{:?}", volumes(&vc));
}

#[test]
fn the_volume_group_and_the_physical_volumes_are_managed_per_node() {
    let vg = format!("gntvd{}", std::process::id());
    let vc = VCluster::up_with("0.62", 2, &[("GANETI_VCLUSTER_VG", &vg)]);
    let pv = std::fs::read_to_string(vc.root(2).join("etc/lvm/loop-device")).unwrap();
    let pv = pv.trim();
    let pvs = |vc: &VCluster| {
        vc.ok(
            "gnt-node",
            &[
                "list-storage",
                "-t",
                "lvm-pv",
                "--no-headers",
                "--separator=|",
                "-o",
                "node,name,allocatable",
                "node2",
            ],
        )
    };
    assert_eq!(pvs(&vc).trim(), format!("node2|{pv}|Y"));
    vc.ok(
        "gnt-node",
        &["modify-storage", "--allocatable=no", "node2", "lvm-pv", pv],
    );
    assert_eq!(pvs(&vc).trim(), format!("node2|{pv}|N"));
    vc.ok(
        "gnt-node",
        &["modify-storage", "--allocatable=yes", "node2", "lvm-pv", pv],
    );
    assert_eq!(pvs(&vc).trim(), format!("node2|{pv}|Y"));
    let err = vc.fails(
        "gnt-node",
        &["modify-storage", "--allocatable=no", "node2", "lvm-vg", &vg],
    );
    assert!(
        err.contains("Storage units of type 'lvm-vg' can not be modified"),
        "{err}"
    );
    vc.ok("gnt-node", &["repair-storage", "node2", "lvm-vg", &vg]);
    let err = vc.fails(
        "gnt-node",
        &["repair-storage", "node2", "lvm-vg", "gntnosuchvg"],
    );
    assert!(err.contains("gntnosuchvg"), "{err}");

    // dtotal/dfree measure the group once plain is the first template.
    vc.ok(
        "gnt-cluster",
        &[
            "modify",
            "--enabled-disk-templates=plain,file,diskless,sharedfile",
        ],
    );
    let rows = vc.list("gnt-node", "name,dtotal", &["--units=m"]);
    for r in &rows {
        let total: u64 = r[1].parse().unwrap();
        assert!((20480..21000).contains(&total), "{r:?}");
    }

    // A volume group no node has is refused, and nothing changes.
    let err = vc.fails("gnt-cluster", &["modify", "--vg-name", "gntnosuchvg"]);
    assert!(err.contains("volume group 'gntnosuchvg' missing"), "{err}");
    let err = vc.fails("gnt-cluster", &["modify", "--vg-name", ""]);
    assert!(err.contains("Cannot unset volume group"), "{err}");
    let info = vc.ok("gnt-cluster", &["info"]);
    assert!(info.contains(&format!("lvm volume group: {vg}")), "{info}");
    vc.ok("gnt-cluster", &["modify", "--reserved-lvs", "swap.*,root"]);
    let info = vc.ok("gnt-cluster", &["info"]);
    assert!(info.contains("swap.*, root"), "{info}");

    // Verify: a volume nobody owns is a warning until reserved; an
    // instance's missing volume is an error.
    let verify = vc.ok("gnt-cluster", &["verify"]);
    assert!(!verify.contains("volume"), "{verify}");
    lvcreate(&vc, 2, &vg, "orphan1");
    let verify = vc.ok("gnt-cluster", &["verify"]);
    assert!(
        verify.contains(&format!(
            "WARNING: node node2: volume {vg}/orphan1 is unknown"
        )),
        "{verify}"
    );
    vc.ok(
        "gnt-cluster",
        &["modify", "--reserved-lvs", &format!("{vg}/orph.*")],
    );
    let verify = vc.ok("gnt-cluster", &["verify"]);
    assert!(!verify.contains("orphan1"), "{verify}");
    vc.add_instance(
        "node2",
        "plain3",
        &[
            "-t",
            "plain",
            "--disk",
            "0:size=64M",
            "--no-install",
            "--no-start",
        ],
    );
    let lv = vc
        .ok(
            "gnt-node",
            &["volumes", "--no-headers", "-o", "name", "node2"],
        )
        .lines()
        .find(|l| l.contains(".disk0"))
        .unwrap()
        .trim()
        .to_string();
    lvremove(&vc, 2, &vg, &lv);
    let out = vc.fails("gnt-cluster", &["verify"]);
    assert!(
        out.contains(&format!(
            "instance plain3: volume {vg}/{lv} missing on node node2"
        )),
        "{out}"
    );
    // recreate-disks makes it again where it was, then on another node.
    vc.ok("gnt-instance", &["recreate-disks", "plain3"]);
    vc.ok("gnt-cluster", &["verify"]);
    vc.ok("gnt-instance", &["recreate-disks", "-n", "node1", "plain3"]);
    let rows = volumes(&vc);
    assert!(rows.contains(&format!("node1|{vg}|64|plain3")), "{rows:?}");
    let pnode = vc.list("gnt-instance", "pnode", &["plain3"]);
    assert_eq!(pnode, vec![vec!["node1".to_string()]]);
    let err = vc.fails("gnt-instance", &["recreate-disks", "--disk", "3", "plain3"]);
    assert!(err.contains("Invalid disk index '3'"), "{err}");
    // No instance here has active disks (they cannot be activated).
    let out = vc.ok("gnt-cluster", &["verify-disks"]);
    assert!(out.contains("No disks need to be activated."), "{out}");
}

/// Runs an lvm command on node `k`'s volume group, as its node daemon sees it.
fn lvm(vc: &VCluster, k: usize, args: &[&str]) {
    let out = std::process::Command::new(args[0])
        .args(["--config", "global {activation=0}"])
        .args(&args[1..])
        .env("LVM_SYSTEM_DIR", vc.root(k).join("etc/lvm"))
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lvcreate(vc: &VCluster, k: usize, vg: &str, lv: &str) {
    lvm(
        vc,
        k,
        &["lvcreate", "--yes", "-an", "-Zn", "-L", "8m", "-n", lv, vg],
    );
}

fn lvremove(vc: &VCluster, k: usize, vg: &str, lv: &str) {
    lvm(vc, k, &["lvremove", "-f", &format!("{vg}/{lv}")]);
}
