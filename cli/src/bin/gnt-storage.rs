fn main() {
    std::process::exit(cli::commands::storage::main());
}
