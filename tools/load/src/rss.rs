//! Resident memory of the server processes, from /proc/PID/status, sampled every 100 ms on a
//! thread of its own (so a busy runtime cannot delay it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The value in kB of a `Key:   1234 kB` line of a /proc status text.
pub fn status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let value = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | None => Some(value),
            Some(_) => None,
        }
    })
}

pub fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn read_status(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// Samples the summed VmRSS of some processes and keeps the peak of the current phase.
pub struct RssMonitor {
    pids: Vec<u32>,
    phase_peak_kb: AtomicU64,
    overall_peak_kb: AtomicU64,
    stop: AtomicBool,
    warned: AtomicBool,
}

impl RssMonitor {
    /// Starts sampling (nothing to sample without pids).
    pub fn start(pids: Vec<u32>) -> Option<(Arc<RssMonitor>, JoinHandle<()>)> {
        if pids.is_empty() {
            return None;
        }
        let monitor = Arc::new(RssMonitor {
            pids,
            phase_peak_kb: AtomicU64::new(0),
            overall_peak_kb: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            warned: AtomicBool::new(false),
        });
        monitor.sample();
        let sampler = monitor.clone();
        let handle = std::thread::spawn(move || {
            while !sampler.stop.load(Ordering::Relaxed) {
                std::thread::sleep(SAMPLE_EVERY);
                sampler.sample();
            }
        });
        Some((monitor, handle))
    }

    /// Reads every process once; a vanished process is warned about once and counted as 0.
    fn sample(&self) {
        let mut total = 0;
        for &pid in &self.pids {
            match read_status(pid).and_then(|s| status_kb(&s, "VmRSS")) {
                Some(kb) => total += kb,
                None => {
                    if !self.warned.swap(true, Ordering::Relaxed) {
                        eprintln!("warning: cannot read VmRSS of pid {pid} (has it exited?)");
                    }
                }
            }
        }
        self.phase_peak_kb.fetch_max(total, Ordering::Relaxed);
        self.overall_peak_kb.fetch_max(total, Ordering::Relaxed);
    }

    /// Starts a phase: its peak begins at the current reading.
    pub fn begin_phase(&self) {
        self.phase_peak_kb.store(0, Ordering::Relaxed);
        self.sample();
    }

    /// Ends a phase with a last reading; its peak in MiB.
    pub fn end_phase(&self) -> f64 {
        self.sample();
        kb_to_mb(self.phase_peak_kb.load(Ordering::Relaxed))
    }

    pub fn overall_peak_mb(&self) -> f64 {
        kb_to_mb(self.overall_peak_kb.load(Ordering::Relaxed))
    }

    /// The kernel's own high-water mark (VmHWM), a cross-check when there is one process.
    pub fn vmhwm_mb(&self) -> Option<f64> {
        match self.pids.as_slice() {
            [pid] => read_status(*pid).and_then(|s| status_kb(&s, "VmHWM")).map(kb_to_mb),
            _ => None,
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tagora\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t4242\n\
        VmPeak:\t  912340 kB\nVmSize:\t  901220 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   31948 kB\n\
        RssAnon:\t   20000 kB\nThreads:\t3\n";

    #[test]
    fn reads_rss_and_hwm_from_a_status_text() {
        assert_eq!(status_kb(STATUS, "VmRSS"), Some(31948));
        assert_eq!(status_kb(STATUS, "VmHWM"), Some(40960));
        assert_eq!(status_kb(STATUS, "Threads"), Some(3));
        assert_eq!(status_kb(STATUS, "VmSwap"), None);
        // A key is matched whole: "Vm" is not a prefix match for "VmRSS".
        assert_eq!(status_kb(STATUS, "Vm"), None);
        assert_eq!(status_kb("VmRSS:\tlots kB\n", "VmRSS"), None);
        assert_eq!(status_kb("VmRSS:\t12 MB\n", "VmRSS"), None);
        assert!((kb_to_mb(31948) - 31.199).abs() < 0.001);
    }

    #[test]
    fn samples_this_process() {
        let (monitor, handle) = RssMonitor::start(vec![std::process::id()]).unwrap();
        monitor.begin_phase();
        let peak = monitor.end_phase();
        assert!(peak > 0.0);
        assert!(monitor.overall_peak_mb() >= peak);
        assert!(monitor.vmhwm_mb().unwrap() > 0.0);
        monitor.stop();
        handle.join().unwrap();
        assert!(RssMonitor::start(Vec::new()).is_none());
    }
}
