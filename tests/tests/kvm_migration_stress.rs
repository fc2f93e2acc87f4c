//! Live migration under load, many times over: a counting guest goes back
//! and forth between two nodes while the machine's cores are busy, and it
//! must never reboot. `#[ignore]`d (it takes minutes); run it with
//! `scripts/stress-migrate.sh`, which also loads the cores.
//!
//! `STRESS_MIGRATIONS` (default 100) sets how many migrations.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use tests::guest::{
    add_guest, counter_of, kvm_cluster_booting, serial_log, serial_socket, Serial, BOOT_LINE,
    DEADLINE,
};
use tests::VCluster;

/// How many times the guest booted, from every node's serial log (each
/// node's log holds what the guest printed while it ran there).
fn boots(vc: &VCluster, name: &str) -> usize {
    (1..=vc.nodes)
        .map(|k| {
            serial_log(vc, k, name)
                .lines()
                .filter(|l| l.trim() == BOOT_LINE)
                .count()
        })
        .sum()
}

#[test]
#[ignore = "minutes of migrations: scripts/stress-migrate.sh"]
fn a_guest_migrated_back_and_forth_under_load_never_reboots() {
    let rounds: usize = std::env::var("STRESS_MIGRATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    // Every kernel message on the console (no `quiet`).
    let vc = kvm_cluster_booting("0.60", 2, "panic=-1", "");
    add_guest(&vc, "node1", "stress1");
    let mut s = Serial::connect(&serial_socket(&vc, "stress1"));
    let mut last = s.counter();
    drop(s);
    let mut reboots = Vec::new();
    let mut failed = Vec::new();
    let mut silent = Vec::new();
    let t0 = Instant::now();
    for round in 1..=rounds {
        let target = if round % 2 == 1 { "node2" } else { "node1" };
        let boots_before = boots(&vc, "stress1");
        let out = vc.gnt(
            "gnt-instance",
            &["migrate", "-f", "--target-node", target, "stress1"],
        );
        if !out.status.success() {
            failed.push(format!(
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let mut s = Serial::connect(&serial_socket(&vc, "stress1"));
        let now = match s.wait_for(DEADLINE, counter_of) {
            Ok(n) => n,
            Err(_) => {
                eprintln!("round {round}: the guest is silent on {target}");
                silent.push(format!(
                    "round {round} to {target}: no counter for {DEADLINE:?}"
                ));
                // Wait on: does it come back, and as what?
                match s.wait_for(DEADLINE * 2, counter_of) {
                    Ok(n) => n,
                    Err(_) => break,
                }
            }
        };
        let rebooted = now <= last || boots(&vc, "stress1") > boots_before;
        eprintln!(
            "[{:>7.1?}] round {round} to {target}: counter {last} -> {now}{}",
            t0.elapsed(),
            if rebooted { " REBOOTED" } else { "" }
        );
        if rebooted {
            reboots.push(format!(
                "round {round} to {target}: counter {last} -> {now}"
            ));
        }
        last = now;
    }
    let logs: String = (1..=vc.nodes)
        .map(|k| format!("--- node{k} ---\n{}", serial_log(&vc, k, "stress1")))
        .collect();
    let kernel: Vec<&str> = logs.lines().filter(|l| counter_of(l).is_none()).collect();
    eprintln!(
        "{rounds} migrations in {:.1?}: {} reboots, {} silent guests, {} failed",
        t0.elapsed(),
        reboots.len(),
        silent.len(),
        failed.len()
    );
    assert!(
        reboots.is_empty() && failed.is_empty() && silent.is_empty(),
        "reboots: {reboots:#?}\nsilent: {silent:#?}\nfailed migrations: {failed:#?}\n\
         the console, without counter lines:\n{}",
        kernel.join("\n")
    );
}
