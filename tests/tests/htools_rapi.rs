//! htools over RAPI (`-m`): our hscan, hinfo and hbal read a virtual
//! cluster through ganeti-rapi the way Debian's Ganeti 3.0.2 htools do
//! (which read it too, through the same server), from a live server and
//! from its saved answers (`-m file://DIR`), and agree with `-L`.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use tests::{bin_dir, VCluster};

/// Runs a tool (ours by name, Debian's by path); it must succeed.
fn run(vc: &VCluster, tool: &str, args: &[&str], cwd: &Path) -> String {
    let program = if tool.starts_with('/') {
        Path::new(tool).to_path_buf()
    } else {
        bin_dir().join(tool)
    };
    let out = Command::new(&program)
        .args(args)
        .current_dir(cwd)
        .env("GANETI_ROOTDIR", vc.root(1))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A text-format line with its float fields read as numbers (Ganeti
/// prints a node's CPU speed as `1.0`, our text backend as `1.000000`).
fn fields(line: &str) -> Vec<String> {
    line.split('|')
        .map(|f| match f.parse::<f64>() {
            Ok(x) if f.contains('.') => format!("{x}"),
            _ => f.to_string(),
        })
        .collect()
}

#[test]
fn htools_read_a_cluster_over_rapi_as_ganetis_do() {
    let debian = Path::new("/usr/bin/hscan");
    assert!(
        debian.exists(),
        "Debian's ganeti-htools are missing: run scripts/install-deps.sh"
    );
    let vc = VCluster::up("0.54", 3);
    vc.add_instance("node2", "web1", &["-t", "diskless"]);
    vc.add_instance(
        "node3",
        "web2",
        &["-t", "sharedfile", "--disk", "0:size=1G"],
    );
    vc.add_instance(
        "node3",
        "db1",
        &["-t", "file", "--disk", "0:size=512M", "--no-start"],
    );
    let ip = vc.master_ip();
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("ours"), dir.path().join("theirs"));
    std::fs::create_dir_all(&ours).unwrap();
    std::fs::create_dir_all(&theirs).unwrap();

    // hscan: the same summary, the same cluster saved.
    let a = run(
        &vc,
        "hscan",
        &["-d", ours.to_str().unwrap(), &ip],
        dir.path(),
    );
    let b = run(
        &vc,
        "/usr/bin/hscan",
        &["-d", theirs.to_str().unwrap(), &ip],
        dir.path(),
    );
    assert_eq!(a, b);
    assert!(a.contains(&format!("{ip}     3     3     0     0")), "{a}");
    let file = format!("{ip}.data");
    let (fa, fb) = (
        std::fs::read_to_string(ours.join(&file)).unwrap(),
        std::fs::read_to_string(theirs.join(&file)).unwrap(),
    );
    assert_eq!(
        fa.lines().map(fields).collect::<Vec<_>>(),
        fb.lines().map(fields).collect::<Vec<_>>()
    );

    // hinfo: ours over RAPI, Debian's over RAPI, ours over LUXI.
    let ours_m = run(&vc, "hinfo", &["-m", &ip], dir.path());
    let theirs_m = run(&vc, "/usr/bin/hinfo", &["-m", &ip], dir.path());
    assert_eq!(ours_m, theirs_m);
    assert_eq!(ours_m, run(&vc, "hinfo", &["-L"], dir.path()));
    assert!(
        ours_m.contains("Loaded 3 nodes, 3 instances, 1 node group"),
        "{ours_m}"
    );

    // The server's answers saved, read back with file://.
    let saved = dir.path().join("saved");
    std::fs::create_dir_all(&saved).unwrap();
    for (path, name) in [
        ("/2/groups?bulk=1", "groups.json"),
        ("/2/nodes?bulk=1", "nodes.json"),
        ("/2/instances?bulk=1", "instances.json"),
        ("/2/info", "info.json"),
    ] {
        let out = Command::new("curl")
            .args(["-k", "-s", "-f", "-o"])
            .arg(saved.join(name))
            .arg(format!("https://{ip}:5080{path}"))
            .status()
            .unwrap();
        assert!(out.success(), "curl {path}");
    }
    let from_files = format!("file://{}", saved.display());
    assert_eq!(run(&vc, "hinfo", &["-m", &from_files], dir.path()), ours_m);
    assert_eq!(
        run(&vc, "hbal", &["-m", &from_files, "-p"], dir.path()),
        run(&vc, "hbal", &["-m", &ip, "-p"], dir.path())
    );
    assert_eq!(
        run(
            &vc,
            "hbal",
            &["-m", &format!("https://{ip}:5080"), "-p"],
            dir.path()
        ),
        run(&vc, "/usr/bin/hbal", &["-m", &ip, "-p"], dir.path())
    );
}
