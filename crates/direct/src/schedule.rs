//! When to try a failed delivery again.

use std::time::Duration;

/// The default waits after each failed attempt: quick first, then spread over about a day.
pub const DEFAULT_RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// ±20 %: receivers that came back up are not hit by every retry at the same instant.
pub const DEFAULT_JITTER: f64 = 0.2;

#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::new(DEFAULT_RETRY_DELAYS.to_vec(), DEFAULT_JITTER)
    }
}

impl RetrySchedule {
    /// `jitter` is a fraction (0.2 = ±20 %), clamped to [0, 1].
    pub fn new(delays: Vec<Duration>, jitter: f64) -> Self {
        Self {
            delays,
            jitter: jitter.clamp(0.0, 1.0),
        }
    }

    /// Attempts in all before a delivery is dead: the first plus one per delay.
    pub fn max_attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// The wait after `failed_attempts` failures (1 = the first attempt failed), or `None`
    /// when the schedule is used up. `unit` in [-1, 1] picks where in the jitter band the wait
    /// falls; the dispatcher passes a random one, tests a fixed one.
    pub fn delay_after(&self, failed_attempts: usize, unit: f64) -> Option<Duration> {
        let base = *self.delays.get(failed_attempts.checked_sub(1)?)?;
        let factor = 1.0 + self.jitter * unit.clamp(-1.0, 1.0);
        Some(base.mul_f64(factor.max(0.0)))
    }

    /// Parses a comma-separated list of waits: `5s,5m,30m,2h` or plain milliseconds `50,100`.
    pub fn parse_delays(text: &str) -> Result<Vec<Duration>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(parse_duration)
            .collect()
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 5s, 5m or 2h"))?;
    let millis = match unit {
        "" | "ms" => number,
        "s" => number * 1_000,
        "m" => number * 60_000,
        "h" => number * 3_600_000,
        _ => return Err(format!("{text:?} has an unknown unit (use ms, s, m or h)")),
    };
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_is_the_documented_one() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.max_attempts(), 8);
        assert_eq!(schedule.delay_after(1, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(
            schedule.delay_after(7, 0.0),
            Some(Duration::from_secs(36_000))
        );
        assert_eq!(schedule.delay_after(8, 0.0), None);
        assert_eq!(schedule.delay_after(0, 0.0), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.delay_after(1, -1.0), Some(Duration::from_secs(4)));
        assert_eq!(schedule.delay_after(1, 1.0), Some(Duration::from_secs(6)));
        assert_eq!(
            schedule.delay_after(1, 7.0),
            Some(Duration::from_secs(6)),
            "clamped"
        );
    }

    #[test]
    fn delays_parse_with_units() {
        assert_eq!(
            RetrySchedule::parse_delays("50, 5s,5m,2h"),
            Ok(vec![
                Duration::from_millis(50),
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(7200)
            ])
        );
        assert!(RetrySchedule::parse_delays("5x").is_err());
        assert!(RetrySchedule::parse_delays("soon").is_err());
    }
}
