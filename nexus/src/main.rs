//! The `nexus` command: node, devnet, wallet and benchmark.

fn main() -> std::process::ExitCode {
    nexus::commands::cli::main()
}
