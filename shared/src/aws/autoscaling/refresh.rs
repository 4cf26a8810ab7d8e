//! Instance refreshes: starting a rolling refresh (optionally to another launch
//! template version), cancelling it, and reading a group's refreshes and their status.

use aws_sdk_autoscaling::types::{
    AlarmSpecification, DesiredConfiguration, RefreshPreferences, RefreshStrategy,
    ScaleInProtectedInstances,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AutoScaling, LaunchTemplateRef};
use crate::error::{aws, Error, Result};

aws_state! {
    /// Where an instance refresh is (DescribeInstanceRefreshes' `Status`).
    RefreshStatus {
        Pending = "Pending",
        InProgress = "InProgress",
        Successful = "Successful",
        Failed = "Failed",
        Cancelling = "Cancelling",
        Cancelled = "Cancelled",
        RollbackInProgress = "RollbackInProgress",
        RollbackFailed = "RollbackFailed",
        RollbackSuccessful = "RollbackSuccessful",
        Baking = "Baking",
    }
}

impl RefreshStatus {
    /// Whether the refresh still holds the group (AWS refuses a second one).
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            Self::Pending
                | Self::InProgress
                | Self::Cancelling
                | Self::RollbackInProgress
                | Self::Baking
        )
    }
}

/// Instance refresh preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshSettings {
    /// Unset: AWS applies the group's instance maintenance policy (or its default).
    pub min_healthy_percentage: Option<i32>,
    pub max_healthy_percentage: Option<i32>,
    pub instance_warmup: Option<i32>,
    pub checkpoint_percentages: Vec<i32>,
    pub checkpoint_delay: Option<i32>,
    pub skip_matching: bool,
    pub auto_rollback: bool,
    /// `Refresh`, `Ignore` or `Wait`.
    pub scale_in_protected_instances: String,
    /// CloudWatch alarms that fail (or, with auto rollback, roll back) the refresh.
    pub rollback_alarms: Vec<String>,
    /// Seconds AWS waits after the last replacement before the refresh succeeds.
    pub bake_time: Option<i32>,
}

/// One StartInstanceRefresh: preferences, and the launch template version to
/// refresh to (none: the group's current configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshRequest {
    pub settings: RefreshSettings,
    pub desired_template: Option<LaunchTemplateRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RefreshStart {
    Started {
        refresh_id: String,
    },
    /// Another refresh is running on the group: AWS allows one at a time.
    AlreadyInProgress,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceRefresh {
    pub id: String,
    pub group: String,
    pub status: RefreshStatus,
    pub status_reason: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub percentage_complete: Option<i32>,
    pub instances_to_update: Option<i32>,
    pub desired_template: Option<LaunchTemplateRef>,
}

impl InstanceRefresh {
    /// Whether the refresh still holds the group (AWS refuses a second one).
    pub fn is_active(&self) -> bool {
        self.status.is_active()
    }
}

fn smithy_time(t: Option<&aws_sdk_autoscaling::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|d| DateTime::from_timestamp(d.secs(), d.subsec_nanos()))
}

impl AutoScaling {
    /// Starts a rolling instance refresh; a refresh already running on the group is
    /// an outcome, not an error.
    pub async fn start_instance_refresh(
        &self,
        group: &str,
        request: &RefreshRequest,
    ) -> Result<RefreshStart> {
        let s = &request.settings;
        let preferences = RefreshPreferences::builder()
            .set_min_healthy_percentage(s.min_healthy_percentage)
            .set_max_healthy_percentage(s.max_healthy_percentage)
            .set_bake_time(s.bake_time)
            .set_alarm_specification((!s.rollback_alarms.is_empty()).then(|| {
                AlarmSpecification::builder()
                    .set_alarms(Some(s.rollback_alarms.clone()))
                    .build()
            }))
            .set_instance_warmup(s.instance_warmup)
            .set_checkpoint_percentages(
                (!s.checkpoint_percentages.is_empty()).then(|| s.checkpoint_percentages.clone()),
            )
            .set_checkpoint_delay(s.checkpoint_delay)
            .skip_matching(s.skip_matching)
            .auto_rollback(s.auto_rollback)
            .scale_in_protected_instances(ScaleInProtectedInstances::from(
                s.scale_in_protected_instances.as_str(),
            ))
            .build();
        let desired = request.desired_template.as_ref().map(|t| {
            DesiredConfiguration::builder()
                .launch_template(t.to_spec())
                .build()
        });
        let sent = self
            .client
            .start_instance_refresh()
            .auto_scaling_group_name(group)
            .strategy(RefreshStrategy::Rolling)
            .preferences(preferences)
            .set_desired_configuration(desired)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "StartInstanceRefresh", e));
        match sent {
            Ok(out) => Ok(RefreshStart::Started {
                refresh_id: out.instance_refresh_id().unwrap_or_default().to_string(),
            }),
            Err(Error::Aws { code, .. }) if code == "InstanceRefreshInProgress" => {
                Ok(RefreshStart::AlreadyInProgress)
            }
            Err(e) => Err(e),
        }
    }

    /// Cancels the group's active refresh (in-flight launches and drains finish
    /// first: AWS's default `WaitForTransitioningInstances`). `false`: none was active.
    pub async fn cancel_instance_refresh(&self, group: &str) -> Result<bool> {
        let sent = self
            .client
            .cancel_instance_refresh()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "CancelInstanceRefresh", e));
        match sent {
            Ok(_) => Ok(true),
            Err(Error::Aws { code, .. }) if code == "ActiveInstanceRefreshNotFound" => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A group's refreshes, newest first: the given ids, or the latest `max`.
    pub async fn instance_refreshes(
        &self,
        group: &str,
        ids: &[String],
        max: i32,
    ) -> Result<Vec<InstanceRefresh>> {
        let out = self
            .client
            .describe_instance_refreshes()
            .auto_scaling_group_name(group)
            .set_instance_refresh_ids((!ids.is_empty()).then(|| ids.to_vec()))
            .max_records(max.clamp(1, 100))
            .send()
            .await
            .map_err(|e| aws("autoscaling", "DescribeInstanceRefreshes", e))?;
        let mut refreshes: Vec<InstanceRefresh> = out
            .instance_refreshes()
            .iter()
            .map(|r| InstanceRefresh {
                id: r.instance_refresh_id().unwrap_or_default().to_string(),
                group: r.auto_scaling_group_name().unwrap_or(group).to_string(),
                status: r.status().map(|s| s.as_str()).unwrap_or_default().into(),
                status_reason: r.status_reason().map(str::to_string),
                start_time: smithy_time(r.start_time()),
                end_time: smithy_time(r.end_time()),
                percentage_complete: r.percentage_complete(),
                instances_to_update: r.instances_to_update(),
                desired_template: r
                    .desired_configuration()
                    .and_then(|d| d.launch_template())
                    .map(LaunchTemplateRef::from_spec),
            })
            .collect();
        // AWS lists the newest first; sort anyway so callers can rely on it.
        refreshes.sort_by_key(|r| std::cmp::Reverse(r.start_time));
        Ok(refreshes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::aws_error;
    use aws_sdk_autoscaling::operation::start_instance_refresh::StartInstanceRefreshError;
    use aws_sdk_autoscaling::Client;
    use aws_smithy_mocks::{mock, mock_client};

    fn settings() -> RefreshSettings {
        RefreshSettings {
            min_healthy_percentage: None,
            max_healthy_percentage: None,
            rollback_alarms: vec![],
            bake_time: None,
            instance_warmup: None,
            checkpoint_percentages: vec![],
            checkpoint_delay: None,
            skip_matching: true,
            auto_rollback: true,
            scale_in_protected_instances: "Refresh".into(),
        }
    }

    fn refresh_error(code: &'static str) -> aws_smithy_mocks::Rule {
        mock!(Client::start_instance_refresh)
            .then_error(move || StartInstanceRefreshError::generic(aws_error(code, "m")))
    }

    #[test]
    fn statuses_that_hold_the_group_are_active() {
        let active: Vec<&str> = [
            "Pending",
            "InProgress",
            "Successful",
            "Failed",
            "Cancelling",
            "Cancelled",
            "RollbackInProgress",
            "RollbackFailed",
            "RollbackSuccessful",
            "Baking",
            "Paused",
        ]
        .into_iter()
        .filter(|s| RefreshStatus::from(*s).is_active())
        .collect();
        assert_eq!(
            active,
            [
                "Pending",
                "InProgress",
                "Cancelling",
                "RollbackInProgress",
                "Baking"
            ]
        );
        assert_eq!(RefreshStatus::from("Paused").as_str(), "Paused");
    }

    #[tokio::test]
    async fn a_refresh_already_running_is_an_outcome_not_an_error() {
        let rule = refresh_error("InstanceRefreshInProgress");
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        let request = RefreshRequest {
            settings: settings(),
            desired_template: None,
        };
        assert_eq!(
            asg.start_instance_refresh("g", &request).await.unwrap(),
            RefreshStart::AlreadyInProgress
        );
    }

    #[tokio::test]
    async fn throttled_refresh_starts_are_retryable_and_validation_errors_are_not() {
        let request = RefreshRequest {
            settings: settings(),
            desired_template: None,
        };
        let rule = refresh_error("Throttling");
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        assert!(asg
            .start_instance_refresh("g", &request)
            .await
            .unwrap_err()
            .is_retryable());
        let rule = refresh_error("ValidationError");
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        assert!(!asg
            .start_instance_refresh("g", &request)
            .await
            .unwrap_err()
            .is_retryable());
    }
}
