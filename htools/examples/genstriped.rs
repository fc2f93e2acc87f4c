//! Writes a nearly balanced benchmark cluster (see
//! `htools::gen::StripedSpec`) to stdout.
//!
//! Usage: genstriped NODES INSTANCES [SKEW_PERMILLE [HOT_PERCENT]]

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let get = |i: usize, d: usize| a.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let spec = htools::gen::StripedSpec {
        nodes: get(1, 50),
        instances: get(2, 1000),
        skew_permille: get(3, 10),
        hot_fraction: get(4, 10) as f64 / 100.0,
        ..Default::default()
    };
    print!("{}", htools::gen::generate_striped(&spec));
}
