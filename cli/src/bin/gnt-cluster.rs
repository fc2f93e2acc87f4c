fn main() {
    std::process::exit(cli::commands::cluster::main());
}
