//! The imperative shell: carries out a plan through the AWS adapters and reports every
//! action with its real outcome. In dry run, nothing that changes the fleet is called.

use shared::aws::autoscaling::HealthOutcome;
use shared::aws::ecs::DeployOutcome;
use shared::events::Envelope;
use shared::notify::{Notice, Outcome, Subject};
use shared::Result;

use crate::decide::{Mark, Plan, Scope, Step, HANDLED_TAG};
use crate::Deps;

pub async fn execute(deps: &Deps, event: &Envelope, subject: &Subject, plan: Plan) -> Result<()> {
    tracing::info!(
        event_id = %event.id,
        kind = %subject.kind,
        dry_run = deps.reporter.dry_run(),
        plan = %serde_json::to_string(&plan).unwrap_or_default(),
        "decided"
    );
    for step in plan {
        let action = step.action();
        let scoped = scoped(subject, &step);
        if let Err(e) = run(deps, event, &scoped, step).await {
            deps.reporter.failure(&scoped, action, &e).await;
            return Err(e);
        }
    }
    Ok(())
}

/// The event's subject narrowed to what the step is about.
fn scoped(subject: &Subject, step: &Step) -> Subject {
    let scope = match step {
        Step::Redeploy { cluster, .. } => Scope {
            cluster: Some(cluster.clone()),
            ..Scope::default()
        },
        Step::ReplaceInstance {
            instance_id,
            group,
            cluster,
            ..
        } => Scope {
            cluster: Some(cluster.clone()),
            group: Some(group.clone()),
            instance: Some(instance_id.clone()),
            task: None,
        },
        Step::StopTasks { cluster, .. } => Scope {
            cluster: Some(cluster.clone()),
            ..Scope::default()
        },
        Step::Defer { .. } => Scope::default(),
        Step::Report { scope, .. } => scope.clone(),
    };
    Subject {
        cluster: scope.cluster,
        group: scope.group,
        instance: scope.instance,
        task: scope.task,
        ..subject.clone()
    }
}

async fn run(deps: &Deps, event: &Envelope, subject: &Subject, step: Step) -> Result<()> {
    let dry = deps.reporter.dry_run();
    let action = step.action();
    match step {
        Step::Redeploy {
            cluster,
            service,
            service_arn,
            marker,
            notice,
        } => {
            let (outcome, notice) = if dry {
                (Outcome::Planned, notice)
            } else {
                match deps.ecs.force_new_deployment(&cluster, &service).await? {
                    DeployOutcome::ServiceGone => (
                        Outcome::AlreadyDone,
                        notice.detail(
                            "note",
                            "the service was deleted meanwhile; its tasks are gone",
                        ),
                    ),
                    DeployOutcome::Started => mark(deps, &service_arn, &marker, notice).await,
                }
            };
            deps.reporter.report(subject, action, outcome, notice).await;
        }
        Step::StopTasks {
            cluster,
            service_arn,
            tasks,
            last,
            marker,
            notice,
            ..
        } => {
            let (outcome, notice) = if dry {
                (Outcome::Planned, notice)
            } else {
                for task in &tasks {
                    deps.ecs
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
                    (Outcome::Done, notice)
                }
            };
            deps.reporter.report(subject, action, outcome, notice).await;
        }
        Step::ReplaceInstance {
            instance_id,
            notice,
            ..
        } => {
            let outcome = if dry {
                Outcome::Planned
            } else {
                match deps.asg.replace_instance(&instance_id).await? {
                    HealthOutcome::Marked => Outcome::Done,
                    HealthOutcome::NotInGroup => Outcome::AlreadyDone,
                }
            };
            deps.reporter.report(subject, action, outcome, notice).await;
        }
        Step::Defer {
            outcome,
            until,
            delay_seconds,
            deferral,
            notice,
            marks,
            ..
        } => {
            // Sent in dry run too: it changes nothing in the fleet, and the later look
            // reports what would be done in the window.
            let mut again = event.clone();
            again.carry = Some(serde_json::to_value(&deferral).expect("a deferral serializes"));
            let body = serde_json::to_string(&again).expect("an event serializes");
            deps.queue.send_later(&body, delay_seconds).await?;
            tracing::info!(event_id = %event.id, %until, delay_seconds, deferrals = deferral.deferrals, budget_waits = deferral.budget_waits, action, "deferred");
            if let Some(notice) = notice {
                deps.reporter.report(subject, action, outcome, notice).await;
            }
            if !dry {
                for m in &marks {
                    leave(deps, m).await;
                }
            }
        }
        Step::Report {
            outcome,
            notice,
            mark,
            ..
        } => {
            deps.reporter.report(subject, action, outcome, notice).await;
            if let Some(m) = mark.filter(|_| !dry) {
                leave(deps, &m).await;
            }
        }
    }
    Ok(())
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
        Mark::Ecs { arn, key, value } => deps.ecs.tag_resource(arn, &[(key, value)]).await,
        Mark::Group { name, key, value } => deps.asg.tag_group(name, key, value).await,
    }
}

/// Marks a redeployed service so a repeated notice does not deploy it again. The
/// deployment has started whatever happens here, so a failure to mark is a warning, not a
/// failed event: retrying the event would only deploy again.
async fn mark(deps: &Deps, service_arn: &str, marker: &str, notice: Notice) -> (Outcome, Notice) {
    let handled = Mark::Ecs {
        arn: service_arn.to_string(),
        key: HANDLED_TAG,
        value: marker.to_string(),
    };
    match put(deps, &handled).await {
        Ok(()) => (Outcome::Done, notice),
        Err(e) => {
            tracing::warn!(error = %e, service_arn, "could not mark the service as handled");
            (
                Outcome::Warning,
                notice
                    .detail("mark_error", e.to_string())
                    .next_step(format!("Could not tag the service with {HANDLED_TAG}: a repeated notice will deploy it again. Check ecs:TagResource permissions.")),
            )
        }
    }
}
