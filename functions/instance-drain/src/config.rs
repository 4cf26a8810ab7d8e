//! instance-drain's knobs, read once at cold start.

use shared::config::{Common, ConfigError, Env};

/// What to do with standalone tasks (not in a service): ECS never moves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandaloneTasks {
    /// Stop them once the grace period has passed, so the drain can finish.
    Stop,
    /// Let them run to completion (or to the drain deadline).
    Wait,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    pub queue_url: String,
    /// Delay between two checks of a drain or launch in progress.
    pub poll_seconds: u32,
    /// A drain that has not finished after this long is completed anyway (with a warning).
    pub drain_timeout_seconds: i64,
    /// A launching instance that has not joined its cluster after this long is abandoned.
    pub launch_timeout_seconds: i64,
    pub standalone_tasks: StandaloneTasks,
    pub standalone_grace_seconds: i64,
}

pub const FUNCTION: &str = "instance-drain";

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let standalone_tasks = match env.choice_or("STANDALONE_TASKS", "stop", &["stop", "wait"])? {
            "wait" => StandaloneTasks::Wait,
            _ => StandaloneTasks::Stop,
        };
        Ok(Config {
            common: Common::from_env(FUNCTION, env)?,
            queue_url: env.required("DRAIN_QUEUE_URL")?,
            poll_seconds: env.number_or("DRAIN_POLL_SECONDS", 30, 0, 900)?,
            // A lifecycle hook can be kept for at most 48 hours.
            drain_timeout_seconds: env.number_or("DRAIN_TIMEOUT_SECONDS", 7200, 60, 172_800)?,
            launch_timeout_seconds: env.number_or("LAUNCH_TIMEOUT_SECONDS", 600, 60, 7200)?,
            standalone_tasks,
            standalone_grace_seconds: env.number_or(
                "STANDALONE_TASK_GRACE_SECONDS",
                300,
                0,
                172_800,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 2] = [
        ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
        (
            "DRAIN_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        ),
    ];

    #[test]
    fn defaults_apply_when_only_resources_are_set() {
        let c = Config::from_env(&Env::from_pairs(BASE)).unwrap();
        assert_eq!(c.poll_seconds, 30);
        assert_eq!(c.drain_timeout_seconds, 7200);
        assert_eq!(c.launch_timeout_seconds, 600);
        assert_eq!(c.standalone_tasks, StandaloneTasks::Stop);
        assert!(!c.common.dry_run);
    }

    #[test]
    fn the_queue_url_is_required() {
        let e = Config::from_env(&Env::from_pairs([BASE[0]])).unwrap_err();
        assert_eq!(e.var, "DRAIN_QUEUE_URL");
    }

    #[test]
    fn a_poll_longer_than_sqs_allows_is_rejected() {
        let mut pairs = BASE.to_vec();
        pairs.push(("DRAIN_POLL_SECONDS", "901"));
        assert_eq!(
            Config::from_env(&Env::from_pairs(pairs)).unwrap_err().var,
            "DRAIN_POLL_SECONDS"
        );
    }

    #[test]
    fn a_drain_timeout_beyond_the_hooks_48_hours_is_rejected() {
        let mut pairs = BASE.to_vec();
        pairs.push(("DRAIN_TIMEOUT_SECONDS", "200000"));
        assert_eq!(
            Config::from_env(&Env::from_pairs(pairs)).unwrap_err().var,
            "DRAIN_TIMEOUT_SECONDS"
        );
    }
}
