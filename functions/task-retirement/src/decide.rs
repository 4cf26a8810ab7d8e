//! The pure core: from the retirement notice, what the fleet looks like now, the
//! maintenance window and the clock, decide what to do and when. No AWS calls here; the
//! plan is data, so it is logged, dry-run and asserted in tests.
//!
//! The timing rule: replace inside the maintenance window, before AWS does it (at
//! `startTime`, less `LEAD_TIME_HOURS` so the replacement has time to finish). When the
//! window is closed now and opens in time, wait for it; when it opens too late, or the
//! retirement time has passed, or there is no schedule at all, act now and say why.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use shared::aws::autoscaling::Group;
use shared::aws::ecs::{ServiceDescription, Task};
use shared::aws::sqs::MAX_DELAY_SECONDS;
use shared::notify::{escape, Notice, Outcome};
use shared::window::MaintenanceWindow;

use crate::config::Config;
use crate::parse::{Deferral, Retirement};

/// Tag on a service whose tasks were replaced for a retirement notice; its value is
/// [`marker`] of the notice's event ARN. A repeated or updated notice finds it and does
/// not deploy again.
pub const HANDLED_TAG: &str = "ecs-autopilot:retirement-handled";

/// Tag on what a put-off retirement will replace (a service, or the Auto Scaling group of
/// an instance): the [`marker`]s of the notices whose later look is already queued, newest
/// first. A repeated notice that finds its marker on everything it would replace does not
/// queue a second look.
pub const SCHEDULED_TAG: &str = "ecs-autopilot:retirement-scheduled";

/// Markers kept in one [`SCHEDULED_TAG`] value: 14 × 17 characters fit the 256 a tag
/// value may hold.
const SCHEDULED_KEPT: usize = 14;

/// `existing` (a [`SCHEDULED_TAG`] value) with `marker` first, each marker once, the
/// oldest dropped beyond [`SCHEDULED_KEPT`].
pub fn with_marker(existing: Option<&str>, marker: &str) -> String {
    let older = existing
        .unwrap_or_default()
        .split_whitespace()
        .filter(|m| *m != marker);
    std::iter::once(marker)
        .chain(older)
        .take(SCHEDULED_KEPT)
        .collect::<Vec<_>>()
        .join(" ")
}

fn has_marker(value: Option<&String>, marker: &str) -> bool {
    value.is_some_and(|v| v.split_whitespace().any(|m| m == marker))
}

/// A short, stable fingerprint of an event ARN (64-bit FNV-1a, hex). Stable across
/// builds and Rust versions, unlike `std`'s hasher, because it is stored in AWS.
pub fn marker(event_arn: &str) -> String {
    let hash = event_arn.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// What the notification is about, besides the event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Scope {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Force a new deployment so ECS replaces the service's tasks, then mark the service.
    Redeploy {
        cluster: String,
        service: String,
        service_arn: String,
        marker: String,
        notice: Notice,
    },
    /// Mark the instance Unhealthy so its group replaces it (drained by instance-drain
    /// through the terminate lifecycle hook).
    ReplaceInstance {
        instance_id: String,
        group: String,
        cluster: String,
        notice: Notice,
    },
    /// Look again later by sending the event back to our queue; the notice is sent only
    /// the first time the retirement is put off, and then what it will replace is marked
    /// (once the look is queued) so a repeated notice does not queue another.
    Defer {
        until: DateTime<Utc>,
        delay_seconds: u32,
        deferral: Deferral,
        notice: Option<Notice>,
        marks: Vec<Mark>,
    },
    /// Only tell people (a skip, something already done, something only a person can do),
    /// then leave a mark, if any, so a repeated notice does not tell them again.
    Report {
        action: &'static str,
        outcome: Outcome,
        scope: Scope,
        notice: Notice,
        mark: Option<Mark>,
    },
}

/// A tag that records what was done for a notice, written after the step it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "on", rename_all = "snake_case")]
pub enum Mark {
    /// An ECS service or task of a managed cluster.
    Ecs {
        arn: String,
        key: &'static str,
        value: String,
    },
    /// An opted-in Auto Scaling group (not propagated to its instances).
    Group {
        name: String,
        key: &'static str,
        value: String,
    },
}

impl Step {
    /// The action name used in notifications and metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Step::Redeploy { .. } => "redeploy-service",
            Step::ReplaceInstance { .. } => "replace-instance",
            Step::Defer { .. } => "schedule",
            Step::Report { action, .. } => action,
        }
    }
}

pub type Plan = Vec<Step>;

/// What one affected resource looks like now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "observed", rename_all = "snake_case")]
pub enum Observed {
    /// An ACTIVE service of a managed cluster, and the retiring tasks that named it.
    Service {
        cluster: String,
        service: ServiceDescription,
        via_tasks: Vec<String>,
    },
    /// The service was deleted (or is being deleted): its tasks go anyway.
    ServiceGone { cluster: String, service: String },
    /// A running task of a managed cluster that no service owns, and its
    /// [`HANDLED_TAG`] (the notice it was reported for).
    Standalone {
        cluster: String,
        task: Task,
        handled: Option<String>,
    },
    /// The task has stopped, or ECS no longer knows it: already retired or replaced.
    TaskGone {
        cluster: Option<String>,
        arn: String,
    },
    /// In a cluster without `ecs-autopilot:managed=true`, or in no cluster we manage.
    Unmanaged {
        cluster: Option<String>,
        entity: String,
    },
    /// An EC2 instance and the Auto Scaling group it belongs to, if any.
    Instance {
        instance_id: String,
        group: Option<Group>,
    },
}

/// Why a replacement happens now rather than in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Why {
    /// No schedule (rebalance recommendation): the instance may go at any moment.
    NoSchedule,
    StartPassed,
    AlwaysOpen,
    WindowOpen,
    /// The window opens only at `next_open`, later than the latest safe start.
    WindowTooLate {
        next_open: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum When {
    Now(Why),
    /// Wait for the window, which opens at this time.
    At(DateTime<Utc>),
}

/// Applies the timing rule.
pub fn when(
    start: Option<DateTime<Utc>>,
    window: &MaintenanceWindow,
    lead: Duration,
    now: DateTime<Utc>,
) -> When {
    let Some(start) = start else {
        return When::Now(Why::NoSchedule);
    };
    if start <= now {
        return When::Now(Why::StartPassed);
    }
    if window.is_always() {
        return When::Now(Why::AlwaysOpen);
    }
    if window.is_open(now) {
        return When::Now(Why::WindowOpen);
    }
    let next_open = window.next_open(now);
    if next_open <= start - lead {
        When::At(next_open)
    } else {
        When::Now(Why::WindowTooLate { next_open })
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

/// Something that a step would change, before the timing rule is applied.
enum Action {
    Redeploy {
        cluster: String,
        service: ServiceDescription,
        via_tasks: Vec<String>,
    },
    ReplaceInstance {
        instance_id: String,
        group: String,
        cluster: String,
        /// The group's [`SCHEDULED_TAG`].
        scheduled: Option<String>,
    },
}

impl Action {
    /// The action's [`SCHEDULED_TAG`] value.
    fn scheduled(&self) -> Option<&String> {
        match self {
            Action::Redeploy { service, .. } => service.tags.get(SCHEDULED_TAG),
            Action::ReplaceInstance { scheduled, .. } => scheduled.as_ref(),
        }
    }

    /// Records that a look is queued for the notice with `marker`.
    fn schedule_mark(&self, marker: &str) -> Mark {
        let value = with_marker(self.scheduled().map(String::as_str), marker);
        match self {
            Action::Redeploy { service, .. } => Mark::Ecs {
                arn: service.arn.clone(),
                key: SCHEDULED_TAG,
                value,
            },
            Action::ReplaceInstance { group, .. } => Mark::Group {
                name: group.clone(),
                key: SCHEDULED_TAG,
                value,
            },
        }
    }

    fn label(&self) -> String {
        match self {
            Action::Redeploy {
                cluster, service, ..
            } => format!("service `{}` (cluster `{cluster}`)", service.name),
            Action::ReplaceInstance {
                instance_id, group, ..
            } => format!("instance `{instance_id}` (group `{group}`)"),
        }
    }
}

/// Decides what to do about a retirement notice.
pub fn retire(
    r: &Retirement,
    observed: &[Observed],
    deferral: &Deferral,
    config: &Config,
    now: DateTime<Utc>,
) -> Plan {
    // A deferred look reports only what it does: its findings were reported on the first
    // look, and what a duplicate notice's look already did was reported by that look.
    let first_look = deferral.deferrals == 0;
    let mut plan = vec![];
    let mut actions = vec![];
    for o in observed {
        match classify(r, o) {
            Classified::Act(a) => actions.push(a),
            Classified::Report(step) if first_look => plan.push(step),
            Classified::Report(_) => {}
        }
    }
    if first_look && !r.unrecognized.is_empty() {
        plan.push(report(
            "ignore",
            Outcome::Skipped,
            Scope::default(),
            Notice::info(
                format!("Retirement notice {}: {} entity(ies) not understood", r.code, r.unrecognized.len()),
                format!(
                    "These affected entities are neither a task ARN, `cluster|service`, `cluster/service` nor an instance id, so nothing was done about them: {}",
                    escape(&r.unrecognized.join(", "), 500)
                ),
            )
            .detail("entities", &r.unrecognized),
        ));
    }
    if actions.is_empty() {
        return plan;
    }
    let lead = Duration::hours(config.lead_time_hours);
    match when(r.start_time, &config.window, lead, now) {
        When::At(until) => {
            let m = marker(&r.event_arn);
            if first_look && actions.iter().all(|a| has_marker(a.scheduled(), &m)) {
                plan.push(already_scheduled(r, &actions, until));
                return plan;
            }
            let delay = (until - now)
                .num_seconds()
                .clamp(1, i64::from(MAX_DELAY_SECONDS));
            let labels: Vec<String> = actions.iter().map(Action::label).collect();
            let notice = first_look.then(|| {
                Notice::info(
                    format!("Retirement of {} resource(s) scheduled for {}", actions.len(), until.format("%a %d %b %H:%M UTC")),
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
            });
            plan.push(Step::Defer {
                until,
                delay_seconds: delay as u32,
                deferral: Deferral {
                    deferrals: deferral.deferrals + 1,
                    first_deferred_at: deferral.first_deferred_at.or(Some(now)),
                },
                notice,
                marks: if first_look {
                    actions.iter().map(|a| a.schedule_mark(&m)).collect()
                } else {
                    vec![]
                },
            });
        }
        When::Now(why) => {
            let reason = explain(why, r.start_time, config);
            plan.extend(actions.into_iter().map(|a| act_now(r, a, why, &reason)));
        }
    }
    plan
}

/// A repeated notice whose later look is already queued (every resource it would replace
/// carries its marker).
fn already_scheduled(r: &Retirement, actions: &[Action], until: DateTime<Utc>) -> Step {
    let labels: Vec<String> = actions.iter().map(Action::label).collect();
    report(
        "schedule",
        Outcome::Skipped,
        Scope::default(),
        Notice::info(
            format!("Retirement of {} resource(s) already scheduled", actions.len()),
            format!(
                "A repeated notice: the replacement of {} was already scheduled for the maintenance window ({}, `{SCHEDULED_TAG}`), so no second look is queued. {}",
                labels.join(", "),
                until.format("%a %d %b %H:%M UTC"),
                deadline(r)
            ),
        )
        .detail("scheduled_for", until)
        .detail("resources", &labels)
        .detail("event_arn", &r.event_arn),
    )
}

enum Classified {
    Act(Action),
    Report(Step),
}

fn report(action: &'static str, outcome: Outcome, scope: Scope, notice: Notice) -> Step {
    Step::Report {
        action,
        outcome,
        scope,
        notice,
        mark: None,
    }
}

fn classify(r: &Retirement, o: &Observed) -> Classified {
    let event = || format!("{} {}", r.code, r.event_arn);
    match o {
        Observed::Service {
            cluster,
            service,
            via_tasks,
        } => {
            let scope = Scope {
                cluster: Some(cluster.clone()),
                ..Scope::default()
            };
            if service.tags.get(HANDLED_TAG) == Some(&marker(&r.event_arn)) {
                return Classified::Report(report(
                    "redeploy-service",
                    Outcome::AlreadyDone,
                    scope,
                    Notice::info(
                        format!("Service {} already redeployed for this retirement", service.name),
                        format!(
                            "Service `{}` (cluster `{cluster}`) carries `{HANDLED_TAG}` for this notice: its tasks were already replaced for it (a repeated or updated notice). {}",
                            service.name,
                            deadline(r)
                        ),
                    )
                    .detail("service", &service.name)
                    .detail("event_arn", &r.event_arn),
                ));
            }
            Classified::Act(Action::Redeploy {
                cluster: cluster.clone(),
                service: service.clone(),
                via_tasks: via_tasks.clone(),
            })
        }
        Observed::ServiceGone { cluster, service } => Classified::Report(report(
            "redeploy-service",
            Outcome::AlreadyDone,
            Scope {
                cluster: Some(cluster.clone()),
                ..Scope::default()
            },
            Notice::info(
                format!("Retiring service {service} no longer runs"),
                format!(
                    "Service `{service}` (cluster `{cluster}`) named by {} does not exist or is not ACTIVE any more; its tasks are gone, nothing to replace.",
                    event()
                ),
            )
            .detail("service", service),
        )),
        Observed::Standalone {
            cluster,
            task,
            handled,
        } => {
            let scope = Scope {
                cluster: Some(cluster.clone()),
                task: Some(task.arn.clone()),
                ..Scope::default()
            };
            let m = marker(&r.event_arn);
            if handled.as_deref() == Some(m.as_str()) {
                return Classified::Report(report(
                    "standalone-task",
                    Outcome::AlreadyDone,
                    scope,
                    Notice::info(
                        "Standalone task already reported for this retirement",
                        format!(
                            "Task `{}` (cluster `{cluster}`) carries `{HANDLED_TAG}` for this notice: people were already told to re-run it (a repeated or updated notice). {}",
                            task.arn,
                            deadline(r)
                        ),
                    )
                    .detail("event_arn", &r.event_arn),
                ));
            }
            let who = task.started_by.as_deref().unwrap_or("RunTask (no startedBy)");
            Classified::Report(Step::Report {
                action: "standalone-task",
                outcome: Outcome::Warning,
                scope,
                notice: Notice::warning(
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
                .next_step(format!("Re-run the task (or let {} start a new one) before the deadline; new tasks start on patched capacity.", escape(who, 200))),
                mark: Some(Mark::Ecs {
                    arn: task.arn.clone(),
                    key: HANDLED_TAG,
                    value: m,
                }),
            })
        }
        Observed::TaskGone { cluster, arn } => Classified::Report(report(
            "retire-task",
            Outcome::AlreadyDone,
            Scope {
                cluster: cluster.clone(),
                task: Some(arn.clone()),
                ..Scope::default()
            },
            Notice::info(
                "Retiring task already stopped",
                format!("Task `{arn}` named by {} has already stopped (or is unknown to ECS); nothing to replace.", event()),
            ),
        )),
        Observed::Unmanaged { cluster, entity } => Classified::Report(report(
            "retire-task",
            Outcome::Skipped,
            Scope {
                cluster: cluster.clone(),
                ..Scope::default()
            },
            Notice::warning(
                format!("Retirement in unmanaged cluster {}", cluster.as_deref().unwrap_or("(unknown)")),
                format!(
                    "`{}` is not in a cluster tagged `ecs-autopilot:managed=true`, so it is left alone. {}",
                    escape(entity, 300),
                    deadline(r)
                ),
            )
            .detail("entity", entity)
            .next_step("Force a new deployment of the service yourself before the deadline, or tag the cluster ecs-autopilot:managed=true."),
        )),
        Observed::Instance { instance_id, group } => classify_instance(r, instance_id, group.as_ref()),
    }
}

fn classify_instance(r: &Retirement, instance_id: &str, group: Option<&Group>) -> Classified {
    let scope = Scope {
        group: group.map(|g| g.name.clone()),
        instance: Some(instance_id.to_string()),
        ..Scope::default()
    };
    let Some(group) = group else {
        return Classified::Report(report(
            "replace-instance",
            Outcome::Skipped,
            scope,
            Notice::warning(
                format!("{instance_id} retires but is in no Auto Scaling group"),
                format!("`{instance_id}` is not in an Auto Scaling group, so nothing replaces it automatically and it is left alone. {}", deadline(r)),
            )
            .next_step("Stop and start (or replace) the instance yourself before the deadline."),
        ));
    };
    let Some(cluster) = group.cluster() else {
        return Classified::Report(report(
            "replace-instance",
            Outcome::Skipped,
            scope,
            Notice::warning(
                format!("{instance_id} retires in unmanaged group {}", group.name),
                format!(
                    "Auto Scaling group `{}` has no `ecs-autopilot:cluster` tag, so `{instance_id}` is left alone. {}",
                    group.name,
                    deadline(r)
                ),
            )
            .next_step("Replace the instance yourself before the deadline, or tag the group ecs-autopilot:cluster=CLUSTER."),
        ));
    };
    let member = group
        .instances
        .iter()
        .find(|i| i.instance_id == instance_id);
    let going = member.is_none_or(|m| {
        m.health_status.eq_ignore_ascii_case("Unhealthy")
            || m.lifecycle_state.starts_with("Terminat")
    });
    if going {
        let state = member
            .map(|m| format!("{} / {}", m.lifecycle_state, m.health_status))
            .unwrap_or_else(|| "no longer in the group".into());
        return Classified::Report(report(
            "replace-instance",
            Outcome::AlreadyDone,
            Scope {
                cluster: Some(cluster.to_string()),
                ..scope
            },
            Notice::info(
                format!("{instance_id} is already being replaced"),
                format!("`{instance_id}` in group `{}` is already on its way out ({state}); nothing more to do.", group.name),
            ),
        ));
    }
    Classified::Act(Action::ReplaceInstance {
        instance_id: instance_id.to_string(),
        group: group.name.clone(),
        cluster: cluster.to_string(),
        scheduled: group.tags.get(SCHEDULED_TAG).cloned(),
    })
}

fn act_now(r: &Retirement, action: Action, why: Why, reason: &str) -> Step {
    match action {
        Action::Redeploy {
            cluster,
            service,
            via_tasks,
        } => Step::Redeploy {
            notice: Notice::info(
                format!("Replacing tasks of {} ahead of retirement", service.name),
                format!(
                    "{} A new deployment of service `{}` (cluster `{cluster}`) was forced, so ECS replaces its {} task(s) within the service's minimumHealthyPercent / maximumPercent. {reason}",
                    deadline(r),
                    service.name,
                    service.running_count
                ),
            )
            .detail("service", &service.name)
            .detail("retiring_tasks", &via_tasks)
            .detail("retires_at", r.start_time)
            .detail("why_now", why)
            .detail("event_arn", &r.event_arn),
            marker: marker(&r.event_arn),
            service_arn: service.arn,
            service: service.name,
            cluster,
        },
        Action::ReplaceInstance {
            instance_id,
            group,
            cluster,
            ..
        } => Step::ReplaceInstance {
            notice: Notice::info(
                format!("Replacing {instance_id} ahead of retirement"),
                format!(
                    "{} `{instance_id}` was marked Unhealthy in group `{group}`, so the group launches a replacement and terminates it through its terminate lifecycle hook, where instance-drain drains cluster `{cluster}` first. {reason}",
                    deadline(r)
                ),
            )
            .detail("retires_at", r.start_time)
            .detail("why_now", why)
            .detail("event_arn", &r.event_arn),
            instance_id,
            group,
            cluster,
        },
    }
}

/// A notice AWS has closed: nothing left to do.
pub fn closed(r: &Retirement) -> Plan {
    let entities: Vec<String> = r
        .targets
        .iter()
        .map(|t| serde_json::to_string(t).unwrap_or_default())
        .collect();
    vec![report(
        "retire",
        Outcome::Skipped,
        Scope::default(),
        Notice::info(
            format!("Retirement notice {} closed", r.code),
            format!(
                "AWS closed {} (the retirement happened or was cancelled); nothing is done for a closed notice.",
                r.event_arn
            ),
        )
        .detail("event_arn", &r.event_arn)
        .detail("entities", entities),
    )]
}

/// An event this function does not act on.
pub fn ignored(reason: &str) -> Plan {
    vec![report(
        "ignore",
        Outcome::Skipped,
        Scope::default(),
        Notice::info("Ignored event", escape(reason, 500)),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Source, Target};
    use chrono::TimeZone;
    use shared::aws::autoscaling::GroupInstance;
    use shared::config::Env;
    use shared::notify::Severity;
    use std::collections::BTreeMap;

    const ARN: &str = "arn:aws:health:us-east-1::event/ECS/AWS_ECS_TASK_PATCHING_RETIREMENT/X";

    /// Wednesday 2024-01-10 12:00 UTC.
    fn wednesday_noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap()
    }

    fn config(window: &str) -> Config {
        Config::from_env(&Env::from_pairs([
            ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
            ("RETIREMENT_QUEUE_URL", "http://q"),
            ("MAINTENANCE_WINDOW", window),
            ("LEAD_TIME_HOURS", "2"),
        ]))
        .unwrap()
    }

    fn retirement(start: Option<DateTime<Utc>>) -> Retirement {
        Retirement {
            source: Source::EcsTasks,
            event_arn: ARN.into(),
            code: "AWS_ECS_TASK_PATCHING_RETIREMENT".into(),
            start_time: start,
            last_updated: None,
            description: None,
            targets: vec![Target::Service {
                cluster: "prod".into(),
                service: "web".into(),
            }],
            unrecognized: vec![],
        }
    }

    fn service(tags: &[(&str, &str)]) -> Observed {
        Observed::Service {
            cluster: "prod".into(),
            service: ServiceDescription {
                arn: "arn:aws:ecs:us-east-1:1:service/prod/web".into(),
                name: "web".into(),
                cluster_arn: "arn:aws:ecs:us-east-1:1:cluster/prod".into(),
                status: "ACTIVE".into(),
                desired_count: 2,
                running_count: 2,
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            },
            via_tasks: vec![],
        }
    }

    fn task(group: &str, started_by: Option<&str>) -> Task {
        Task {
            arn: "arn:aws:ecs:us-east-1:1:task/prod/t1".into(),
            last_status: "RUNNING".into(),
            desired_status: "RUNNING".into(),
            group: group.into(),
            started_by: started_by.map(str::to_string),
            started_at: None,
            task_definition_arn: "td:1".into(),
            launch_type: Some("FARGATE".into()),
            container_instance_arn: None,
        }
    }

    fn group(tagged: bool, lifecycle: &str, health: &str) -> Group {
        Group {
            name: "web-asg".into(),
            tags: if tagged {
                BTreeMap::from([("ecs-autopilot:cluster".into(), "prod".into())])
            } else {
                BTreeMap::new()
            },
            instances: vec![GroupInstance {
                instance_id: "i-0aaa".into(),
                lifecycle_state: lifecycle.into(),
                health_status: health.into(),
            }],
        }
    }

    fn instance(group: Option<Group>) -> Observed {
        Observed::Instance {
            instance_id: "i-0aaa".into(),
            group,
        }
    }

    fn actions(plan: &Plan) -> Vec<&'static str> {
        plan.iter().map(Step::action).collect()
    }

    fn outcomes(plan: &Plan) -> Vec<Outcome> {
        plan.iter()
            .filter_map(|s| match s {
                Step::Report { outcome, .. } => Some(*outcome),
                _ => None,
            })
            .collect()
    }

    fn days(n: i64) -> Duration {
        Duration::days(n)
    }

    // --- the timing rule ------------------------------------------------------------

    #[test]
    fn without_a_window_a_future_retirement_is_handled_at_once() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::always();
        assert_eq!(
            when(Some(now + days(7)), &w, Duration::hours(2), now),
            When::Now(Why::AlwaysOpen)
        );
    }

    #[test]
    fn inside_the_window_before_the_start_acts_now() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Wed 11:00-13:00").unwrap();
        assert_eq!(
            when(Some(now + days(7)), &w, Duration::hours(2), now),
            When::Now(Why::WindowOpen)
        );
    }

    #[test]
    fn a_closed_window_that_opens_in_time_is_waited_for() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Sat 02:00-05:00").unwrap();
        let saturday = Utc.with_ymd_and_hms(2024, 1, 13, 2, 0, 0).unwrap();
        assert_eq!(
            when(Some(now + days(7)), &w, Duration::hours(2), now),
            When::At(saturday)
        );
    }

    #[test]
    fn a_window_opening_after_the_retirement_is_not_waited_for() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Sat 02:00-05:00").unwrap();
        let friday = now + days(2);
        let saturday = Utc.with_ymd_and_hms(2024, 1, 13, 2, 0, 0).unwrap();
        assert_eq!(
            when(Some(friday), &w, Duration::hours(2), now),
            When::Now(Why::WindowTooLate {
                next_open: saturday
            })
        );
    }

    #[test]
    fn a_window_opening_inside_the_lead_time_is_too_late() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Sat 02:00-05:00").unwrap();
        let saturday = Utc.with_ymd_and_hms(2024, 1, 13, 2, 0, 0).unwrap();
        let just_after = saturday + Duration::hours(1);
        assert!(matches!(
            when(Some(just_after), &w, Duration::hours(2), now),
            When::Now(Why::WindowTooLate { .. })
        ));
        let exactly_lead = saturday + Duration::hours(2);
        assert_eq!(
            when(Some(exactly_lead), &w, Duration::hours(2), now),
            When::At(saturday)
        );
    }

    #[test]
    fn a_start_time_already_past_acts_now_even_with_the_window_closed() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Sat 02:00-05:00").unwrap();
        assert_eq!(
            when(
                Some(now - Duration::minutes(1)),
                &w,
                Duration::hours(2),
                now
            ),
            When::Now(Why::StartPassed)
        );
    }

    #[test]
    fn no_schedule_acts_now() {
        let now = wednesday_noon();
        let w = MaintenanceWindow::parse("Sat 02:00-05:00").unwrap();
        assert_eq!(
            when(None, &w, Duration::hours(2), now),
            When::Now(Why::NoSchedule)
        );
    }

    // --- services -------------------------------------------------------------------

    #[test]
    fn a_managed_service_is_redeployed_and_marked_for_this_event() {
        let now = wednesday_noon();
        let plan = retire(
            &retirement(Some(now + days(7))),
            &[service(&[])],
            &Deferral::default(),
            &config(""),
            now,
        );
        let [Step::Redeploy {
            cluster,
            service,
            marker: m,
            notice,
            ..
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!((cluster.as_str(), service.as_str()), ("prod", "web"));
        assert_eq!(m, &marker(ARN));
        assert!(notice.description.contains("always open"));
        assert_eq!(notice.details["why_now"]["reason"], "always_open");
    }

    #[test]
    fn a_service_already_marked_for_this_event_is_already_done() {
        let now = wednesday_noon();
        let plan = retire(
            &retirement(Some(now + days(7))),
            &[service(&[(HANDLED_TAG, &marker(ARN))])],
            &Deferral::default(),
            &config(""),
            now,
        );
        assert_eq!(actions(&plan), ["redeploy-service"]);
        assert_eq!(outcomes(&plan), [Outcome::AlreadyDone]);
    }

    #[test]
    fn a_mark_from_another_retirement_does_not_stop_this_one() {
        let now = wednesday_noon();
        let plan = retire(
            &retirement(Some(now + days(7))),
            &[service(&[(HANDLED_TAG, &marker("arn:older-event"))])],
            &Deferral::default(),
            &config(""),
            now,
        );
        assert!(matches!(&plan[..], [Step::Redeploy { .. }]));
    }

    #[test]
    fn the_marker_is_stable_and_distinguishes_events() {
        assert_eq!(marker(""), "cbf29ce484222325");
        assert_eq!(marker("a"), "af63dc4c8601ec8c");
        assert_ne!(marker(ARN), marker(&format!("{ARN}2")));
    }

    #[test]
    fn outside_the_window_the_retirement_is_scheduled_once_with_a_capped_delay() {
        let now = wednesday_noon();
        let r = retirement(Some(now + days(7)));
        let c = config("Sat 02:00-05:00");
        let plan = retire(&r, &[service(&[])], &Deferral::default(), &c, now);
        let [Step::Defer {
            until,
            delay_seconds,
            deferral,
            notice: Some(notice),
            marks,
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(
            marks,
            &[Mark::Ecs {
                arn: "arn:aws:ecs:us-east-1:1:service/prod/web".into(),
                key: SCHEDULED_TAG,
                value: marker(ARN),
            }]
        );
        assert_eq!(*until, Utc.with_ymd_and_hms(2024, 1, 13, 2, 0, 0).unwrap());
        assert_eq!(*delay_seconds, 900);
        assert_eq!(deferral.deferrals, 1);
        assert_eq!(deferral.first_deferred_at, Some(now));
        assert!(notice.description.contains("service `web`"));

        // Re-deferred silently until the window opens.
        let later = now + Duration::hours(1);
        let plan = retire(&r, &[service(&[])], deferral, &c, later);
        let [Step::Defer {
            notice: None,
            deferral: again,
            marks,
            ..
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(again.deferrals, 2);
        assert!(marks.is_empty(), "marked on the first look only");
        assert_eq!(again.first_deferred_at, Some(now));
    }

    #[test]
    fn a_repeated_notice_already_scheduled_queues_no_second_look() {
        let now = wednesday_noon();
        let r = retirement(Some(now + days(7)));
        let c = config("Sat 02:00-05:00");
        let scheduled = with_marker(Some(&marker("arn:other")), &marker(ARN));
        let repeat = retire(
            &r,
            &[service(&[(SCHEDULED_TAG, &scheduled)])],
            &Deferral::default(),
            &c,
            now,
        );
        let [Step::Report {
            action: "schedule",
            outcome: Outcome::Skipped,
            notice,
            mark: None,
            ..
        }] = &repeat[..]
        else {
            panic!("{repeat:?}")
        };
        assert!(
            notice.description.contains("service `web`"),
            "{}",
            notice.description
        );

        // Another notice's marker does not count, and this one is added in front of it.
        let other = retire(
            &r,
            &[service(&[(SCHEDULED_TAG, &marker("arn:other"))])],
            &Deferral::default(),
            &c,
            now,
        );
        let [Step::Defer { marks, .. }] = &other[..] else {
            panic!("{other:?}")
        };
        let [Mark::Ecs { value, .. }] = &marks[..] else {
            panic!("{marks:?}")
        };
        assert_eq!(value, &scheduled);

        // The queued look itself carries the marker too, and keeps waiting.
        let look = Deferral {
            deferrals: 1,
            first_deferred_at: Some(now),
        };
        let plan = retire(
            &r,
            &[service(&[(SCHEDULED_TAG, &scheduled)])],
            &look,
            &c,
            now,
        );
        assert!(
            matches!(&plan[..], [Step::Defer { notice: None, .. }]),
            "{plan:?}"
        );

        // A repeat inside the window acts: the queued look then finds it done.
        let open = Utc.with_ymd_and_hms(2024, 1, 13, 3, 0, 0).unwrap();
        let plan = retire(
            &r,
            &[service(&[(SCHEDULED_TAG, &scheduled)])],
            &Deferral::default(),
            &c,
            open,
        );
        assert_eq!(actions(&plan), ["redeploy-service"]);
    }

    #[test]
    fn a_scheduled_instance_is_marked_on_its_group_and_a_repeat_skips() {
        let now = wednesday_noon();
        let r = retirement(Some(now + days(7)));
        let c = config("Sat 02:00-05:00");
        let plan = retire(
            &r,
            &[instance(Some(group(true, "InService", "Healthy")))],
            &Deferral::default(),
            &c,
            now,
        );
        let [Step::Defer { marks, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(
            marks,
            &[Mark::Group {
                name: "web-asg".into(),
                key: SCHEDULED_TAG,
                value: marker(ARN),
            }]
        );
        let mut marked = group(true, "InService", "Healthy");
        marked.tags.insert(SCHEDULED_TAG.into(), marker(ARN));
        let repeat = retire(&r, &[instance(Some(marked))], &Deferral::default(), &c, now);
        assert_eq!(outcomes(&repeat), [Outcome::Skipped]);
    }

    #[test]
    fn the_scheduled_tag_keeps_the_newest_markers_once_within_a_tag_value() {
        assert_eq!(with_marker(None, "a"), "a");
        assert_eq!(with_marker(Some("b a c"), "a"), "a b c");
        let mut value = String::new();
        for n in 0..40 {
            value = with_marker(Some(&value), &marker(&n.to_string()));
        }
        assert!(value.len() <= 256, "{}", value.len());
        assert_eq!(value.split(' ').count(), SCHEDULED_KEPT);
        assert!(value.starts_with(&marker("39")));
        assert!(has_marker(Some(&value), &marker("30")));
        assert!(!has_marker(Some(&value), &marker("3")));
    }

    #[test]
    fn the_last_deferral_waits_only_until_the_window_opens() {
        let c = config("Sat 02:00-05:00");
        let opens = Utc.with_ymd_and_hms(2024, 1, 13, 2, 0, 0).unwrap();
        let now = opens - Duration::seconds(125);
        let plan = retire(
            &retirement(Some(opens + days(3))),
            &[service(&[])],
            &Deferral {
                deferrals: 5,
                first_deferred_at: None,
            },
            &c,
            now,
        );
        assert!(matches!(
            &plan[..],
            [Step::Defer {
                delay_seconds: 125,
                ..
            }]
        ));
        // When the deferred event comes back inside the window, it acts.
        let plan = retire(
            &retirement(Some(opens + days(3))),
            &[service(&[])],
            &Deferral {
                deferrals: 6,
                first_deferred_at: None,
            },
            &c,
            opens + Duration::seconds(3),
        );
        assert_eq!(actions(&plan), ["redeploy-service"]);
    }

    #[test]
    fn acting_now_because_the_window_is_too_late_says_why() {
        let now = wednesday_noon();
        let plan = retire(
            &retirement(Some(now + days(1))),
            &[service(&[])],
            &Deferral::default(),
            &config("Sat 02:00-05:00"),
            now,
        );
        let [Step::Redeploy { notice, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert!(
            notice.description.contains("next opens at"),
            "{}",
            notice.description
        );
        assert_eq!(notice.details["why_now"]["reason"], "window_too_late");
    }

    #[test]
    fn a_deleted_service_is_already_done() {
        let now = wednesday_noon();
        let plan = retire(
            &retirement(Some(now + days(7))),
            &[Observed::ServiceGone {
                cluster: "prod".into(),
                service: "web".into(),
            }],
            &Deferral::default(),
            &config(""),
            now,
        );
        assert_eq!(outcomes(&plan), [Outcome::AlreadyDone]);
    }

    // --- tasks the function cannot replace -------------------------------------------

    #[test]
    fn a_standalone_task_is_reported_with_who_started_it_and_the_deadline_never_stopped() {
        let now = wednesday_noon();
        let plan = retire(
            &retirement(Some(now + days(7))),
            &[Observed::Standalone {
                cluster: "prod".into(),
                task: task("family:batch", Some("events-rule/nightly")),
                handled: Some(marker("arn:an-older-notice")),
            }],
            &Deferral::default(),
            &config(""),
            now,
        );
        let [Step::Report {
            action,
            outcome,
            notice,
            scope,
            mark: Some(mark),
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(
            mark,
            &Mark::Ecs {
                arn: "arn:aws:ecs:us-east-1:1:task/prod/t1".into(),
                key: HANDLED_TAG,
                value: marker(ARN),
            }
        );
        assert_eq!(*action, "standalone-task");
        assert_eq!(*outcome, Outcome::Warning);
        assert_eq!(notice.severity, Severity::Warning);
        assert!(notice.description.contains("events-rule/nightly"));
        assert!(notice.description.contains("17 Jan 2024"));
        assert_eq!(
            scope.task.as_deref(),
            Some("arn:aws:ecs:us-east-1:1:task/prod/t1")
        );
    }

    #[test]
    fn a_standalone_task_already_reported_for_this_notice_is_not_reported_again() {
        let now = wednesday_noon();
        let plan = retire(
            &retirement(Some(now + days(7))),
            &[Observed::Standalone {
                cluster: "prod".into(),
                task: task("family:batch", None),
                handled: Some(marker(ARN)),
            }],
            &Deferral::default(),
            &config(""),
            now,
        );
        let [Step::Report {
            outcome: Outcome::AlreadyDone,
            mark: None,
            ..
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
    }

    #[test]
    fn unmanaged_and_finished_tasks_are_only_reported() {
        let now = wednesday_noon();
        let plan = retire(
            &retirement(Some(now + days(7))),
            &[
                Observed::Unmanaged {
                    cluster: Some("other".into()),
                    entity: "other|api".into(),
                },
                Observed::TaskGone {
                    cluster: Some("prod".into()),
                    arn: "t".into(),
                },
            ],
            &Deferral::default(),
            &config(""),
            now,
        );
        assert_eq!(outcomes(&plan), [Outcome::Skipped, Outcome::AlreadyDone]);
    }

    #[test]
    fn notify_only_findings_are_not_repeated_on_deferred_looks() {
        let now = wednesday_noon();
        let observed = [
            Observed::Standalone {
                cluster: "prod".into(),
                task: task("family:batch", None),
                handled: None,
            },
            service(&[]),
        ];
        let c = config("Sat 02:00-05:00");
        let r = retirement(Some(now + days(7)));
        let first = retire(&r, &observed, &Deferral::default(), &c, now);
        assert_eq!(actions(&first), ["standalone-task", "schedule"]);
        let deferred = Deferral {
            deferrals: 1,
            first_deferred_at: Some(now),
        };
        let again = retire(&r, &observed, &deferred, &c, now + Duration::hours(1));
        assert_eq!(actions(&again), ["schedule"]);
    }

    #[test]
    fn a_deferred_look_finding_the_work_done_by_a_duplicate_stays_silent() {
        let now = wednesday_noon();
        let observed = [
            service(&[(HANDLED_TAG, &marker(ARN))]),
            Observed::TaskGone {
                cluster: Some("prod".into()),
                arn: "t".into(),
            },
        ];
        let deferred = Deferral {
            deferrals: 4,
            first_deferred_at: Some(now),
        };
        let plan = retire(
            &retirement(Some(now + days(7))),
            &observed,
            &deferred,
            &config("Sat 02:00-05:00"),
            now,
        );
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn nothing_to_replace_means_nothing_to_schedule() {
        let now = wednesday_noon();
        let plan = retire(
            &retirement(Some(now + days(7))),
            &[Observed::TaskGone {
                cluster: None,
                arn: "t".into(),
            }],
            &Deferral::default(),
            &config("Sat 02:00-05:00"),
            now,
        );
        assert_eq!(actions(&plan), ["retire-task"]);
    }

    #[test]
    fn entities_that_are_not_understood_are_reported_once() {
        let now = wednesday_noon();
        let mut r = retirement(Some(now + days(7)));
        r.unrecognized = vec!["UNKNOWN".into()];
        let plan = retire(&r, &[], &Deferral::default(), &config(""), now);
        assert_eq!(actions(&plan), ["ignore"]);
    }

    // --- EC2 instances --------------------------------------------------------------

    #[test]
    fn an_instance_in_a_managed_group_is_marked_unhealthy() {
        let now = wednesday_noon();
        let plan = retire(
            &retirement(Some(now + days(7))),
            &[instance(Some(group(true, "InService", "Healthy")))],
            &Deferral::default(),
            &config(""),
            now,
        );
        let [Step::ReplaceInstance {
            instance_id,
            group,
            cluster,
            notice,
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(
            (instance_id.as_str(), group.as_str(), cluster.as_str()),
            ("i-0aaa", "web-asg", "prod")
        );
        assert!(notice.description.contains("instance-drain"));
    }

    #[test]
    fn instances_outside_managed_groups_are_only_reported() {
        let now = wednesday_noon();
        for g in [None, Some(group(false, "InService", "Healthy"))] {
            let plan = retire(
                &retirement(Some(now + days(7))),
                &[instance(g)],
                &Deferral::default(),
                &config(""),
                now,
            );
            assert_eq!(outcomes(&plan), [Outcome::Skipped]);
            assert_eq!(actions(&plan), ["replace-instance"]);
        }
    }

    #[test]
    fn an_instance_already_unhealthy_or_terminating_is_already_done() {
        let now = wednesday_noon();
        for g in [
            group(true, "InService", "Unhealthy"),
            group(true, "Terminating:Wait", "Healthy"),
            Group {
                instances: vec![],
                ..group(true, "InService", "Healthy")
            },
        ] {
            let plan = retire(
                &retirement(Some(now + days(7))),
                &[instance(Some(g))],
                &Deferral::default(),
                &config(""),
                now,
            );
            assert_eq!(outcomes(&plan), [Outcome::AlreadyDone]);
        }
    }

    #[test]
    fn a_rebalance_recommendation_replaces_at_once_even_outside_the_window() {
        let now = wednesday_noon();
        let mut r = retirement(None);
        r.source = Source::Rebalance;
        let plan = retire(
            &r,
            &[instance(Some(group(true, "InService", "Healthy")))],
            &Deferral::default(),
            &config("Sat 02:00-05:00"),
            now,
        );
        let [Step::ReplaceInstance { notice, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(notice.details["why_now"]["reason"], "no_schedule");
    }

    // --- closed and ignored -----------------------------------------------------------

    #[test]
    fn a_closed_notice_is_reported_and_not_acted_on() {
        let plan = closed(&retirement(Some(wednesday_noon())));
        assert_eq!(actions(&plan), ["retire"]);
        assert_eq!(outcomes(&plan), [Outcome::Skipped]);
    }

    #[test]
    fn ignored_events_are_reported_as_skipped() {
        assert_eq!(outcomes(&ignored("other code")), [Outcome::Skipped]);
    }
}
