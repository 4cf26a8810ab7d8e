//! Configuration comes from environment variables, read once at cold start. A bad value
//! fails the cold start with a message naming the variable, rather than surfacing later
//! as a wrong action.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A source of variables: the process environment in production, a map in tests.
pub struct Env {
    lookup: Lookup,
}

impl Env {
    pub fn process() -> Self {
        Env {
            lookup: Box::new(|k| std::env::var(k).ok()),
        }
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Env {
            lookup: Box::new(move |k| map.get(k).cloned()),
        }
    }

    /// The trimmed value, with empty treated as unset.
    pub fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, var: &str) -> Result<String, ConfigError> {
        self.get(var)
            .ok_or_else(|| err(var, "is required but not set"))
    }

    pub fn string_or(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or_else(|| default.to_string())
    }

    pub fn bool_or(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(err(var, &format!("must be true or false, got {v:?}"))),
        }
    }

    /// A number within `min..=max`, `default` when unset.
    pub fn number_or<T>(&self, var: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        let value: T = raw
            .parse()
            .map_err(|_| err(var, &format!("must be a number, got {raw:?}")))?;
        if value < min || value > max {
            return Err(err(
                var,
                &format!("must be between {min} and {max}, got {value}"),
            ));
        }
        Ok(value)
    }

    /// One of `allowed` (case-insensitive), `default` when unset.
    pub fn choice_or(
        &self,
        var: &str,
        default: &'static str,
        allowed: &[&'static str],
    ) -> Result<&'static str, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(&raw))
            .copied()
            .ok_or_else(|| err(var, &format!("must be one of {allowed:?}, got {raw:?}")))
    }

    /// A comma-separated list, empty when unset.
    pub fn list(&self, var: &str) -> Vec<String> {
        self.get(var)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn err(var: &str, message: &str) -> ConfigError {
    ConfigError {
        var: var.to_string(),
        message: message.to_string(),
    }
}

/// Settings every function shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// The function's own name, used in notifications and metrics.
    pub function: &'static str,
    pub notify_topic_arn: String,
    /// Decide, log and notify the plan; change nothing.
    pub dry_run: bool,
    /// Single-account or hub mode, and how to reach member accounts.
    pub tenancy: crate::tenancy::Tenancy,
}

impl Common {
    pub fn from_env(function: &'static str, env: &Env) -> Result<Self, ConfigError> {
        let notify_topic_arn = env.required("NOTIFY_TOPIC_ARN")?;
        if !notify_topic_arn.starts_with("arn:") {
            return Err(err("NOTIFY_TOPIC_ARN", "must be an SNS topic ARN"));
        }
        Ok(Common {
            function,
            notify_topic_arn,
            dry_run: env.bool_or("DRY_RUN", false)?,
            tenancy: crate::tenancy::Tenancy::from_env(function, env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_variable() {
        let env = Env::from_pairs([("DRAIN_POLL_SECONDS", "soon"), ("DRY_RUN", "yes")]);
        let e = env
            .number_or("DRAIN_POLL_SECONDS", 30u64, 0, 900)
            .unwrap_err();
        assert_eq!(e.var, "DRAIN_POLL_SECONDS");
        assert!(e.to_string().contains("DRAIN_POLL_SECONDS"));
        assert!(env
            .bool_or("DRY_RUN", false)
            .unwrap_err()
            .message
            .contains("yes"));
    }

    #[test]
    fn numbers_out_of_range_are_rejected_and_unset_uses_default() {
        let env = Env::from_pairs([("A", "901"), ("B", " ")]);
        assert!(env.number_or("A", 30u64, 0, 900).is_err());
        assert_eq!(env.number_or("B", 30u64, 0, 900).unwrap(), 30);
    }

    #[test]
    fn choices_are_case_insensitive_and_closed() {
        let env = Env::from_pairs([("MODE", "WAIT"), ("BAD", "maybe")]);
        assert_eq!(
            env.choice_or("MODE", "stop", &["stop", "wait"]).unwrap(),
            "wait"
        );
        assert!(env.choice_or("BAD", "stop", &["stop", "wait"]).is_err());
    }

    #[test]
    fn common_requires_a_topic_arn() {
        let e = Common::from_env("f", &Env::from_pairs([("DRY_RUN", "true")])).unwrap_err();
        assert_eq!(e.var, "NOTIFY_TOPIC_ARN");
        let c = Common::from_env(
            "f",
            &Env::from_pairs([
                ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
                ("DRY_RUN", "TRUE"),
            ]),
        )
        .unwrap();
        assert!(c.dry_run);
    }
}
