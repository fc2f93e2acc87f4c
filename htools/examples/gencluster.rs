//! Writes a generated Ganeti-format cluster file to stdout.
//!
//! Usage: gencluster NODES INSTANCES [SEED [HOT_WEIGHT [NODE_MEM_GIB [HOT_PERCENT [N1_SAFE [NODE_DISK_GIB]]]]]]
//!
//! HOT_WEIGHT: how many times more primaries a hot node gets (default 4);
//! NODE_MEM_GIB: memory of each node (default 256); HOT_PERCENT: share of
//! the nodes, from the first, that are hot (default 25); N1_SAFE: 1 to
//! place instances only where every node keeps passing the N+1 check
//! (default 0); NODE_DISK_GIB: disk of each node (default 16384).

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let get = |i: usize, d: u64| a.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let spec = htools::gen::GenSpec {
        nodes: get(1, 50) as usize,
        instances: get(2, 1000) as usize,
        seed: get(3, 1),
        hot_weight: get(4, 4) as i64,
        node_mem: get(5, 256) as i64 * 1024,
        hot_fraction: get(6, 25) as f64 / 100.0,
        n1_safe: get(7, 0) == 1,
        node_disk: get(8, 16384) as i64 * 1024,
        ..Default::default()
    };
    print!("{}", htools::gen::generate(&spec));
}
