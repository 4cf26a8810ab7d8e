//! The imperative shell: carries out a plan through the AWS adapters and reports the
//! response to a finding as one notification listing every step with its real outcome.
//! In dry run, nothing that changes state is called.

use serde::Serialize;
use shared::events::Envelope;
use shared::notify::{Outcome, Subject};
use shared::{Error, Result};

use crate::decide::{Plan, Step, FINDING_TAG, QUARANTINE_TYPE_TAG};
use crate::Deps;

/// What a plan acts on.
pub struct Target<'a> {
    pub event: &'a Envelope,
    pub subject: Subject,
}

/// One step as it turned out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    pub action: &'static str,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// What the step made (snapshot ids).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub made: Vec<String>,
}

/// Runs the plan and reports it; returns the response's overall outcome (what the
/// notification says), or the error that fails the event.
pub async fn execute(deps: &Deps, target: &Target<'_>, plan: Plan) -> Result<Outcome> {
    let dry = deps.reporter.dry_run();
    tracing::info!(
        event_id = %target.event.id,
        kind = %target.subject.kind,
        dry_run = dry,
        plan = %serde_json::to_string(&plan).unwrap_or_default(),
        "decided"
    );
    let mut results = vec![];
    let mut failure = None;
    for step in &plan.steps {
        let (outcome, why, made) = match step {
            Step::Note { outcome, why, .. } => (*outcome, Some(why.clone()), vec![]),
            _ if dry => (Outcome::Planned, None, vec![]),
            _ => match run(deps, step).await {
                Ok((outcome, made)) => (outcome, None, made),
                // Evidence is worth a lot, but not the stop: a workload left running
                // because a snapshot or an isolation failed is worse than one stopped
                // without them.
                Err(e) if is_evidence(step) => (
                    Outcome::Warning,
                    Some(format!("{e}; the containment went on without it")),
                    vec![],
                ),
                Err(e) => {
                    let why = e.to_string();
                    failure = Some(e);
                    (Outcome::Failed, Some(why), vec![])
                }
            },
        };
        results.push(StepResult {
            action: step.action(),
            outcome,
            target: step.target(),
            why,
            made,
        });
        if failure.is_some() {
            break;
        }
    }
    let outcome = overall(&plan, &results);
    let mut notice = plan.notice;
    if !results.is_empty() {
        notice.description.push_str("\n\n**Actions:**");
        for r in &results {
            notice.description.push_str(&format!(
                "\n- {} {}: {}{}",
                r.action,
                r.target,
                r.outcome.as_str(),
                r.why
                    .as_deref()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            ));
        }
    }
    if let Some(e) = &failure {
        notice.title = format!("FAILED: {}", notice.title);
        notice = notice
            .detail("error", e.to_string())
            .detail("retryable", e.is_retryable())
            .next_step("The event will be retried (the steps already done are recognised as done) and, if it keeps failing, dead-lettered: finish the remaining steps by hand.");
    }
    let notice = notice
        .detail(
            "evidence_taken",
            evidence_taken(
                &plan.steps,
                &results,
                deps.config.quarantine_security_group.as_deref(),
            ),
        )
        .detail("actions", &results);
    deps.reporter
        .report(&target.subject, plan.action, outcome, notice)
        .await;
    // A notice that could not be sent is logged and counted by the reporter; only a
    // failed step fails the event.
    match failure {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

fn is_evidence(step: &Step) -> bool {
    matches!(step, Step::Isolate { .. } | Step::Snapshot { .. })
}

/// The machine-readable record of the evidence this response kept: the task described
/// before the stop, the snapshots (new or from an earlier delivery) and the isolated
/// network interfaces.
fn evidence_taken(
    steps: &[Step],
    results: &[StepResult],
    quarantine_group: Option<&str>,
) -> serde_json::Value {
    let ok = |r: &StepResult| {
        matches!(
            r.outcome,
            Outcome::Done | Outcome::AlreadyDone | Outcome::Planned
        )
    };
    let mut snapshots: Vec<String> = vec![];
    let mut isolated: Vec<String> = vec![];
    let mut group = None;
    for (step, r) in steps.iter().zip(results) {
        match step {
            Step::Snapshot { .. } if ok(r) => snapshots.extend(r.made.iter().cloned()),
            Step::Isolate {
                network_interface_id,
                security_group,
            } if ok(r) => {
                isolated.push(network_interface_id.clone());
                group = Some(security_group.clone());
            }
            // Kept by an earlier delivery: still evidence of this response.
            Step::Note {
                action: "snapshot-host",
                outcome: Outcome::AlreadyDone,
                refs,
                ..
            } => snapshots.extend(refs.iter().cloned()),
            Step::Note {
                action: "isolate-network",
                outcome: Outcome::AlreadyDone,
                refs,
                ..
            } => {
                isolated.extend(refs.iter().cloned());
                group = quarantine_group.map(str::to_string);
            }
            _ => {}
        }
    }
    let snapshot_outcome = results
        .iter()
        .find(|r| r.action == "snapshot-host")
        .map(|r| r.outcome.as_str());
    serde_json::json!({
        "task_described": results.iter().any(|r| r.action == "stop-task"),
        "snapshots": snapshots,
        "snapshot_outcome": snapshot_outcome,
        "isolated_network_interfaces": isolated,
        "quarantine_security_group": group,
    })
}

/// The response's outcome: the worst step, or the plan's own when nothing had to run.
fn overall(plan: &Plan, results: &[StepResult]) -> Outcome {
    let acted: Vec<Outcome> = plan
        .steps
        .iter()
        .zip(results)
        .filter(|(s, _)| s.changes_something())
        .map(|(_, r)| r.outcome)
        .collect();
    if results.iter().any(|r| r.outcome == Outcome::Failed) {
        Outcome::Failed
    } else if acted.is_empty() {
        plan.outcome
    } else if acted.contains(&Outcome::Planned) {
        Outcome::Planned
    } else if results.iter().any(|r| r.outcome == Outcome::Warning) {
        Outcome::Warning
    } else if acted.iter().all(|o| *o == Outcome::AlreadyDone) {
        Outcome::AlreadyDone
    } else {
        Outcome::Done
    }
}

/// Runs one state-changing step. AWS answers that mean "someone already did this"
/// (a task ECS no longer knows, an instance already out of its group) are success.
async fn run(deps: &Deps, step: &Step) -> Result<(Outcome, Vec<String>)> {
    let sent = match step {
        Step::Isolate {
            network_interface_id,
            security_group,
        } => {
            deps.ec2
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
            let description = format!(
                "ecs-autopilot guardduty-responder: evidence of {instance_id} for GuardDuty finding {finding_id}"
            );
            let ids = deps
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
            reason,
        } => deps.ecs.stop_task(cluster, task_arn, reason).await,
        Step::SetDraining {
            cluster,
            container_instance_arn,
        } => deps.ecs.set_draining(cluster, container_instance_arn).await,
        Step::TagInstance { instance_id, tags } => {
            let tags: Vec<(&str, &str)> =
                tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            deps.ec2.tag_instance(instance_id, &tags).await
        }
        Step::Protect { group, instance_id } => {
            deps.asg.protect_from_scale_in(group, instance_id).await
        }
        Step::Detach { group, instance_id } => deps.asg.detach(group, instance_id).await,
        Step::Note { outcome, .. } => return Ok((*outcome, vec![])),
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
    use crate::decide::Plan;
    use aws_sdk_autoscaling::operation::detach_instances::DetachInstancesError;
    use aws_sdk_ecs::operation::stop_task::{StopTaskError, StopTaskOutput};
    use aws_sdk_ecs::types::error::InvalidParameterException;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use shared::aws::{autoscaling::AutoScaling, ec2::Ec2, ecs::Ecs, sns::Topic};
    use shared::config::Env;
    use shared::notify::{Notice, Reporter};
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
        let config = Config::from_env(&Env::from_pairs([(
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:t",
        )]))
        .unwrap();
        let deps = Deps {
            config,
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
        (deps, published)
    }

    fn event() -> Envelope {
        Envelope::parse(
            serde_json::json!({"id": "ev", "detail-type": "GuardDuty Finding",
            "source": "aws.guardduty", "time": "2024-06-03T14:21:09Z", "detail": {}}),
        )
        .unwrap()
    }

    fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            action: "contain",
            steps,
            outcome: Outcome::Done,
            notice: Notice::info("t", "d"),
        }
    }

    fn stop() -> Step {
        Step::StopTask {
            cluster: "prod".into(),
            task_arn: "arn:task/prod/1".into(),
            reason: "r".into(),
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
        let target = Target {
            event: &event(),
            subject: Subject::default(),
        };
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
        let target = Target {
            event: &event(),
            subject: Subject::default(),
        };
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
        let target = Target {
            event: &event(),
            subject: Subject::default(),
        };
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
        let target = Target {
            event: &event(),
            subject: Subject::default(),
        };
        let kept = |action, refs: &[&str]| Step::Note {
            action,
            outcome: Outcome::AlreadyDone,
            why: "earlier".into(),
            refs: refs.iter().map(|r| r.to_string()).collect(),
        };
        let mut plan = plan(vec![
            kept("isolate-network", &["eni-1"]),
            kept("snapshot-host", &["snap-1", "snap-2"]),
        ]);
        plan.outcome = Outcome::AlreadyDone;
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
        let target = Target {
            event: &event(),
            subject: Subject::default(),
        };
        execute(&deps, &target, plan(vec![stop()])).await.unwrap();
        assert_eq!(stop_rule.num_calls(), 0);
        assert_eq!(outcome_of(&published.lock().unwrap()[0]), "planned");
    }
}
