//! `agora`: load the configuration, set up logs, run what was asked.

use std::process::ExitCode;

use agora::cli::{Cli, Command};
use agora::config::Config;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    agora::telemetry::init();
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agora: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => agora::runtime::run_all(config).await,
        Command::Serve { service } => agora::runtime::serve(config, service).await,
        Command::Migrate => agora::runtime::migrate(config).await,
        Command::Config => match toml::to_string_pretty(&config.redacted()) {
            Ok(text) => {
                print!("{text}");
                Ok(())
            }
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agora: {e:#}");
            ExitCode::FAILURE
        }
    }
}
