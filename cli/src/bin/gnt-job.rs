fn main() {
    std::process::exit(cli::commands::job::main());
}
