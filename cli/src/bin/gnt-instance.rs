fn main() {
    std::process::exit(cli::commands::instance::main());
}
