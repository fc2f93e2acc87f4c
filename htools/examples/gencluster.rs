//! Writes a generated Ganeti-format cluster file to stdout.
//! Usage: gencluster NODES INSTANCES [SEED]

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let get = |i: usize, d: u64| a.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let spec = htools::gen::GenSpec {
        nodes: get(1, 50) as usize,
        instances: get(2, 1000) as usize,
        seed: get(3, 1),
        ..Default::default()
    };
    print!("{}", htools::gen::generate(&spec));
}
