//! Where a cold start's time goes, for `make bench`. With `AUTOPILOT_INIT_TIMING` set,
//! the phases of the composition root are timed and one log line (`init phases`) lists
//! them just before the runtime polls for its first event. Unset, as in Lambda, a mark
//! costs one atomic load and nothing is logged.
//!
//! The phases follow every `main.rs`: tracing set up, configuration read, the SDK
//! configuration loaded, the clients built. What comes before `main` (exec, loading,
//! the tokio runtime) and after (the runtime client's first poll) is the bench's total
//! minus these.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const UNKNOWN: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static MARKS: Mutex<Vec<(&'static str, Instant)>> = Mutex::new(Vec::new());

fn on() -> bool {
    match STATE.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            let on = std::env::var_os("AUTOPILOT_INIT_TIMING").is_some_and(|v| !v.is_empty());
            STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
            on
        }
    }
}

/// Ends the phase called `phase` now (the first mark starts the clock).
pub fn mark(phase: &'static str) {
    if on() {
        if let Ok(mut marks) = MARKS.lock() {
            marks.push((phase, Instant::now()));
        }
    }
}

/// Each phase's length in microseconds, in order: the time from the previous mark.
pub fn phases(marks: &[(&'static str, Instant)]) -> Vec<(&'static str, u128)> {
    marks
        .windows(2)
        .map(|w| (w[1].0, w[1].1.duration_since(w[0].1).as_micros()))
        .collect()
}

/// Marks `phase` and logs every phase once, as a JSON object of microseconds.
pub fn report(phase: &'static str) {
    if !on() {
        return;
    }
    mark(phase);
    let Ok(mut marks) = MARKS.lock() else { return };
    if marks.is_empty() {
        return;
    }
    let timed: serde_json::Map<String, serde_json::Value> = phases(&marks)
        .into_iter()
        .map(|(name, us)| (name.to_string(), serde_json::json!(us)))
        .collect();
    marks.clear();
    tracing::info!(init_phases_us = %serde_json::Value::Object(timed), "init phases");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_phase_is_the_time_since_the_previous_mark() {
        let t0 = Instant::now();
        let marks = [
            ("start", t0),
            ("tracing", t0 + Duration::from_micros(300)),
            ("config", t0 + Duration::from_micros(350)),
            ("aws_config", t0 + Duration::from_micros(2350)),
        ];
        assert_eq!(
            phases(&marks),
            vec![("tracing", 300), ("config", 50), ("aws_config", 2000)]
        );
        assert!(phases(&marks[..1]).is_empty());
    }
}
