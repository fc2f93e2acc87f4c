//! hcheck

fn main() {
    eprintln!("hcheck: not implemented yet");
    std::process::exit(1);
}
