//! A cap on how many Events the speaker publishes: whatever the network throws at it (a
//! flood of forged ARP replies, a flapping link), the API server sees a bounded trickle.
use std::time::{Duration, Instant};

/// A token bucket: up to `burst` Events at once, then one per `every`.
#[derive(Debug)]
pub struct EventRate {
    burst: u32,
    every: Duration,
    tokens: u32,
    refilled: Instant,
    /// Events refused since the last one let through, for one log line.
    refused: u64,
}

impl EventRate {
    pub fn new(burst: u32, every: Duration, now: Instant) -> EventRate {
        EventRate {
            burst,
            every,
            tokens: burst,
            refilled: now,
            refused: 0,
        }
    }

    /// Whether an Event may go out at `now`; if so, how many were refused before it.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        let elapsed = now.saturating_duration_since(self.refilled);
        let earned =
            (elapsed.as_nanos() / self.every.as_nanos().max(1)).min(u128::from(self.burst));
        if earned > 0 {
            self.tokens = (self.tokens + earned as u32).min(self.burst);
            self.refilled = now;
        }
        if self.tokens == 0 {
            self.refused = self.refused.saturating_add(1);
            return None;
        }
        self.tokens -= 1;
        Some(std::mem::take(&mut self.refused))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_gets_the_burst_then_one_per_period() {
        #[allow(clippy::disallowed_methods)] // any base will do: time is advanced by hand
        let start = Instant::now();
        let mut rate = EventRate::new(10, Duration::from_secs(1), start);
        let admitted = (0..2000).filter(|_| rate.admit(start).is_some()).count();
        assert_eq!(admitted, 10);
        assert_eq!(rate.admit(start + Duration::from_millis(999)), None);
        assert_eq!(rate.admit(start + Duration::from_secs(1)), Some(1991));
        let later = start + Duration::from_secs(3600);
        let admitted = (0..2000).filter(|_| rate.admit(later).is_some()).count();
        assert_eq!(admitted, 10, "the bucket never holds more than its burst");
    }
}
