//! Adapter behaviour the emulator cannot produce, pinned with the SDK's own mocks:
//! error classification, AWS's "already done" answers, and records that a list filter
//! let through but the described record rules out.

use aws_smithy_mocks::{mock, mock_client, RuleMode};

use super::autoscaling::{AutoScaling, HookOutcome, HookResult};
use super::ecs::Ecs;
use crate::events::autoscaling::{LifecycleAction, Transition};

fn action() -> LifecycleAction {
    LifecycleAction {
        group: "web".into(),
        hook: "drain".into(),
        instance_id: "i-0aaa".into(),
        token: None,
        transition: Transition::Terminating,
    }
}

mod autoscaling {
    use super::*;
    use aws_sdk_autoscaling::error::ErrorMetadata;
    use aws_sdk_autoscaling::operation::complete_lifecycle_action::{
        CompleteLifecycleActionError, CompleteLifecycleActionOutput,
    };
    use aws_sdk_autoscaling::operation::record_lifecycle_action_heartbeat::RecordLifecycleActionHeartbeatError;
    use aws_sdk_autoscaling::Client;

    fn error(code: &str, message: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    #[tokio::test]
    async fn a_second_completion_is_treated_as_done() {
        let rule = mock!(Client::complete_lifecycle_action).then_error(|| {
            CompleteLifecycleActionError::generic(error(
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
            RecordLifecycleActionHeartbeatError::generic(error("ValidationError", "bad hook name"))
        });
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        let err = asg.record_heartbeat(&action()).await.unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(err.aws_code(), Some("ValidationError"));
    }

    #[tokio::test]
    async fn throttling_that_outlasts_the_retries_fails_as_retryable() {
        let rule = mock!(Client::record_lifecycle_action_heartbeat).then_error(|| {
            RecordLifecycleActionHeartbeatError::generic(error("Throttling", "Rate exceeded"))
        });
        let asg = AutoScaling::new(mock_client!(aws_sdk_autoscaling, [&rule]));
        let err = asg.record_heartbeat(&action()).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}

mod ecs {
    use super::*;
    use aws_sdk_ecs::operation::describe_container_instances::DescribeContainerInstancesOutput;
    use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
    use aws_sdk_ecs::operation::list_container_instances::ListContainerInstancesOutput;
    use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
    use aws_sdk_ecs::operation::update_container_instances_state::UpdateContainerInstancesStateOutput;
    use aws_sdk_ecs::types::{ContainerInstance, DesiredStatus, Failure, Task};
    use aws_sdk_ecs::Client;

    fn ci(arn: &str, ec2: &str) -> ContainerInstance {
        ContainerInstance::builder()
            .container_instance_arn(arn)
            .ec2_instance_id(ec2)
            .status("ACTIVE")
            .agent_connected(true)
            .build()
    }

    #[tokio::test]
    async fn the_described_record_decides_which_host_matches_not_the_list_filter() {
        // An emulator (or a too-broad filter) returns every instance of the cluster.
        let list = mock!(Client::list_container_instances).then_output(|| {
            ListContainerInstancesOutput::builder()
                .container_instance_arns("arn:ci/1")
                .container_instance_arns("arn:ci/2")
                .build()
        });
        let describe = mock!(Client::describe_container_instances).then_output(|| {
            DescribeContainerInstancesOutput::builder()
                .container_instances(ci("arn:ci/1", "i-0other"))
                .container_instances(ci("arn:ci/2", "i-0aaa"))
                .build()
        });
        let ecs = Ecs::new(mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&list, &describe]
        ));
        let found = ecs.find_container_instance("prod", "i-0aaa").await.unwrap();
        assert_eq!(found.unwrap().arn, "arn:ci/2");
        assert!(ecs
            .find_container_instance("prod", "i-0none")
            .await
            .unwrap()
            .is_none());
    }

    fn task(arn: &str, last: &str, desired: &str) -> Task {
        Task::builder()
            .task_arn(arn)
            .last_status(last)
            .desired_status(desired)
            .group("service:web")
            .container_instance_arn("arn:ci/1")
            .build()
    }

    fn running_stopping_and_gone() -> DescribeTasksOutput {
        DescribeTasksOutput::builder()
            .tasks(task("t-run", "RUNNING", "RUNNING"))
            .tasks(task("t-stopping", "DEACTIVATING", "STOPPED"))
            .tasks(task("t-gone", "STOPPED", "STOPPED"))
            .build()
    }

    #[tokio::test]
    async fn tasks_being_stopped_count_as_running_until_they_are_stopped() {
        let running = mock!(Client::list_tasks)
            .match_requests(|r| r.desired_status() == Some(&DesiredStatus::Running))
            .then_output(|| ListTasksOutput::builder().task_arns("t-run").build());
        let stopped = mock!(Client::list_tasks)
            .match_requests(|r| r.desired_status() == Some(&DesiredStatus::Stopped))
            .then_output(|| {
                ListTasksOutput::builder()
                    .task_arns("t-stopping")
                    .task_arns("t-gone")
                    .build()
            });
        let describe = mock!(Client::describe_tasks).then_output(running_stopping_and_gone);
        let ecs = Ecs::new(mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&running, &stopped, &describe]
        ));
        let tasks = ecs.tasks_on("prod", "arn:ci/1").await.unwrap();
        let arns: Vec<&str> = tasks.iter().map(|t| t.arn.as_str()).collect();
        assert_eq!(arns, ["t-run", "t-stopping"]);
    }

    #[tokio::test]
    async fn a_draining_host_is_listed_once_and_the_tasks_seen_before_are_described() {
        let running = mock!(Client::list_tasks)
            .match_requests(|r| r.desired_status() == Some(&DesiredStatus::Running))
            .then_output(|| ListTasksOutput::builder().task_arns("t-run").build());
        let describe = mock!(Client::describe_tasks)
            .match_requests(|r| r.tasks() == ["t-gone", "t-run", "t-stopping"])
            .then_output(running_stopping_and_gone);
        let ecs = Ecs::new(mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&running, &describe]
        ));
        let seen = ["t-stopping".to_string(), "t-gone".to_string()];
        let tasks = ecs
            .tasks_on_draining("prod", "arn:ci/1", &seen)
            .await
            .unwrap();
        let arns: Vec<&str> = tasks.iter().map(|t| t.arn.as_str()).collect();
        assert_eq!(arns, ["t-run", "t-stopping"]);
        assert_eq!(running.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_refused_state_change_is_an_error() {
        let rule = mock!(Client::update_container_instances_state).then_output(|| {
            UpdateContainerInstancesStateOutput::builder()
                .failures(Failure::builder().arn("arn:ci/1").reason("MISSING").build())
                .build()
        });
        let ecs = Ecs::new(mock_client!(aws_sdk_ecs, [&rule]));
        let err = ecs.set_draining("prod", "arn:ci/1").await.unwrap_err();
        assert_eq!(err.aws_code(), Some("MISSING"));
    }
}
