//! How every link worker paces its passes: `poll_ms` after a pass that succeeded, a doubling
//! backoff up to `max_backoff_ms` after an error (logged and counted), until `stop` turns true.

use crate::config::PortalConfig;
use crate::metrics::Metrics;
use crate::PortalError;
use std::time::Duration;

/// The pause between one link's passes.
pub struct Pacing<'a> {
    name: &'a str,
    metrics: &'a Metrics,
    poll: Duration,
    first_backoff: Duration,
    max_backoff: Duration,
    backoff: Duration,
}

impl<'a> Pacing<'a> {
    /// Pacing by `cfg` for the link `name`.
    pub fn new(name: &'a str, cfg: &PortalConfig, metrics: &'a Metrics) -> Self {
        let first_backoff = Duration::from_millis(cfg.backoff_ms);
        Pacing {
            name,
            metrics,
            poll: Duration::from_millis(cfg.poll_ms),
            first_backoff,
            max_backoff: Duration::from_millis(cfg.max_backoff_ms),
            backoff: first_backoff,
        }
    }

    /// What to wait after a pass that ended with `result` (an error is logged and counted).
    pub fn wait_after(&mut self, result: Result<(), PortalError>) -> Duration {
        match result {
            Ok(()) => {
                self.backoff = self.first_backoff;
                self.poll
            }
            Err(e) => {
                let why = e.to_string();
                tracing::warn!(link = %self.name, error = %why, retry_ms = self.backoff.as_millis() as u64, "relay step failed");
                self.metrics.error(self.name, &why);
                let w = self.backoff;
                self.backoff = (self.backoff * 2).min(self.max_backoff);
                w
            }
        }
    }

    /// Waits after a pass; true when the worker must stop.
    pub async fn pause(
        &mut self,
        result: Result<(), PortalError>,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let wait = self.wait_after(result);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
        *stop.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_double_the_wait_up_to_the_maximum_and_a_success_resets_it() {
        let cfg = PortalConfig {
            backoff_ms: 100,
            max_backoff_ms: 350,
            poll_ms: 7,
            ..PortalConfig::default()
        };
        let m = Metrics::default();
        let mut p = Pacing::new("l", &cfg, &m);
        let err = || Err(PortalError::Config("x".into()));
        let waits: Vec<u128> = (0..4).map(|_| p.wait_after(err()).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 350, 350]);
        assert_eq!(p.wait_after(Ok(())).as_millis(), 7);
        assert_eq!(p.wait_after(err()).as_millis(), 100);
    }
}
