fn main() {
    std::process::exit(cli::commands::watcher::main());
}
