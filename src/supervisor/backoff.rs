//! Restart backoff: an iterator of delays that doubles up to a cap and resets
//! once the container has stayed up long enough.
use std::time::Duration;

/// Backoff settings (a service's `restart_backoff`, the defaults without one).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BackoffConfig {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    /// A run at least this long resets the delay to `initial`.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            reset_after: Duration::from_secs(10),
        }
    }
}

impl From<crate::model::RestartBackoff> for BackoffConfig {
    fn from(b: crate::model::RestartBackoff) -> Self {
        BackoffConfig {
            initial: b.initial,
            max: b.max,
            multiplier: b.multiplier,
            reset_after: b.reset_after,
        }
    }
}

/// The delays before successive restarts.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    next: Duration,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            next: config.initial,
        }
    }

    /// Forget earlier failures: the next delay is `initial` again.
    pub fn reset(&mut self) {
        self.next = self.config.initial;
    }

    /// The delay before the next restart of a container that ran for `uptime`.
    pub fn after_run(&mut self, uptime: Duration) -> Duration {
        if uptime >= self.config.reset_after {
            self.reset();
        }
        self.next().unwrap_or(self.config.max)
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let current = self.next.min(self.config.max);
        self.next = current
            .mul_f64(self.config.multiplier.max(1.0))
            .min(self.config.max);
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_then_stays() {
        let cfg = BackoffConfig {
            max: Duration::from_millis(500),
            ..Default::default()
        };
        let delays: Vec<u128> = Backoff::new(cfg).take(6).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500, 500]);
    }

    #[test]
    fn a_long_run_resets_a_short_one_does_not() {
        let mut b = Backoff::new(BackoffConfig::default());
        assert_eq!(
            b.after_run(Duration::from_secs(1)),
            Duration::from_millis(100)
        );
        assert_eq!(
            b.after_run(Duration::from_secs(1)),
            Duration::from_millis(200)
        );
        assert_eq!(
            b.after_run(Duration::from_secs(11)),
            Duration::from_millis(100)
        );
    }
}
