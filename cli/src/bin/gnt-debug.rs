fn main() {
    std::process::exit(cli::commands::debug::main());
}
