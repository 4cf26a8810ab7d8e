//! task-retirement's knobs, read once at cold start.

use shared::config::{err, Common, ConfigError, Env};
use shared::window::MaintenanceWindow;

pub const FUNCTION: &str = "task-retirement";

#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    /// The function's own queue, where a retirement waiting for the window is sent back.
    pub queue_url: String,
    /// When replacements may start; always open when `MAINTENANCE_WINDOW` is empty.
    pub window: MaintenanceWindow,
    /// Replacement must start at least this long before AWS retires the resource: a
    /// window opening later than that is too late to wait for.
    pub lead_time_hours: i64,
    /// Treat an EC2 rebalance recommendation as the retirement of that instance.
    pub drain_on_rebalance: bool,
    /// Hosts of one Auto Scaling group in replacement at once (counted from the group:
    /// Unhealthy, Pending* or Terminating* instances); more wait in the queue.
    pub max_replacements_per_group: usize,
    /// Services of one cluster with a deployment in progress at once; more wait.
    pub max_redeploys_per_cluster: usize,
    /// How an ECS-controller service's tasks are replaced.
    pub replace: Replace,
    /// How long a retirement waiting for the budget waits before it looks again.
    pub poll_seconds: u32,
    /// How long one host replacement takes, for the budget forecast (instance-drain's
    /// default DRAIN_TIMEOUT_SECONDS: the longest a drain holds the host).
    pub host_replacement_minutes: i64,
    /// How long one service redeploy (or stop-tasks round) takes, for the forecast.
    pub redeploy_minutes: i64,
}

/// `RETIREMENT_REPLACE`: how the tasks of an ECS-controller service are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Replace {
    /// A forced new deployment (mutable image tags are resolved again).
    Redeploy,
    /// Stop the retiring tasks in batches; the service scheduler replaces them within the
    /// current deployment, with the image digests it already runs.
    StopTasks,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let window = MaintenanceWindow::parse(&env.string_or("MAINTENANCE_WINDOW", ""))
            .map_err(|e| err("MAINTENANCE_WINDOW", &e))?;
        Ok(Config {
            common: Common::from_env(FUNCTION, env)?,
            queue_url: env.required("RETIREMENT_QUEUE_URL")?,
            window,
            // Fargate gives 7 or 14 days' notice; more lead than that can never be met.
            lead_time_hours: env.number_or("LEAD_TIME_HOURS", 2, 0, 336)?,
            drain_on_rebalance: env.bool_or("DRAIN_ON_REBALANCE", false)?,
            max_replacements_per_group: env.number_or("MAX_REPLACEMENTS_PER_GROUP", 1, 1, 100)?,
            max_redeploys_per_cluster: env.number_or("MAX_REDEPLOYS_PER_CLUSTER", 2, 1, 100)?,
            replace: match env.choice_or(
                "RETIREMENT_REPLACE",
                "redeploy",
                &["redeploy", "stop-tasks"],
            )? {
                "stop-tasks" => Replace::StopTasks,
                _ => Replace::Redeploy,
            },
            // SQS caps DelaySeconds at 900.
            poll_seconds: env.number_or("RETIREMENT_POLL_SECONDS", 300, 0, 900)?,
            host_replacement_minutes: env.number_or("HOST_REPLACEMENT_MINUTES", 120, 1, 2880)?,
            redeploy_minutes: env.number_or("REDEPLOY_MINUTES", 30, 1, 2880)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing;

    const QUEUE: (&str, &str) = (
        "RETIREMENT_QUEUE_URL",
        "https://sqs.us-east-1.amazonaws.com/123456789012/q",
    );

    /// The settings from the topic, the queue and `extra`.
    fn with(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        testing::configure([QUEUE].iter().chain(extra).copied())
    }

    #[test]
    fn defaults_are_always_open_two_hours_lead_and_no_rebalance() {
        let c = with(&[]).unwrap();
        assert!(c.window.is_always());
        assert_eq!(c.lead_time_hours, 2);
        assert!(!c.drain_on_rebalance);
        assert!(!c.common.dry_run);
    }

    #[test]
    fn the_queue_url_is_required() {
        let e = testing::configure::<Config>([]).unwrap_err();
        assert_eq!(e.var, "RETIREMENT_QUEUE_URL");
    }

    #[test]
    fn a_malformed_window_fails_naming_the_variable() {
        let e = with(&[("MAINTENANCE_WINDOW", "weekends at night")]).unwrap_err();
        assert_eq!(e.var, "MAINTENANCE_WINDOW");
        assert!(with(&[("MAINTENANCE_WINDOW", "Sat,Sun 01:00-05:00")])
            .unwrap()
            .window
            .to_string()
            .contains("Sat,Sun"));
    }

    #[test]
    fn the_budget_defaults_to_one_host_per_group_and_two_redeploys_per_cluster() {
        let c = with(&[]).unwrap();
        assert_eq!(c.max_replacements_per_group, 1);
        assert_eq!(c.max_redeploys_per_cluster, 2);
        assert_eq!(c.replace, Replace::Redeploy);
        assert_eq!(c.poll_seconds, 300);
        assert_eq!((c.host_replacement_minutes, c.redeploy_minutes), (120, 30));
        assert_eq!(
            with(&[("RETIREMENT_REPLACE", "stop-tasks")])
                .unwrap()
                .replace,
            Replace::StopTasks
        );
        for (var, value) in [
            ("MAX_REPLACEMENTS_PER_GROUP", "0"),
            ("MAX_REDEPLOYS_PER_CLUSTER", "many"),
            ("RETIREMENT_REPLACE", "restart"),
            ("RETIREMENT_POLL_SECONDS", "901"),
            ("HOST_REPLACEMENT_MINUTES", "0"),
            ("REDEPLOY_MINUTES", "3000"),
        ] {
            assert_eq!(with(&[(var, value)]).unwrap_err().var, var);
        }
    }

    #[test]
    fn bad_lead_time_and_rebalance_values_are_rejected() {
        assert_eq!(
            with(&[("LEAD_TIME_HOURS", "400")]).unwrap_err().var,
            "LEAD_TIME_HOURS"
        );
        assert_eq!(
            with(&[("DRAIN_ON_REBALANCE", "sometimes")])
                .unwrap_err()
                .var,
            "DRAIN_ON_REBALANCE"
        );
    }
}
