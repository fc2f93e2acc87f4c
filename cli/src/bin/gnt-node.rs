fn main() {
    std::process::exit(cli::commands::node::main());
}
