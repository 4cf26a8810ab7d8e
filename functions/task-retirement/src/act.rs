//! The imperative shell: task-retirement's steps for the shared executor
//! ([`shared::exec`]), each carried out through the AWS adapters and reported with its
//! real outcome. The executor logs the plan, keeps dry run from changing anything and
//! reports each failure; the first failure ends the plan.

use serde::Serialize;
use shared::aws::autoscaling::HealthOutcome;
use shared::aws::ecs::DeployOutcome;
use shared::events::Envelope;
use shared::exec::{action, About, DryRun, Executor, PlanStep, Ran, Report};
use shared::notify::{Notice, Outcome, Subject};
use shared::Result;

use crate::decide::{LookAgain, Redeploy, ReplaceInstance, StopTasks};
use crate::markers::{Mark, HANDLED_TAG};
use crate::{notices, Deps};

/// One step of a plan, in words (see [`crate::decide::Decision`] for what each does).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Redeploy {
        #[serde(flatten)]
        target: Redeploy,
        notice: Notice,
    },
    StopTasks {
        #[serde(flatten)]
        target: StopTasks,
        notice: Notice,
    },
    ReplaceInstance {
        #[serde(flatten)]
        target: ReplaceInstance,
        notice: Notice,
    },
    Defer {
        #[serde(flatten)]
        look: LookAgain,
        notice: Option<Notice>,
    },
    Report(Report),
    /// Leave a mark after what it records was done (a look queued, people told).
    Mark(Mark),
}

pub type Plan = Vec<Step>;

impl PlanStep for Step {
    fn action(&self) -> &'static str {
        match self {
            Step::Redeploy { .. } => action::REDEPLOY_SERVICE,
            Step::ReplaceInstance { .. } => action::REPLACE_INSTANCE,
            Step::StopTasks { .. } => action::STOP_TASKS,
            Step::Defer { look, .. } => look.action,
            Step::Report(r) => r.action,
            Step::Mark(_) => action::MARK_REPORTED,
        }
    }

    fn mutates(&self) -> bool {
        !matches!(self, Step::Report(_))
    }

    fn dry_run(self) -> DryRun<Self> {
        match self {
            Step::Redeploy { notice, .. }
            | Step::StopTasks { notice, .. }
            | Step::ReplaceInstance { notice, .. } => DryRun::Planned(Some(notice)),
            // Sent in dry run too: it changes nothing in the fleet, and the later look
            // reports what would be done in the window.
            Step::Defer { .. } => DryRun::Instead(self),
            Step::Report(_) | Step::Mark(_) => DryRun::Planned(None),
        }
    }

    fn about(&self, event: &Subject) -> Subject {
        let about = match self {
            Step::Redeploy { target, .. } => About::cluster(&target.cluster),
            Step::StopTasks { target, .. } => About::cluster(&target.cluster),
            Step::ReplaceInstance { target: t, .. } => About {
                cluster: Some(t.cluster.clone()),
                group: Some(t.group.clone()),
                instance: Some(t.instance_id.clone()),
                task: None,
            },
            Step::Defer { .. } | Step::Mark(_) => About::default(),
            Step::Report(r) => r.about.clone(),
        };
        event.narrowed(&about)
    }
}

/// Carries out the plan; a failed step is reported and fails the event.
pub async fn execute(deps: &Deps, event: &Envelope, subject: &Subject, plan: Plan) -> Result<()> {
    Executor::new(&deps.aws.reporter, deps.config.common.dry_run)
        .reporting_failures()
        .execute(subject, plan, |_, step| run(deps, event, step))
        .await
        .into_result()
}

async fn run(deps: &Deps, event: &Envelope, step: Step) -> Result<Ran> {
    Ok(match step {
        Step::Redeploy {
            target:
                Redeploy {
                    cluster,
                    service,
                    service_arn,
                    marker,
                },
            notice,
        } => match deps
            .aws
            .ecs
            .force_new_deployment(&cluster, &service)
            .await?
        {
            DeployOutcome::ServiceGone => {
                Ran::told(Outcome::AlreadyDone, notices::service_deleted(notice))
            }
            DeployOutcome::Started => mark(deps, &service_arn, &marker, notice).await,
        },
        Step::StopTasks {
            target:
                StopTasks {
                    cluster,
                    service_arn,
                    tasks,
                    last,
                    marker,
                    ..
                },
            notice,
        } => {
            for task in &tasks {
                deps.aws
                    .ecs
                    .stop_task(
                        &cluster,
                        task,
                        "ecs-autopilot task-retirement: replaced ahead of an AWS retirement",
                    )
                    .await?;
            }
            if last {
                mark(deps, &service_arn, &marker, notice).await
            } else {
                Ran::told(Outcome::Done, notice)
            }
        }
        Step::ReplaceInstance { target, notice } => {
            let outcome = match deps.aws.asg.replace_instance(&target.instance_id).await? {
                HealthOutcome::Marked => Outcome::Done,
                HealthOutcome::NotInGroup => Outcome::AlreadyDone,
            };
            Ran::told(outcome, notice)
        }
        Step::Defer {
            look:
                LookAgain {
                    action,
                    outcome,
                    until,
                    delay_seconds,
                    deferral,
                },
            notice,
        } => {
            let mut again = event.clone();
            again.carry = Some(serde_json::to_value(&deferral).expect("a deferral serializes"));
            let body = serde_json::to_string(&again).expect("an event serializes");
            deps.own.send_later(&body, delay_seconds).await?;
            tracing::info!(event_id = %event.id, %until, delay_seconds, deferrals = deferral.deferrals, budget_waits = deferral.budget_waits, action, "deferred");
            match notice {
                Some(notice) => Ran::told(outcome, notice),
                None => Ran::quiet(outcome),
            }
        }
        Step::Report(report) => report.ran(),
        Step::Mark(m) => {
            leave(deps, &m).await;
            Ran::quiet(Outcome::Done)
        }
    })
}

/// Writes a mark after what it records was done (a look queued, people told). A failure
/// is a warning, not a failed event: retrying would do it again, which the mark was only
/// there to avoid; a repeated notice then repeats it.
async fn leave(deps: &Deps, mark: &Mark) {
    if let Err(e) = put(deps, mark).await {
        tracing::warn!(error = %e, mark = %serde_json::to_string(mark).unwrap_or_default(), "could not leave the mark; a repeated notice will act or report again");
    }
}

/// Writes the tag a mark stands for.
async fn put(deps: &Deps, mark: &Mark) -> Result<()> {
    match mark {
        Mark::Ecs { arn, key, value } => deps.aws.ecs.tag_resource(arn, &[(key, value)]).await,
        Mark::Group { name, key, value } => deps.aws.asg.tag_group(name, key, value).await,
    }
}

/// Marks a redeployed service so a repeated notice does not deploy it again. The
/// deployment has started whatever happens here, so a failure to mark is a warning, not a
/// failed event: retrying the event would only deploy again.
async fn mark(deps: &Deps, service_arn: &str, marker: &str, notice: Notice) -> Ran {
    let handled = Mark::Ecs {
        arn: service_arn.to_string(),
        key: HANDLED_TAG,
        value: marker.to_string(),
    };
    match put(deps, &handled).await {
        Ok(()) => Ran::told(Outcome::Done, notice),
        Err(e) => {
            tracing::warn!(error = %e, service_arn, "could not mark the service as handled");
            Ran::told(Outcome::Warning, notices::unmarked(notice, &e))
        }
    }
}
