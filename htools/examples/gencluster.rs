//! Writes a generated Ganeti-format cluster file to stdout.
//! Usage: gencluster NODES INSTANCES [SEED [HOT_WEIGHT]]
//! (HOT_WEIGHT: how many times more primaries the first quarter of the
//! nodes gets; default 4)

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let get = |i: usize, d: u64| a.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let spec = htools::gen::GenSpec {
        nodes: get(1, 50) as usize,
        instances: get(2, 1000) as usize,
        seed: get(3, 1),
        hot_weight: get(4, 4) as i64,
        ..Default::default()
    };
    print!("{}", htools::gen::generate(&spec));
}
