//! When to try a failed delivery again.
//!
//! A schedule comes from `STEPHOOK_RETRY_SCHEDULE`, so it is checked hard: it must name at least
//! one wait (an empty one would mean "never retry"), each wait must lie between
//! [`MIN_RETRY_DELAY`] and [`MAX_RETRY_DELAY`], and no arithmetic on it can overflow.

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
/// The shortest wait a configured schedule may name: anything shorter hammers a receiver that
/// is down. Tests go lower only through [`RetrySchedule::parse_delays_with_floor`].
pub const MIN_RETRY_DELAY: Duration = Duration::from_secs(1);
/// The longest wait a configured schedule may name: a week, far past any outage worth waiting
/// for, and small enough that every later sum and jitter stays far from overflowing.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);
/// FOR TESTS ONLY: milliseconds below [`MIN_RETRY_DELAY`] that a schedule may go down to, so a
/// test run can retry within milliseconds. Read only by [`min_delay_from_env`].
pub const MIN_DELAY_ENV: &str = "STEPHOOK_RETRY_SCHEDULE_MIN_MS";
/// Even a test floor stays above zero: a zero wait would retry in a hot loop.
const LOWEST_TEST_FLOOR: Duration = Duration::from_millis(1);
/// The most a jittered wait can be (jitter is at most ±100 %), whatever the schedule holds:
/// keeps `now + delay` in milliseconds far inside an i64.
const MAX_JITTERED_DELAY: Duration = Duration::from_secs(2 * 7 * 24 * 3600);

/// Why a retry schedule was refused. Every message says what was wrong and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "the schedule is empty: give at least one wait, like 5s,5m,30m,2h (each between {lo} and {hi})",
        lo = show(.min), hi = show(.max)
    )]
    Empty { min: Duration, max: Duration },
    #[error(
        "{text:?} is not a duration like 500ms, 5s, 5m, 2h or 1d (each wait between {lo} and {hi})",
        lo = show(.min), hi = show(.max)
    )]
    NotADuration {
        text: String,
        min: Duration,
        max: Duration,
    },
    #[error("{text:?} has an unknown unit (use ms, s, m, h or d)")]
    UnknownUnit { text: String },
    #[error(
        "{text:?} is too short: each wait must be between {lo} and {hi}",
        lo = show(.min), hi = show(.max)
    )]
    TooShort {
        text: String,
        min: Duration,
        max: Duration,
    },
    #[error(
        "{text:?} is too long: each wait must be between {lo} and {hi}",
        lo = show(.min), hi = show(.max)
    )]
    TooLong {
        text: String,
        min: Duration,
        max: Duration,
    },
}

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
    /// `jitter` is a fraction (0.2 = ±20 %), clamped to [0, 1] (NaN counts as 0). The delays are
    /// taken as given; use [`Self::parse_delays`] for anything a user wrote.
    pub fn new(delays: Vec<Duration>, jitter: f64) -> Self {
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        Self { delays, jitter }
    }

    /// Attempts in all before a delivery is dead: the first plus one per delay.
    pub fn max_attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// The wait after `failed_attempts` failures (1 = the first attempt failed), or `None`
    /// when the schedule is used up. `unit` in [-1, 1] picks where in the jitter band the wait
    /// falls; the dispatcher passes a random one, tests a fixed one. Never panics: the result
    /// is at most two weeks whatever the delays and `unit` are.
    pub fn delay_after(&self, failed_attempts: usize, unit: f64) -> Option<Duration> {
        let base = *self.delays.get(failed_attempts.checked_sub(1)?)?;
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(-1.0, 1.0)
        };
        let factor = (1.0 + self.jitter * unit).max(0.0);
        // `Duration::mul_f64` panics on overflow; the fallible form cannot.
        let jittered = Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base);
        Some(jittered.min(MAX_JITTERED_DELAY))
    }

    /// Parses a comma-separated list of waits, `5s,5m,30m,2h` or plain milliseconds, each
    /// between [`MIN_RETRY_DELAY`] and [`MAX_RETRY_DELAY`]. Empty items are ignored, but the
    /// list as a whole must name at least one wait.
    pub fn parse_delays(text: &str) -> Result<Vec<Duration>, ScheduleError> {
        Self::parse_delays_with_floor(text, MIN_RETRY_DELAY)
    }

    /// [`Self::parse_delays`] with another shortest allowed wait: for test runs that must retry
    /// within milliseconds (see [`min_delay_from_env`]). The floor is kept between 1 ms and
    /// [`MAX_RETRY_DELAY`].
    pub fn parse_delays_with_floor(
        text: &str,
        floor: Duration,
    ) -> Result<Vec<Duration>, ScheduleError> {
        let min = floor.clamp(LOWEST_TEST_FLOOR, MAX_RETRY_DELAY);
        let max = MAX_RETRY_DELAY;
        let delays = text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| parse_bounded(part, min, max))
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() {
            return Err(ScheduleError::Empty { min, max });
        }
        Ok(delays)
    }
}

/// The shortest wait a configured schedule may name in this process: [`MIN_RETRY_DELAY`], unless
/// `STEPHOOK_RETRY_SCHEDULE_MIN_MS` ([`MIN_DELAY_ENV`]) asks for less. FOR TESTS ONLY: it lets
/// a test run use millisecond schedules; production never sets it. The only reader of it.
pub fn min_delay_from_env() -> Duration {
    min_delay_from(std::env::var(MIN_DELAY_ENV).ok().as_deref())
}

/// The floor for a `STEPHOOK_RETRY_SCHEDULE_MIN_MS` value: only ever lowers the default (a
/// larger, unset or unreadable value leaves [`MIN_RETRY_DELAY`]), and never below 1 ms.
fn min_delay_from(value: Option<&str>) -> Duration {
    value
        .and_then(|raw| raw.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .map_or(MIN_RETRY_DELAY, |floor| {
            floor.clamp(LOWEST_TEST_FLOOR, MIN_RETRY_DELAY)
        })
}

/// One duration as a person writes it (`250ms`, `5s`, `90m`, `2h`, `30d`; plain digits are ms),
/// between `min` and `max`.
pub fn parse_bounded(text: &str, min: Duration, max: Duration) -> Result<Duration, ScheduleError> {
    let duration = parse_duration(text, min, max)?;
    let text = text.to_owned();
    if duration < min {
        Err(ScheduleError::TooShort { text, min, max })
    } else if duration > max {
        Err(ScheduleError::TooLong { text, min, max })
    } else {
        Ok(duration)
    }
}

/// One wait: digits and an optional unit (ms when none). Checked arithmetic throughout: a
/// number too large for any unit is [`ScheduleError::TooLong`], never a wrap or a panic.
fn parse_duration(text: &str, min: Duration, max: Duration) -> Result<Duration, ScheduleError> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_ms: u64 = match unit.trim_start() {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ if number.is_empty() => {
            return Err(ScheduleError::NotADuration {
                text: text.to_owned(),
                min,
                max,
            });
        }
        _ => {
            return Err(ScheduleError::UnknownUnit {
                text: text.to_owned(),
            });
        }
    };
    if number.is_empty() {
        return Err(ScheduleError::NotADuration {
            text: text.to_owned(),
            min,
            max,
        });
    }
    let too_long = || ScheduleError::TooLong {
        text: text.to_owned(),
        min,
        max,
    };
    // All digits by construction, so the only way to fail is a number past u64.
    let number: u64 = number.parse().map_err(|_| too_long())?;
    let millis = number.checked_mul(unit_ms).ok_or_else(too_long)?;
    Ok(Duration::from_millis(millis))
}

/// A wait as a person writes it: `1s`, `7d`, `250ms`, `90m`.
fn show(duration: &Duration) -> String {
    let ms = duration.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
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
            RetrySchedule::parse_delays("1000, 5s,5m,2h, 1d"),
            Ok(vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(7200),
                Duration::from_secs(86_400),
            ])
        );
        assert!(matches!(
            RetrySchedule::parse_delays("5x"),
            Err(ScheduleError::UnknownUnit { .. })
        ));
        assert!(matches!(
            RetrySchedule::parse_delays("soon"),
            Err(ScheduleError::NotADuration { .. })
        ));
        assert!(matches!(
            RetrySchedule::parse_delays("-5s"),
            Err(ScheduleError::NotADuration { .. })
        ));
    }

    #[test]
    fn an_empty_schedule_is_refused() {
        for text in ["", " ", " , ,", ","] {
            let err = RetrySchedule::parse_delays(text).unwrap_err();
            assert!(
                matches!(err, ScheduleError::Empty { .. }),
                "{text:?}: {err}"
            );
            assert!(err.to_string().contains("between 1s and 7d"), "{err}");
        }
    }

    #[test]
    fn waits_must_lie_between_one_second_and_seven_days() {
        for text in ["999", "999ms", "0", "0s", "5s,500ms"] {
            let err = RetrySchedule::parse_delays(text).unwrap_err();
            assert!(
                matches!(err, ScheduleError::TooShort { .. }),
                "{text:?}: {err}"
            );
            assert!(err.to_string().contains("between 1s and 7d"), "{err}");
        }
        for text in ["8d", "169h", "604800001"] {
            let err = RetrySchedule::parse_delays(text).unwrap_err();
            assert!(
                matches!(err, ScheduleError::TooLong { .. }),
                "{text:?}: {err}"
            );
        }
        assert_eq!(
            RetrySchedule::parse_delays("1s,7d,168h"),
            Ok(vec![MIN_RETRY_DELAY, MAX_RETRY_DELAY, MAX_RETRY_DELAY])
        );
    }

    #[test]
    fn huge_numbers_are_errors_not_panics() {
        for text in [
            "99999999999999999999h",
            "99999999999999999999",
            "18446744073709551615d",
            "18446744073709551615s",
            "307445734561825861m",
        ] {
            let err = RetrySchedule::parse_delays(text).unwrap_err();
            assert!(
                matches!(err, ScheduleError::TooLong { .. }),
                "{text:?}: {err}"
            );
            assert!(err.to_string().contains("too long"), "{err}");
        }
    }

    #[test]
    fn an_explicit_floor_allows_shorter_waits_for_tests() {
        assert_eq!(
            RetrySchedule::parse_delays_with_floor("50,100", Duration::from_millis(10)),
            Ok(vec![Duration::from_millis(50), Duration::from_millis(100)])
        );
        let err =
            RetrySchedule::parse_delays_with_floor("5", Duration::from_millis(10)).unwrap_err();
        assert!(err.to_string().contains("between 10ms and 7d"), "{err}");
        // Never down to zero, and never above the ceiling.
        assert!(RetrySchedule::parse_delays_with_floor("0", Duration::ZERO).is_err());
        assert_eq!(
            RetrySchedule::parse_delays_with_floor("1ms", Duration::ZERO),
            Ok(vec![Duration::from_millis(1)])
        );
        assert_eq!(
            RetrySchedule::parse_delays_with_floor("7d", Duration::MAX),
            Ok(vec![MAX_RETRY_DELAY])
        );
    }

    #[test]
    fn the_env_floor_only_ever_lowers_the_minimum() {
        assert_eq!(min_delay_from(None), MIN_RETRY_DELAY);
        assert_eq!(min_delay_from(Some("10")), Duration::from_millis(10));
        assert_eq!(min_delay_from(Some(" 250 ")), Duration::from_millis(250));
        assert_eq!(min_delay_from(Some("0")), Duration::from_millis(1));
        assert_eq!(min_delay_from(Some("60000")), MIN_RETRY_DELAY);
        assert_eq!(min_delay_from(Some("soon")), MIN_RETRY_DELAY);
        assert_eq!(min_delay_from(Some("")), MIN_RETRY_DELAY);
    }

    #[test]
    fn jitter_never_overflows() {
        let schedule = RetrySchedule::new(vec![Duration::MAX, MAX_RETRY_DELAY], 1.0);
        assert_eq!(schedule.delay_after(1, 1.0), Some(MAX_JITTERED_DELAY));
        assert_eq!(schedule.delay_after(2, 1.0), Some(MAX_JITTERED_DELAY));
        assert_eq!(schedule.delay_after(2, -1.0), Some(Duration::ZERO));
        assert_eq!(schedule.delay_after(2, f64::NAN), Some(MAX_RETRY_DELAY));
        let nan = RetrySchedule::new(vec![Duration::from_secs(10)], f64::NAN);
        assert_eq!(nan.delay_after(1, 1.0), Some(Duration::from_secs(10)));
    }

    #[test]
    fn waits_are_shown_as_people_write_them() {
        assert_eq!(show(&MIN_RETRY_DELAY), "1s");
        assert_eq!(show(&MAX_RETRY_DELAY), "7d");
        assert_eq!(show(&Duration::from_millis(1500)), "1500ms");
        assert_eq!(show(&Duration::from_secs(5400)), "90m");
    }
}
