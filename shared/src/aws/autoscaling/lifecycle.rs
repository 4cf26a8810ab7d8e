//! Lifecycle: the states an instance passes through in its group, and the lifecycle
//! actions a hook holds it in (completed or kept alive with heartbeats).

use serde::Serialize;

use super::AutoScaling;
use crate::error::{aws, Error, Result};
use crate::events::autoscaling::LifecycleAction;

aws_state! {
    /// Where an instance is in its group's lifecycle (DescribeAutoScalingGroups'
    /// `LifecycleState`).
    LifecycleState {
        Pending = "Pending",
        PendingWait = "Pending:Wait",
        PendingProceed = "Pending:Proceed",
        Quarantined = "Quarantined",
        InService = "InService",
        Terminating = "Terminating",
        TerminatingWait = "Terminating:Wait",
        TerminatingProceed = "Terminating:Proceed",
        Terminated = "Terminated",
        Detaching = "Detaching",
        Detached = "Detached",
        EnteringStandby = "EnteringStandby",
        Standby = "Standby",
        WarmedPending = "Warmed:Pending",
        WarmedPendingWait = "Warmed:Pending:Wait",
        WarmedPendingProceed = "Warmed:Pending:Proceed",
        WarmedTerminating = "Warmed:Terminating",
        WarmedTerminatingWait = "Warmed:Terminating:Wait",
        WarmedTerminatingProceed = "Warmed:Terminating:Proceed",
        WarmedTerminated = "Warmed:Terminated",
        WarmedStopped = "Warmed:Stopped",
        WarmedRunning = "Warmed:Running",
        WarmedHibernated = "Warmed:Hibernated",
    }
}

impl LifecycleState {
    /// Launching into the group: `Pending`, or a launch hook holding or releasing it.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            Self::Pending | Self::PendingWait | Self::PendingProceed
        )
    }

    /// On its way out of the group, or already gone.
    pub fn is_terminating(&self) -> bool {
        matches!(
            self,
            Self::Terminating | Self::TerminatingWait | Self::TerminatingProceed | Self::Terminated
        )
    }

    /// A lifecycle hook holds the instance (a `…:Wait` state, warm pool ones included).
    pub fn is_held(&self) -> bool {
        matches!(
            self,
            Self::PendingWait
                | Self::TerminatingWait
                | Self::WarmedPendingWait
                | Self::WarmedTerminatingWait
        )
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

impl AutoScaling {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::autoscaling::Transition;
    use crate::testing::{self, aws_error};
    use aws_sdk_autoscaling::operation::complete_lifecycle_action::{
        CompleteLifecycleActionError, CompleteLifecycleActionOutput,
    };
    use aws_sdk_autoscaling::operation::record_lifecycle_action_heartbeat::RecordLifecycleActionHeartbeatError;
    use aws_sdk_autoscaling::Client;
    use aws_smithy_mocks::{mock, mock_client};

    /// Without a token: the calls name the instance instead.
    fn action() -> LifecycleAction {
        LifecycleAction {
            group: "web".into(),
            token: None,
            ..testing::lifecycle_action(Transition::Terminating)
        }
    }

    #[test]
    fn states_read_and_print_as_aws_spells_them() {
        for text in [
            "InService",
            "Terminating:Wait",
            "Warmed:Pending:Wait",
            "Frozen:Wait",
        ] {
            assert_eq!(LifecycleState::from(text).to_string(), text);
        }
        assert_eq!(
            LifecycleState::from("Frozen:Wait"),
            LifecycleState::Other("Frozen:Wait".into())
        );
        assert_eq!(
            serde_json::to_value(LifecycleState::TerminatingWait).unwrap(),
            "Terminating:Wait"
        );
        assert!(LifecycleState::Terminated.is_terminating());
        assert!(LifecycleState::PendingProceed.is_pending());
        assert!(LifecycleState::WarmedTerminatingWait.is_held());
        assert!(!LifecycleState::WarmedPending.is_pending());
    }

    #[tokio::test]
    async fn a_second_completion_is_treated_as_done() {
        let rule = mock!(Client::complete_lifecycle_action).then_error(|| {
            CompleteLifecycleActionError::generic(aws_error(
                "ValidationError",
                "No active Lifecycle Action found with instance ID i-0aaa",
            ))
        });
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        let out = asg
            .complete_lifecycle_action(&action(), HookResult::Continue)
            .await
            .unwrap();
        assert_eq!(out, HookOutcome::NoActiveAction);
    }

    #[tokio::test]
    async fn completion_sends_the_result_and_instance() {
        let rule = mock!(Client::complete_lifecycle_action)
            .match_requests(|r| {
                r.lifecycle_action_result() == Some("ABANDON")
                    && r.instance_id() == Some("i-0aaa")
                    && r.auto_scaling_group_name() == Some("web")
            })
            .then_output(|| CompleteLifecycleActionOutput::builder().build());
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        let out = asg
            .complete_lifecycle_action(&action(), HookResult::Abandon)
            .await
            .unwrap();
        assert_eq!(out, HookOutcome::Done);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn other_validation_errors_fail_and_are_not_retryable() {
        let rule = mock!(Client::record_lifecycle_action_heartbeat).then_error(|| {
            RecordLifecycleActionHeartbeatError::generic(aws_error(
                "ValidationError",
                "bad hook name",
            ))
        });
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        let err = asg.record_heartbeat(&action()).await.unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(err.aws_code(), Some("ValidationError"));
    }

    #[tokio::test]
    async fn throttling_that_outlasts_the_retries_fails_as_retryable() {
        let rule = mock!(Client::record_lifecycle_action_heartbeat).then_error(|| {
            RecordLifecycleActionHeartbeatError::generic(aws_error("Throttling", "Rate exceeded"))
        });
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        let err = asg.record_heartbeat(&action()).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
