//! The imperative shell: carries out a plan through the AWS adapters and reports every
//! action with its real outcome. In dry run, nothing that changes state is called,
//! except that a lifecycle action is released with CONTINUE at once (what the group
//! would do without ecs-autopilot) instead of being left to its timeout.

use shared::aws::autoscaling::{HookOutcome, HookResult};
use shared::events::autoscaling::LifecycleAction;
use shared::events::Envelope;
use shared::notify::{Notice, Outcome, Severity, Subject};
use shared::Result;

use crate::config::FUNCTION;
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
    let holds = plan
        .iter()
        .any(|s| matches!(s, Step::Complete { .. } | Step::Recheck { .. }));
    for step in plan {
        run(deps, target, step).await?;
    }
    if deps.reporter.dry_run() && holds {
        if let Some(lifecycle) = target.lifecycle {
            let outcome = deps
                .asg
                .complete_lifecycle_action(lifecycle, HookResult::Continue)
                .await?;
            tracing::info!(event_id = %target.event.id, outcome = ?outcome, "dry run: lifecycle action released with CONTINUE");
            shared::metrics::emit(FUNCTION, "dry-run-release", "done");
        }
    }
    Ok(())
}

async fn run(deps: &Deps, target: &Target<'_>, step: Step) -> Result<()> {
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
                deps.reporter.report(subject, action, outcome, notice).await;
            }
        }
        Step::SetActive {
            cluster,
            container_instance_arn,
        } => {
            if !dry {
                deps.ecs
                    .set_active(&cluster, &container_instance_arn)
                    .await?;
            }
            tracing::info!(event_id = %target.event.id, container_instance = %container_instance_arn, dry_run = dry, "container instance set ACTIVE");
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
                .await;
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
            deps.reporter.report(subject, action, outcome, notice).await;
        }
        Step::Recheck {
            delay_seconds,
            progress,
        } => {
            tracing::info!(event_id = %target.event.id, delay_seconds, checks = progress.checks, dry_run = dry, "will check again");
            if !dry {
                send_back(deps, target.event, &progress, delay_seconds).await?;
            }
        }
        Step::Report {
            action,
            outcome,
            notice,
        } => deps.reporter.report(subject, action, outcome, notice).await,
        Step::Quiet { action, reason } => {
            tracing::debug!(event_id = %target.event.id, action, reason = %reason, "skipped: not opted in");
            shared::metrics::emit(FUNCTION, action, "skipped");
        }
    }
    Ok(())
}

/// Sends the event back to the drain queue with `progress`, to be looked at again.
pub async fn send_back(
    deps: &Deps,
    event: &Envelope,
    progress: &crate::parse::Progress,
    delay_seconds: u32,
) -> Result<()> {
    let mut again = event.clone();
    again.carry = Some(serde_json::to_value(progress).expect("progress serializes"));
    let body = serde_json::to_string(&again).expect("an event serializes");
    deps.queue.send_later(&body, delay_seconds).await
}
