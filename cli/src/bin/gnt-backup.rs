fn main() {
    std::process::exit(cli::commands::backup::main());
}
