//! ami-rollout's knobs, read once at cold start.

use shared::aws::autoscaling::rollout::RefreshSettings;
use shared::config::{err, Common, ConfigError, Env};
use shared::window::MaintenanceWindow;

pub const FUNCTION: &str = "ami-rollout";

/// The ECS-optimized Amazon Linux 2023 AMI AWS recommends, as a plain AMI id.
pub const DEFAULT_AMI_PARAMETER: &str =
    "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id";

#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    /// The parameter a group without an `ecs-autopilot:ami-parameter` tag follows.
    pub default_parameter: String,
    /// Instance refresh preferences. `skip_matching` and `auto_rollback` are what the
    /// operator allows; each group gets them only where its launch setup supports them.
    pub refresh: RefreshSettings,
    /// Groups refreshing at once, fleet-wide (refreshes started by anyone count).
    pub max_concurrent_rollouts: usize,
    /// Outside it, drift is reported but nothing is rolled.
    pub window: MaintenanceWindow,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let min_healthy = env.number_or("MIN_HEALTHY_PERCENTAGE", 90, 0, 100)?;
        let max_healthy = env.number_or("MAX_HEALTHY_PERCENTAGE", 100, 100, 200)?;
        // AWS: the gap between the two may be at most 100 percentage points.
        if max_healthy - min_healthy > 100 {
            return Err(err(
                "MAX_HEALTHY_PERCENTAGE",
                &format!(
                    "must be at most MIN_HEALTHY_PERCENTAGE + 100 ({})",
                    min_healthy + 100
                ),
            ));
        }
        let instance_warmup = match env.get("INSTANCE_WARMUP_SECONDS") {
            None => None,
            Some(_) => Some(env.number_or("INSTANCE_WARMUP_SECONDS", 0, 0, 86_400)?),
        };
        let checkpoint_percentages = checkpoints(env)?;
        let checkpoint_delay = match env.get("CHECKPOINT_DELAY_SECONDS") {
            None => None,
            Some(_) => Some(env.number_or("CHECKPOINT_DELAY_SECONDS", 3600, 0, 172_800)?),
        };
        let window = MaintenanceWindow::parse(&env.string_or("MAINTENANCE_WINDOW", ""))
            .map_err(|m| err("MAINTENANCE_WINDOW", &m))?;
        Ok(Config {
            common: Common::from_env(FUNCTION, env)?,
            default_parameter: env.string_or("DEFAULT_AMI_PARAMETER", DEFAULT_AMI_PARAMETER),
            refresh: RefreshSettings {
                min_healthy_percentage: min_healthy,
                max_healthy_percentage: max_healthy,
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
        })
    }
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

    const TOPIC: (&str, &str) = ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t");

    fn with(pairs: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut all = vec![TOPIC];
        all.extend_from_slice(pairs);
        Config::from_env(&Env::from_pairs(all))
    }

    #[test]
    fn defaults_roll_one_group_at_a_time_at_any_hour() {
        let c = with(&[]).unwrap();
        assert_eq!(c.default_parameter, DEFAULT_AMI_PARAMETER);
        assert_eq!(c.refresh.min_healthy_percentage, 90);
        assert_eq!(c.refresh.max_healthy_percentage, 100);
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
        assert!(with(&[("MAX_HEALTHY_PERCENTAGE", "150")]).is_ok());
    }

    #[test]
    fn checkpoints_must_ascend_and_always_end_at_100() {
        let c = with(&[("CHECKPOINT_PERCENTAGES", "20, 50")]).unwrap();
        assert_eq!(c.refresh.checkpoint_percentages, [20, 50, 100]);
        for bad in ["50,20", "0,50", "half", "20,20"] {
            let e = Config::from_env(&Env::from_pairs([TOPIC, ("CHECKPOINT_PERCENTAGES", bad)]))
                .unwrap_err();
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
