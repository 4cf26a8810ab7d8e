//! The imperative shell: instance-drain's steps for the shared executor
//! (`shared::exec`), and how each is carried out through the AWS adapters. In dry run,
//! a step that holds the lifecycle action (completing it, or looking again later) is
//! replaced by releasing the action with CONTINUE at once (what the group would do
//! without ecs-autopilot) instead of leaving it to its timeout.

use serde::Serialize;
use shared::aws::autoscaling::{HookOutcome, HookResult};
use shared::events::autoscaling::LifecycleAction;
use shared::events::Envelope;
use shared::exec::action::{COMPLETE_LIFECYCLE, DRAIN_HOST, REACTIVATE, RECHECK, STOP_TASK};
use shared::exec::{About, DryRun, PlanStep, Ran, Report};
use shared::notify::{Notice, Outcome, Severity, Subject};
use shared::Result;

use crate::config::FUNCTION;
use crate::parse::Progress;
use crate::Deps;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Stop new tasks landing on the host and let ECS move service tasks away.
    SetDraining {
        cluster: String,
        container_instance_arn: String,
        notice: Option<Notice>,
    },
    StopTask {
        cluster: String,
        task_arn: String,
        reason: String,
        notice: Notice,
    },
    /// Let ECS place tasks on the host again (back from a warm pool).
    SetActive {
        cluster: String,
        container_instance_arn: String,
    },
    /// Let the instance go (terminate) or in (launch), or abandon a launch.
    Complete { result: HookResult, notice: Notice },
    /// Look again after a delay, by sending the event back to our queue.
    Recheck {
        delay_seconds: u32,
        progress: Progress,
    },
    /// Only tell people (a skip, or a finding that needs no action).
    Report(Report),
    /// Not ours: a debug log line and a metric, no notification.
    Quiet {
        action: &'static str,
        reason: String,
    },
    /// Dry run's stand-in for a step that holds the lifecycle action: released with
    /// CONTINUE, and the completion it stands for (if any) reported as planned.
    Release { notice: Option<Notice> },
}

impl PlanStep for Step {
    fn action(&self) -> &'static str {
        match self {
            Step::SetDraining { .. } => DRAIN_HOST,
            Step::StopTask { .. } => STOP_TASK,
            Step::SetActive { .. } => REACTIVATE,
            Step::Complete { .. } | Step::Release { .. } => COMPLETE_LIFECYCLE,
            Step::Recheck { .. } => RECHECK,
            Step::Report(r) => r.action,
            Step::Quiet { action, .. } => action,
        }
    }

    fn mutates(&self) -> bool {
        // Release mutates only in the group's favour: it is what dry run does instead.
        !matches!(
            self,
            Step::Report(_) | Step::Quiet { .. } | Step::Release { .. }
        )
    }

    fn dry_run(self) -> DryRun<Self> {
        match self {
            Step::SetDraining { notice, .. } => DryRun::Planned(notice),
            Step::StopTask { notice, .. } => DryRun::Planned(Some(notice)),
            Step::Complete { result, notice } => DryRun::Instead(Step::Release {
                notice: Some(notice.detail("result", result)),
            }),
            Step::Recheck { .. } => DryRun::Instead(Step::Release { notice: None }),
            _ => DryRun::Planned(None),
        }
    }

    fn about(&self, event: &Subject) -> Subject {
        match self {
            Step::StopTask { task_arn, .. } => event.narrowed(&About {
                task: Some(task_arn.clone()),
                ..event.about.clone()
            }),
            _ => event.clone(),
        }
    }
}

/// What a plan acts on besides the AWS adapters.
pub struct Target<'a> {
    pub event: &'a Envelope,
    pub lifecycle: Option<&'a LifecycleAction>,
}

impl Target<'_> {
    fn lifecycle(&self) -> &LifecycleAction {
        self.lifecycle
            .expect("lifecycle steps only for lifecycle actions")
    }
}

fn finished(notice: &Notice) -> Outcome {
    if notice.severity >= Severity::Warning {
        Outcome::Warning
    } else {
        Outcome::Done
    }
}

/// Carries out one step.
pub async fn run(deps: &Deps, target: &Target<'_>, _about: Subject, step: Step) -> Result<Ran> {
    Ok(match step {
        Step::SetDraining {
            cluster,
            container_instance_arn,
            notice,
        } => {
            deps.aws
                .ecs
                .set_draining(&cluster, &container_instance_arn)
                .await?;
            Ran {
                outcome: Outcome::Done,
                notice,
                made: vec![],
            }
        }
        Step::SetActive {
            cluster,
            container_instance_arn,
        } => {
            deps.aws
                .ecs
                .set_active(&cluster, &container_instance_arn)
                .await?;
            tracing::info!(event_id = %target.event.id, container_instance = %container_instance_arn, dry_run = false, "container instance set ACTIVE");
            Ran::quiet(Outcome::Done)
        }
        Step::StopTask {
            cluster,
            task_arn,
            reason,
            notice,
        } => {
            deps.aws.ecs.stop_task(&cluster, &task_arn, &reason).await?;
            Ran::told(finished(&notice), notice)
        }
        Step::Complete { result, notice } => {
            let outcome = match deps
                .aws
                .asg
                .complete_lifecycle_action(target.lifecycle(), result)
                .await?
            {
                HookOutcome::Done => finished(&notice),
                HookOutcome::NoActiveAction => Outcome::AlreadyDone,
            };
            Ran::told(outcome, notice.detail("result", result))
        }
        Step::Recheck {
            delay_seconds,
            progress,
        } => {
            tracing::info!(event_id = %target.event.id, delay_seconds, checks = progress.checks, dry_run = false, "will check again");
            send_back(deps, target.event, &progress, delay_seconds).await?;
            Ran::quiet(Outcome::Done)
        }
        Step::Report(report) => report.ran(),
        Step::Quiet { action, reason } => {
            tracing::debug!(event_id = %target.event.id, action, reason = %reason, "skipped: not opted in");
            shared::metrics::emit(FUNCTION, action, "skipped");
            Ran::quiet(Outcome::Skipped)
        }
        Step::Release { notice } => {
            let outcome = deps
                .aws
                .asg
                .complete_lifecycle_action(target.lifecycle(), HookResult::Continue)
                .await?;
            tracing::info!(event_id = %target.event.id, outcome = ?outcome, "dry run: lifecycle action released with CONTINUE");
            shared::metrics::emit(FUNCTION, "dry-run-release", "done");
            Ran {
                outcome: Outcome::Planned,
                notice,
                made: vec![],
            }
        }
    })
}

/// Sends the event back to the drain queue with `progress`, to be looked at again.
pub async fn send_back(
    deps: &Deps,
    event: &Envelope,
    progress: &Progress,
    delay_seconds: u32,
) -> Result<()> {
    let mut again = event.clone();
    again.carry = Some(serde_json::to_value(progress).expect("progress serializes"));
    let body = serde_json::to_string(&again).expect("an event serializes");
    deps.own.send_later(&body, delay_seconds).await
}

/// Runs a plan through the shared executor; the first failure fails the event.
pub async fn execute(
    deps: &Deps,
    event: &Envelope,
    lifecycle: Option<&LifecycleAction>,
    subject: &Subject,
    plan: Vec<Step>,
) -> Result<()> {
    let target = &Target { event, lifecycle };
    shared::exec::Executor::new(&deps.aws.reporter, deps.config.common.dry_run)
        .execute(subject, plan, |about, step| run(deps, target, about, step))
        .await
        .into_result()
}
