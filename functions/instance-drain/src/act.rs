//! The imperative shell: carries out a plan through the AWS adapters and reports every
//! action with its real outcome. In dry run, nothing that changes state is called.

use shared::aws::autoscaling::HookOutcome;
use shared::events::autoscaling::LifecycleAction;
use shared::events::Envelope;
use shared::notify::{Notice, Outcome, Severity, Subject};
use shared::Result;

use crate::decide::{Plan, Step};
use crate::Deps;

/// What a plan acts on.
pub struct Target<'a> {
    pub event: &'a Envelope,
    pub lifecycle: Option<&'a LifecycleAction>,
    pub subject: Subject,
}

fn finished(notice: &Notice) -> Outcome {
    if notice.severity >= Severity::Warning {
        Outcome::Warning
    } else {
        Outcome::Done
    }
}

pub async fn execute(deps: &Deps, target: &Target<'_>, plan: Plan) -> Result<()> {
    tracing::info!(
        event_id = %target.event.id,
        kind = %target.subject.kind,
        dry_run = deps.reporter.dry_run(),
        plan = %serde_json::to_string(&plan).unwrap_or_default(),
        "decided"
    );
    for step in plan {
        let action = step.action();
        match run(deps, target, step).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                deps.reporter.failure(&target.subject, action, &e).await;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Runs one step; `Ok(false)` ends the plan early.
async fn run(deps: &Deps, target: &Target<'_>, step: Step) -> Result<bool> {
    let dry = deps.reporter.dry_run();
    let subject = &target.subject;
    let action = step.action();
    match step {
        Step::SetDraining {
            cluster,
            container_instance_arn,
            notice,
        } => {
            let outcome = if dry {
                Outcome::Planned
            } else {
                deps.ecs
                    .set_draining(&cluster, &container_instance_arn)
                    .await?;
                Outcome::Done
            };
            if let Some(notice) = notice {
                deps.reporter
                    .report(subject, action, outcome, notice)
                    .await?;
            }
        }
        Step::StopTask {
            cluster,
            task_arn,
            reason,
            notice,
        } => {
            let outcome = if dry {
                Outcome::Planned
            } else {
                deps.ecs.stop_task(&cluster, &task_arn, &reason).await?;
                finished(&notice)
            };
            let subject = Subject {
                task: Some(task_arn),
                ..subject.clone()
            };
            deps.reporter
                .report(&subject, action, outcome, notice)
                .await?;
        }
        Step::Heartbeat => {
            let lifecycle = target
                .lifecycle
                .expect("heartbeat only for lifecycle actions");
            if !dry && deps.asg.record_heartbeat(lifecycle).await? == HookOutcome::NoActiveAction {
                let notice = Notice::info(
                    format!("Stopped watching {}: lifecycle action already ended", lifecycle.instance_id),
                    format!(
                        "Auto Scaling has no active lifecycle action for `{}` any more (completed by an earlier delivery, or its heartbeat timeout ran out), so there is nothing left to wait for.",
                        lifecycle.instance_id
                    ),
                );
                deps.reporter
                    .report(subject, action, Outcome::AlreadyDone, notice)
                    .await?;
                return Ok(false);
            }
        }
        Step::Complete { result, notice } => {
            let lifecycle = target
                .lifecycle
                .expect("complete only for lifecycle actions");
            let outcome = if dry {
                Outcome::Planned
            } else {
                match deps
                    .asg
                    .complete_lifecycle_action(lifecycle, result)
                    .await?
                {
                    HookOutcome::Done => finished(&notice),
                    HookOutcome::NoActiveAction => Outcome::AlreadyDone,
                }
            };
            let notice = notice.detail("result", result);
            deps.reporter
                .report(subject, action, outcome, notice)
                .await?;
        }
        Step::Recheck {
            delay_seconds,
            progress,
        } => {
            tracing::info!(event_id = %target.event.id, delay_seconds, checks = progress.checks, dry_run = dry, "will check again");
            if !dry {
                let mut again = target.event.clone();
                again.carry = Some(serde_json::to_value(&progress).expect("progress serializes"));
                let body = serde_json::to_string(&again).expect("an event serializes");
                deps.queue.send_later(&body, delay_seconds).await?;
            }
        }
        Step::Report {
            action,
            outcome,
            notice,
        } => {
            deps.reporter
                .report(subject, action, outcome, notice)
                .await?
        }
    }
    Ok(true)
}
