//! `agora`: load the configuration, set up logs, run what was asked.

use std::process::ExitCode;

use agora::cli::{Cli, Command};
use agora::config::{Config, LogFormat};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::Health { url } = &command {
        // Needs no configuration: a healthcheck must work wherever it runs.
        return match agora::runtime::health(url).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("agora: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agora: {e}");
            return ExitCode::from(2);
        }
    };
    agora::telemetry::init(config.telemetry.log_format == LogFormat::Json);
    let result = match command {
        Command::Run => agora::runtime::run_all(config).await,
        Command::Serve { service } => agora::runtime::serve(config, service).await,
        Command::Migrate => agora::runtime::migrate(config).await,
        Command::Config => toml::to_string_pretty(&config.redacted()).map(|text| print!("{text}")).map_err(Into::into),
        Command::Health { .. } => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agora: {e:#}");
            ExitCode::FAILURE
        }
    }
}
