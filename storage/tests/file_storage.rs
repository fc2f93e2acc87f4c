//! File storage against a temporary node root.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt;

use objects::paths::Paths;
use storage::{open, DiskMode, DiskSpec, DiskTemplate, StorageContext, StorageError};

fn disk(template: DiskTemplate, logical_id: Option<&str>) -> DiskSpec {
    DiskSpec {
        uuid: "0b9e3c52-1c43-4f7e-9a8e-6c6a3f2f2d11".into(),
        index: 0,
        size: 64,
        dev_type: template,
        logical_id: logical_id.map(str::to_string),
        mode: DiskMode::Rw,
        name: None,
        params: Default::default(),
        children: Vec::new(),
        drbd: None,
    }
}

fn ctx(root: &std::path::Path) -> StorageContext {
    StorageContext::from_paths(&Paths::new(root)).expect("context")
}

#[test]
fn create_makes_a_sparse_file_of_the_requested_size() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let dev = open(&ctx, "inst1", &disk(DiskTemplate::File, None)).unwrap();
    let path = dev.create(64).unwrap();
    assert!(path.starts_with(ctx.file_storage_dir().join("inst1")));
    assert!(path
        .to_string_lossy()
        .ends_with("0b9e3c52-1c43-4f7e-9a8e-6c6a3f2f2d11.file.disk0"));
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), 64 * 1024 * 1024);
    // Sparse: far fewer blocks allocated than the apparent size.
    assert!(meta.blocks() * 512 < meta.len() / 2, "not sparse: {meta:?}");
    assert_eq!(dev.info().unwrap().size_mib, 64);
    assert_eq!(dev.assemble().unwrap(), Some(path.clone()));
    // Same request again is accepted; a different size is refused.
    dev.create(64).unwrap();
    assert!(matches!(
        dev.create(32),
        Err(StorageError::AlreadyExists(_))
    ));
}

#[test]
fn remove_deletes_the_file_and_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let dev = open(&ctx, "inst1", &disk(DiskTemplate::File, None)).unwrap();
    let path = dev.create(1).unwrap();
    dev.remove().unwrap();
    assert!(!path.exists());
    assert!(!path.parent().unwrap().exists(), "empty instance dir left");
    assert!(!dev.exists().unwrap());
    dev.remove().unwrap();
    assert!(matches!(dev.assemble(), Err(StorageError::NotFound(_))));
}

#[test]
fn grow_extends_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let dev = open(&ctx, "inst1", &disk(DiskTemplate::File, None)).unwrap();
    dev.create(10).unwrap();
    dev.grow(5, true).unwrap();
    assert_eq!(dev.info().unwrap().size_mib, 10);
    dev.grow(5, false).unwrap();
    assert_eq!(dev.info().unwrap().size_mib, 15);
}

#[test]
fn a_path_outside_the_storage_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let err = open(
        &ctx,
        "inst1",
        &disk(DiskTemplate::File, Some("/srv/elsewhere/x.img")),
    )
    .unwrap_err();
    assert!(
        matches!(err, StorageError::PathOutsideStorageDir { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("outside the allowed storage directory"),
        "{err}"
    );

    let err = open(
        &ctx,
        "inst1",
        &disk(
            DiskTemplate::File,
            Some("/srv/ganeti/file-storage/../../../etc/passwd"),
        ),
    )
    .unwrap_err();
    assert!(err.to_string().contains(".."), "{err}");

    let err = open(
        &ctx,
        "inst1",
        &disk(DiskTemplate::File, Some("/etc/shadow")),
    )
    .unwrap_err();
    assert!(err.to_string().contains("forbidden prefix"), "{err}");

    let err = open(&ctx, "../evil", &disk(DiskTemplate::File, None)).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::InvalidName {
                what: "instance name",
                ..
            }
        ),
        "{err}"
    );

    // A sharedfile disk may not live in the (non-shared) file storage dir.
    let err = open(
        &ctx,
        "inst1",
        &disk(
            DiskTemplate::SharedFile,
            Some("/srv/ganeti/file-storage/inst1/d0"),
        ),
    )
    .unwrap_err();
    assert!(
        matches!(err, StorageError::PathOutsideStorageDir { .. }),
        "{err}"
    );
}

#[test]
fn a_symlink_leading_out_of_the_storage_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    std::fs::create_dir_all(ctx.file_storage_dir()).unwrap();
    std::os::unix::fs::symlink(outside.path(), ctx.file_storage_dir().join("inst1")).unwrap();
    let dev = open(&ctx, "inst1", &disk(DiskTemplate::File, None));
    let err = match dev {
        Ok(d) => d.create(1).unwrap_err(),
        Err(e) => e,
    };
    assert!(
        matches!(err, StorageError::PathOutsideStorageDir { .. }),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn configured_paths_get_the_node_root_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let dev = storage::FileDevice::open(
        &ctx,
        "inst1",
        &disk(
            DiskTemplate::SharedFile,
            Some("/srv/ganeti/shared-file-storage/inst1/a.sharedfile.disk0"),
        ),
    )
    .unwrap();
    assert_eq!(
        dev.path(),
        tmp.path()
            .join("srv/ganeti/shared-file-storage/inst1/a.sharedfile.disk0")
    );
}

#[test]
fn unsupported_templates_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let err = open(&ctx(tmp.path()), "inst1", &disk(DiskTemplate::Rbd, None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "disk template 'rbd' is not supported by this node"
    );
    // A drbd disk needs its replication link.
    let err = open(&ctx(tmp.path()), "inst1", &disk(DiskTemplate::Drbd, None)).unwrap_err();
    assert!(err.to_string().contains("no replication link"), "{err}");
}

#[test]
fn space_info_reports_the_file_system() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let info = storage::space::space_info(ctx.file_storage_dir()).unwrap();
    assert!(info.total_mib > 0);
    assert!(info.free_mib <= info.total_mib);
}

#[test]
fn instance_directories_are_created_renamed_and_removed() {
    use storage::dirs;
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let old = "/srv/ganeti/file-storage/inst1";
    let new = "/srv/ganeti/file-storage/inst2";
    let made = dirs::create_dir(&ctx, old).unwrap();
    assert!(made.is_dir());
    dirs::create_dir(&ctx, old).unwrap();
    std::fs::write(made.join("d0"), "x").unwrap();

    dirs::rename_dir(&ctx, old, new).unwrap();
    let renamed = ctx.file_storage_dir().join("inst2");
    assert!(renamed.join("d0").exists() && !made.exists());
    // Done already: fine. Both present: refused.
    dirs::rename_dir(&ctx, old, new).unwrap();
    dirs::create_dir(&ctx, old).unwrap();
    let err = dirs::rename_dir(&ctx, old, new).unwrap_err();
    assert!(err.to_string().contains("both exist"), "{err}");

    // Not empty: refused; empty: removed; missing: fine.
    assert!(dirs::remove_dir(&ctx, new).is_err());
    std::fs::remove_file(renamed.join("d0")).unwrap();
    dirs::remove_dir(&ctx, new).unwrap();
    assert!(!renamed.exists());
    dirs::remove_dir(&ctx, new).unwrap();

    // The storage directories themselves and anything outside are refused.
    for bad in ["/srv/ganeti/file-storage", "/srv/elsewhere/x", "/etc/x"] {
        assert!(dirs::create_dir(&ctx, bad).is_err(), "{bad}");
    }
    dirs::create_dir(&ctx, "/srv/ganeti/shared-file-storage/inst3").unwrap();
}
