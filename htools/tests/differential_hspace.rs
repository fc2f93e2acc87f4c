//! Differential tests of hspace against Debian's Ganeti 3.0 hspace on
//! generated clusters whose instance policy has one, two or three min/max
//! spec pairs: the tiered counts, the spec breakdown and the standard
//! counts must be the same, in machine-readable and in human output.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;

use htools::gen::{generate, GenSpec, Rng};

mod common;
use common::*;

/// One instance spec of the text backend: mem,cpu,disk,disks,nics,spindles.
fn ispec(mem: i64, cpu: i64, dsk: i64) -> String {
    format!("{mem},{cpu},{dsk},1,1,1")
}

/// An ipolicy with `pairs` min/max pairs, from the largest to the
/// smallest, with sizes that are not multiples of the shrinking units.
/// Returns the policy's text fields (std|minmax) and the pairs' max specs.
fn policy(rng: &mut Rng, pairs: usize) -> (String, Vec<(i64, i64, i64)>) {
    let mut minmax = Vec::new();
    let mut maxes = Vec::new();
    let mut std = String::new();
    for j in 0..pairs as i64 {
        let max_mem = 14000 / (j + 1) + rng.range(0, 600);
        let max_dsk = 300 * 1024 / (j + 1) + rng.range(0, 5000);
        let max_cpu = rng.range(2, 9);
        let min_mem = max_mem * 2 / 3 - rng.range(0, 300);
        let min_dsk = max_dsk / 2 - rng.range(0, 2000);
        let min_cpu = rng.range(1, max_cpu);
        if j == 0 {
            std = ispec((min_mem + max_mem) / 2, min_cpu, (min_dsk + max_dsk) / 2);
        }
        minmax.push(format!(
            "{};{max_mem},{max_cpu},{max_dsk},8,8,12",
            ispec(min_mem, min_cpu, min_dsk)
        ));
        maxes.push((max_mem, max_cpu, max_dsk));
    }
    (format!("{std}|{}", minmax.join(";")), maxes)
}

/// A generated cluster file with a multi-pair policy for the cluster and
/// its group.
fn cluster(seed: u64, pairs: usize, drbd_percent: i64) -> (String, Vec<(i64, i64, i64)>) {
    let mut text = generate(&GenSpec {
        nodes: 6 + (seed as usize % 3),
        instances: 12,
        seed,
        node_mem: 48 * 1024,
        node_disk: 1024 * 1024,
        node_cpus: 16,
        drbd_percent,
        ..Default::default()
    });
    let mut rng = Rng::new(seed * 7919 + pairs as u64);
    let (pol, maxes) = policy(&mut rng, pairs);
    let tail = "plain,drbd,diskless,file,sharedfile,blockdev,rbd,ext|4.0|32.0";
    text.push('\n');
    let _ = writeln!(text, "|{pol}|{tail}");
    let _ = writeln!(text, "default|{pol}|{tail}");
    (text, maxes)
}

fn outputs(deb: &Path, args: &[&str]) -> (String, String, String) {
    let (_, theirs, _) = run(deb, args);
    let (_, ours, err) = run(&our_bin("hspace"), args);
    (theirs, ours, err)
}

fn key<'a>(out: &'a str, k: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
        .unwrap_or("")
}

/// hspace with 1, 2 and 3 min/max pairs, plain and DRBD, in both output
/// modes, with and without a limit, and with an explicit standard or
/// tiered spec taken from the last pair: the same output as Ganeti's,
/// line for line.
#[test]
fn multi_minmax_tiered_and_standard_match_ganeti() {
    let Some(deb) = debian_tool("hspace") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // HSPACE_DIFF_KEEP=<dir> keeps the generated clusters for inspection
    let keep = std::env::var_os("HSPACE_DIFF_KEEP").map(std::path::PathBuf::from);
    let out_dir = keep.as_deref().unwrap_or(dir.path());
    let mut failures = Vec::new();
    let mut tiers_seen = 0;
    for pairs in 1..=3usize {
        for seed in 1..=3u64 {
            let drbd = if seed == 2 { 60 } else { 0 };
            let (text, maxes) = cluster(seed, pairs, drbd);
            let p = out_dir.join(format!("c{pairs}-{seed}.data"));
            std::fs::write(&p, text).expect("write");
            let f = p.to_str().expect("utf8 path");
            let (lm, lc, ld) = maxes[pairs - 1];
            let last_std = format!("{ld},{lm},{lc}");
            // plain instances this large rarely pass the global N+1 check:
            // most runs skip it so that they allocate
            let nc = "--no-capacity-checks";
            let variants: Vec<Vec<&str>> = vec![
                vec!["--machine-readable"],
                vec!["--machine-readable", nc],
                vec![nc],
                // about 20 instances fit the first pair's sizes: a limit of
                // 21 ends within a later pair's run
                vec!["--machine-readable", nc, "-l", "21"],
                vec!["--machine-readable", nc, "--standard-alloc", &last_std],
                vec!["--machine-readable", nc, "--tiered-alloc", &last_std],
                vec!["--machine-readable", "--disk-template", "drbd"],
            ];
            for extra in &variants {
                let mut args = vec!["-t", f];
                args.extend_from_slice(extra);
                let (theirs, ours, err) = outputs(&deb, &args);
                if extra.first() == Some(&"--machine-readable") {
                    assert_eq!(
                        key(&theirs, "HTS_OK"),
                        "1",
                        "{args:?}: Ganeti failed:\n{theirs}"
                    );
                    let tspec = key(&theirs, "HTS_TSPEC");
                    tiers_seen = tiers_seen.max(tspec.split_whitespace().count());
                    eprintln!(
                        "{pairs} pair(s), seed {seed} {extra:?}: tiered Ganeti {} / ours {}, \
                         standard Ganeti {} / ours {}; TSPEC {tspec}",
                        key(&theirs, "HTS_TRL_INST_CNT"),
                        key(&ours, "HTS_TRL_INST_CNT"),
                        key(&theirs, "HTS_ALLOC_INSTANCES"),
                        key(&ours, "HTS_ALLOC_INSTANCES"),
                    );
                }
                if theirs != ours {
                    failures.push(format!(
                        "{args:?}\n--- ganeti\n{theirs}--- ours\n{ours}{err}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // the clusters must exercise several sizes, or the test shows little
    assert!(tiers_seen >= 3, "at most {tiers_seen} tiered sizes seen");
}
