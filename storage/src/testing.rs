//! Test support: a volume group of its own on loop devices (for tests of
//! `plain` disks in this crate and in the node daemon's). Needs root,
//! `losetup` and lvm2.

// Test support, built only with the `testing` feature: a setup step that
// fails fails the test that asked for it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use crate::lvm::Lvm;

/// Runs `cmd`; its standard output, trimmed (panics when it fails).
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A volume group on two 64 MiB loop devices; gone when dropped.
pub struct TestVg {
    pub name: String,
    loops: Vec<String>,
    _files: tempfile::TempDir,
}

impl TestVg {
    /// A new group named after `tag` and this process.
    pub fn new(tag: &str) -> TestVg {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the LVM tests need root (losetup, pvcreate)"
        );
        let files = tempfile::tempdir().unwrap();
        let name = format!("gnt{tag}{}", std::process::id());
        let mut vg = TestVg {
            name,
            loops: Vec::new(),
            _files: files,
        };
        for i in 0..2 {
            let img = vg._files.path().join(format!("pv{i}.img"));
            std::fs::File::create(&img)
                .unwrap()
                .set_len(64 << 20)
                .unwrap();
            let dev = run("losetup", &["-f", "--show", &img.display().to_string()]);
            vg.loops.push(dev);
        }
        let mut args = vec![vg.name.as_str()];
        args.extend(vg.loops.iter().map(String::as_str));
        let mut create = vec!["--config", "global {activation=0}"];
        create.extend(args);
        run("vgcreate", &create);
        vg
    }

    /// The group's volumes, sorted.
    pub fn lv_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Lvm::new()
            .lvs(&self.name)
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        names.sort();
        names
    }
}

impl Drop for TestVg {
    fn drop(&mut self) {
        let quiet = |cmd: &str, args: &[&str]| {
            let _ = Command::new(cmd)
                .args(args)
                .env("LVM_SUPPRESS_FD_WARNINGS", "1")
                .output();
        };
        quiet(
            "vgremove",
            &["--config", "global {activation=0}", "-f", &self.name],
        );
        for dev in &self.loops {
            quiet(
                "pvremove",
                &["--config", "global {activation=0}", "-ff", "-y", dev],
            );
            quiet("losetup", &["-d", dev]);
        }
    }
}

/// Kills the `drbd` storage daemons (and FUSE helpers) of the node rooted
/// at `paths` and detaches their FUSE mounts: what a test that failed half
/// way leaves (its node roots are about to be removed).
pub fn kill_drbd_daemons(paths: &objects::paths::Paths) {
    let dirs = crate::drbd::DrbdDirs::new(paths);
    let run = dirs.run_dir().to_path_buf();
    let Ok(entries) = std::fs::read_dir(&run) else {
        return;
    };
    let files: Vec<std::path::PathBuf> = entries.flatten().map(|e| e.path()).collect();
    for pidfile in files
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "pid"))
    {
        let Some(pid) = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        else {
            continue;
        };
        // Only a daemon of this root (its command line names the run dir).
        let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&*run.to_string_lossy()))
            .unwrap_or(false);
        if ours {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    for mount in files
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "disk"))
    {
        let _ = nix::mount::umount2(mount.as_path(), nix::mount::MntFlags::MNT_DETACH);
    }
}
