fn main() {
    std::process::exit(cli::commands::filter::main());
}
