//! guardduty-responder's knobs, read once at cold start.

use shared::config::{err, Common, ConfigError, Env};

pub const FUNCTION: &str = "guardduty-responder";

#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    /// Findings below this severity are notified, never acted on.
    pub min_severity: f64,
    /// Act on sample findings too (for drills); they name resources that do not exist.
    pub act_on_sample_findings: bool,
    /// Finding type prefixes acted on; empty means every type.
    pub types_allow: Vec<String>,
    /// Finding type prefixes never acted on (wins over the allow list).
    pub types_deny: Vec<String>,
    pub exclude_services: Vec<String>,
    pub exclude_task_families: Vec<String>,
    /// A service left with fewer running tasks than this is not stopped into (except
    /// for Critical findings); 0 always stops.
    pub min_healthy_tasks: i32,
    /// Crash-loop breaker: stops per service within the window before we stop acting.
    pub max_stops_per_service: usize,
    /// ECS keeps stopped tasks for about an hour, and the stop history is read from
    /// there, so the window cannot be longer.
    pub stop_window_minutes: i64,
    pub quarantine_host: bool,
    /// Snapshot the host's EBS volumes before the task is stopped (evidence on disk).
    pub snapshot_volumes: bool,
    /// The security group a compromised workload's network interfaces are moved to
    /// before the stop; `None` leaves the network as it is.
    pub quarantine_security_group: Option<String>,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let min_severity: f64 = env.number_or("MIN_SEVERITY", 7.0, 1.0, 10.0)?;
        if !min_severity.is_finite() {
            return Err(err("MIN_SEVERITY", "must be a number between 1 and 10"));
        }
        Ok(Config {
            common: Common::from_env(FUNCTION, env)?,
            min_severity,
            act_on_sample_findings: env.bool_or("ACT_ON_SAMPLE_FINDINGS", false)?,
            types_allow: env.list("FINDING_TYPES_ALLOW"),
            types_deny: env.list("FINDING_TYPES_DENY"),
            exclude_services: env.list("ACTION_EXCLUDE_SERVICES"),
            exclude_task_families: env.list("ACTION_EXCLUDE_TASK_FAMILIES"),
            min_healthy_tasks: env.number_or("MIN_HEALTHY_TASKS", 0, 0, 10_000)?,
            max_stops_per_service: env.number_or("MAX_STOPS_PER_SERVICE", 3, 1, 100)?,
            stop_window_minutes: env.number_or("STOP_WINDOW_MINUTES", 30, 1, 60)?,
            quarantine_host: env.bool_or("QUARANTINE_HOST", true)?,
            snapshot_volumes: env.bool_or("SNAPSHOT_VOLUMES", true)?,
            quarantine_security_group: security_group(env)?,
        })
    }
}

/// `sg-` and 8 or 17 hex digits: a typo must fail the cold start, not the first
/// isolation in the middle of an incident.
fn security_group(env: &Env) -> Result<Option<String>, ConfigError> {
    let Some(sg) = env.get("QUARANTINE_SECURITY_GROUP") else {
        return Ok(None);
    };
    let hex = sg.strip_prefix("sg-").unwrap_or_default();
    if !matches!(hex.len(), 8 | 17) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(err(
            "QUARANTINE_SECURITY_GROUP",
            "must be a security group id (sg-0123456789abcdef0) or empty",
        ));
    }
    Ok(Some(sg))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: (&str, &str) = ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t");

    fn with(pairs: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut all = vec![TOPIC];
        all.extend_from_slice(pairs);
        Config::from_env(&Env::from_pairs(all))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = with(&[]).unwrap();
        assert_eq!(c.min_severity, 7.0);
        assert!(!c.act_on_sample_findings);
        assert!(c.types_allow.is_empty() && c.types_deny.is_empty());
        assert_eq!(c.min_healthy_tasks, 0);
        assert_eq!(c.max_stops_per_service, 3);
        assert_eq!(c.stop_window_minutes, 30);
        assert!(c.quarantine_host);
        assert!(c.snapshot_volumes);
        assert_eq!(c.quarantine_security_group, None);
    }

    #[test]
    fn quarantine_security_group_must_be_a_group_id() {
        let ok = with(&[("QUARANTINE_SECURITY_GROUP", "sg-0123456789abcdef0")]).unwrap();
        assert_eq!(
            ok.quarantine_security_group.as_deref(),
            Some("sg-0123456789abcdef0")
        );
        assert_eq!(
            with(&[("QUARANTINE_SECURITY_GROUP", "")])
                .unwrap()
                .quarantine_security_group,
            None
        );
        for bad in ["default", "sg-xyz", "i-0123456789abcdef0"] {
            let e = with(&[("QUARANTINE_SECURITY_GROUP", bad)]).unwrap_err();
            assert_eq!(e.var, "QUARANTINE_SECURITY_GROUP", "{bad}");
        }
    }

    #[test]
    fn a_stop_window_longer_than_ecs_remembers_stopped_tasks_is_rejected() {
        assert_eq!(
            with(&[("STOP_WINDOW_MINUTES", "61")]).unwrap_err().var,
            "STOP_WINDOW_MINUTES"
        );
    }

    #[test]
    fn severities_outside_guardduty_range_or_not_numbers_are_rejected() {
        for bad in ["0.5", "11", "NaN", "high"] {
            let e = Config::from_env(&Env::from_pairs([TOPIC, ("MIN_SEVERITY", bad)])).unwrap_err();
            assert_eq!(e.var, "MIN_SEVERITY", "{bad}");
        }
        assert_eq!(with(&[("MIN_SEVERITY", "4")]).unwrap().min_severity, 4.0);
    }

    #[test]
    fn lists_are_comma_separated_and_trimmed() {
        let c = with(&[
            (
                "FINDING_TYPES_DENY",
                "Discovery:Runtime/, DefenseEvasion:Runtime/",
            ),
            ("ACTION_EXCLUDE_SERVICES", "ci-runner"),
        ])
        .unwrap();
        assert_eq!(
            c.types_deny,
            ["Discovery:Runtime/", "DefenseEvasion:Runtime/"]
        );
        assert_eq!(c.exclude_services, ["ci-runner"]);
    }

    #[test]
    fn zero_stops_per_service_is_rejected() {
        assert_eq!(
            with(&[("MAX_STOPS_PER_SERVICE", "0")]).unwrap_err().var,
            "MAX_STOPS_PER_SERVICE"
        );
    }
}
