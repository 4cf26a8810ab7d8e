//! CloudWatch Embedded Metric Format: one JSON line per action and outcome on stdout,
//! which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics. Dashboards
//! and alarms need no extra code or API calls.

use serde_json::{json, Value};

pub const NAMESPACE: &str = "ecs-autopilot";

pub fn action_line(function: &str, action: &str, outcome: &str, timestamp_ms: i64) -> Value {
    scoped(json!({
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
    }))
}

/// Adds the event's account and Region (see `tenancy`) to a metric line, as properties;
/// in hub mode also as a second dimension set (the first, which the alarms use, stays).
fn scoped(line: Value) -> Value {
    with_scope(line, crate::tenancy::current().as_ref())
}

fn with_scope(mut line: Value, scope: Option<&crate::tenancy::Scope>) -> Value {
    let Some(scope) = scope else {
        return line;
    };
    for (key, value) in [("account", &scope.account), ("region", &scope.region)] {
        if let Some(v) = value {
            line[key] = json!(v);
        }
    }
    if scope.hub && scope.account.is_some() && scope.region.is_some() {
        let sets = &mut line["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        let mut wider = sets[0].clone();
        if let Some(dims) = wider.as_array_mut() {
            dims.extend([json!("account"), json!("region")]);
        }
        if let Some(sets) = sets.as_array_mut() {
            sets.push(wider);
        }
    }
    line
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

/// The metric line for one look at a drain in progress: `DrainsInProgress` (1 per look;
/// a drain is looked at every `DRAIN_POLL_SECONDS`, so a minute's sum times the poll
/// over 60 is the number of drains under way) and `DrainAgeSeconds` (how long ago the
/// lifecycle action began: a stuck drain's age keeps growing on the graph).
pub fn drain_line(function: &str, age_seconds: i64, timestamp_ms: i64) -> Value {
    scoped(json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["function"]],
                "Metrics": [
                    {"Name": "DrainsInProgress", "Unit": "Count"},
                    {"Name": "DrainAgeSeconds", "Unit": "Seconds"}
                ]
            }]
        },
        "function": function,
        "DrainsInProgress": 1,
        "DrainAgeSeconds": age_seconds.max(0)
    }))
}

/// Writes the metric line for a look at a drain that began at `started_at`.
pub fn emit_drain(
    function: &str,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) {
    let age = started_at.map_or(0, |s| (now - s).num_seconds());
    println!("{}", drain_line(function, age, now.timestamp_millis()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_line_carries_both_metrics_and_never_a_negative_age() {
        let l = drain_line("instance-drain", 125, 1);
        let dims = &l["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0];
        assert_eq!(dims, &json!(["function"]));
        for m in l["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            assert!(l.get(m["Name"].as_str().unwrap()).is_some(), "{m}");
        }
        assert_eq!(
            (
                l["DrainsInProgress"].as_i64(),
                l["DrainAgeSeconds"].as_i64()
            ),
            (Some(1), Some(125))
        );
        // A clock skewed behind the event's time is no negative age.
        assert_eq!(drain_line("instance-drain", -3, 1)["DrainAgeSeconds"], 0);
    }

    #[test]
    fn hub_lines_add_an_account_and_region_dimension_set_and_keep_the_first() {
        let scope = |hub| crate::tenancy::Scope {
            account: Some("222233334444".into()),
            region: Some("eu-west-1".into()),
            member: hub,
            hub,
        };
        let single = with_scope(action_line("f", "a", "done", 1), Some(&scope(false)));
        assert_eq!(single["account"], "222233334444");
        assert_eq!(
            single["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function", "action", "outcome"]])
        );
        let hub = with_scope(drain_line("f", 3, 1), Some(&scope(true)));
        let sets = &hub["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        assert_eq!(
            sets,
            &json!([["function"], ["function", "account", "region"]])
        );
        for d in sets[1].as_array().unwrap() {
            assert!(hub.get(d.as_str().unwrap()).is_some(), "{d}");
        }
    }

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
