//! Every word task-retirement sends people: decide says what to tell and why ([`Told`]),
//! this file says it (titles, descriptions, details and next steps), with the retirement
//! notice's deadline and the settings it names. Where do I change what a notification
//! says? Here.

use chrono::{DateTime, Utc};
use shared::aws::ecs::ContainerImage;
use shared::exec::{About, Report};
use shared::notify::{escape, Notice, Outcome};

use crate::act::{Plan, Step};
use crate::config::Config;
use crate::decide::{acts, BudgetKey, Decision, Now, Resource, Told, Waiting};
use crate::markers::{HANDLED_TAG, SCHEDULED_TAG};
use crate::parse::Retirement;
use crate::timing::Why;

/// The decided plan in words: each step with its notice, and each mark as a step of its
/// own after the step it records.
pub fn plan(decisions: Vec<Decision>, r: &Retirement, config: &Config) -> Plan {
    let words = |told: &Told| notice(told, r, config);
    let mut plan = vec![];
    for d in decisions {
        match d {
            Decision::Redeploy { target, told } => plan.push(Step::Redeploy {
                notice: words(&told),
                target,
            }),
            Decision::StopTasks { target, told } => plan.push(Step::StopTasks {
                notice: words(&told),
                target,
            }),
            Decision::ReplaceInstance { target, told } => plan.push(Step::ReplaceInstance {
                notice: words(&told),
                target,
            }),
            Decision::Defer { look, told, marks } => {
                plan.push(Step::Defer {
                    look,
                    notice: told.as_ref().map(words),
                });
                plan.extend(marks.into_iter().map(Step::Mark));
            }
            Decision::Tell {
                action,
                outcome,
                about,
                told,
                mark,
            } => {
                plan.push(Step::Report(Report {
                    action,
                    outcome,
                    about,
                    notice: words(&told),
                }));
                plan.extend(mark.map(Step::Mark));
            }
        }
    }
    plan
}

/// An event this function does not act on (parse said why): people are told it was
/// skipped.
pub fn ignored(reason: &str) -> Step {
    Step::Report(Report {
        action: acts::IGNORE,
        outcome: Outcome::Skipped,
        about: About::default(),
        notice: Notice::info("Ignored event", escape(reason, 500)),
    })
}

/// What people are told, in words.
pub fn notice(told: &Told, r: &Retirement, config: &Config) -> Notice {
    let event = || format!("{} {}", r.code, r.event_arn);
    match told {
        Told::Unrecognized => Notice::info(
            format!("Retirement notice {}: {} entity(ies) not understood", r.code, r.unrecognized.len()),
            format!(
                "These affected entities are neither a task ARN, a service ARN, `cluster | service`, `cluster/service` nor an instance id, so nothing was done about them: {}",
                escape(&r.unrecognized.join(", "), 500)
            ),
        )
        .detail("entities", &r.unrecognized),
        Told::Scheduled { until, resources } => {
            let labels = labels(resources);
            Notice::info(
                format!("Retirement of {} resource(s) scheduled for {}", resources.len(), until.format("%a %d %b %H:%M UTC")),
                format!(
                    "{} The maintenance window ({}) is closed now; the replacement of {} will start when it opens at {}, at least {} hour(s) before the retirement.",
                    deadline(r),
                    config.window,
                    labels.join(", "),
                    until.to_rfc2822(),
                    config.lead_time_hours
                ),
            )
            .detail("scheduled_for", until)
            .detail("retires_at", r.start_time)
            .detail("resources", &labels)
            .detail("event_arn", &r.event_arn)
        }
        Told::AlreadyScheduled { until, resources } => {
            let labels = labels(resources);
            Notice::info(
                format!("Retirement of {} resource(s) already scheduled", resources.len()),
                format!(
                    "A repeated notice: the replacement of {} was already scheduled for the maintenance window ({}, `{SCHEDULED_TAG}`), so no second look is queued. {}",
                    labels.join(", "),
                    until.format("%a %d %b %H:%M UTC"),
                    deadline(r)
                ),
            )
            .detail("scheduled_for", until)
            .detail("resources", &labels)
            .detail("event_arn", &r.event_arn)
        }
        Told::WaitsForBudget { waiting, forecasts } => {
            waits_for_budget(waiting, forecasts, r, config)
        }
        Told::BudgetLate { forecast: fc } => Notice::warning(
            format!(
                "Disruption budget cannot make the retirement deadline for {} of {} resource(s) of {}",
                fc.late, fc.waiting, fc.budget_of
            ),
            format!(
                "{} {} Those are replaced at their latest safe start regardless of the budget, several at once.",
                deadline(r),
                fc.sentence()
            ),
        )
        .detail("forecast", fc)
        .detail("retires_at", r.start_time)
        .detail("event_arn", &r.event_arn)
        .next_step(format!("Raise {} (now {}), widen the maintenance window, or replace some of them by hand now.", fc.budget_var.split('=').next().unwrap_or_default(), fc.budget))
        .next_step("HOST_REPLACEMENT_MINUTES / REDEPLOY_MINUTES set how long one replacement is assumed to take."),
        Told::Redeploying {
            cluster,
            service,
            running,
            via_tasks,
            images,
            now,
        } => Notice::info(
            format!("Replacing tasks of {service} ahead of retirement"),
            format!(
                "{} A new deployment of service `{service}` (cluster `{cluster}`) was forced, so ECS replaces its {running} task(s) within the service's minimumHealthyPercent / maximumPercent. {}{}",
                deadline(r),
                reason(now, r, config),
                image_note(images)
            ),
        )
        .detail("mutable_images", images.iter().filter(|i| !i.is_pinned()).collect::<Vec<_>>())
        .detail("service", service)
        .detail("retiring_tasks", via_tasks)
        .detail("retires_at", r.start_time)
        .detail("why_now", now.why)
        .detail("event_arn", &r.event_arn),
        Told::Replacing {
            instance_id,
            group,
            cluster,
            now,
        } => Notice::info(
            format!("Replacing {instance_id} ahead of retirement"),
            format!(
                "{} `{instance_id}` was marked Unhealthy in group `{group}`, so the group launches a replacement and terminates it through its terminate lifecycle hook, where instance-drain drains cluster `{cluster}` first. {}",
                deadline(r),
                reason(now, r, config)
            ),
        )
        .detail("retires_at", r.start_time)
        .detail("why_now", now.why)
        .detail("event_arn", &r.event_arn),
        Told::NextInQueue {
            instance_id,
            group,
            cluster,
            now,
        } => Notice::info(
            format!("Replacing {instance_id}: next in its group's retirement queue"),
            format!(
                "`{instance_id}` is scheduled by AWS too and comes first in group `{group}`'s retirement queue (earliest deadline first), so it was marked Unhealthy now, within the disruption budget; the group replaces it through its terminate lifecycle hook, where instance-drain drains cluster `{cluster}` first. Its own notice finds it done. {}",
                reason(now, r, config)
            ),
        )
        .detail("queue_of", group)
        .detail("why_now", now.why)
        .detail("event_arn", &r.event_arn),
        Told::StoppingTasks {
            cluster,
            service,
            stopped,
            retiring,
            floor,
            desired,
            min_percent,
            last,
            now,
        } => Notice::info(
            format!("Stopping {} retiring task(s) of {service}", stopped.len()),
            format!(
                "{} {} of the {retiring} retiring task(s) of {} are stopped now, keeping at least {floor} of {desired} running (minimumHealthyPercent {min_percent}); the scheduler replaces them within the current deployment, with the image digests it runs now.{} {}",
                deadline(r),
                stopped.len(),
                service_label(cluster, service),
                if *last { "" } else { " The rest follow once the replacements run." },
                reason(now, r, config)
            ),
        )
        .detail("service", service)
        .detail("stopped_tasks", stopped)
        .detail("retiring_left", retiring - stopped.len())
        .detail("why_now", now.why)
        .detail("retires_at", r.start_time)
        .detail("event_arn", &r.event_arn),
        Told::NoRetiringTaskLeft {
            cluster,
            service,
            cutoff,
        } => Notice::info(
            format!("No retiring task left in {service}"),
            format!(
                "Every running task of {} started after the notice ({}); nothing to stop. {}",
                service_label(cluster, service),
                cutoff.to_rfc2822(),
                deadline(r)
            ),
        )
        .detail("service", service)
        .detail("event_arn", &r.event_arn),
        Told::BelowFloor {
            cluster,
            service,
            healthy,
            desired,
            min_percent,
            floor,
            retiring,
        } => Notice::warning(
            format!("Cannot stop tasks of {service} within its minimumHealthyPercent"),
            format!(
                "{} {} runs {healthy} of {desired} desired task(s) with minimumHealthyPercent {min_percent}: stopping even one would take it below {floor}, so none of its {} retiring task(s) was stopped (RETIREMENT_REPLACE=stop-tasks).",
                deadline(r),
                service_label(cluster, service),
                retiring.len()
            ),
        )
        .detail("service", service)
        .detail("retiring_tasks", retiring)
        .detail("event_arn", &r.event_arn)
        .next_step("Raise the desired count by one for the replacement (then lower it), lower minimumHealthyPercent, or set RETIREMENT_REPLACE=redeploy (a forced deployment may start first within maximumPercent; image tags are resolved again).")
        .next_step("Or stop the retiring tasks one at a time yourself (aws ecs stop-task) when a brief dip is acceptable."),
        Told::AlreadyRedeployed { cluster, service } => Notice::info(
            format!("Service {service} already redeployed for this retirement"),
            format!(
                "Service `{service}` (cluster `{cluster}`) carries `{HANDLED_TAG}` for this notice: its tasks were already replaced for it (a repeated or updated notice). {}",
                deadline(r)
            ),
        )
        .detail("service", service)
        .detail("event_arn", &r.event_arn),
        Told::AmbiguousService {
            service,
            arn,
            clusters,
        } => Notice::warning(
            format!("Retiring service {service}: which cluster is not known"),
            format!(
                "{} names `{}`, an old-format service ARN without the cluster, and {} managed clusters have an ACTIVE service `{service}` ({}). Nothing was redeployed rather than guess. {}",
                event(),
                escape(arn, 300),
                clusters.len(),
                escape(&clusters.join(", "), 300),
                deadline(r)
            ),
        )
        .detail("service", service)
        .detail("clusters", clusters)
        .detail("event_arn", &r.event_arn)
        .next_step("Find the cluster whose tasks AWS retires (the AWS Health console lists the affected tasks) and force a new deployment of that service yourself before the deadline (aws ecs update-service --force-new-deployment)."),
        Told::ServiceGone { cluster, service } => Notice::info(
            format!("Retiring service {service} no longer runs"),
            format!(
                "Service `{service}` (cluster `{cluster}`) named by {} does not exist or is not ACTIVE any more; its tasks are gone, nothing to replace.",
                event()
            ),
        )
        .detail("service", service),
        Told::OtherController {
            cluster,
            service,
            controller,
            running,
        } => {
            let how = if controller == "CODE_DEPLOY" {
                "Start a CodeDeploy deployment of the current task definition (same AppSpec, same image digests) for this service's deployment group; it moves the tasks to new capacity with your traffic shifting and rollback."
            } else {
                "Have your deployment controller create a new task set with the current task definition and make it primary, then delete the old task set."
            };
            Notice::warning(
                format!("Service {service} ({controller}) must be replaced by its controller"),
                format!(
                    "{} Service `{service}` (cluster `{cluster}`) uses the {controller} deployment controller, which does not accept a forced new deployment, so its {running} task(s) were not replaced. Replace them before the deadline.",
                    deadline(r),
                ),
            )
            .detail("service", service)
            .detail("deployment_controller", controller)
            .detail("retires_at", r.start_time)
            .detail("event_arn", &r.event_arn)
            .next_step(how)
            .next_step("Or stop the retiring tasks a few at a time (aws ecs stop-task), never more than keeps minimumHealthyPercent of the desired count running, and wait for each batch's replacements to be healthy: the scheduler starts them in the current task set with the same images. RETIREMENT_REPLACE=stop-tasks has this function do that.")
        }
        Told::Standalone { cluster, task } => {
            let who = task.started_by.as_deref().unwrap_or("RunTask (no startedBy)");
            Notice::warning(
                format!("Standalone task retires {}", r.start_time.map(|t| t.format("%a %d %b %H:%M UTC").to_string()).unwrap_or_else(|| "soon".into())),
                format!(
                    "Task `{}` (cluster `{cluster}`, group `{}`) is not part of a service, so ECS will not replace it: it was started by `{}`. {} It was left running; stop and re-run it before then, at a time that suits its work.",
                    task.arn,
                    escape(&task.group, 200),
                    escape(who, 200),
                    deadline(r)
                ),
            )
            .detail("started_by", &task.started_by)
            .detail("task_definition", &task.task_definition_arn)
            .detail("retires_at", r.start_time)
            .next_step(format!("Re-run the task (or let {} start a new one) before the deadline; new tasks start on patched capacity.", escape(who, 200)))
        }
        Told::StandaloneAlreadyReported { cluster, task } => Notice::info(
            "Standalone task already reported for this retirement",
            format!(
                "Task `{task}` (cluster `{cluster}`) carries `{HANDLED_TAG}` for this notice: people were already told to re-run it (a repeated or updated notice). {}",
                deadline(r)
            ),
        )
        .detail("event_arn", &r.event_arn),
        Told::TaskGone { arn } => Notice::info(
            "Retiring task already stopped",
            format!("Task `{arn}` named by {} has already stopped (or is unknown to ECS); nothing to replace.", event()),
        ),
        Told::Unmanaged { cluster, entity } => Notice::warning(
            format!("Retirement in unmanaged cluster {}", cluster.as_deref().unwrap_or("(unknown)")),
            format!(
                "`{}` is not in a cluster tagged `ecs-autopilot:managed=true`, so it is left alone. {}",
                escape(entity, 300),
                deadline(r)
            ),
        )
        .detail("entity", entity)
        .next_step("Force a new deployment of the service yourself before the deadline, or tag the cluster ecs-autopilot:managed=true."),
        Told::LeftToCapacityRebalancing { instance_id, group } => Notice::info(
            format!("{instance_id}: rebalance left to Capacity Rebalancing"),
            format!(
                "Group `{group}` has Capacity Rebalancing on, so Auto Scaling launches a replacement for `{instance_id}` before it terminates it (through the terminate lifecycle hook, where instance-drain drains it). It is not marked Unhealthy here."
            ),
        )
        .detail("capacity_rebalance", true),
        Told::NoGroup { instance_id } => Notice::warning(
            format!("{instance_id} retires but is in no Auto Scaling group"),
            format!("`{instance_id}` is not in an Auto Scaling group, so nothing replaces it automatically and it is left alone. {}", deadline(r)),
        )
        .next_step("Stop and start (or replace) the instance yourself before the deadline."),
        Told::UnmanagedGroup { instance_id, group } => Notice::warning(
            format!("{instance_id} retires in unmanaged group {group}"),
            format!(
                "Auto Scaling group `{group}` has no `ecs-autopilot:cluster` tag, so `{instance_id}` is left alone. {}",
                deadline(r)
            ),
        )
        .next_step("Replace the instance yourself before the deadline, or tag the group ecs-autopilot:cluster=CLUSTER."),
        Told::BeingReplaced {
            instance_id,
            group,
            state,
        } => {
            let state = state
                .as_ref()
                .map(|s| format!("{} / {}", s.lifecycle, s.health))
                .unwrap_or_else(|| "no longer in the group".into());
            Notice::info(
                format!("{instance_id} is already being replaced"),
                format!("`{instance_id}` in group `{group}` is already on its way out ({state}); nothing more to do."),
            )
        }
        Told::Closed => {
            let entities: Vec<String> = r
                .targets
                .iter()
                .map(|t| serde_json::to_string(t).unwrap_or_default())
                .collect();
            Notice::info(
                format!("Retirement notice {} closed", r.code),
                format!(
                    "AWS closed {} (the retirement happened or was cancelled); nothing is done for a closed notice.",
                    r.event_arn
                ),
            )
            .detail("event_arn", &r.event_arn)
            .detail("entities", entities)
        }
    }
}

/// The first time replacements wait for the budget: what waits for what, with the
/// forecast of each budget.
fn waits_for_budget(
    waiting: &[Waiting],
    forecasts: &[crate::forecast::Forecast],
    r: &Retirement,
    config: &Config,
) -> Notice {
    let lines: Vec<String> = waiting
        .iter()
        .map(|w| {
            format!(
                "{}: {} ahead of it ({} in replacement now: {}), budget {}",
                label(&w.resource),
                w.ahead,
                w.in_replacement.len(),
                escape(&w.in_replacement.join(", "), 200),
                describe_budget(&w.budget, config)
            )
        })
        .collect();
    let labels: Vec<String> = waiting.iter().map(|w| label(&w.resource)).collect();
    Notice::info(
        format!(
            "Retirement of {} resource(s) waits for the disruption budget",
            waiting.len()
        ),
        format!(
            "{} These wait until replacements already under way finish (looked at again every {} s): {}.",
            deadline(r),
            config.poll_seconds,
            lines.join("; ")
        ),
    )
    .detail("waiting", &labels)
    .detail("forecast", forecasts)
    .detail("retires_at", r.start_time)
    .detail(
        "max_replacements_per_group",
        config.max_replacements_per_group,
    )
    .detail(
        "max_redeploys_per_cluster",
        config.max_redeploys_per_cluster,
    )
    .detail("event_arn", &r.event_arn)
}

/// Why it starts now, and past a full budget if it does.
fn reason(now: &Now, r: &Retirement, config: &Config) -> String {
    let why = explain(now.why, r.start_time, config);
    match &now.over_budget {
        None => why,
        Some(full) => format!(
            "{why} The disruption budget ({}) is full ({} in replacement: {}), but the latest safe start ({} hour(s) before the retirement) has come, so it goes anyway.",
            describe_budget(&full.budget, config),
            full.ahead,
            escape(&full.in_replacement.join(", "), 300),
            config.lead_time_hours
        ),
    }
}

fn explain(why: Why, start: Option<DateTime<Utc>>, config: &Config) -> String {
    let start = start.map(|s| s.to_rfc2822()).unwrap_or_default();
    match why {
        Why::NoSchedule => "AWS gave no retirement time (a rebalance recommendation: the instance may be interrupted at any moment), so it is replaced now.".into(),
        Why::StartPassed => format!("The retirement time ({start}) has already passed, so it is replaced now rather than waiting for the maintenance window."),
        Why::AlwaysOpen => "No MAINTENANCE_WINDOW is set (always open), so it is replaced now.".into(),
        Why::WindowOpen => format!("The maintenance window ({}) is open and the retirement ({start}) is still ahead.", config.window),
        Why::WindowTooLate { next_open } => format!(
            "The maintenance window ({}) next opens at {}, which is later than {} hour(s) (LEAD_TIME_HOURS) before the retirement at {start}; waiting would let AWS retire it first, so it is replaced now.",
            config.window,
            next_open.to_rfc2822(),
            config.lead_time_hours
        ),
    }
}

fn deadline(r: &Retirement) -> String {
    match r.start_time {
        Some(t) => format!("AWS retires it at {} ({}).", t.to_rfc2822(), r.code),
        None => format!("AWS may interrupt it at any moment ({}).", r.code),
    }
}

fn describe_budget(key: &BudgetKey, config: &Config) -> String {
    match key {
        BudgetKey::Group(g) => format!(
            "MAX_REPLACEMENTS_PER_GROUP={} host(s) of group `{g}` at once",
            config.max_replacements_per_group
        ),
        BudgetKey::Cluster(c) => format!(
            "MAX_REDEPLOYS_PER_CLUSTER={} service redeploy(s) in cluster `{c}` at once",
            config.max_redeploys_per_cluster
        ),
    }
}

fn service_label(cluster: &str, service: &str) -> String {
    format!("service `{service}` (cluster `{cluster}`)")
}

fn label(resource: &Resource) -> String {
    match resource {
        Resource::Service { cluster, service } => service_label(cluster, service),
        Resource::Instance { instance_id, group } => {
            format!("instance `{instance_id}` (group `{group}`)")
        }
    }
}

fn labels(resources: &[Resource]) -> Vec<String> {
    resources.iter().map(label).collect()
}

/// When a new deployment may run a newer image: ECS resolves an image tag to a digest
/// when a deployment is created, so a tag pushed again since the last deployment
/// (`:latest`, `:prod`) starts the newer image; a digest-pinned image does not change.
fn image_note(images: &[ContainerImage]) -> String {
    let mutable: Vec<String> = images
        .iter()
        .filter(|i| !i.is_pinned())
        .map(|i| {
            format!(
                "`{}` ({})",
                escape(&i.container, 100),
                escape(&i.image, 200)
            )
        })
        .collect();
    if mutable.is_empty() {
        return String::new();
    }
    format!(
        " A new deployment resolves image tags again: container(s) {} are named by tag, so if the tag was pushed since the running tasks started they get the newer image. Pin images by digest (`repo@sha256:…`) to rule that out.",
        mutable.join(", ")
    )
}

/// Marks a redeployed service's notice when the mark could not be written.
pub fn unmarked(notice: Notice, error: &shared::Error) -> Notice {
    notice
        .detail("mark_error", error.to_string())
        .next_step(format!("Could not tag the service with {HANDLED_TAG}: a repeated notice will deploy it again. Check ecs:TagResource permissions."))
}

/// A redeploy's notice when the service was deleted meanwhile.
pub fn service_deleted(notice: Notice) -> Notice {
    notice.detail(
        "note",
        "the service was deleted meanwhile; its tasks are gone",
    )
}

#[cfg(test)]
mod tests;
