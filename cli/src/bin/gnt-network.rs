fn main() {
    std::process::exit(cli::commands::network::main());
}
