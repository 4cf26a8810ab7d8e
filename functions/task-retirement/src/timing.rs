//! The timing rule: replace inside the maintenance window, before AWS does it (at
//! `startTime`, less `LEAD_TIME_HOURS` so the replacement has time to finish). When the
//! window is closed now and opens in time, wait for it; when it opens too late, or the
//! retirement time has passed, or there is no schedule at all, act now and say why.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use shared::window::MaintenanceWindow;

/// Why a replacement happens now rather than in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Why {
    /// No schedule (rebalance recommendation): the instance may go at any moment.
    NoSchedule,
    StartPassed,
    AlwaysOpen,
    WindowOpen,
    /// The window opens only at `next_open`, later than the latest safe start.
    WindowTooLate {
        next_open: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum When {
    Now(Why),
    /// Wait for the window, which opens at this time.
    At(DateTime<Utc>),
}

/// Applies the timing rule.
pub fn when(
    start: Option<DateTime<Utc>>,
    window: &MaintenanceWindow,
    lead: Duration,
    now: DateTime<Utc>,
) -> When {
    let Some(start) = start else {
        return When::Now(Why::NoSchedule);
    };
    if start <= now {
        return When::Now(Why::StartPassed);
    }
    if window.is_always() {
        return When::Now(Why::AlwaysOpen);
    }
    if window.is_open(now) {
        return When::Now(Why::WindowOpen);
    }
    let next_open = window.next_open(now);
    if next_open <= start - lead {
        When::At(next_open)
    } else {
        When::Now(Why::WindowTooLate { next_open })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Wednesday 2024-01-10 12:00 UTC.
    fn wednesday_noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap()
    }

    fn days(n: i64) -> Duration {
        Duration::days(n)
    }

    #[test]
    fn without_a_window_a_future_retirement_is_handled_at_once() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::always();
        assert_eq!(
            when(Some(now + days(7)), &w, Duration::hours(2), now),
            When::Now(Why::AlwaysOpen)
        );
    }

    #[test]
    fn inside_the_window_before_the_start_acts_now() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Wed 11:00-13:00").unwrap();
        assert_eq!(
            when(Some(now + days(7)), &w, Duration::hours(2), now),
            When::Now(Why::WindowOpen)
        );
    }

    #[test]
    fn a_closed_window_that_opens_in_time_is_waited_for() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Sat 02:00-05:00").unwrap();
        let saturday = Utc.with_ymd_and_hms(2024, 1, 13, 2, 0, 0).unwrap();
        assert_eq!(
            when(Some(now + days(7)), &w, Duration::hours(2), now),
            When::At(saturday)
        );
    }

    #[test]
    fn a_window_opening_after_the_retirement_is_not_waited_for() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Sat 02:00-05:00").unwrap();
        let friday = now + days(2);
        let saturday = Utc.with_ymd_and_hms(2024, 1, 13, 2, 0, 0).unwrap();
        assert_eq!(
            when(Some(friday), &w, Duration::hours(2), now),
            When::Now(Why::WindowTooLate {
                next_open: saturday
            })
        );
    }

    #[test]
    fn a_window_opening_inside_the_lead_time_is_too_late() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Sat 02:00-05:00").unwrap();
        let saturday = Utc.with_ymd_and_hms(2024, 1, 13, 2, 0, 0).unwrap();
        let just_after = saturday + Duration::hours(1);
        assert!(matches!(
            when(Some(just_after), &w, Duration::hours(2), now),
            When::Now(Why::WindowTooLate { .. })
        ));
        let exactly_lead = saturday + Duration::hours(2);
        assert_eq!(
            when(Some(exactly_lead), &w, Duration::hours(2), now),
            When::At(saturday)
        );
    }

    #[test]
    fn a_start_time_already_past_acts_now_even_with_the_window_closed() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Sat 02:00-05:00").unwrap();
        assert_eq!(
            when(
                Some(now - Duration::minutes(1)),
                &w,
                Duration::hours(2),
                now
            ),
            When::Now(Why::StartPassed)
        );
    }

    #[test]
    fn no_schedule_acts_now() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Sat 02:00-05:00").unwrap();
        assert_eq!(
            when(None, &w, Duration::hours(2), now),
            When::Now(Why::NoSchedule)
        );
    }
}
