//! GCRA (generic cell rate algorithm): the state of a bucket is one number,
//! the theoretical arrival time (TAT). A call at `now` is allowed when
//! `TAT - now <= PERIOD - interval` (a full burst of `per_minute` fits), and
//! then moves TAT to `max(TAT, now) + interval`. The same arithmetic runs in
//! the Redis script, so both stores decide alike.

use super::{Decision, Rate, PERIOD};

/// Decides one call; returns the decision and the new TAT (unchanged if refused).
/// Times are nanoseconds on any monotonic clock.
pub fn decide(tat: Option<u64>, now: u64, rate: Rate) -> (Decision, u64) {
    let period = PERIOD.as_nanos() as u64;
    let t = rate.interval().as_nanos() as u64;
    let tau = period.saturating_sub(t);
    let tat = tat.unwrap_or(now).max(now);
    let limit = rate.per_minute;
    if tat - now > tau {
        let retry = tat - now - tau;
        let d = Decision {
            allowed: false,
            limit,
            remaining: 0,
            reset_secs: ceil_secs(tat - now),
            retry_after_secs: ceil_secs(retry).max(1),
        };
        return (d, tat);
    }
    let new = tat + t;
    let used = new - now; // time the bucket needs to drain
    let remaining = ((period.saturating_sub(used)) / t.max(1)) as u32;
    let d = Decision {
        allowed: true,
        limit,
        remaining: remaining.min(limit),
        reset_secs: ceil_secs(used),
        retry_after_secs: 0,
    };
    (d, new)
}

fn ceil_secs(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn run(rate: u32, times: &[u64]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|&now| {
                let (d, t) = decide(tat, now, Rate { per_minute: rate });
                tat = Some(t);
                d.allowed
            })
            .collect()
    }

    #[test]
    fn burst_of_exactly_n_then_steady_rate() {
        // 10/min: ten at once, the eleventh refused
        let at_once = run(10, &[S; 11]);
        assert_eq!(at_once.iter().filter(|a| **a).count(), 10);
        assert!(!at_once[10]);
        // after 6 s (one interval) exactly one more
        let mut times = vec![S; 10];
        times.extend([S + 6 * S - 1, S + 6 * S, S + 6 * S]);
        assert_eq!(run(10, &times)[10..], [false, true, false]);
    }

    #[test]
    fn remaining_and_reset_headers() {
        let r = Rate { per_minute: 5 };
        let (d, tat) = decide(None, 0, r);
        assert_eq!((d.remaining, d.limit), (4, 5));
        assert_eq!(d.reset_secs, 12);
        let mut tat = tat;
        for _ in 0..4 {
            tat = decide(Some(tat), 0, r).1;
        }
        let (d, _) = decide(Some(tat), 0, r);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 12);
        assert_eq!(d.remaining, 0);
    }

    /// Property: over any schedule, the calls allowed in the first window are
    /// at most N plus what refilled (elapsed / interval), and a refused call
    /// never changes the state.
    #[test]
    fn property_never_more_than_refill_allows() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200 {
            let n = (seed % 50 + 1) as u32;
            let mut now = 0u64;
            let mut tat = None;
            let mut allowed = 0u64;
            for _ in 0..300 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                now += seed % (2 * S);
                let (d, t) = decide(tat, now, Rate { per_minute: n });
                if !d.allowed {
                    // a refused call leaves the bucket as it was
                    assert_eq!(t, tat.unwrap_or(now).max(now));
                }
                tat = Some(t);
                allowed += d.allowed as u64;
                let interval = (60 * S) / n as u64;
                assert!(
                    allowed <= n as u64 + now / interval,
                    "n={n} allowed={allowed} at {now}"
                );
            }
        }
    }
}
