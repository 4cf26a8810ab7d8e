//! Maintenance windows: when disruptive work (rolling a group, retiring tasks) may start.
//!
//! A window is one or more spans separated by `;`, each `DAYS HH:MM-HH:MM` in UTC:
//! `Mon-Fri 02:00-05:00`, `Sat,Sun 00:00-24:00`, `Sun 22:00-02:00` (crosses midnight, so it
//! ends Monday 02:00). An empty string means "always open". Pure and clock-free: callers
//! pass `now`, so decisions stay testable.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Timelike, Utc};

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const FULL_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const MINUTES_PER_DAY: u32 = 24 * 60;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    /// Days (Monday = 0) on which the span starts.
    days: [bool; 7],
    /// Minutes after midnight; `end` may be 1440 (24:00), and `end <= start` means the
    /// span runs into the next day.
    start: u32,
    end: u32,
}

impl Span {
    fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    fn is_open(&self, weekday: usize, minute: u32) -> bool {
        let yesterday = (weekday + 6) % 7;
        if self.crosses_midnight() {
            (self.days[weekday] && minute >= self.start)
                || (self.days[yesterday] && minute < self.end)
        } else {
            self.days[weekday] && minute >= self.start && minute < self.end
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// Empty: always open.
    spans: Vec<Span>,
}

impl MaintenanceWindow {
    pub fn always() -> Self {
        MaintenanceWindow { spans: vec![] }
    }

    pub fn is_always(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let spans = text
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_span)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MaintenanceWindow { spans })
    }

    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        if self.is_always() {
            return true;
        }
        let weekday = now.weekday().num_days_from_monday() as usize;
        let minute = now.hour() * 60 + now.minute();
        self.spans.iter().any(|s| s.is_open(weekday, minute))
    }

    /// When the window next opens: `now` if it is open.
    pub fn next_open(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        if self.is_open(now) {
            return now;
        }
        let today = now.date_naive();
        let weekday = now.weekday().num_days_from_monday() as usize;
        (0..=7i64)
            .flat_map(|offset| {
                let day = (weekday + offset as usize) % 7;
                self.spans
                    .iter()
                    .filter(move |s| s.days[day])
                    .map(move |s| (offset, s.start))
            })
            .filter_map(|(offset, start)| {
                let time = NaiveTime::from_hms_opt(start / 60, start % 60, 0)?;
                let at = Utc.from_utc_datetime(&(today + Duration::days(offset)).and_time(time));
                (at > now).then_some(at)
            })
            .min()
            // A parsed window has at least one day, so a start within 8 days exists.
            .unwrap_or(now)
    }
}

impl MaintenanceWindow {
    /// When the window next closes, if it is open now: `None` when it is closed, or
    /// never closes (always open, or spans that cover the whole week).
    pub fn closes_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_always() || !self.is_open(now) {
            return None;
        }
        // Spans are minute-granular: step to each following minute boundary.
        let start = now
            - Duration::seconds(i64::from(now.second()))
            - Duration::nanoseconds(i64::from(now.nanosecond()));
        (1..=i64::from(8 * MINUTES_PER_DAY))
            .map(|m| start + Duration::minutes(m))
            .find(|t| !self.is_open(*t))
    }

    /// Whether the window is open now and stays open for at least `margin`: work that
    /// may run that long (a refresh's next replacement, and its drain) may start.
    pub fn open_for(&self, now: DateTime<Utc>, margin: Duration) -> bool {
        self.is_open(now) && self.closes_at(now).is_none_or(|close| close > now + margin)
    }
}

impl fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_always() {
            return write!(f, "always");
        }
        let spans: Vec<String> = self
            .spans
            .iter()
            .map(|s| {
                let days: Vec<&str> = (0..7).filter(|d| s.days[*d]).map(|d| DAYS[d]).collect();
                format!(
                    "{} {:02}:{:02}-{:02}:{:02} UTC",
                    days.join(","),
                    s.start / 60,
                    s.start % 60,
                    s.end / 60,
                    s.end % 60
                )
            })
            .collect();
        write!(f, "{}", spans.join("; "))
    }
}

fn parse_span(text: &str) -> Result<Span, String> {
    let (days, times) = text.split_once(char::is_whitespace).ok_or_else(|| {
        format!("{text:?} is not `DAYS HH:MM-HH:MM` (e.g. `Mon-Fri 02:00-05:00`)")
    })?;
    let (start, end) = times
        .trim()
        .split_once('-')
        .ok_or_else(|| format!("{times:?} is not a time range `HH:MM-HH:MM`"))?;
    let start = parse_time(start, false)?;
    let end = parse_time(end, true)?;
    if start == end {
        return Err(format!("{times:?} is an empty time range"));
    }
    Ok(Span {
        days: parse_days(days)?,
        start,
        end: if end == MINUTES_PER_DAY && start == 0 {
            end
        } else {
            end % MINUTES_PER_DAY
        },
    })
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for part in text.split(',').map(str::trim) {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                // Wraps around the week: `Fri-Mon` is Fri, Sat, Sun, Mon.
                let len = (to + 7 - from) % 7;
                for n in 0..=len {
                    days[(from + n) % 7] = true;
                }
            }
            None => days[day(part)?] = true,
        }
    }
    Ok(days)
}

fn day(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| {
            let d = d.to_ascii_lowercase();
            t == d || (t.starts_with(&d) && FULL_DAYS.contains(&t.as_str()))
        })
        .ok_or_else(|| format!("{:?} is not a day (Mon, Tue, ... Sun)", text.trim()))
}

fn parse_time(text: &str, allow_24: bool) -> Result<u32, String> {
    let t = text.trim();
    let (h, m) = t
        .split_once(':')
        .ok_or_else(|| format!("{t:?} is not a time HH:MM"))?;
    let h: u32 = h
        .parse()
        .map_err(|_| format!("{t:?} is not a time HH:MM"))?;
    let m: u32 = m
        .parse()
        .map_err(|_| format!("{t:?} is not a time HH:MM"))?;
    let minutes = h * 60 + m;
    let max = if allow_24 {
        MINUTES_PER_DAY
    } else {
        MINUTES_PER_DAY - 1
    };
    if m > 59 || minutes > max {
        return Err(format!("{t:?} is not a time of day"));
    }
    Ok(minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    // 2024-01-01 is a Monday.
    #[test]
    fn weekday_hours_are_open_only_inside_the_range() {
        let w = MaintenanceWindow::parse("Mon-Fri 02:00-05:00").unwrap();
        assert!(w.is_open(at("2024-01-01T02:00:00Z")));
        assert!(w.is_open(at("2024-01-05T04:59:59Z")));
        assert!(!w.is_open(at("2024-01-01T05:00:00Z")));
        assert!(!w.is_open(at("2024-01-06T03:00:00Z")));
    }

    #[test]
    fn whole_days_use_24_00_as_the_end() {
        let w = MaintenanceWindow::parse("Sat,Sun 00:00-24:00").unwrap();
        assert!(w.is_open(at("2024-01-06T00:00:00Z")));
        assert!(w.is_open(at("2024-01-07T23:59:00Z")));
        assert!(!w.is_open(at("2024-01-08T00:00:00Z")));
    }

    #[test]
    fn a_range_past_midnight_belongs_to_the_day_it_starts() {
        let w = MaintenanceWindow::parse("Sun 22:00-02:00").unwrap();
        assert!(w.is_open(at("2024-01-07T23:00:00Z")));
        assert!(w.is_open(at("2024-01-08T01:59:00Z")));
        assert!(!w.is_open(at("2024-01-08T22:30:00Z")));
        assert!(!w.is_open(at("2024-01-06T23:00:00Z")));
    }

    #[test]
    fn day_ranges_wrap_around_the_week() {
        let w = MaintenanceWindow::parse("Fri-Mon 10:00-11:00").unwrap();
        assert!(w.is_open(at("2024-01-07T10:30:00Z")));
        assert!(w.is_open(at("2024-01-08T10:30:00Z")));
        assert!(!w.is_open(at("2024-01-09T10:30:00Z")));
    }

    #[test]
    fn next_open_is_now_when_open_else_the_next_start() {
        let w = MaintenanceWindow::parse("Mon-Fri 02:00-05:00; Sat 12:00-13:00").unwrap();
        let inside = at("2024-01-02T03:00:00Z");
        assert_eq!(w.next_open(inside), inside);
        assert_eq!(
            w.next_open(at("2024-01-02T06:00:00Z")),
            at("2024-01-03T02:00:00Z")
        );
        assert_eq!(
            w.next_open(at("2024-01-05T06:00:00Z")),
            at("2024-01-06T12:00:00Z")
        );
        assert_eq!(
            w.next_open(at("2024-01-06T13:00:00Z")),
            at("2024-01-08T02:00:00Z")
        );
    }

    #[test]
    fn the_close_is_the_first_closed_minute_and_open_for_keeps_a_margin() {
        let w = MaintenanceWindow::parse("Mon-Fri 02:00-05:00").unwrap();
        // 2024-01-01 is a Monday.
        assert_eq!(
            w.closes_at(at("2024-01-01T04:10:30Z")),
            Some(at("2024-01-01T05:00:00Z"))
        );
        assert_eq!(w.closes_at(at("2024-01-01T06:00:00Z")), None);
        assert!(w.open_for(at("2024-01-01T04:10:00Z"), Duration::minutes(30)));
        assert!(!w.open_for(at("2024-01-01T04:40:00Z"), Duration::minutes(30)));
        assert!(!w.open_for(at("2024-01-01T06:00:00Z"), Duration::minutes(0)));
        // Spans that join across midnight close only where the last one ends.
        let nights = MaintenanceWindow::parse("Mon 22:00-24:00; Tue 00:00-02:00").unwrap();
        assert_eq!(
            nights.closes_at(at("2024-01-01T23:00:00Z")),
            Some(at("2024-01-02T02:00:00Z"))
        );
        let always = MaintenanceWindow::parse("Mon-Sun 00:00-24:00").unwrap();
        assert_eq!(always.closes_at(at("2024-01-01T23:00:00Z")), None);
        assert!(always.open_for(at("2024-01-01T23:00:00Z"), Duration::hours(5)));
        assert!(
            MaintenanceWindow::always().open_for(at("2024-01-01T23:00:00Z"), Duration::hours(5))
        );
    }

    #[test]
    fn empty_means_always_open() {
        let w = MaintenanceWindow::parse("  ").unwrap();
        assert!(w.is_always());
        assert!(w.is_open(at("2024-01-02T06:00:00Z")));
        assert_eq!(w.to_string(), "always");
    }

    #[test]
    fn display_round_trips() {
        let w = MaintenanceWindow::parse("mon-wed 02:00-05:30;Sun 22:00-02:00").unwrap();
        let text = w.to_string();
        assert_eq!(text, "Mon,Tue,Wed 02:00-05:30 UTC; Sun 22:00-02:00 UTC");
        assert_eq!(
            MaintenanceWindow::parse(&text.replace(" UTC", "")).unwrap(),
            w
        );
    }

    #[test]
    fn malformed_windows_say_what_is_wrong() {
        for bad in [
            "Mon",
            "Mon 02:00",
            "Funday 02:00-03:00",
            "Mon 25:00-26:00",
            "Mon 02:60-03:00",
            "Mon 02:00-02:00",
            "Mon 24:00-02:00",
        ] {
            assert!(MaintenanceWindow::parse(bad).is_err(), "{bad}");
        }
    }
}
