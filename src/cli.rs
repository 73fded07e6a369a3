//! The `agora` command line.

use clap::{Parser, Subcommand};

use crate::runtime::ServiceName;

#[derive(Parser, Debug)]
#[command(name = "agora", version, about = "Agora e-commerce backend")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every service in this process, behind the gateway (the default).
    Run,
    /// Run one service as its own process (production topology).
    Serve {
        #[arg(value_enum)]
        service: ServiceName,
    },
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Reach every configured server, run the schema migrations, create the
    /// indexes and the topic, then exit.
    Migrate,
    /// Exit 0 when URL answers 2xx within 3 s, else 1 (a container healthcheck).
    Health {
        /// e.g. http://127.0.0.1:3000/ready
        url: String,
    },
}
