//! ami-rollout's knobs, read once at cold start.

use shared::aws::autoscaling::RefreshSettings;
use shared::config::{err, Common, ConfigError, Env};
use shared::window::MaintenanceWindow;

pub const FUNCTION: &str = "ami-rollout";

/// instance-drain's default DrainTimeoutSeconds (2 h), the window guard's default
/// interval (10 min) and 10 min for the launch that goes with the last replacement.
pub const DEFAULT_WINDOW_END_MARGIN: i64 = 8_400;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    /// The parameter a group without an `ecs-autopilot:ami-parameter` tag follows;
    /// empty (the default): the one AWS publishes for the ECS-optimized family and
    /// architecture of the image the group runs, and none (report only) for any other.
    pub default_parameter: String,
    /// Instance refresh preferences. `skip_matching` and `auto_rollback` are what the
    /// operator allows; each group gets them only where its launch setup supports them.
    pub refresh: RefreshSettings,
    /// Groups refreshing at once, fleet-wide (refreshes started by anyone count).
    pub max_concurrent_rollouts: usize,
    /// Outside it, drift is reported but nothing is rolled.
    pub window: MaintenanceWindow,
    /// How long before the window closes ami-rollout stops its refreshes (and starts
    /// none): a replacement in flight (its drain) still finishes after the cancel, and
    /// the window guard runs only every few minutes.
    pub window_end_margin: chrono::Duration,
    /// Hub mode: the queue a scheduled check sends one message per (account, Region) to
    /// (`FANOUT_QUEUE_URL`, required with `ACCOUNTS`).
    pub fanout_queue_url: Option<String>,
}

impl Config {
    /// Whether a refresh of ami-rollout's may replace instances now: the window is open
    /// and stays open beyond the margin.
    pub fn may_replace(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.window.open_for(now, self.window_end_margin)
    }

    /// When ami-rollout may next start replacing instances: `now` if it may now, else
    /// the next opening of the window that stays open beyond the margin (`None`: no
    /// opening in the coming weeks does).
    pub fn next_rollout_start(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let mut at = now;
        // A window repeats weekly: a few dozen openings cover every span.
        for _ in 0..64 {
            if self.may_replace(at) {
                return Some(at);
            }
            at = match self.window.closes_at(at) {
                Some(close) => self.window.next_open(close),
                None => self.window.next_open(at),
            };
        }
        None
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let (min_healthy, max_healthy) = healthy_percentages(env)?;
        let instance_warmup = optional_number(env, "INSTANCE_WARMUP_SECONDS", 0, 86_400)?;
        let checkpoint_percentages = checkpoints(env)?;
        let checkpoint_delay = optional_number(env, "CHECKPOINT_DELAY_SECONDS", 0, 172_800)?;
        let window = MaintenanceWindow::parse(&env.string_or("MAINTENANCE_WINDOW", ""))
            .map_err(|m| err("MAINTENANCE_WINDOW", &m))?;
        let window_end_margin = chrono::Duration::seconds(env.number_or(
            "WINDOW_END_MARGIN_SECONDS",
            DEFAULT_WINDOW_END_MARGIN,
            0,
            172_800,
        )?);
        let config = Config {
            common: Common::from_env(FUNCTION, env)?,
            default_parameter: env.string_or("DEFAULT_AMI_PARAMETER", ""),
            refresh: RefreshSettings {
                min_healthy_percentage: min_healthy,
                max_healthy_percentage: max_healthy,
                rollback_alarms: rollback_alarms(env)?,
                bake_time: optional_number(env, "BAKE_TIME_SECONDS", 0, 172_800)?,
                instance_warmup,
                checkpoint_percentages,
                checkpoint_delay,
                skip_matching: env.bool_or("SKIP_MATCHING", true)?,
                auto_rollback: env.bool_or("AUTO_ROLLBACK", true)?,
                scale_in_protected_instances: env
                    .choice_or(
                        "SCALE_IN_PROTECTED_INSTANCES",
                        "Refresh",
                        &["Refresh", "Ignore", "Wait"],
                    )?
                    .to_string(),
            },
            max_concurrent_rollouts: env.number_or("MAX_CONCURRENT_ROLLOUTS", 1, 1, 1000)?,
            window,
            window_end_margin,
            fanout_queue_url: env.get("FANOUT_QUEUE_URL"),
        };
        if config.common.tenancy.is_hub() && config.fanout_queue_url.is_none() {
            return Err(err(
                "FANOUT_QUEUE_URL",
                "is required with ACCOUNTS (hub mode): the scheduled check fans out through it",
            ));
        }
        if config.next_rollout_start(chrono::Utc::now()).is_none() {
            return Err(err(
                "MAINTENANCE_WINDOW",
                &format!(
                    "no span of {} is longer than WINDOW_END_MARGIN_SECONDS ({} s), so nothing would ever be rolled",
                    config.window,
                    config.window_end_margin.num_seconds()
                ),
            ));
        }
        Ok(config)
    }
}

/// A number in `min..=max`, or `None` when the variable is unset (or empty): AWS's own
/// default then applies.
fn optional_number(env: &Env, var: &str, min: i32, max: i32) -> Result<Option<i32>, ConfigError> {
    match env.get(var) {
        None => Ok(None),
        Some(_) => Ok(Some(env.number_or(var, min, min, max)?)),
    }
}

/// Both unset by default: the refresh then carries neither, and AWS applies the group's
/// own instance maintenance policy (a launch-before-terminate group keeps its capacity).
fn healthy_percentages(env: &Env) -> Result<(Option<i32>, Option<i32>), ConfigError> {
    let min = optional_number(env, "MIN_HEALTHY_PERCENTAGE", 0, 100)?;
    let max = optional_number(env, "MAX_HEALTHY_PERCENTAGE", 100, 200)?;
    match (min, max) {
        // AWS: a maximum needs a minimum, and the two may be at most 100 points apart.
        (None, Some(_)) => Err(err(
            "MAX_HEALTHY_PERCENTAGE",
            "needs MIN_HEALTHY_PERCENTAGE as well (AWS refuses a maximum without a minimum)",
        )),
        (Some(min), Some(max)) if max - min > 100 => Err(err(
            "MAX_HEALTHY_PERCENTAGE",
            &format!(
                "must be at most MIN_HEALTHY_PERCENTAGE + 100 ({})",
                min + 100
            ),
        )),
        pair => Ok(pair),
    }
}

/// CloudWatch alarm names for the refresh's AlarmSpecification (AWS takes up to 10).
fn rollback_alarms(env: &Env) -> Result<Vec<String>, ConfigError> {
    const VAR: &str = "ROLLBACK_ALARMS";
    let alarms = env.list(VAR);
    if alarms.len() > 10 {
        return Err(err(
            VAR,
            "at most 10 alarm names (AWS's limit per instance refresh)",
        ));
    }
    if let Some(bad) = alarms.iter().find(|a| a.len() > 255) {
        let start: String = bad.chars().take(20).collect();
        return Err(err(
            VAR,
            &format!("alarm name {start:?}… is longer than 255 characters"),
        ));
    }
    Ok(alarms)
}

/// Ascending percentages in 1..=100; 100 is appended when missing so a refresh with
/// checkpoints still replaces every instance.
fn checkpoints(env: &Env) -> Result<Vec<i32>, ConfigError> {
    const VAR: &str = "CHECKPOINT_PERCENTAGES";
    let mut values = vec![];
    for raw in env.list(VAR) {
        let v: i32 = raw
            .parse()
            .map_err(|_| err(VAR, &format!("{raw:?} is not a whole percentage")))?;
        if !(1..=100).contains(&v) {
            return Err(err(VAR, &format!("{v} is not between 1 and 100")));
        }
        if values.last().is_some_and(|last| *last >= v) {
            return Err(err(VAR, "percentages must be strictly ascending"));
        }
        values.push(v);
    }
    if values.last().is_some_and(|last| *last != 100) {
        values.push(100);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        shared::testing::configure(pairs.iter().copied())
    }

    #[test]
    fn defaults_roll_one_group_at_a_time_at_any_hour() {
        let c = with(&[]).unwrap();
        assert_eq!(c.default_parameter, "");
        assert_eq!(c.refresh.min_healthy_percentage, None);
        assert_eq!(c.refresh.max_healthy_percentage, None);
        assert!(c.refresh.rollback_alarms.is_empty());
        assert_eq!(c.refresh.bake_time, None);
        assert_eq!(c.refresh.instance_warmup, None);
        assert!(c.refresh.checkpoint_percentages.is_empty());
        assert!(c.refresh.skip_matching && c.refresh.auto_rollback);
        assert_eq!(c.refresh.scale_in_protected_instances, "Refresh");
        assert_eq!(c.max_concurrent_rollouts, 1);
        assert!(c.window.is_always());
    }

    #[test]
    fn max_healthy_must_be_100_to_200_and_within_100_of_min() {
        assert_eq!(
            with(&[("MAX_HEALTHY_PERCENTAGE", "99")]).unwrap_err().var,
            "MAX_HEALTHY_PERCENTAGE"
        );
        assert_eq!(
            with(&[
                ("MIN_HEALTHY_PERCENTAGE", "50"),
                ("MAX_HEALTHY_PERCENTAGE", "200")
            ])
            .unwrap_err()
            .var,
            "MAX_HEALTHY_PERCENTAGE"
        );
        assert!(with(&[
            ("MIN_HEALTHY_PERCENTAGE", "90"),
            ("MAX_HEALTHY_PERCENTAGE", "150")
        ])
        .is_ok());
        assert_eq!(
            with(&[("MAX_HEALTHY_PERCENTAGE", "150")]).unwrap_err().var,
            "MAX_HEALTHY_PERCENTAGE"
        );
        let c = with(&[("MIN_HEALTHY_PERCENTAGE", "100")]).unwrap();
        assert_eq!(
            (
                c.refresh.min_healthy_percentage,
                c.refresh.max_healthy_percentage
            ),
            (Some(100), None)
        );
    }

    #[test]
    fn rollback_alarms_and_bake_time_are_optional_and_bounded() {
        let c = with(&[
            ("ROLLBACK_ALARMS", "cpu-high, 5xx"),
            ("BAKE_TIME_SECONDS", "600"),
        ])
        .unwrap();
        assert_eq!(c.refresh.rollback_alarms, ["cpu-high", "5xx"]);
        assert_eq!(c.refresh.bake_time, Some(600));
        assert_eq!(
            with(&[("BAKE_TIME_SECONDS", "172801")]).unwrap_err().var,
            "BAKE_TIME_SECONDS"
        );
        assert_eq!(
            with(&[("ROLLBACK_ALARMS", "a,b,c,d,e,f,g,h,i,j,k")])
                .unwrap_err()
                .var,
            "ROLLBACK_ALARMS"
        );
    }

    #[test]
    fn checkpoints_must_ascend_and_always_end_at_100() {
        let c = with(&[("CHECKPOINT_PERCENTAGES", "20, 50")]).unwrap();
        assert_eq!(c.refresh.checkpoint_percentages, [20, 50, 100]);
        for bad in ["50,20", "0,50", "half", "20,20"] {
            let e = with(&[("CHECKPOINT_PERCENTAGES", bad)]).unwrap_err();
            assert_eq!(e.var, "CHECKPOINT_PERCENTAGES", "{bad}");
        }
    }

    #[test]
    fn a_bad_window_or_scale_in_choice_names_its_variable() {
        assert_eq!(
            with(&[("MAINTENANCE_WINDOW", "Funday 02:00-03:00")])
                .unwrap_err()
                .var,
            "MAINTENANCE_WINDOW"
        );
        assert_eq!(
            with(&[("SCALE_IN_PROTECTED_INSTANCES", "Kill")])
                .unwrap_err()
                .var,
            "SCALE_IN_PROTECTED_INSTANCES"
        );
        assert_eq!(
            with(&[("MAX_CONCURRENT_ROLLOUTS", "0")]).unwrap_err().var,
            "MAX_CONCURRENT_ROLLOUTS"
        );
    }
}
