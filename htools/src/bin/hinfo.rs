//! hinfo

fn main() {
    eprintln!("hinfo: not implemented yet");
    std::process::exit(1);
}
