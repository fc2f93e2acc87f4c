//! hail

fn main() {
    eprintln!("hail: not implemented yet");
    std::process::exit(1);
}
