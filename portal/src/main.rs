//! `portal --config portal.toml`: runs the relayer described in its config.

use clap::Parser;
use std::path::PathBuf;

/// Relays BTP messages between chains through Nexus notary channels.
#[derive(Parser)]
#[command(name = "portal", version)]
struct Cli {
    /// The TOML config.
    #[arg(long, default_value = "portal.toml")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match nexus_portal::config::PortalConfig::load(&cli.config) {
        Ok(cfg) => nexus_portal::supervisor::run(cfg).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portal: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
