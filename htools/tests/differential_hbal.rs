//! Differential tests against Debian's Ganeti 3.0 hbal: same initial
//! score, final score no worse.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use htools::gen::{generate, GenSpec};

mod common;
use common::*;

fn compare(file: &std::path::Path, extra: &[&str], deb: &std::path::Path) {
    let f = file.to_str().expect("utf8 path");
    let mut args = vec!["-t", f];
    args.extend_from_slice(extra);
    let (_, theirs, _) = run(deb, &args);
    let (ok, ours, err) = run(&our_bin("hbal"), &args);
    let t_ini = find_score(&theirs, "Initial score:");
    let o_ini = find_score(&ours, "Initial score:");
    assert_eq!(
        t_ini.is_some(),
        o_ini.is_some(),
        "{f} {extra:?}: ours:\n{ours}{err}\ntheirs:\n{theirs}"
    );
    let (Some(t_ini), Some(o_ini)) = (t_ini, o_ini) else {
        return;
    };
    assert!(ok, "{f}: {err}");
    assert!(
        (t_ini - o_ini).abs() < 1e-6,
        "{f} {extra:?}: initial score {o_ini} vs Ganeti {t_ini}"
    );
    let t_fin = final_score(&theirs).expect("their final score");
    let o_fin = final_score(&ours).expect("our final score");
    assert!(
        o_fin <= t_fin + 1e-6,
        "{f} {extra:?}: final score {o_fin} worse than Ganeti's {t_fin}"
    );
}

#[test]
fn generated_clusters_match_ganeti() {
    let Some(deb) = debian_tool("hbal") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut specs = Vec::new();
    for seed in 1..=4u64 {
        specs.push(GenSpec {
            nodes: 6,
            instances: 30,
            seed,
            ..Default::default()
        });
        specs.push(GenSpec {
            nodes: 9,
            instances: 60,
            seed,
            node_mem: 64 * 1024,
            exclusion_tags: true,
            drbd_percent: 80,
            ..Default::default()
        });
    }
    specs.push(GenSpec {
        nodes: 8,
        instances: 40,
        seed: 11,
        offline: 1,
        ..Default::default()
    });
    for (i, spec) in specs.iter().enumerate() {
        let p = dir.path().join(format!("c{i}.data"));
        std::fs::write(&p, generate(spec)).expect("write");
        compare(&p, &[], &deb);
        compare(&p, &["--no-disk-moves"], &deb);
        compare(&p, &["-l", "3"], &deb);
        if spec.offline > 0 {
            compare(&p, &["-E"], &deb);
        }
    }
}

#[test]
fn ganeti_example_files_match_ganeti() {
    let Some(deb) = debian_tool("hbal") else {
        return;
    };
    let Some(dir) = ganeti_data_dir() else {
        eprintln!("SKIP: Ganeti's test data not found");
        return;
    };
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.extension().and_then(|x| x.to_str()) == Some("data") {
            for extra in [
                &[][..],
                &["--restricted-migration"],
                &["-G", "group-01"],
                &["--ignore-dynu"],
            ] {
                compare(&p, extra, &deb);
            }
        }
    }
}

/// On a cluster above the size where hbal starts leaving out instances
/// that could not gain enough (20,000 instance/node pairs), the result is
/// still no worse than Ganeti's.
#[test]
fn large_cluster_is_balanced_no_worse_than_ganeti() {
    let Some(deb) = debian_tool("hbal") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (nodes, instances, skew_permille, hot, extra)) in [
        (20, 1000, 5, 10, &[][..]),
        (21, 1000, 10, 15, &["-l", "4"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let spec = htools::gen::StripedSpec {
            nodes,
            instances,
            skew_permille,
            hot_fraction: hot as f64 / 100.0,
            ..Default::default()
        };
        let p = dir.path().join(format!("large{i}.data"));
        std::fs::write(&p, htools::gen::generate_striped(&spec)).expect("write");
        compare(&p, extra, &deb);
    }
}
