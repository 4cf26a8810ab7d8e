//! The imperative shell: guardduty-responder's steps for the shared executor
//! (`shared::exec`), how each is carried out through the AWS adapters, and the one
//! notification that reports the response (worded by `notices`). In dry run, nothing
//! that changes state is called.

use shared::exec::{Executor, OnFailure, PlanStep, Ran, Report};
use shared::notify::{Notice, Outcome, Subject};
use shared::{Error, Result};

use crate::decide::{Plan, Step, FINDING_TAG, QUARANTINE_TYPE_TAG};
use crate::{notices, Deps};

/// One response to one finding: the decided plan with its notice (`notices::plan`),
/// reported as one notification listing every step.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub decided: Plan,
    pub notice: Notice,
}

impl PlanStep for Step {
    fn action(&self) -> &'static str {
        Step::action(self)
    }

    fn mutates(&self) -> bool {
        self.changes_something()
    }

    fn on_failure(&self) -> OnFailure {
        match self {
            // Evidence is worth a lot, but not the stop: a workload left running because
            // a snapshot or an isolation failed is worse than one stopped without them.
            Step::Isolate { .. } | Step::Snapshot { .. } => OnFailure::Tolerate,
            _ => OnFailure::Stop,
        }
    }
}

/// Runs the response and reports it in one notification; returns its overall outcome
/// (what the notification says), or the error that fails the event.
pub async fn execute(deps: &Deps, subject: &Subject, plan: Response) -> Result<Outcome> {
    let executed = Executor::new(&deps.aws.reporter, deps.config.common.dry_run)
        .execute(subject, plan.decided.steps.clone(), |_, step| {
            run(deps, step)
        })
        .await;
    let action = plan.decided.action;
    let (outcome, notice) = notices::summary(
        plan,
        &executed,
        deps.config.quarantine_security_group.as_deref(),
    );
    deps.aws
        .reporter
        .report(subject, action, outcome, notice)
        .await;
    // A notice that could not be sent is logged and counted by the reporter; only a
    // failed step fails the event.
    executed.into_result().map(|()| outcome)
}

/// Carries out one step; a note is told only in the response's one notification.
async fn run(deps: &Deps, step: Step) -> Result<Ran> {
    let (outcome, made) = call(deps, &step).await?;
    Ok(Ran::quiet(outcome).made(made))
}

/// Makes one state-changing step's call. AWS answers that mean "someone already did this"
/// (a task ECS no longer knows, an instance already out of its group) are success.
async fn call(deps: &Deps, step: &Step) -> Result<(Outcome, Vec<String>)> {
    let sent = match step {
        Step::Isolate {
            network_interface_id,
            security_group,
        } => {
            deps.aws
                .ec2
                .set_network_interface_groups(
                    network_interface_id,
                    std::slice::from_ref(security_group),
                )
                .await
        }
        Step::Snapshot {
            instance_id,
            finding_id,
            finding_type,
        } => {
            let description = notices::snapshot_description(instance_id, finding_id);
            let ids = deps
                .aws
                .ec2
                .snapshot_instance(
                    instance_id,
                    &description,
                    &[
                        (FINDING_TAG, finding_id.as_str()),
                        (QUARANTINE_TYPE_TAG, finding_type.as_str()),
                    ],
                )
                .await?;
            return Ok((Outcome::Done, ids));
        }
        Step::StopTask {
            cluster,
            task_arn,
            finding_id,
            finding_type,
        } => {
            let reason = notices::stop_reason(finding_id, finding_type);
            deps.aws.ecs.stop_task(cluster, task_arn, &reason).await
        }
        Step::SetDraining {
            cluster,
            container_instance_arn,
        } => {
            deps.aws
                .ecs
                .set_draining(cluster, container_instance_arn)
                .await
        }
        Step::TagInstance { instance_id, tags } => {
            let tags: Vec<(&str, &str)> =
                tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            deps.aws.ec2.tag_instance(instance_id, &tags).await
        }
        Step::Protect { group, instance_id } => {
            deps.aws.asg.protect_from_scale_in(group, instance_id).await
        }
        Step::Detach { group, instance_id } => deps.aws.asg.detach(group, instance_id).await,
        Step::Report(Report { notice: n, .. }) => return Ok((n.outcome(), vec![])),
    };
    match sent {
        Ok(()) => Ok((Outcome::Done, vec![])),
        Err(e) if already_done(step, &e) => Ok((Outcome::AlreadyDone, vec![])),
        Err(e) => Err(e),
    }
}

fn already_done(step: &Step, e: &Error) -> bool {
    let code = e.aws_code().unwrap_or_default();
    let message = e.aws_message().unwrap_or_default();
    match step {
        // "The referenced task was not found.": gone between our look and the stop.
        Step::StopTask { .. } => {
            code == "InvalidParameterException" && message.contains("not found")
        }
        // "The instance i-... is not part of Auto Scaling group ...": detached meanwhile.
        Step::Protect { .. } | Step::Detach { .. } => {
            code == "ValidationError" && message.contains("not part of Auto Scaling group")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::decide::{Note, Why};
    use aws_sdk_autoscaling::operation::detach_instances::DetachInstancesError;
    use aws_sdk_ecs::operation::stop_task::{StopTaskError, StopTaskOutput};
    use aws_sdk_ecs::types::error::InvalidParameterException;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use shared::aws::{autoscaling::AutoScaling, ec2::Ec2, ecs::Ecs, sns::Topic, Clients};
    use shared::notify::Reporter;
    use std::sync::{Arc, Mutex};

    /// Deps over mocked clients; every published message body lands in the returned list.
    fn deps(ecs: &[&Rule], asg: &[&Rule], dry_run: bool) -> (Deps, Arc<Mutex<Vec<String>>>) {
        let published = Arc::new(Mutex::new(vec![]));
        let sink = published.clone();
        let publish = mock!(aws_sdk_sns::Client::publish)
            .match_requests(move |r| {
                sink.lock()
                    .unwrap()
                    .push(r.message().unwrap_or_default().to_string());
                true
            })
            .then_output(|| PublishOutput::builder().message_id("m").build());
        let mut config: Config = shared::testing::config([]);
        config.common.dry_run = dry_run;
        let aws = Clients {
            ecs: Ecs::new(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, ecs)),
            asg: AutoScaling::new(mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, asg)),
            ec2: Ec2::new(mock_client!(
                aws_sdk_ec2,
                RuleMode::MatchAny,
                Vec::<&Rule>::new()
            )),
            reporter: Reporter::new(
                Topic::new(
                    mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]),
                    "arn:aws:sns:us-east-1:123456789012:t",
                ),
                "guardduty-responder",
                dry_run,
            ),
        };
        let deps = Deps {
            config,
            aws,
            own: (),
        };
        (deps, published)
    }

    fn plan(steps: Vec<Step>) -> Response {
        Response {
            decided: Plan {
                action: "contain",
                steps,
                outcome: Outcome::Done,
                why: Why::Threat,
            },
            notice: Notice::info("t", "d"),
        }
    }

    fn stop() -> Step {
        Step::StopTask {
            cluster: "prod".into(),
            task_arn: "arn:task/prod/1".into(),
            finding_id: "f".into(),
            finding_type: "t".into(),
        }
    }

    fn outcome_of(message: &str) -> String {
        let m: serde_json::Value = serde_json::from_str(message).unwrap();
        m["metadata"]["additionalContext"]["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn stopping_a_task_ecs_no_longer_knows_is_already_done() {
        let gone = mock!(aws_sdk_ecs::Client::stop_task).then_error(|| {
            StopTaskError::InvalidParameterException(
                InvalidParameterException::builder()
                    .message("The referenced task was not found.")
                    .meta(
                        aws_sdk_ecs::error::ErrorMetadata::builder()
                            .code("InvalidParameterException")
                            .message("The referenced task was not found.")
                            .build(),
                    )
                    .build(),
            )
        });
        let (deps, published) = deps(&[&gone], &[], false);
        let target = Subject::default();
        execute(&deps, &target, plan(vec![stop()])).await.unwrap();
        assert_eq!(outcome_of(&published.lock().unwrap()[0]), "already_done");
    }

    #[tokio::test]
    async fn detaching_an_instance_already_out_of_its_group_is_already_done() {
        let out = mock!(aws_sdk_autoscaling::Client::detach_instances).then_error(|| {
            DetachInstancesError::generic(
                aws_sdk_autoscaling::error::ErrorMetadata::builder()
                    .code("ValidationError")
                    .message("The instance i-1 is not part of Auto Scaling group g.")
                    .build(),
            )
        });
        let (deps, published) = deps(&[], &[&out], false);
        let target = Subject::default();
        let step = Step::Detach {
            group: "g".into(),
            instance_id: "i-1".into(),
        };
        execute(&deps, &target, plan(vec![step])).await.unwrap();
        assert_eq!(outcome_of(&published.lock().unwrap()[0]), "already_done");
    }

    #[tokio::test]
    async fn a_throttled_stop_fails_the_event_as_retryable_and_stops_the_plan() {
        let throttled = mock!(aws_sdk_ecs::Client::stop_task).then_error(|| {
            StopTaskError::generic(
                aws_sdk_ecs::error::ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let (deps, published) = deps(&[&throttled], &[], false);
        let target = Subject::default();
        let drain = Step::SetDraining {
            cluster: "prod".into(),
            container_instance_arn: "arn:ci/1".into(),
        };
        let e = execute(&deps, &target, plan(vec![stop(), drain]))
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        let published = published.lock().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(outcome_of(&published[0]), "failed");
        assert!(
            !published[0].contains("drain-host"),
            "later steps never ran"
        );
    }

    #[tokio::test]
    async fn evidence_an_earlier_delivery_kept_is_named_in_the_record() {
        let (deps, published) = deps(&[], &[], false);
        let target = Subject::default();
        let mut plan = plan(vec![
            Step::note(Note::AlreadyIsolated {
                network_interface_id: "eni-1".into(),
            }),
            Step::note(Note::AlreadySnapshotted {
                snapshots: vec!["snap-1".into(), "snap-2".into()],
            }),
        ]);
        plan.decided.outcome = Outcome::AlreadyDone;
        assert_eq!(
            execute(&deps, &target, plan).await.unwrap(),
            Outcome::AlreadyDone
        );
        let m: serde_json::Value = serde_json::from_str(&published.lock().unwrap()[0]).unwrap();
        let details: serde_json::Value = serde_json::from_str(
            m["metadata"]["additionalContext"]["details"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let taken = &details["evidence_taken"];
        assert_eq!(taken["snapshots"], serde_json::json!(["snap-1", "snap-2"]));
        assert_eq!(
            taken["isolated_network_interfaces"],
            serde_json::json!(["eni-1"])
        );
        assert_eq!(taken["snapshot_outcome"], "already_done");
    }

    #[tokio::test]
    async fn dry_run_calls_nothing_and_reports_the_plan() {
        let stop_rule =
            mock!(aws_sdk_ecs::Client::stop_task).then_output(|| StopTaskOutput::builder().build());
        let (deps, published) = deps(&[&stop_rule], &[], true);
        let target = Subject::default();
        execute(&deps, &target, plan(vec![stop()])).await.unwrap();
        assert_eq!(stop_rule.num_calls(), 0);
        assert_eq!(outcome_of(&published.lock().unwrap()[0]), "planned");
    }
}
