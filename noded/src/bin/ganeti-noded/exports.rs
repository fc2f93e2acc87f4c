//! Instance exports on this node (Ganeti's `EXPORT_DIR`): a directory per
//! export with its `config.ini` and one dump per disk, made and read by
//! the OS definition's `export` and `import` scripts. An export is built in
//! a staging directory and renamed into place only when whole.

use std::fs::File;
use std::path::{Path, PathBuf};

use objects::error_chain;
use rpc::api::*;
use tracing::info;

use crate::handlers::{os_err, st_err, CallResult, State};
use crate::os::{self, Script, Streams};

/// How long an OS export or import script may run (it copies a disk).
const OS_DUMP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(12 * 3600);
/// The file of an export that describes it.
pub const CONFIG_FILE: &str = "config.ini";

fn failed(msg: impl Into<String>) -> RpcError {
    RpcError::new(ErrorKind::Failed, msg)
}

fn bad(msg: impl Into<String>) -> RpcError {
    RpcError::new(ErrorKind::BadRequest, msg)
}

/// Checks that `name` is one entry of a directory (an export, a staging
/// directory or a dump), never a path elsewhere.
fn check_entry(what: &str, name: &str) -> CallResult<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(bad(format!(
            "invalid {what} name '{name}': expected one file name, without '/'"
        )));
    }
    Ok(())
}

/// The directory of export (or staging directory) `name`.
fn export_path(s: &State, name: &str) -> CallResult<PathBuf> {
    check_entry("export", name)?;
    Ok(s.paths.export_dir().join(name))
}

fn io_err(action: &str, path: &Path, e: std::io::Error) -> RpcError {
    let kind = if e.kind() == std::io::ErrorKind::NotFound {
        ErrorKind::NotFound
    } else {
        ErrorKind::Failed
    };
    RpcError::new(kind, format!("cannot {action} '{}': {e}", path.display()))
}

/// The instance's disk `index` with its local path, assembled; the guards
/// keep a `drbd` disk's local path alive.
fn disk_path(
    s: &State,
    inst: &InstanceSpec,
    index: usize,
) -> CallResult<(
    Vec<AttachedDisk>,
    Vec<storage::drbd::FuseExport>,
    DiskSpec,
    PathBuf,
)> {
    let disk = inst
        .disks
        .iter()
        .find(|d| d.index == index)
        .cloned()
        .ok_or_else(|| {
            bad(format!(
                "instance '{}' has no disk {index} ({} disks)",
                inst.name,
                inst.disks.len()
            ))
        })?;
    let (disks, guards) = s.os_disks(inst)?;
    let path = disks
        .iter()
        .find(|a| a.index == index)
        .and_then(|a| a.path.clone())
        .ok_or_else(|| {
            failed(format!(
                "disk {index} of instance '{}' has no local path",
                inst.name
            ))
        })?;
    Ok((disks, guards, disk, path))
}

pub fn export_disk_dump(s: &State, r: ExportDiskDump) -> CallResult<u64> {
    let dir = export_path(s, &r.dir)?;
    let inst = &r.instance;
    let os_def = os::find(&s.paths, &inst.os).map_err(os_err)?;
    let (disks, _guards, disk, path) = disk_path(s, inst, r.index)?;
    let mut env = os::instance_env(&os_def, inst, &disks, r.debug).map_err(os_err)?;
    let shown = path.display().to_string();
    env.insert("EXPORT_DEVICE".into(), shown.clone());
    env.insert("EXPORT_DISK_PATH".into(), shown);
    env.insert("EXPORT_INDEX".into(), r.index.to_string());
    std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
    let file = dir.join(&disk.uuid);
    let out = File::create(&file).map_err(|e| io_err("create", &file, e))?;
    let log = os::log_file(&s.paths, "exp", &inst.os, &inst.name);
    let streams = Streams {
        input: None,
        output: Some(out),
    };
    if let Err(e) = os::run_script_streams(
        &os_def,
        Script::Export,
        &env,
        &log,
        streams,
        OS_DUMP_TIMEOUT,
    ) {
        let _ = std::fs::remove_file(&file);
        return Err(os_err(e));
    }
    let written = File::open(&file)
        .and_then(|f| {
            f.sync_all()?;
            f.metadata()
        })
        .map_err(|e| io_err("read", &file, e))?;
    info!(instance = %inst.name, disk = r.index, dump = %file.display(),
          bytes = written.len(), "disk exported through the OS export script");
    Ok(written.len())
}

pub fn export_file_serve(s: &State, r: ExportFileServe) -> CallResult<u64> {
    check_entry("dump", &r.file)?;
    let file = export_path(s, &r.dir)?.join(&r.file);
    let size = match std::fs::metadata(&file) {
        Ok(m) if m.is_file() => m.len(),
        _ => {
            return Err(RpcError::new(
                ErrorKind::NotFound,
                format!("no dump '{}' in export '{}'", r.file, r.dir),
            ))
        }
    };
    let ctx = s.storage()?;
    storage::drbd::Link::from_ends(&ctx, &r.file, &r.link)
        .and_then(|link| storage::transfer::serve(&ctx, &r.file, &file, &link))
        .map_err(st_err)?;
    Ok(size)
}

pub fn export_file_fetch(s: &State, r: ExportFileFetch) -> CallResult<()> {
    check_entry("dump", &r.file)?;
    let dir = export_path(s, &r.dir)?;
    std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
    let file = dir.join(&r.file);
    let ctx = s.storage()?;
    let fetched = storage::drbd::Link::from_ends(&ctx, &r.file, &r.link)
        .and_then(|link| storage::transfer::fetch(&ctx, &r.file, &link, &file, false))
        .map_err(st_err);
    // The copy comes in whole sectors: the dump is cut back to its size.
    let sized = fetched.and_then(|()| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .map_err(|e| io_err("open", &file, e))?;
        f.set_len(r.size)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_err("truncate", &file, e))
    });
    if sized.is_err() {
        let _ = std::fs::remove_file(&file);
    }
    sized
}

pub fn finalize_export(s: &State, r: FinalizeExport) -> CallResult<()> {
    let staging = export_path(s, &r.dir)?;
    let target = export_path(s, &r.name)?;
    if !staging.is_dir() {
        return Err(RpcError::new(
            ErrorKind::NotFound,
            format!("no export being made in '{}'", staging.display()),
        ));
    }
    let ini = staging.join(CONFIG_FILE);
    rpc::tls::write_file_atomically(&ini, r.config.as_bytes(), 0o600)
        .map_err(|e| failed(error_chain(&e)))?;
    // An older export of the name stays until the new one is in place.
    let old = export_path(s, &format!(".{}.old", r.name))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io_err("remove", &old, e))?;
    }
    let had_old = target.exists();
    if had_old {
        std::fs::rename(&target, &old).map_err(|e| io_err("move aside", &target, e))?;
    }
    if let Err(e) = std::fs::rename(&staging, &target) {
        if had_old {
            let _ = std::fs::rename(&old, &target);
        }
        return Err(io_err("rename", &staging, e));
    }
    if had_old {
        std::fs::remove_dir_all(&old).map_err(|e| io_err("remove", &old, e))?;
    }
    if let Ok(d) = File::open(s.paths.export_dir()) {
        let _ = d.sync_all();
    }
    info!(export = %r.name, "export finalized");
    Ok(())
}

pub fn export_info(s: &State, r: ExportInfo) -> CallResult<String> {
    let ini = export_path(s, &r.name)?.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&ini).map_err(|e| io_err("read", &ini, e))?;
    let has = |section: &str| text.lines().any(|l| l.trim() == format!("[{section}]"));
    if !has("export") || !has("instance") {
        return Err(failed(format!(
            "export info file '{}' doesn't have the required sections [export] and [instance]",
            ini.display()
        )));
    }
    Ok(text)
}

pub fn export_list(s: &State, _r: ExportList) -> CallResult<Vec<String>> {
    let dir = s.paths.export_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", &dir, e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

pub fn export_remove(s: &State, r: ExportRemove) -> CallResult<()> {
    let dir = export_path(s, &r.name)?;
    std::fs::remove_dir_all(&dir).map_err(|e| io_err("remove the export", &dir, e))?;
    info!(export = %r.name, "export removed");
    Ok(())
}

pub fn import_disk_dump(s: &State, r: ImportDiskDump) -> CallResult<()> {
    check_entry("dump", &r.file)?;
    let file = export_path(s, &r.dir)?.join(&r.file);
    let input = File::open(&file).map_err(|e| io_err("open the dump", &file, e))?;
    let inst = &r.instance;
    let os_def = os::find(&s.paths, &inst.os).map_err(os_err)?;
    let (disks, _guards, _disk, path) = disk_path(s, inst, r.index)?;
    let mut env = os::instance_env(&os_def, inst, &disks, r.debug).map_err(os_err)?;
    let shown = path.display().to_string();
    env.insert("IMPORT_DEVICE".into(), shown.clone());
    env.insert("IMPORT_DISK_PATH".into(), shown);
    env.insert("IMPORT_INDEX".into(), r.index.to_string());
    let log = os::log_file(&s.paths, "import", &inst.os, &inst.name);
    let streams = Streams {
        input: Some(input),
        output: None,
    };
    os::run_script_streams(
        &os_def,
        Script::Import,
        &env,
        &log,
        streams,
        OS_DUMP_TIMEOUT,
    )
    .map_err(os_err)?;
    info!(instance = %inst.name, disk = r.index, dump = %file.display(),
          "disk imported through the OS import script");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(dir: &Path) -> State {
        let paths = objects::paths::Paths::new(dir);
        State::new(paths, "node1".into(), None)
    }

    const INI: &str = "[export]\nversion = 0\n\n[instance]\nname = inst1\n";

    #[test]
    fn an_export_appears_only_when_finalized_and_replaces_the_old_one_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let s = state(tmp.path());
        assert_eq!(
            export_list(&s, ExportList {}).unwrap(),
            Vec::<String>::new()
        );
        let staging = s.paths.export_dir().join(".inst1.out");
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("d0"), b"new").unwrap();
        let old = s.paths.export_dir().join("inst1");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("d0"), b"old").unwrap();
        assert_eq!(export_list(&s, ExportList {}).unwrap(), vec!["inst1"]);
        finalize_export(
            &s,
            FinalizeExport {
                dir: ".inst1.out".into(),
                name: "inst1".into(),
                config: INI.into(),
            },
        )
        .unwrap();
        assert_eq!(export_list(&s, ExportList {}).unwrap(), vec!["inst1"]);
        assert_eq!(std::fs::read(old.join("d0")).unwrap(), b"new");
        assert!(!staging.exists());
        let text = export_info(
            &s,
            ExportInfo {
                name: "inst1".into(),
            },
        )
        .unwrap();
        assert_eq!(text, INI);
        export_remove(
            &s,
            ExportRemove {
                name: "inst1".into(),
            },
        )
        .unwrap();
        let e = export_remove(
            &s,
            ExportRemove {
                name: "inst1".into(),
            },
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    }

    #[test]
    fn names_that_leave_the_export_directory_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let s = state(tmp.path());
        for name in ["", ".", "..", "../etc", "a/b"] {
            let e = export_remove(&s, ExportRemove { name: name.into() }).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadRequest, "{name}: {e}");
        }
        let e = export_info(
            &s,
            ExportInfo {
                name: "missing".into(),
            },
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    }

    #[test]
    fn an_export_without_its_sections_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let s = state(tmp.path());
        let dir = s.paths.export_dir().join("bad");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(CONFIG_FILE), "[export]\nversion = 0\n").unwrap();
        let e = export_info(&s, ExportInfo { name: "bad".into() }).unwrap_err();
        assert!(e.message.contains("[instance]"), "{e}");
    }
}
