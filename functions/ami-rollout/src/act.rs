//! The imperative shell: carries out a plan through the AWS adapters and reports every
//! action with its real outcome. In dry run, nothing that changes state is called.

use shared::aws::autoscaling::{LaunchTemplateRef, RefreshStart};
use shared::notify::{Notice, Outcome, Subject};
use shared::{Error, Result};

use crate::decide::{halted_value, starting_value, Plan, RollMode, Step, REFRESH_TAG};
use crate::Deps;

/// Runs every step, even after one fails (one broken group must not hold up the
/// fleet); the first error then fails the event so it is retried.
pub async fn execute(deps: &Deps, subject: &Subject, plan: Plan) -> Result<()> {
    tracing::info!(
        event_id = %subject.event_id,
        kind = %subject.kind,
        dry_run = deps.reporter.dry_run(),
        steps = plan.len(),
        plan = %serde_json::to_string(&plan).unwrap_or_default(),
        "decided"
    );
    let mut first_error = None;
    for step in plan {
        let action = step.action();
        // Remember a report only once it went out: a retry then reports again.
        if matches!(step, Step::MarkReported { .. }) && first_error.is_some() {
            continue;
        }
        let subject = match &step {
            Step::Roll { group, cluster, .. } | Step::Halt { group, cluster, .. } => Subject {
                group: Some(group.clone()),
                cluster: Some(cluster.clone()),
                ..subject.clone()
            },
            Step::Report { group, cluster, .. } => Subject {
                group: group.clone(),
                cluster: cluster.clone(),
                ..subject.clone()
            },
            Step::MarkReported { group, .. } => Subject {
                group: Some(group.clone()),
                ..subject.clone()
            },
        };
        if let Err(e) = run(deps, &subject, step).await {
            deps.reporter.failure(&subject, action, &e).await;
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn run(deps: &Deps, subject: &Subject, step: Step) -> Result<()> {
    let action = step.action();
    // Dry run: a step that would change a group says what it would do, and does nothing.
    let step = match step {
        Step::Roll { notice, .. } | Step::Halt { notice, .. } if deps.reporter.dry_run() => {
            deps.reporter
                .report(subject, action, Outcome::Planned, notice)
                .await;
            return Ok(());
        }
        other => other,
    };
    match step {
        Step::Report {
            outcome, notice, ..
        } => {
            deps.reporter.report(subject, action, outcome, notice).await;
            Ok(())
        }
        // Bookkeeping only: logged, never notified.
        Step::MarkReported { group, refresh_id } => {
            if deps.reporter.dry_run() {
                return Ok(());
            }
            deps.asg
                .tag_group(&group, crate::decide::REPORTED_TAG, &refresh_id)
                .await
        }
        Step::Halt {
            group,
            refresh_id,
            notice,
            ..
        } => {
            if !deps.asg.cancel_instance_refresh(&group).await? {
                let notice = Notice {
                    title: format!("{group}'s refresh had already ended"),
                    description: format!(
                        "{} Auto Scaling answered that no refresh is in progress any more (it ended since the guard looked), so there was nothing to halt.",
                        notice.description
                    ),
                    ..notice
                };
                deps.reporter
                    .report(subject, action, Outcome::AlreadyDone, notice)
                    .await;
                return Ok(());
            }
            deps.asg
                .tag_group(&group, REFRESH_TAG, &halted_value(&refresh_id))
                .await
                .map_err(|e| {
                    already_done(
                        e,
                        &format!("refresh {refresh_id} was cancelled, but is not marked halted, so the next window will not resume it"),
                    )
                })?;
            deps.reporter
                .report(subject, action, Outcome::Done, notice)
                .await;
            Ok(())
        }
        Step::Roll {
            group,
            mode,
            mut request,
            mut notice,
            previous_mark,
            ..
        } => {
            // Marked first: if this write fails nothing has changed yet, and a refresh
            // that starts but can't be marked with its id is still known as ours.
            deps.asg
                .tag_group(&group, REFRESH_TAG, &starting_value(chrono::Utc::now()))
                .await?;
            // What this step changed before a later call fails: the failure says it.
            let mut done_before = None;
            if let RollMode::NewVersion {
                template_id,
                source_version,
                image_id,
                target_ami,
                pin,
            } = &mode
            {
                let created = match deps
                    .ec2
                    .create_version_with_image(
                        template_id,
                        *source_version,
                        image_id,
                        target_ami,
                        &format!(
                            "ecs-autopilot ami-rollout: {target_ami} (from version {source_version})"
                        ),
                    )
                    .await
                {
                    Ok(created) => created,
                    Err(e) => {
                        restore_mark(deps, &group, previous_mark.as_deref()).await;
                        return Err(e);
                    }
                };
                request.desired_template = Some(LaunchTemplateRef {
                    id: Some(created.template_id.clone()),
                    name: None,
                    version: if *pin {
                        created.version.to_string()
                    } else {
                        "$Latest".into()
                    },
                });
                notice = notice.detail("launch_template_version", created.version);
                done_before = Some(format!(
                    "launch template version {} of {} with {image_id} was created",
                    created.version, created.template_id
                ));
            }
            let started = match deps.asg.start_instance_refresh(&group, &request).await {
                Ok(started) => started,
                Err(e) => {
                    restore_mark(deps, &group, previous_mark.as_deref()).await;
                    return Err(match &done_before {
                        Some(done) => already_done(e, done),
                        None => e,
                    });
                }
            };
            if started == RefreshStart::AlreadyInProgress {
                restore_mark(deps, &group, previous_mark.as_deref()).await;
            }
            let (outcome, notice) = match started {
                RefreshStart::Started { refresh_id } => {
                    // The window guard halts only ami-rollout's own refreshes. If the id
                    // can't be written, the "starting" mark still tells it this one.
                    if let Err(e) = deps.asg.tag_group(&group, REFRESH_TAG, &refresh_id).await {
                        tracing::warn!(group = %group, refresh_id = %refresh_id, error = %e, "refresh started; its id could not be written on the group (the starting mark identifies it)");
                    }
                    (Outcome::Done, notice.detail("refresh_id", refresh_id))
                }
                RefreshStart::AlreadyInProgress => (
                    Outcome::AlreadyDone,
                    Notice {
                        title: format!("{group} is already being refreshed"),
                        description: format!(
                            "{} Auto Scaling answered that a refresh is already in progress (started since this check looked), so no new one was started.",
                            notice.description
                        ),
                        ..notice
                    },
                ),
            };
            deps.reporter.report(subject, action, outcome, notice).await;
            Ok(())
        }
    }
}

/// Puts the group's refresh mark back when no refresh of ours started (best effort: a
/// stale `starting` mark only makes the window guard look at the group's newest
/// refresh, and halt it only if it started after the mark).
async fn restore_mark(deps: &Deps, group: &str, previous: Option<&str>) {
    if let Err(e) = deps
        .asg
        .tag_group(group, REFRESH_TAG, previous.unwrap_or_default())
        .await
    {
        tracing::warn!(group = %group, error = %e, "could not put the refresh mark back");
    }
}

/// `e`, also saying what the step had already changed, so the failure notification
/// reports the partial action (a retry recognises it: the version is found by its AMI).
fn already_done(mut e: Error, done: &str) -> Error {
    if let Error::Aws { message: text, .. } | Error::BadEvent(text) = &mut e {
        text.push_str(&format!(" (before this failed, {done})"));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_after_a_change_names_the_change() {
        let e = Error::Aws {
            service: "autoscaling",
            operation: "StartInstanceRefresh",
            code: "Throttling".into(),
            message: "Rate exceeded".into(),
            retryable: true,
        };
        let e = already_done(
            e,
            "launch template version 2 of lt-1 with ami-1 was created",
        );
        assert!(e.is_retryable());
        assert!(
            e.to_string().ends_with(
                "Rate exceeded (before this failed, launch template version 2 of lt-1 with ami-1 was created)"
            ),
            "{e}"
        );
    }
}
