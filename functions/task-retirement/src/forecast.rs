//! Can the disruption budget make AWS's deadlines? Asked when a notice is first seen, long
//! before the deadline, so people can raise the budget, widen the window or replace some
//! resources by hand while there is time.
//!
//! The model: replacements start in rounds of `budget`, each round taking the typical
//! duration of one replacement (`HOST_REPLACEMENT_MINUTES`, `REDEPLOY_MINUTES`), and a
//! round starts only while the maintenance window is open. What is in replacement now
//! takes the first slots. The waiting resources go earliest deadline first (the best order
//! there is, so a forecast that misses is a real miss). A resource whose round starts after
//! its latest safe start (`deadline − LEAD_TIME_HOURS`) is late: at that moment it is
//! replaced regardless of the budget, several at once.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use shared::window::MaintenanceWindow;

/// The numbers of one budget's forecast, as sent in `details.forecast`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forecast {
    /// What the budget covers: `group NAME` or `cluster NAME`.
    pub budget_of: String,
    /// The budget variable and its value, e.g. `MAX_REPLACEMENTS_PER_GROUP=1`.
    pub budget_var: String,
    pub budget: usize,
    /// Resources in replacement now (they take the first slots).
    pub in_replacement: usize,
    /// Resources still to replace, this notice's and the others known.
    pub waiting: usize,
    pub minutes_per_replacement: i64,
    /// Rounds of `budget` needed for everything in replacement and waiting.
    pub rounds_needed: usize,
    /// When the first round can start (now, or when the window next opens).
    pub first_start: DateTime<Utc>,
    /// When the last waiting resource is expected to start.
    pub last_start: DateTime<Utc>,
    /// The earliest latest-safe-start among the waiting resources.
    pub earliest_latest_start: DateTime<Utc>,
    /// Waiting resources expected to start after their latest safe start.
    pub late: usize,
}

/// One disruption budget and what it already holds.
#[derive(Debug, Clone)]
pub struct Budget {
    /// `group NAME` or `cluster NAME`.
    pub of: String,
    /// `MAX_REPLACEMENTS_PER_GROUP` or `MAX_REDEPLOYS_PER_CLUSTER`.
    pub var: &'static str,
    pub size: usize,
    pub in_replacement: usize,
    /// The typical duration of one replacement.
    pub per: Duration,
}

/// Forecasts one budget. `deadlines` holds one AWS deadline per waiting resource.
pub fn forecast(
    b: Budget,
    mut deadlines: Vec<DateTime<Utc>>,
    lead: Duration,
    window: &MaintenanceWindow,
    now: DateTime<Utc>,
) -> Option<Forecast> {
    let Budget {
        of: budget_of,
        var: budget_var,
        size: budget,
        in_replacement,
        per,
    } = b;
    if deadlines.is_empty() || budget == 0 {
        return None;
    }
    deadlines.sort();
    // A round starts when the window is open, or at once when the window would open only
    // after the latest safe start of the first resource of the round (the timing rule
    // then acts outside the window).
    let advance = |t: DateTime<Utc>, latest: DateTime<Utc>| {
        let open = window.next_open(t);
        if open <= latest {
            open
        } else {
            t
        }
    };
    let first_start = advance(now, deadlines[0] - lead);
    let (mut round, mut start) = (0, first_start);
    let mut late = 0;
    for (i, deadline) in deadlines.iter().enumerate() {
        let latest = *deadline - lead;
        let r = (in_replacement + i) / budget;
        while round < r {
            start = advance(start + per, latest);
            round += 1;
        }
        // Late only when the budget is why: a latest start already past is not.
        if start > latest && latest > now {
            late += 1;
        }
    }
    let last_start = start;
    Some(Forecast {
        budget_of,
        budget_var: format!("{budget_var}={budget}"),
        budget,
        in_replacement,
        waiting: deadlines.len(),
        minutes_per_replacement: per.num_minutes(),
        rounds_needed: (in_replacement + deadlines.len()).div_ceil(budget),
        first_start,
        last_start,
        earliest_latest_start: deadlines[0] - lead,
        late,
    })
}

impl Forecast {
    /// One sentence with the numbers, for a notice's text.
    pub fn sentence(&self) -> String {
        format!(
            "{}: {} waiting and {} in replacement with {} at once need {} round(s) of about {} min, inside the maintenance window from {}; the last would start about {}, and {} of them after the latest safe start (the earliest is {}).",
            self.budget_of,
            self.waiting,
            self.in_replacement,
            self.budget_var,
            self.rounds_needed,
            self.minutes_per_replacement,
            self.first_start.format("%a %d %b %H:%M UTC"),
            self.last_start.format("%a %d %b %H:%M UTC"),
            self.late,
            self.earliest_latest_start.format("%a %d %b %H:%M UTC"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Wednesday 2024-01-10 12:00 UTC.
    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap()
    }

    fn run(budget: usize, busy: usize, n: usize, deadline_in: Duration, window: &str) -> Forecast {
        forecast(
            Budget {
                of: "group `g`".into(),
                var: "MAX_REPLACEMENTS_PER_GROUP",
                size: budget,
                in_replacement: busy,
                per: Duration::hours(2),
            },
            vec![noon() + deadline_in; n],
            Duration::hours(2),
            &MaintenanceWindow::parse(window).unwrap(),
            noon(),
        )
        .unwrap()
    }

    #[test]
    fn rounds_of_the_budget_fit_before_the_latest_safe_start() {
        // Deadline in 12 h, latest start in 10 h: rounds at 0, 2, 4, 6, 8, 10 h fit six.
        let f = run(1, 0, 6, Duration::hours(12), "");
        assert_eq!((f.rounds_needed, f.late), (6, 0));
        assert_eq!(f.last_start, noon() + Duration::hours(10));
        let f = run(1, 0, 7, Duration::hours(12), "");
        assert_eq!(f.late, 1);
        let f = run(2, 0, 12, Duration::hours(12), "");
        assert_eq!((f.rounds_needed, f.late), (6, 0));
    }

    #[test]
    fn what_is_in_replacement_now_takes_the_first_slots() {
        let f = run(1, 2, 5, Duration::hours(12), "");
        assert_eq!((f.rounds_needed, f.late), (7, 1));
    }

    #[test]
    fn rounds_start_only_while_the_window_is_open_until_waiting_for_it_is_too_late() {
        // A 03:00-05:00 window daily: one 2 h round a day. Deadline in 3 days (Sat noon,
        // latest start Sat 10:00): Thu, Fri and Sat 03:00; then the next window (Sun) is
        // too late, so rounds go on outside it (the timing rule acts then): Sat 05:00,
        // 07:00, 09:00 still fit, Sat 11:00 does not.
        let f = run(1, 0, 6, Duration::days(3), "Mon-Sun 03:00-05:00");
        assert_eq!(f.late, 0);
        assert_eq!(
            f.first_start,
            Utc.with_ymd_and_hms(2024, 1, 11, 3, 0, 0).unwrap()
        );
        let f = run(1, 0, 7, Duration::days(3), "Mon-Sun 03:00-05:00");
        assert_eq!(f.late, 1);
        assert_eq!(
            f.last_start,
            Utc.with_ymd_and_hms(2024, 1, 13, 11, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_latest_start_already_past_is_not_the_budgets_fault() {
        let f = run(1, 3, 2, Duration::hours(1), "");
        assert_eq!(f.late, 0);
    }

    #[test]
    fn nothing_waiting_is_no_forecast() {
        assert!(forecast(
            Budget {
                of: "g".into(),
                var: "X",
                size: 1,
                in_replacement: 3,
                per: Duration::hours(1),
            },
            vec![],
            Duration::hours(1),
            &MaintenanceWindow::always(),
            noon()
        )
        .is_none());
    }
}
