//! instance-drain's knobs, read once at cold start.

use shared::config::{err, Common, ConfigError, Env};

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
    /// The lifecycle hooks instance-drain owns; any other hook's action is left alone.
    pub hooks: HookNames,
}

/// `LIFECYCLE_HOOK_NAMES`: exact names, or prefixes written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookNames(Vec<String>);

impl HookNames {
    pub const DEFAULT: &'static str = "ecs-autopilot-*";
    /// The EventBridge rule in template.yaml forwards the actions of this many names
    /// (one `prefix` pattern each).
    pub const MAX: usize = 4;

    pub fn parse(items: &[String]) -> Result<Self, String> {
        if items.is_empty() {
            return Err("names no hook".into());
        }
        if items.len() > Self::MAX {
            return Err(format!(
                "names {} hooks; the EventBridge rule forwards at most {}",
                items.len(),
                Self::MAX
            ));
        }
        for item in items {
            let stem = item.strip_suffix('*').unwrap_or(item);
            if stem.is_empty() || stem.contains('*') {
                return Err(format!(
                    "{item:?}: a `*` may only end a name, after at least one character"
                ));
            }
        }
        Ok(HookNames(items.to_vec()))
    }

    /// Whether instance-drain owns the hook called `name`.
    pub fn owns(&self, name: &str) -> bool {
        self.0.iter().any(|item| match item.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == item,
        })
    }
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
            // 0 would re-check as fast as Lambda can take the message: a busy loop that
            // costs calls and throttles the account; 900 is SQS's longest delay.
            poll_seconds: env.number_or("DRAIN_POLL_SECONDS", 30, 5, 900)?,
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
            hooks: {
                let mut items = env.list("LIFECYCLE_HOOK_NAMES");
                if items.is_empty() {
                    items.push(HookNames::DEFAULT.to_string());
                }
                HookNames::parse(&items).map_err(|m| err("LIFECYCLE_HOOK_NAMES", &m))?
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing;

    const QUEUE: (&str, &str) = (
        "DRAIN_QUEUE_URL",
        "https://sqs.us-east-1.amazonaws.com/123456789012/q",
    );

    /// The settings from the topic, the queue and `extra`.
    fn with(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        testing::configure([QUEUE].iter().chain(extra).copied())
    }

    #[test]
    fn defaults_apply_when_only_resources_are_set() {
        let c = with(&[]).unwrap();
        assert_eq!(c.poll_seconds, 30);
        assert_eq!(c.drain_timeout_seconds, 7200);
        assert_eq!(c.launch_timeout_seconds, 600);
        assert_eq!(c.standalone_tasks, StandaloneTasks::Stop);
        assert!(!c.common.dry_run);
    }

    #[test]
    fn the_queue_url_is_required() {
        let e = testing::configure::<Config>([]).unwrap_err();
        assert_eq!(e.var, "DRAIN_QUEUE_URL");
    }

    #[test]
    fn a_poll_longer_than_sqs_allows_is_rejected() {
        assert_eq!(
            with(&[("DRAIN_POLL_SECONDS", "901")]).unwrap_err().var,
            "DRAIN_POLL_SECONDS"
        );
    }

    #[test]
    fn a_zero_poll_is_refused_at_cold_start() {
        assert_eq!(
            with(&[("DRAIN_POLL_SECONDS", "0")]).unwrap_err().var,
            "DRAIN_POLL_SECONDS"
        );
    }

    #[test]
    fn hook_names_default_to_the_ecs_autopilot_prefix() {
        let c = with(&[]).unwrap();
        assert!(c.hooks.owns("ecs-autopilot-drain"));
        assert!(!c.hooks.owns("ecs-managed-draining-termination-hook"));
        assert!(!c.hooks.owns("log-shipper-flush"));
    }

    #[test]
    fn hook_names_take_exact_names_and_prefixes() {
        let h = HookNames::parse(&["drain".into(), "team-a-*".into()]).unwrap();
        assert!(h.owns("drain") && !h.owns("drain-2"));
        assert!(h.owns("team-a-") && h.owns("team-a-launch") && !h.owns("team-b-launch"));
        assert!(HookNames::parse(&["*".into()]).is_err());
        assert!(HookNames::parse(&["a*b".into()]).is_err());
        let five: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        assert!(HookNames::parse(&five[..4]).is_ok());
        assert!(HookNames::parse(&five).is_err());
        assert_eq!(
            with(&[("LIFECYCLE_HOOK_NAMES", "x*y")]).unwrap_err().var,
            "LIFECYCLE_HOOK_NAMES"
        );
    }

    #[test]
    fn a_drain_timeout_beyond_the_hooks_48_hours_is_rejected() {
        assert_eq!(
            with(&[("DRAIN_TIMEOUT_SECONDS", "200000")])
                .unwrap_err()
                .var,
            "DRAIN_TIMEOUT_SECONDS"
        );
    }
}
