//! Healthcheck bookkeeping, as Docker does it: probes every `interval`
//! (`start_interval` during the start period), `retries` consecutive failures
//! make a container unhealthy, one success makes it healthy, and failures inside
//! `start_period` do not count. Pure: the monitor runs the probes.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::record::Health;
use crate::model::Healthcheck;

/// Probes kept for `inspect`.
const KEEP: usize = 5;
/// Output kept per probe.
pub const MAX_OUTPUT: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Seconds since the epoch.
    pub start: u64,
    pub end: u64,
    /// -1 when the probe timed out or could not start.
    pub exit_code: i32,
    pub output: String,
}

#[derive(Debug, Clone)]
pub struct Tracker {
    pub config: Healthcheck,
    started: Instant,
    in_start_period: bool,
    failures: u32,
    pub state: Health,
    pub log: VecDeque<Probe>,
}

impl Tracker {
    pub fn new(config: Healthcheck, now: Instant) -> Tracker {
        Tracker {
            config,
            started: now,
            in_start_period: true,
            failures: 0,
            state: Health::Starting,
            log: VecDeque::new(),
        }
    }

    fn starting(&self, now: Instant) -> bool {
        self.in_start_period && now.duration_since(self.started) < self.config.start_period
    }

    /// How long after a probe (or the start) the next one runs.
    pub fn delay(&self, now: Instant) -> Duration {
        if self.starting(now) && !self.config.start_interval.is_zero() {
            self.config.start_interval
        } else {
            self.config.interval
        }
    }

    /// Account for a finished probe; returns the new state when it changed.
    pub fn record(&mut self, probe: Probe, now: Instant) -> Option<Health> {
        let ok = probe.exit_code == 0;
        let starting = self.starting(now);
        self.log.push_back(probe);
        while self.log.len() > KEEP {
            self.log.pop_front();
        }
        let before = self.state;
        if ok {
            self.failures = 0;
            self.in_start_period = false;
            self.state = Health::Healthy;
        } else if !starting {
            self.failures += 1;
            if self.failures >= self.config.retries.max(1) {
                self.state = Health::Unhealthy;
            }
        }
        (self.state != before).then_some(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(retries: u32, start_period: u64) -> Healthcheck {
        Healthcheck {
            test: vec!["true".into()],
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            retries,
            start_period: Duration::from_secs(start_period),
            start_interval: Duration::from_secs(1),
        }
    }

    fn probe(code: i32) -> Probe {
        Probe {
            start: 0,
            end: 0,
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn retries_consecutive_failures_make_it_unhealthy_and_one_success_heals() {
        let t0 = Instant::now();
        let mut t = Tracker::new(cfg(3, 0), t0);
        assert_eq!(t.state, Health::Starting);
        assert_eq!(t.record(probe(1), t0), None);
        assert_eq!(t.record(probe(1), t0), None);
        assert_eq!(t.record(probe(1), t0), Some(Health::Unhealthy));
        assert_eq!(t.record(probe(0), t0), Some(Health::Healthy));
        assert_eq!(
            t.record(probe(1), t0),
            None,
            "the count starts again after a success"
        );
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_and_it_probes_faster() {
        let t0 = Instant::now();
        let mut t = Tracker::new(cfg(1, 10), t0);
        assert_eq!(t.delay(t0), Duration::from_secs(1));
        assert_eq!(t.record(probe(1), t0 + Duration::from_secs(2)), None);
        assert_eq!(t.state, Health::Starting);
        assert_eq!(
            t.record(probe(1), t0 + Duration::from_secs(11)),
            Some(Health::Unhealthy)
        );
        assert_eq!(
            t.delay(t0 + Duration::from_secs(11)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn the_log_keeps_the_last_five_probes() {
        let t0 = Instant::now();
        let mut t = Tracker::new(cfg(3, 0), t0);
        for code in 0..8 {
            t.record(probe(code), t0);
        }
        assert_eq!(
            t.log.iter().map(|p| p.exit_code).collect::<Vec<_>>(),
            [3, 4, 5, 6, 7]
        );
    }
}
