//! hspace

fn main() {
    eprintln!("hspace: not implemented yet");
    std::process::exit(1);
}
