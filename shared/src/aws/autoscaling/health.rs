//! Instance health: marking an instance Unhealthy so its group replaces it (through its
//! terminate lifecycle hook, so it is drained first).

use serde::Serialize;

use super::AutoScaling;
use crate::error::{aws, Error, Result};

/// What became of marking an instance Unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthOutcome {
    Marked,
    /// The group no longer manages the instance (already terminated or detached).
    NotInGroup,
}

impl AutoScaling {
    /// Marks an instance Unhealthy so the group replaces it.
    pub async fn set_unhealthy(&self, instance_id: &str) -> Result<()> {
        self.client
            .set_instance_health()
            .instance_id(instance_id)
            .health_status("Unhealthy")
            .should_respect_grace_period(false)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "SetInstanceHealth", e))?;
        Ok(())
    }

    /// [`AutoScaling::set_unhealthy`], where an instance the group no longer manages is
    /// an outcome rather than an error: a repeated event finds it already replaced.
    pub async fn replace_instance(&self, instance_id: &str) -> Result<HealthOutcome> {
        match self.set_unhealthy(instance_id).await {
            Ok(()) => Ok(HealthOutcome::Marked),
            Err(Error::Aws { code, message, .. })
                if code == "ValidationError" && message.contains("Instance Id not found") =>
            {
                Ok(HealthOutcome::NotInGroup)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::aws_error;
    use aws_sdk_autoscaling::operation::set_instance_health::SetInstanceHealthError;
    use aws_sdk_autoscaling::Client;
    use aws_smithy_mocks::{mock, mock_client};

    fn failing(code: &'static str, message: &'static str) -> aws_smithy_mocks::Rule {
        mock!(Client::set_instance_health)
            .then_error(move || SetInstanceHealthError::generic(aws_error(code, message)))
    }

    #[tokio::test]
    async fn an_instance_the_group_no_longer_has_counts_as_already_replaced() {
        let rule = failing(
            "ValidationError",
            "Instance Id not found - No managed instance found for instance ID: i-0aaa",
        );
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        assert_eq!(
            asg.replace_instance("i-0aaa").await.unwrap(),
            HealthOutcome::NotInGroup
        );
    }

    #[tokio::test]
    async fn throttling_while_marking_unhealthy_is_retryable_and_access_denied_is_not() {
        let rule = failing("Throttling", "Rate exceeded");
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        let e = asg.replace_instance("i-0aaa").await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        let rule = failing("AccessDenied", "not authorized");
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        assert!(!asg
            .replace_instance("i-0aaa")
            .await
            .unwrap_err()
            .is_retryable());
    }
}
