//! The imperative shell: the adapter between ami-rollout's plan and the shared executor.
//! Each step says whether it changes AWS and what a dry run does instead; `run` carries
//! out one step through the AWS adapters and says what happened.

use shared::aws::autoscaling::{LaunchTemplateRef, RefreshStart};
use shared::exec::{action, About, DryRun, Executor, OnFailure, PlanStep, Ran};
use shared::notify::{Outcome, Subject};
use shared::{Error, Result};

use crate::decide::{Plan, Step};
use crate::notices;
use crate::tags::{halted_value, starting_value, REFRESH_TAG, REPORTED_TAG};
use crate::templates::RollMode;
use crate::Deps;

impl PlanStep for Step {
    fn action(&self) -> &'static str {
        match self {
            Step::Roll { .. } => action::ROLLOUT,
            Step::Report(r) => r.action,
            Step::MarkReported { .. } => action::MARK_REPORTED,
            Step::Halt { .. } => action::WINDOW_HALT,
        }
    }

    fn mutates(&self) -> bool {
        !matches!(self, Step::Report(_))
    }

    /// A rollout or a halt says what it would do; the bookkeeping tag is only logged.
    fn dry_run(self) -> DryRun<Self> {
        match self {
            Step::Roll { notice, .. } | Step::Halt { notice, .. } => DryRun::Planned(Some(notice)),
            _ => DryRun::Planned(None),
        }
    }

    /// One broken group must not hold up the fleet: the rest of the plan runs, and the
    /// first error then fails the event so it is retried.
    fn on_failure(&self) -> OnFailure {
        OnFailure::Continue
    }

    /// Remember a report only once it went out: a retry then reports again.
    fn runs_after_failure(&self) -> bool {
        !matches!(self, Step::MarkReported { .. })
    }

    fn about(&self, event: &Subject) -> Subject {
        let (group, cluster) = match self {
            Step::Roll { group, cluster, .. } | Step::Halt { group, cluster, .. } => {
                (Some(group.clone()), Some(cluster.clone()))
            }
            Step::Report(r) => return event.narrowed(&r.about),
            Step::MarkReported { group, .. } => (Some(group.clone()), None),
        };
        event.narrowed(&About {
            group,
            cluster,
            ..About::default()
        })
    }
}

/// Runs the plan, each failure reported as it happens.
pub async fn execute(deps: &Deps, subject: &Subject, plan: Plan) -> Result<()> {
    Executor::new(&deps.aws.reporter, deps.config.common.dry_run)
        .reporting_failures()
        .execute(subject, plan, |about, step| async move {
            run(deps, &about, step).await
        })
        .await
        .into_result()
}

/// Carries out one step.
pub async fn run(deps: &Deps, _about: &Subject, step: Step) -> Result<Ran> {
    match step {
        Step::Report(report) => Ok(report.ran()),
        // Bookkeeping only: logged, never notified.
        Step::MarkReported { group, refresh_id } => {
            deps.aws
                .asg
                .tag_group(&group, REPORTED_TAG, &refresh_id)
                .await?;
            Ok(Ran::quiet(Outcome::Done))
        }
        Step::Halt {
            group,
            refresh_id,
            notice,
            ..
        } => {
            if !deps.aws.asg.cancel_instance_refresh(&group).await? {
                return Ok(Ran::told(
                    Outcome::AlreadyDone,
                    notices::halt_already_ended(&group, notice),
                ));
            }
            deps.aws
                .asg
                .tag_group(&group, REFRESH_TAG, &halted_value(&refresh_id))
                .await
                .map_err(|e| already_done(e, &notices::cancelled_not_marked(&refresh_id)))?;
            Ok(Ran::told(Outcome::Done, notice))
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
            deps.aws
                .asg
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
                    .aws.ec2
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
                done_before = Some(notices::version_created(
                    created.version,
                    &created.template_id,
                    image_id,
                ));
            }
            let started = match deps.aws.asg.start_instance_refresh(&group, &request).await {
                Ok(started) => started,
                Err(e) => {
                    restore_mark(deps, &group, previous_mark.as_deref()).await;
                    return Err(match &done_before {
                        Some(done) => already_done(e, done),
                        None => e,
                    });
                }
            };
            match started {
                RefreshStart::Started { refresh_id } => {
                    // The window guard halts only ami-rollout's own refreshes. If the id
                    // can't be written, the "starting" mark still tells it this one.
                    if let Err(e) = deps
                        .aws
                        .asg
                        .tag_group(&group, REFRESH_TAG, &refresh_id)
                        .await
                    {
                        tracing::warn!(group = %group, refresh_id = %refresh_id, error = %e, "refresh started; its id could not be written on the group (the starting mark identifies it)");
                    }
                    Ok(Ran::told(
                        Outcome::Done,
                        notice.detail("refresh_id", refresh_id),
                    ))
                }
                RefreshStart::AlreadyInProgress => {
                    restore_mark(deps, &group, previous_mark.as_deref()).await;
                    Ok(Ran::told(
                        Outcome::AlreadyDone,
                        notices::refresh_already_running(&group, notice),
                    ))
                }
            }
        }
    }
}

/// Puts the group's refresh mark back when no refresh of ours started (best effort: a
/// stale `starting` mark only makes the window guard look at the group's newest
/// refresh, and halt it only if it started after the mark).
async fn restore_mark(deps: &Deps, group: &str, previous: Option<&str>) {
    if let Err(e) = deps
        .aws
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
