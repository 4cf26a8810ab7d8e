//! Auto Scaling: groups, their opt-in tags, and lifecycle actions.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::Client;
use serde::Serialize;

use crate::error::{aws, Error, Result};
use crate::events::autoscaling::LifecycleAction;

pub const CLUSTER_TAG: &str = "ecs-autopilot:cluster";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInstance {
    pub instance_id: String,
    /// InService, Terminating:Wait, Pending:Wait, ...
    pub lifecycle_state: String,
    pub health_status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub instances: Vec<GroupInstance>,
}

impl Group {
    /// The cluster a group opted in for, from its `ecs-autopilot:cluster` tag.
    pub fn cluster(&self) -> Option<&str> {
        self.tags
            .get(CLUSTER_TAG)
            .map(String::as_str)
            .filter(|c| !c.is_empty())
    }
}

fn group_of(g: &aws_sdk_autoscaling::types::AutoScalingGroup) -> Group {
    Group {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        tags: g
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        instances: g
            .instances()
            .iter()
            .map(|i| GroupInstance {
                instance_id: i.instance_id().unwrap_or_default().to_string(),
                lifecycle_state: i
                    .lifecycle_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                health_status: i.health_status().unwrap_or_default().to_string(),
            })
            .collect(),
    }
}

/// What became of a lifecycle action we tried to complete or heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookOutcome {
    Done,
    /// AWS no longer has an active action for the instance: someone (an earlier delivery
    /// of the same event, or the hook's timeout) already finished it.
    NoActiveAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookResult {
    #[serde(rename = "CONTINUE")]
    Continue,
    #[serde(rename = "ABANDON")]
    Abandon,
}

impl HookResult {
    pub fn as_str(self) -> &'static str {
        match self {
            HookResult::Continue => "CONTINUE",
            HookResult::Abandon => "ABANDON",
        }
    }
}

#[derive(Clone, Debug)]
pub struct AutoScaling {
    client: Client,
}

impl AutoScaling {
    pub fn new(client: Client) -> Self {
        AutoScaling { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn group(&self, name: &str) -> Result<Option<Group>> {
        Ok(self.described_group(name).await?.as_ref().map(group_of))
    }

    /// A group and whether Capacity Rebalancing is on for it (Auto Scaling then launches a
    /// replacement for a Spot instance with a rebalance recommendation itself).
    pub async fn group_with_capacity_rebalance(&self, name: &str) -> Result<Option<(Group, bool)>> {
        Ok(self
            .described_group(name)
            .await?
            .map(|g| (group_of(&g), g.capacity_rebalance().unwrap_or(false))))
    }

    async fn described_group(
        &self,
        name: &str,
    ) -> Result<Option<aws_sdk_autoscaling::types::AutoScalingGroup>> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "DescribeAutoScalingGroups", e))?;
        Ok(out.auto_scaling_groups().first().cloned())
    }

    /// The group an instance belongs to, if any.
    pub async fn group_of_instance(&self, instance_id: &str) -> Result<Option<String>> {
        let out = self
            .client
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "DescribeAutoScalingInstances", e))?;
        Ok(out
            .auto_scaling_instances()
            .first()
            .and_then(|i| i.auto_scaling_group_name())
            .map(str::to_string))
    }

    pub async fn complete_lifecycle_action(
        &self,
        action: &LifecycleAction,
        result: HookResult,
    ) -> Result<HookOutcome> {
        let sent = self
            .client
            .complete_lifecycle_action()
            .auto_scaling_group_name(&action.group)
            .lifecycle_hook_name(&action.hook)
            .instance_id(&action.instance_id)
            .set_lifecycle_action_token(action.token.clone())
            .lifecycle_action_result(result.as_str())
            .send()
            .await
            .map_err(|e| aws("autoscaling", "CompleteLifecycleAction", e));
        no_active_action_is_done(sent.map(|_| ()))
    }

    pub async fn record_heartbeat(&self, action: &LifecycleAction) -> Result<HookOutcome> {
        let sent = self
            .client
            .record_lifecycle_action_heartbeat()
            .auto_scaling_group_name(&action.group)
            .lifecycle_hook_name(&action.hook)
            .instance_id(&action.instance_id)
            .set_lifecycle_action_token(action.token.clone())
            .send()
            .await
            .map_err(|e| aws("autoscaling", "RecordLifecycleActionHeartbeat", e));
        no_active_action_is_done(sent.map(|_| ()))
    }
}

/// Changes to group membership and health, used by quarantine and retirement.
impl AutoScaling {
    /// Marks an instance Unhealthy so the group replaces it (through its terminate
    /// lifecycle hook, so it is drained first).
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

    /// Protects an instance from scale-in (so a quarantined host is kept).
    pub async fn protect_from_scale_in(&self, group: &str, instance_id: &str) -> Result<()> {
        self.client
            .set_instance_protection()
            .auto_scaling_group_name(group)
            .instance_ids(instance_id)
            .protected_from_scale_in(true)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "SetInstanceProtection", e))?;
        Ok(())
    }

    /// Takes an instance out of its group without terminating it; the group launches a
    /// replacement because the desired capacity is kept.
    pub async fn detach(&self, group: &str, instance_id: &str) -> Result<()> {
        self.client
            .detach_instances()
            .auto_scaling_group_name(group)
            .instance_ids(instance_id)
            .should_decrement_desired_capacity(false)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "DetachInstances", e))?;
        Ok(())
    }
}

/// Small bookkeeping on a group itself.
impl AutoScaling {
    /// Sets one tag on a group (not propagated to its instances); an existing tag with
    /// the same key is overwritten.
    pub async fn tag_group(&self, group: &str, key: &str, value: &str) -> Result<()> {
        let tag = aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(group)
            .resource_type("auto-scaling-group")
            .key(key)
            .value(value)
            .propagate_at_launch(false)
            .build();
        self.client
            .create_or_update_tags()
            .tags(tag)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "CreateOrUpdateTags", e))?;
        Ok(())
    }
}

/// AWS answers `ValidationError: No active Lifecycle Action found ...` when the action
/// was already completed or timed out; for an idempotent handler that means "done".
fn no_active_action_is_done(sent: Result<()>) -> Result<HookOutcome> {
    match sent {
        Ok(()) => Ok(HookOutcome::Done),
        Err(Error::Aws { code, message, .. })
            if code == "ValidationError" && message.contains("No active Lifecycle Action") =>
        {
            Ok(HookOutcome::NoActiveAction)
        }
        Err(e) => Err(e),
    }
}

/// What became of marking an instance Unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthOutcome {
    Marked,
    /// The group no longer manages the instance (already terminated or detached).
    NotInGroup,
}

/// Retirement: replacing an instance ahead of a scheduled AWS retirement.
impl AutoScaling {
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
mod retirement_tests {
    use super::*;
    use aws_sdk_autoscaling::error::ErrorMetadata;
    use aws_sdk_autoscaling::operation::set_instance_health::SetInstanceHealthError;
    use aws_smithy_mocks::{mock, mock_client};

    fn failing(code: &'static str, message: &'static str) -> aws_smithy_mocks::Rule {
        mock!(Client::set_instance_health).then_error(move || {
            SetInstanceHealthError::generic(
                ErrorMetadata::builder().code(code).message(message).build(),
            )
        })
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

/// AMI rollout: the launch setup of opted-in groups, and instance refreshes.
pub mod rollout {
    use std::collections::{BTreeMap, BTreeSet};

    use aws_sdk_autoscaling::types::{
        AlarmSpecification, AutoScalingGroup, DesiredConfiguration, Filter,
        LaunchTemplateSpecification, RefreshPreferences, RefreshStrategy,
        ScaleInProtectedInstances,
    };
    use chrono::{DateTime, Utc};
    use serde::Serialize;

    use super::{AutoScaling, Group, GroupInstance, CLUSTER_TAG};
    use crate::error::{aws, Error, Result};

    /// DescribeAutoScalingGroups returns at most 100 groups per page.
    const GROUPS_PER_PAGE: i32 = 100;

    /// A launch template as a group (or a refresh) refers to it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct LaunchTemplateRef {
        pub id: Option<String>,
        pub name: Option<String>,
        /// A number, `$Latest` or `$Default`; AWS reads a missing version as `$Default`.
        pub version: String,
    }

    impl LaunchTemplateRef {
        fn from_spec(spec: &LaunchTemplateSpecification) -> Self {
            LaunchTemplateRef {
                id: spec.launch_template_id().map(str::to_string),
                name: spec.launch_template_name().map(str::to_string),
                version: spec.version().unwrap_or("$Default").to_string(),
            }
        }

        /// The id, else the name: what people recognise in a notification.
        pub fn label(&self) -> &str {
            self.id
                .as_deref()
                .or(self.name.as_deref())
                .unwrap_or_default()
        }
    }

    /// How a group launches instances.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    pub enum LaunchSource {
        LaunchTemplate {
            template: LaunchTemplateRef,
        },
        /// A mixed instances policy around a launch template.
        MixedInstances {
            template: LaunchTemplateRef,
        },
        LaunchConfiguration {
            name: String,
        },
        Unknown,
    }

    /// A group as the rollout needs it: membership, tags and launch setup.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct GroupDetails {
        pub group: Group,
        pub launch: LaunchSource,
        pub desired_capacity: i32,
        /// Instances protected from scale in: a refresh with `Ignore` leaves them alone.
        pub protected: BTreeSet<String>,
        /// A mixed instances policy's overrides, in order. An override with its own
        /// launch template launches its instance type from that template, often with
        /// another AMI (arm64 next to x86_64).
        pub overrides: Vec<Override>,
        /// Instance id → instance type, as the group reports its instances.
        pub instance_types: BTreeMap<String, String>,
    }

    /// One override of a mixed instances policy.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct Override {
        /// None for an override by instance requirements (attribute-based selection).
        pub instance_type: Option<String>,
        /// Its own launch template; None: the policy's.
        pub template: Option<LaunchTemplateRef>,
    }

    fn details_of(g: &AutoScalingGroup) -> GroupDetails {
        let tags: BTreeMap<String, String> = g
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect();
        let instances = g
            .instances()
            .iter()
            .map(|i| GroupInstance {
                instance_id: i.instance_id().unwrap_or_default().to_string(),
                lifecycle_state: i
                    .lifecycle_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                health_status: i.health_status().unwrap_or_default().to_string(),
            })
            .collect();
        let mixed = g
            .mixed_instances_policy()
            .and_then(|m| m.launch_template())
            .and_then(|t| t.launch_template_specification());
        let launch = match (g.launch_template(), mixed, g.launch_configuration_name()) {
            (Some(spec), _, _) => LaunchSource::LaunchTemplate {
                template: LaunchTemplateRef::from_spec(spec),
            },
            (None, Some(spec), _) => LaunchSource::MixedInstances {
                template: LaunchTemplateRef::from_spec(spec),
            },
            (None, None, Some(name)) => LaunchSource::LaunchConfiguration {
                name: name.to_string(),
            },
            (None, None, None) => LaunchSource::Unknown,
        };
        let protected = g
            .instances()
            .iter()
            .filter(|i| i.protected_from_scale_in().unwrap_or_default())
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        let overrides = g
            .mixed_instances_policy()
            .and_then(|m| m.launch_template())
            .map(|t| t.overrides())
            .unwrap_or_default()
            .iter()
            .map(|o| Override {
                instance_type: o.instance_type().map(str::to_string),
                template: o
                    .launch_template_specification()
                    .map(LaunchTemplateRef::from_spec),
            })
            .collect();
        let instance_types = g
            .instances()
            .iter()
            .filter_map(|i| Some((i.instance_id()?.to_string(), i.instance_type()?.to_string())))
            .collect();
        GroupDetails {
            group: Group {
                name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
                tags,
                instances,
            },
            launch,
            desired_capacity: g.desired_capacity().unwrap_or_default(),
            protected,
            overrides,
            instance_types,
        }
    }

    /// Instance refresh preferences, as the rollout configures them.
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
        /// Pending, InProgress, Successful, Failed, Cancelling, Cancelled,
        /// RollbackInProgress, RollbackFailed, RollbackSuccessful, Baking.
        pub status: String,
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
            matches!(
                self.status.as_str(),
                "Pending" | "InProgress" | "Cancelling" | "RollbackInProgress" | "Baking"
            )
        }
    }

    fn smithy_time(t: Option<&aws_sdk_autoscaling::primitives::DateTime>) -> Option<DateTime<Utc>> {
        t.and_then(|d| DateTime::from_timestamp(d.secs(), d.subsec_nanos()))
    }

    impl AutoScaling {
        /// Every group carrying the `ecs-autopilot:cluster` tag, 100 per call.
        pub async fn managed_groups(&self) -> Result<Vec<GroupDetails>> {
            self.groups_tagged(CLUSTER_TAG).await
        }

        /// One group by name, with its launch setup.
        pub async fn group_details(&self, name: &str) -> Result<Option<GroupDetails>> {
            let out = self
                .client
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(name)
                .send()
                .await
                .map_err(|e| aws("autoscaling", "DescribeAutoScalingGroups", e))?;
            Ok(out.auto_scaling_groups().first().map(details_of))
        }

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
                    (!s.checkpoint_percentages.is_empty())
                        .then(|| s.checkpoint_percentages.clone()),
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
                    .launch_template(
                        LaunchTemplateSpecification::builder()
                            .set_launch_template_id(t.id.clone())
                            .set_launch_template_name(if t.id.is_some() {
                                None
                            } else {
                                t.name.clone()
                            })
                            .version(&t.version)
                            .build(),
                    )
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
                Err(Error::Aws { code, .. }) if code == "ActiveInstanceRefreshNotFound" => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        }

        /// Groups carrying tag `key` (any value), 100 per call: the few a window guard
        /// looks at, without reading every managed group.
        pub async fn groups_tagged(&self, key: &str) -> Result<Vec<GroupDetails>> {
            let filter = Filter::builder().name("tag-key").values(key).build();
            let mut pages = self
                .client
                .describe_auto_scaling_groups()
                .filters(filter)
                .max_records(GROUPS_PER_PAGE)
                .into_paginator()
                .send();
            let mut groups = vec![];
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| aws("autoscaling", "DescribeAutoScalingGroups", e))?;
                groups.extend(page.auto_scaling_groups().iter().map(details_of));
            }
            Ok(groups)
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
                    status: r
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
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
        use aws_sdk_autoscaling::error::ErrorMetadata;
        use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
        use aws_sdk_autoscaling::operation::start_instance_refresh::StartInstanceRefreshError;
        use aws_sdk_autoscaling::types::{LaunchTemplate, MixedInstancesPolicy, TagDescription};
        use aws_sdk_autoscaling::Client;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};

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
            mock!(Client::start_instance_refresh).then_error(move || {
                StartInstanceRefreshError::generic(
                    ErrorMetadata::builder().code(code).message("m").build(),
                )
            })
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

        #[tokio::test]
        async fn managed_groups_follow_next_tokens_and_read_the_launch_setup() {
            let lt = LaunchTemplateSpecification::builder()
                .launch_template_id("lt-1")
                .version("3")
                .build();
            let first = mock!(Client::describe_auto_scaling_groups)
                .match_requests(|r| r.next_token().is_none())
                .then_output(move || {
                    DescribeAutoScalingGroupsOutput::builder()
                        .auto_scaling_groups(
                            AutoScalingGroup::builder()
                                .auto_scaling_group_name("a")
                                .launch_template(lt.clone())
                                .tags(
                                    TagDescription::builder()
                                        .key(CLUSTER_TAG)
                                        .value("c")
                                        .build(),
                                )
                                .build(),
                        )
                        .next_token("page-2")
                        .build()
                });
            let second = mock!(Client::describe_auto_scaling_groups)
                .match_requests(|r| r.next_token() == Some("page-2"))
                .then_output(|| {
                    let mixed = MixedInstancesPolicy::builder()
                        .launch_template(
                            LaunchTemplate::builder()
                                .launch_template_specification(
                                    LaunchTemplateSpecification::builder()
                                        .launch_template_name("web")
                                        .build(),
                                )
                                .build(),
                        )
                        .build();
                    DescribeAutoScalingGroupsOutput::builder()
                        .auto_scaling_groups(
                            AutoScalingGroup::builder()
                                .auto_scaling_group_name("b")
                                .mixed_instances_policy(mixed)
                                .build(),
                        )
                        .auto_scaling_groups(
                            AutoScalingGroup::builder()
                                .auto_scaling_group_name("c")
                                .launch_configuration_name("old-lc")
                                .build(),
                        )
                        .build()
                });
            let asg = AutoScaling::new(mock_client!(
                aws_sdk_autoscaling,
                RuleMode::MatchAny,
                [&first, &second]
            ));
            let groups = asg.managed_groups().await.unwrap();
            assert_eq!(groups.len(), 3);
            assert_eq!(groups[0].group.cluster(), Some("c"));
            assert!(matches!(
                &groups[0].launch,
                LaunchSource::LaunchTemplate { template } if template.version == "3"
            ));
            assert!(matches!(
                &groups[1].launch,
                LaunchSource::MixedInstances { template } if template.version == "$Default"
            ));
            assert!(matches!(
                &groups[2].launch,
                LaunchSource::LaunchConfiguration { name } if name == "old-lc"
            ));
        }
    }
}
