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

    pub async fn group(&self, name: &str) -> Result<Option<Group>> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| aws("autoscaling", "DescribeAutoScalingGroups", e))?;
        Ok(out.auto_scaling_groups().first().map(|g| Group {
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
        }))
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
