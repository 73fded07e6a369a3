//! `agora`: load the configuration, set up logs, run what was asked.

use std::process::ExitCode;

use agora::cli::{Cli, Command};
use agora::config::{Config, LogFormat};
use agora::telemetry::Export;
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
    let service = match &command {
        Command::Serve { service } => {
            use clap::ValueEnum;
            service.to_possible_value().map_or_else(|| "agora".into(), |v| format!("agora-{}", v.get_name()))
        }
        _ => "agora".into(),
    };
    let export = config.otlp_endpoint().map(|endpoint| Export { endpoint, service: &service });
    if let Err(e) = agora::telemetry::init(config.telemetry.log_format == LogFormat::Json, export) {
        eprintln!("agora: {e}");
        return ExitCode::from(2);
    }
    let result = match command {
        Command::Run => agora::runtime::run_all(config).await,
        Command::Serve { service } => agora::runtime::serve(config, service).await,
        Command::Migrate => agora::runtime::migrate(config).await,
        Command::Config => toml::to_string_pretty(&config.redacted()).map(|text| print!("{text}")).map_err(Into::into),
        Command::Health { .. } => Ok(()),
    };
    agora::telemetry::otlp::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agora: {e:#}");
            ExitCode::FAILURE
        }
    }
}
