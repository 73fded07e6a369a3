//! Counting answers, and the result line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use http::StatusCode;
use serde::Serialize;

/// Latencies are recorded in microseconds, up to 100 s (longer ones are clamped), 3 significant
/// figures.
const HIGHEST_US: u64 = 100_000_000;

/// What one task (or a whole scenario, once merged) saw.
#[derive(Debug)]
pub struct Tally {
    /// Latency of every 2xx answer, in microseconds.
    pub latency_us: Histogram<u64>,
    pub ok: u64,
    pub non2xx: u64,
    pub rate_limited: u64,
    /// Transport errors and timeouts.
    pub errors: u64,
    /// Fixed rate only: requests due in the measured time but not sent by its end (the server
    /// did not keep up).
    pub unsent: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub first_error: Option<String>,
}

impl Tally {
    pub fn new() -> anyhow::Result<Tally> {
        let latency_us = Histogram::new_with_bounds(1, HIGHEST_US, 3).context("latency histogram")?;
        Ok(Tally {
            latency_us,
            ok: 0,
            non2xx: 0,
            rate_limited: 0,
            errors: 0,
            unsent: 0,
            statuses: BTreeMap::new(),
            first_error: None,
        })
    }

    pub fn record(&mut self, outcome: &Result<StatusCode, String>, latency: Duration) {
        match outcome {
            Ok(status) if status.is_success() => {
                self.ok += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
                self.latency_us.saturating_record(us.min(HIGHEST_US));
            }
            Ok(status) => {
                self.non2xx += 1;
                if *status == StatusCode::TOO_MANY_REQUESTS {
                    self.rate_limited += 1;
                }
                *self.statuses.entry(status.as_u16()).or_default() += 1;
            }
            Err(error) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(error.clone());
                }
            }
        }
    }

    pub fn merge(&mut self, other: Tally) {
        // Both histograms have the same bounds, so adding cannot fail; on the impossible, keep going.
        let _ = self.latency_us.add(&other.latency_us);
        self.ok += other.ok;
        self.non2xx += other.non2xx;
        self.rate_limited += other.rate_limited;
        self.errors += other.errors;
        self.unsent += other.unsent;
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub fn requests(&self) -> u64 {
        self.ok + self.non2xx + self.errors
    }

    /// Latency at a quantile, in milliseconds (0 when nothing succeeded).
    fn quantile_ms(&self, q: f64) -> f64 {
        if self.latency_us.is_empty() { 0.0 } else { self.latency_us.value_at_quantile(q) as f64 / 1000.0 }
    }
}

/// One scenario's figures, as printed and as serialized for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: &'static str,
    pub mode: &'static str,
    pub connections: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rps: Option<f64>,
    /// Answered requests (2xx or not) per second of measured time.
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub non2xx: u64,
    /// Every measured request: answered or failed.
    pub requests: u64,
    /// Fixed rate only: requests due in the measured time but never sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsent: Option<u64>,
    pub duration_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_mb: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmhwm_mb: Option<f64>,
    /// Counts of non-2xx statuses.
    pub statuses: BTreeMap<u16, u64>,
}

impl ScenarioResult {
    pub fn new(
        scenario: &'static str,
        connections: usize,
        target_rps: Option<f64>,
        tally: &Tally,
        measured: Duration,
    ) -> Self {
        let seconds = measured.as_secs_f64();
        let answered = (tally.ok + tally.non2xx) as f64;
        ScenarioResult {
            scenario,
            mode: if target_rps.is_some() { "rate" } else { "closed" },
            connections,
            target_rps,
            rps: if seconds > 0.0 { answered / seconds } else { 0.0 },
            p50_ms: tally.quantile_ms(0.5),
            p90_ms: tally.quantile_ms(0.9),
            p99_ms: tally.quantile_ms(0.99),
            p999_ms: tally.quantile_ms(0.999),
            max_ms: if tally.latency_us.is_empty() { 0.0 } else { tally.latency_us.max() as f64 / 1000.0 },
            errors: tally.errors,
            non2xx: tally.non2xx,
            requests: tally.requests(),
            unsent: target_rps.map(|_| tally.unsent),
            duration_s: seconds,
            peak_rss_mb: None,
            vmhwm_mb: None,
            statuses: tally.statuses.clone(),
        }
    }

    /// `RESULT key=value ...`: one line, fixed key order, no spaces inside values.
    pub fn line(&self) -> String {
        let mut line = format!("RESULT scenario={} mode={} connections={}", self.scenario, self.mode, self.connections);
        if let Some(target) = self.target_rps {
            let _ = write!(line, " target_rps={target:.1}");
        }
        let _ = write!(
            line,
            " rps={:.1} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3} errors={} non2xx={} requests={}",
            self.rps,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.errors,
            self.non2xx,
            self.requests,
        );
        if let Some(unsent) = self.unsent {
            let _ = write!(line, " unsent={unsent}");
        }
        let _ = write!(line, " duration_s={:.1}", self.duration_s);
        if let Some(peak) = self.peak_rss_mb {
            let _ = write!(line, " peak_rss_mb={peak:.1}");
        }
        if let Some(hwm) = self.vmhwm_mb {
            let _ = write!(line, " vmhwm_mb={hwm:.1}");
        }
        line
    }
}

/// `--json`: everything in one object.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub url: &'a str,
    pub run_id: &'a str,
    pub seed: SeedSummary,
    pub results: &'a [ScenarioResult],
    /// Peak of the summed VmRSS over the whole run, seeding included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_mb: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct SeedSummary {
    pub products: usize,
    pub users: usize,
    pub cart_lines: usize,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_mb: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Result<StatusCode, String> {
        Ok(StatusCode::OK)
    }

    #[test]
    fn counts_successes_statuses_and_errors_apart() {
        let mut tally = Tally::new().unwrap();
        tally.record(&ok(), Duration::from_micros(900));
        tally.record(&Ok(StatusCode::CREATED), Duration::from_micros(1100));
        tally.record(&Ok(StatusCode::TOO_MANY_REQUESTS), Duration::from_micros(50));
        tally.record(&Ok(StatusCode::NOT_FOUND), Duration::from_micros(50));
        tally.record(&Err("timed out".into()), Duration::from_secs(10));
        tally.record(&Err("refused".into()), Duration::ZERO);
        assert_eq!((tally.ok, tally.non2xx, tally.rate_limited, tally.errors), (2, 2, 1, 2));
        assert_eq!(tally.requests(), 6);
        assert_eq!(tally.latency_us.len(), 2, "only 2xx latencies are recorded");
        assert_eq!(tally.statuses, BTreeMap::from([(404, 1), (429, 1)]));
        assert_eq!(tally.first_error.as_deref(), Some("timed out"));
    }

    #[test]
    fn merging_adds_everything() {
        let mut a = Tally::new().unwrap();
        a.record(&ok(), Duration::from_millis(1));
        a.record(&Ok(StatusCode::TOO_MANY_REQUESTS), Duration::ZERO);
        let mut b = Tally::new().unwrap();
        b.record(&ok(), Duration::from_millis(3));
        b.record(&Ok(StatusCode::TOO_MANY_REQUESTS), Duration::ZERO);
        b.record(&Err("reset".into()), Duration::ZERO);
        a.unsent = 1;
        b.unsent = 2;
        a.merge(b);
        assert_eq!((a.ok, a.non2xx, a.rate_limited, a.errors, a.unsent), (2, 2, 2, 1, 3));
        assert_eq!(a.statuses, BTreeMap::from([(429, 2)]));
        assert_eq!(a.latency_us.len(), 2);
        assert_eq!(a.first_error.as_deref(), Some("reset"));
    }

    #[test]
    fn huge_latencies_are_clamped_not_lost() {
        let mut tally = Tally::new().unwrap();
        tally.record(&ok(), Duration::from_secs(3600));
        assert_eq!(tally.latency_us.len(), 1);
        assert!(tally.latency_us.max() >= HIGHEST_US);
    }

    #[test]
    fn closed_loop_line() {
        let mut tally = Tally::new().unwrap();
        for us in 1..=1000 {
            tally.record(&ok(), Duration::from_micros(us));
        }
        let mut result = ScenarioResult::new("browse", 64, None, &tally, Duration::from_secs(2));
        result.peak_rss_mb = Some(31.24);
        assert_eq!(
            result.line(),
            "RESULT scenario=browse mode=closed connections=64 rps=500.0 p50_ms=0.500 p90_ms=0.900 \
             p99_ms=0.990 p999_ms=0.999 max_ms=1.000 errors=0 non2xx=0 requests=1000 duration_s=2.0 peak_rss_mb=31.2"
        );
    }

    #[test]
    fn rate_line_and_empty_tally() {
        let mut tally = Tally::new().unwrap();
        tally.record(&Ok(StatusCode::TOO_MANY_REQUESTS), Duration::ZERO);
        tally.record(&Err("refused".into()), Duration::ZERO);
        tally.unsent = 998;
        let mut result = ScenarioResult::new("cart-add", 8, Some(250.0), &tally, Duration::from_millis(4000));
        result.vmhwm_mb = Some(40.0);
        assert_eq!(
            result.line(),
            "RESULT scenario=cart-add mode=rate connections=8 target_rps=250.0 rps=0.2 p50_ms=0.000 p90_ms=0.000 \
             p99_ms=0.000 p999_ms=0.000 max_ms=0.000 errors=1 non2xx=1 requests=2 unsent=998 duration_s=4.0 vmhwm_mb=40.0"
        );
    }

    #[test]
    fn every_field_is_a_key_value_pair() {
        let result = ScenarioResult::new("health", 1, None, &Tally::new().unwrap(), Duration::from_secs(1));
        let line = result.line();
        let mut words = line.split(' ');
        assert_eq!(words.next(), Some("RESULT"));
        for word in words {
            let (key, value) = word.split_once('=').unwrap();
            assert!(!key.is_empty() && !value.is_empty(), "{word}");
        }
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["scenario"], "health");
        assert!(json.get("peak_rss_mb").is_none());
    }
}
