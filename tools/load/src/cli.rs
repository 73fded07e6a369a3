//! Command line: what to run, against what, for how long.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Load generator for Agora (or any server of the same HTTP contract).
///
/// Seeds its own data through the API (products as the admin, users with 10-line carts), then
/// runs each scenario in turn and prints one `RESULT key=value ...` line per scenario on stdout.
/// Progress, warnings and hints go to stderr.
#[derive(Debug, Parser)]
#[command(name = "agora-load", version)]
pub struct Args {
    /// Base URL of the gateway (http only).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,

    /// Scenarios to run, one after another, on the same seeded data.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "health,browse,cart-view,cart-add")]
    pub scenarios: Vec<Scenario>,

    /// Measured time per scenario (e.g. 10s, 500ms, 1m).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,

    /// Unrecorded warm-up before each scenario's measured time (0s for none).
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub warmup: Duration,

    /// Concurrent keep-alive connections (one task each).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,

    /// Fixed total rate in requests per second, spread over the connections; latencies are then
    /// measured from each request's intended send time (corrected for coordinated omission).
    /// Without it, each connection sends back to back (closed loop).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Per-request timeout; a request that times out counts as an error.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,

    /// Products to create (category "load").
    #[arg(long, default_value_t = 1000)]
    pub products: usize,

    /// Users to register, each given a 10-line cart.
    #[arg(long, default_value_t = 200)]
    pub users: usize,

    /// Seeding requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub seed_concurrency: usize,

    /// Admin account used to create products.
    #[arg(long, env = "AGORA_USERS__ADMIN_EMAIL", default_value = "admin@agora.local")]
    pub admin_email: String,

    /// Password of the admin account.
    #[arg(long, env = "AGORA_USERS__ADMIN_PASSWORD", default_value = "admin12345", hide_env_values = true)]
    pub admin_password: String,

    /// Server process whose resident memory (VmRSS, summed over every --pid) is sampled every
    /// 100 ms during seeding and load; repeat it for several processes.
    #[arg(long = "pid", value_delimiter = ',')]
    pub pids: Vec<u32>,

    /// Also print a one-line JSON summary on stdout at the end.
    #[arg(long)]
    pub json: bool,

    /// Worker threads of the load generator (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Args {
    /// Checks what clap cannot: sizes and rates that make a run meaningful.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.products < crate::seed::CART_LINES {
            return Err(format!("--products must be at least {} (one cart's lines)", crate::seed::CART_LINES));
        }
        if self.users == 0 {
            return Err("--users must be at least 1".into());
        }
        if self.seed_concurrency == 0 {
            return Err("--seed-concurrency must be at least 1".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be more than 0".into());
        }
        if self.timeout.is_zero() {
            return Err("--timeout must be more than 0".into());
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err("--rate must be a positive number of requests per second".into());
        }
        if self.threads == Some(0) {
            return Err("--threads must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// GET /health
    Health,
    /// GET /api/products/:id of a random seeded product
    Browse,
    /// GET /api/cart as a random seeded user (10 lines)
    CartView,
    /// POST /api/cart/add of a product already in the user's cart
    CartAdd,
    /// A price change (PUT, as the admin) until a cart line shows it, one at a time: the lag of
    /// the product events (not in the default list: it changes prices)
    PriceChange,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Health => "health",
            Scenario::Browse => "browse",
            Scenario::CartView => "cart-view",
            Scenario::CartAdd => "cart-add",
            Scenario::PriceChange => "price-change",
        }
    }

    /// The scenario as load (many connections), or `None` for the price-change probe.
    pub fn load(self) -> Option<crate::load::Load> {
        use crate::load::Load;
        match self {
            Scenario::Health => Some(Load::Health),
            Scenario::Browse => Some(Load::Browse),
            Scenario::CartView => Some(Load::CartView),
            Scenario::CartAdd => Some(Load::CartAdd),
            Scenario::PriceChange => None,
        }
    }
}

/// Parses `10s`, `500ms`, `1.5s`, `2m`, `1h`, `250us` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{text}` (use us, ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_are_refused() {
        for bad in ["", "s", "ten seconds", "10 parsecs", "-1s", "1..2s", "1e400s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn scenarios_default_to_all_four_in_order() {
        let args = Args::try_parse_from(["agora-load"]).unwrap();
        let names: Vec<_> = args.scenarios.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["health", "browse", "cart-view", "cart-add"]);
        assert_eq!(args.duration, Duration::from_secs(10));
        assert_eq!(args.connections, 64);
        assert!(args.rate.is_none());
        assert!(args.validate().is_ok());
    }

    #[test]
    fn options_parse() {
        let args = Args::try_parse_from([
            "agora-load",
            "--scenarios",
            "cart-add,browse",
            "--rate",
            "500",
            "--pid",
            "10",
            "--pid",
            "11,12",
            "--duration",
            "3s",
        ])
        .unwrap();
        assert_eq!(args.scenarios, [Scenario::CartAdd, Scenario::Browse]);
        assert_eq!(args.rate, Some(500.0));
        assert_eq!(args.pids, [10, 11, 12]);
        assert!(Args::try_parse_from(["agora-load", "--scenarios", "checkout"]).is_err());
    }

    #[test]
    fn validation_catches_meaningless_runs() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["agora-load"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv).unwrap().validate()
        };
        assert!(parse(&["--connections", "0"]).is_err());
        assert!(parse(&["--products", "9"]).is_err());
        assert!(parse(&["--users", "0"]).is_err());
        assert!(parse(&["--rate", "0"]).is_err());
        assert!(parse(&["--duration", "0s"]).is_err());
        assert!(parse(&["--warmup", "0s"]).is_ok());
    }
}
