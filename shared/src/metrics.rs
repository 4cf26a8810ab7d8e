//! CloudWatch Embedded Metric Format: one JSON line per action and outcome on stdout,
//! which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics. Dashboards
//! and alarms need no extra code or API calls.

use serde_json::{json, Value};

pub const NAMESPACE: &str = "ecs-autopilot";

pub fn action_line(function: &str, action: &str, outcome: &str, timestamp_ms: i64) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["function", "action", "outcome"]],
                "Metrics": [{"Name": "Actions", "Unit": "Count"}]
            }]
        },
        "function": function,
        "action": action,
        "outcome": outcome,
        "Actions": 1
    })
}

/// Writes the metric line for one action outcome.
pub fn emit(function: &str, action: &str, outcome: &str) {
    let line = action_line(
        function,
        action,
        outcome,
        chrono::Utc::now().timestamp_millis(),
    );
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_declares_the_dimensions_it_carries() {
        let l = action_line("instance-drain", "drain", "done", 1);
        let dims = &l["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0];
        for d in dims.as_array().unwrap() {
            assert!(l.get(d.as_str().unwrap()).is_some());
        }
        assert_eq!(l["Actions"], 1);
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "ecs-autopilot"
        );
    }
}
