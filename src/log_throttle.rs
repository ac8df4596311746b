//! [`Throttle`]: at most one log line per interval for an event an attacker can repeat at will (a
//! forged notification, a wrong station or admin key, a refused connection), so a flood of requests
//! cannot become a flood of log lines (and a full disk or journal). The line that is let through says
//! how many were suppressed since the last one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One log line per `every`, counting the ones held back.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    // A std mutex: a comparison and a store, never held across an await. Monotonic time: only the
    // spacing of log lines depends on it, never a decision about a job or a person.
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Throttle {
    /// A throttle letting one line through per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(suppressed)` when a line may be logged now (with the number held back since the last),
    /// `None` when it must be held back.
    pub fn allow(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match *last {
            Some(at) if now.duration_since(at) < self.every => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_passes_and_it_counts_the_held_back_ones() {
        let throttle = Throttle::new(Duration::from_secs(3600));
        assert_eq!(throttle.allow(), Some(0));
        for _ in 0..1000 {
            assert_eq!(throttle.allow(), None);
        }
        let throttle = Throttle::new(Duration::ZERO);
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), Some(0));
    }
}
