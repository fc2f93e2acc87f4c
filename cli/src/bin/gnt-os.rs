fn main() {
    std::process::exit(cli::commands::os::main());
}
