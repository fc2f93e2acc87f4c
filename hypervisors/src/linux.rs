//! Memory and CPUs of the host, from `/proc`.

use std::path::Path;

use crate::error::{HypervisorError, Result};
use crate::HvNodeInfo;

/// Parses `/proc/meminfo`-style text: (total, available) in MiB.
pub fn parse_meminfo(text: &str) -> Result<(u64, u64)> {
    let mut total = None;
    let mut available = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let kib = || -> Result<u64> {
            value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| HypervisorError::NodeInfo(format!("bad meminfo line '{line}'")))
        };
        match key.trim() {
            "MemTotal" => total = Some(kib()? / 1024),
            "MemAvailable" => available = Some(kib()? / 1024),
            _ => {}
        }
    }
    match (total, available) {
        (Some(t), Some(a)) => Ok((t, a)),
        _ => Err(HypervisorError::NodeInfo(
            "meminfo lacks MemTotal or MemAvailable".into(),
        )),
    }
}

/// Number of CPUs listed in `/proc/cpuinfo`-style text.
pub fn count_cpus(text: &str) -> u32 {
    text.lines()
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(k, v)| k.trim() == "processor" && v.trim().parse::<u32>().is_ok())
        })
        .count() as u32
}

/// The host's memory and CPUs, nothing used by instances yet.
pub fn host_node_info() -> Result<HvNodeInfo> {
    let read = |p: &str| {
        std::fs::read_to_string(Path::new(p)).map_err(|e| HypervisorError::io("read", p, e))
    };
    let (total, available) = parse_meminfo(&read("/proc/meminfo")?)?;
    let cpus = count_cpus(&read("/proc/cpuinfo")?).max(1);
    Ok(HvNodeInfo {
        memory_total: total,
        memory_free: available,
        memory_dom0: total.saturating_sub(available),
        memory_instances: 0,
        cpu_total: cpus,
        cpu_dom0: 0,
        cpu_nodes: 1,
        cpu_sockets: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_parsed_in_mib() {
        let text = "MemTotal:       2048000 kB\nMemFree:  10 kB\nMemAvailable:   1024000 kB\n";
        assert_eq!(parse_meminfo(text).unwrap(), (2000, 1000));
        assert!(parse_meminfo("MemTotal: 10 kB\n").is_err());
        assert!(parse_meminfo("MemTotal: x kB\nMemAvailable: 1 kB").is_err());
    }

    #[test]
    fn cpus_are_counted() {
        let text = "processor\t: 0\nmodel name : x\n\nprocessor\t: 1\n";
        assert_eq!(count_cpus(text), 2);
    }
}
