//! agora-load: seeds an Agora server (or any server of the same HTTP contract) through its API,
//! then measures throughput and latency of a few scenarios. See docs/benchmarks.md.

mod cli;
mod client;
mod lag;
mod load;
mod report;
mod rss;
mod seed;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http::{Method, StatusCode};
use tokio::time::Instant;

use crate::cli::{Args, Scenario};
use crate::client::{Api, RATE_LIMIT_HINT, Target};
use crate::load::{Plan, Workload};
use crate::report::{ScenarioResult, SeedSummary, Summary};
use crate::rss::RssMonitor;
use crate::seed::{CART_LINES, SeedPlan};

/// Exit status when every scenario ran but some requests failed or were not 2xx.
const EXIT_FAILED_REQUESTS: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(message) = args.validate() {
        eprintln!("agora-load: {message}");
        return ExitCode::FAILURE;
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads);
    }
    let outcome = runtime.build().context("tokio runtime").and_then(|rt| rt.block_on(run(args)));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agora-load: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let target = Arc::new(Target::resolve(&args.url).await?);
    let api = Api::new(target.clone(), args.seed_concurrency, Duration::from_secs(30).max(args.timeout));

    let health = api
        .call(Method::GET, "/health", None, Bytes::new())
        .await
        .with_context(|| format!("{} is not answering", args.url))?;
    if health.status != StatusCode::OK {
        eprintln!("warning: GET /health answered {}", health.status);
    }

    let monitor = RssMonitor::start(args.pids.clone());
    let monitor = monitor.as_ref().map(|(m, _)| m.clone());

    if let Some(m) = &monitor {
        m.begin_phase();
    }
    let seeding = Instant::now();
    let plan = SeedPlan {
        products: args.products,
        users: args.users,
        concurrency: args.seed_concurrency,
        admin_email: &args.admin_email,
        admin_password: &args.admin_password,
    };
    let seed = seed::seed(&api, &plan).await.context("seeding")?;
    let seed_summary = SeedSummary {
        products: seed.products.len(),
        users: seed.users.len(),
        cart_lines: CART_LINES,
        seconds: seeding.elapsed().as_secs_f64(),
        peak_rss_mb: monitor.as_ref().map(|m| m.end_phase()),
    };
    eprintln!(
        "seeded {} products and {} users with {CART_LINES}-line carts in {:.1} s (run {}){}",
        seed_summary.products,
        seed_summary.users,
        seed_summary.seconds,
        seed.run_id,
        seed_summary.peak_rss_mb.map(|mb| format!(", peak_rss_mb={mb:.1}")).unwrap_or_default()
    );
    let workload = Arc::new(Workload::new(&target, &seed)?);

    let mut results = Vec::new();
    let mut failed_requests = false;
    for &scenario in &args.scenarios {
        let mode = match (scenario, args.rate) {
            (Scenario::PriceChange, _) => "1 change at a time".to_string(),
            (_, Some(rate)) => format!("{} connections at {rate} req/s", args.connections),
            (_, None) => format!("{} connections, closed loop", args.connections),
        };
        eprintln!(
            "running {}: {mode}, {}s warm-up + {}s",
            scenario.name(),
            args.warmup.as_secs_f64(),
            args.duration.as_secs_f64()
        );
        if let Some(m) = &monitor {
            m.begin_phase();
        }
        let (tally, measured, connections, rate) = match scenario.load() {
            Some(load) => {
                let plan = Plan {
                    scenario: load,
                    connections: args.connections,
                    rate: args.rate,
                    warmup: args.warmup,
                    duration: args.duration,
                    timeout: args.timeout,
                };
                let (tally, measured) = load::run(plan, target.clone(), workload.clone()).await?;
                (tally, measured, args.connections, args.rate)
            }
            None => {
                let (tally, measured) = lag::probe(&api, &seed, args.warmup, args.duration, args.timeout).await?;
                (tally, measured, 1, None)
            }
        };
        let mut result = ScenarioResult::new(scenario.name(), connections, rate, &tally, measured);
        if scenario.load().is_none() {
            // One change at a time; rps is changes per second, latencies are until the cart shows each.
            result.mode = "probe";
        }
        if let Some(m) = &monitor {
            result.peak_rss_mb = Some(m.end_phase());
            result.vmhwm_mb = m.vmhwm_mb();
        }
        println!("{}", result.line());
        if !tally.statuses.is_empty() {
            let statuses: Vec<String> = tally.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
            eprintln!("  non-2xx answers by status: {}", statuses.join(", "));
        }
        if let Some(error) = &tally.first_error {
            eprintln!("  first transport error: {error}");
        }
        // A request or two per connection can miss the end by a hair; more than 1% is the server.
        if tally.unsent * 100 > tally.requests() + tally.unsent {
            eprintln!(
                "  warning: {} requests due in the measured time were never sent: the server did not keep up with \
                 --rate, and the latencies include the queueing",
                tally.unsent
            );
        }
        if tally.rate_limited > 0 {
            eprintln!("  hint: {RATE_LIMIT_HINT}");
        }
        failed_requests |= tally.errors > 0 || tally.non2xx > 0;
        results.push(result);
    }

    if args.json {
        let summary = Summary {
            url: &args.url,
            run_id: &seed.run_id,
            seed: seed_summary,
            results: &results,
            peak_rss_mb: monitor.as_ref().map(|m| m.overall_peak_mb()),
        };
        println!("{}", serde_json::to_string(&summary)?);
    }
    if let Some(m) = &monitor {
        m.stop();
    }
    Ok(if failed_requests { ExitCode::from(EXIT_FAILED_REQUESTS) } else { ExitCode::SUCCESS })
}
