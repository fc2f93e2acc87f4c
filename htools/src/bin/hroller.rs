//! hroller

fn main() {
    eprintln!("hroller: not implemented yet");
    std::process::exit(1);
}
