//! Refusals are not free: every 401, 403, refused tool call and forged
//! session token counts against a bucket of the client address
//! (`rate_limit.refusals_rpm`), and an address whose bucket is empty gets
//! 429 for everything, checked before authentication, so credential
//! probing and floods of tokens to verify cost the gateway one table lookup
//! per request. Good clients are untouched: accepted requests never count,
//! and other addresses have their own buckets.
//!
//! GCRA as in [`super::gcra`] (one number per bucket, a burst of
//! `refusals_rpm`). IPv6 addresses count per /64 (one host usually owns a
//! whole /64). The table is bounded: shards of at most [`SHARD_CAP`]
//! addresses; a full shard drops refilled buckets first, then the one
//! closest to refilled. Per process (a replica counts what it saw): this is
//! a cheap brake in front of authentication, not a shared quota, and a
//! lookup in Redis per request would cost more than what it protects.
//! Process-wide so buckets survive configuration reloads. Pingora-free.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// `refusals_rpm` when the configuration does not say.
pub const DEFAULT_RPM: u32 = 60;

const SHARDS: usize = 16;
/// Most addresses one shard tracks (16 × 4096 in all).
pub const SHARD_CAP: usize = 4096;
const MINUTE_NS: u64 = 60_000_000_000;

/// The per-address refusal buckets.
#[derive(Debug)]
pub struct Refusals {
    shards: Vec<Mutex<HashMap<u128, u64>>>,
    epoch: Instant,
    cap: usize,
}

impl Default for Refusals {
    fn default() -> Self {
        Refusals::with_cap(SHARD_CAP)
    }
}

/// The process-wide table: like the rate-limit buckets it must survive
/// reloads (a reload would otherwise reset every prober's budget), and it
/// is bounded (16 × 4096 addresses).
pub fn shared() -> &'static Refusals {
    static TABLE: std::sync::OnceLock<Refusals> = std::sync::OnceLock::new();
    TABLE.get_or_init(Refusals::default)
}

/// The bucket key of an address: IPv4 as is, IPv6 by its /64.
fn key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => (u128::from(v6) & !((1u128 << 64) - 1)) | 1,
    }
}

impl Refusals {
    /// A table whose shards hold at most `cap` addresses.
    pub fn with_cap(cap: usize) -> Refusals {
        Refusals {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            epoch: Instant::now(),
            cap: cap.max(1),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn shard(&self, k: u128) -> &Mutex<HashMap<u128, u64>> {
        let h = (k ^ (k >> 64)) as u64;
        &self.shards[(h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % SHARDS]
    }

    /// When `ip` has used up its refusals: seconds until it may try again.
    pub fn blocked(&self, ip: IpAddr, rpm: u32) -> Option<u64> {
        self.blocked_at(ip, rpm, self.now())
    }

    /// [`Refusals::blocked`] at `now` (tests drive the clock).
    pub fn blocked_at(&self, ip: IpAddr, rpm: u32, now: u64) -> Option<u64> {
        if rpm == 0 {
            return None;
        }
        let k = key(ip);
        let map = self.shard(k).lock().unwrap_or_else(|p| p.into_inner());
        let tat = *map.get(&k)?;
        let interval = MINUTE_NS / rpm as u64;
        // GCRA: the next refusal would not conform when TAT - now > the
        // burst tolerance (a minute less one interval)
        let tolerance = MINUTE_NS - interval;
        let ahead = tat.saturating_sub(now);
        (ahead > tolerance).then(|| (ahead - tolerance).div_ceil(1_000_000_000).max(1))
    }

    /// Counts one refusal of `ip`.
    pub fn count(&self, ip: IpAddr, rpm: u32) {
        self.count_at(ip, rpm, self.now());
    }

    /// [`Refusals::count`] at `now`.
    pub fn count_at(&self, ip: IpAddr, rpm: u32, now: u64) {
        if rpm == 0 {
            return;
        }
        let k = key(ip);
        let interval = MINUTE_NS / rpm as u64;
        let mut map = self.shard(k).lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(&k) && map.len() >= self.cap {
            map.retain(|_, tat| *tat > now);
            if map.len() >= self.cap {
                if let Some(victim) = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k) {
                    map.remove(&victim);
                }
            }
        }
        let tat = map.entry(k).or_insert(now);
        // refusals beyond the limit keep it closed, up to one more minute
        *tat = (*tat)
            .max(now)
            .saturating_add(interval)
            .min(now + 2 * MINUTE_NS);
    }

    /// Addresses tracked (tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    /// No address tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn an_address_gets_its_burst_then_waits() {
        let t = Refusals::default();
        let a = ip("192.0.2.1");
        for _ in 0..10 {
            assert_eq!(t.blocked_at(a, 10, 0), None);
            t.count_at(a, 10, 0);
        }
        let wait = t.blocked_at(a, 10, 0);
        assert_eq!(wait, Some(6), "one refusal every 6 s");
        // another address is untouched
        assert_eq!(t.blocked_at(ip("192.0.2.2"), 10, 0), None);
        // six seconds later one more is allowed
        assert_eq!(t.blocked_at(a, 10, 6_000_000_000), None);
        // off
        assert_eq!(t.blocked_at(a, 0, 0), None);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let t = Refusals::default();
        for i in 0..5 {
            t.count_at(ip(&format!("2001:db8::{i}")), 5, 0);
        }
        assert!(t.blocked_at(ip("2001:db8::ffff"), 5, 0).is_some());
        assert!(t.blocked_at(ip("2001:db8:0:1::1"), 5, 0).is_none());
        for _ in 0..5 {
            t.count_at(ip("::ffff:192.0.2.9"), 5, 0);
        }
        assert!(t.blocked_at(ip("192.0.2.9"), 5, 0).is_some());
    }

    #[test]
    fn the_table_is_bounded() {
        let t = Refusals::with_cap(8);
        for i in 0..10_000u32 {
            t.count_at(IpAddr::V4(i.into()), 60, 0);
        }
        assert!(t.len() <= 8 * SHARDS, "{}", t.len());
        // a heavy offender is kept over one-off addresses
        let bad = ip("198.51.100.1");
        for _ in 0..120 {
            t.count_at(bad, 60, 0);
        }
        for i in 0..10_000u32 {
            t.count_at(IpAddr::V4((i + 20_000).into()), 60, 0);
        }
        assert!(t.blocked_at(bad, 60, 0).is_some());
    }
}
