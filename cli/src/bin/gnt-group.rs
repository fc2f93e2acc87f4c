fn main() {
    std::process::exit(cli::commands::group::main());
}
