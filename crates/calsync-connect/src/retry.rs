//! When to try again: exponential backoff with full jitter, never sooner than the server's
//! `Retry-After`.

use std::time::{Duration, SystemTime};

/// Backoff between attempts of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay's ceiling.
    pub base: Duration,
    /// No delay is longer (except what a server asks for).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_secs(30), max: Duration::from_secs(6 * 3600) }
    }
}

impl Backoff {
    /// The delay before attempt `attempt + 1` (`attempt` from 0): a uniformly random time up to
    /// `base * 2^attempt` (capped at `max`), where `unit` in [0, 1) is the random draw; at least
    /// `retry_after` when the server said so.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let ceiling = self.base.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)).min(self.max);
        let jittered = ceiling.mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(asked) => jittered.max(asked),
            None => jittered,
        }
    }

    /// [`Backoff::delay`] with a fresh random draw.
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.delay(attempt, retry_after, random_unit())
    }
}

/// A random number in [0, 1) from the standard library's per-process random hash keys.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The longest wait a server's `Retry-After` is followed for: a week. Whatever a calendar
/// server says (any ICS feed's server can answer 429), a connection is tried again within a week,
/// and the next attempt's date stays a date.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The `Retry-After` of an answer: seconds, or an HTTP date (then the time until it); at most
/// [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let asked = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO),
    };
    Some(asked.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap_and_jitter_inside_the_ceiling() {
        let b = Backoff { base: Duration::from_secs(10), max: Duration::from_secs(300) };
        assert_eq!(b.delay(0, None, 0.999_999), Duration::from_secs(10).mul_f64(0.999_999));
        assert_eq!(b.delay(3, None, 0.5), Duration::from_secs(40));
        assert_eq!(b.delay(10, None, 0.5), Duration::from_secs(150), "capped at max");
        assert_eq!(b.delay(200, None, 1.0), Duration::from_secs(300), "huge attempts do not overflow");
        assert_eq!(b.delay(2, None, 0.0), Duration::ZERO);
        for attempt in 0..12 {
            let d = b.next_delay(attempt, None);
            assert!(d <= Duration::from_secs(300) && d <= Duration::from_secs(10) * 2u32.pow(attempt));
        }
    }

    #[test]
    fn a_server_asking_for_more_time_gets_it() {
        let b = Backoff { base: Duration::from_secs(1), max: Duration::from_secs(60) };
        assert_eq!(b.delay(0, Some(Duration::from_secs(120)), 0.5), Duration::from_secs(120));
        assert_eq!(b.delay(5, Some(Duration::from_secs(1)), 0.5), Duration::from_secs(16));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "17".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(17)));
        h.insert(reqwest::header::RETRY_AFTER, "9000000000000".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(reqwest::header::RETRY_AFTER, "Fri, 31 Dec 9999 23:59:59 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        let later = SystemTime::now() + Duration::from_secs(90);
        h.insert(reqwest::header::RETRY_AFTER, httpdate::fmt_http_date(later).parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(85) && d <= Duration::from_secs(90), "{d:?}");
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
