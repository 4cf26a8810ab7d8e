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
use shared::aws::ecs::{ContainerImage, ServiceDescription, Task, TaskStatus};
use shared::aws::sqs::MAX_DELAY_SECONDS;
use shared::notify::{escape, Notice, Outcome};
use shared::window::MaintenanceWindow;

use crate::config::{Config, Replace};
use crate::forecast::{forecast, Budget, Forecast};
use crate::parse::{Deferral, Retirement, Source};
use std::collections::BTreeMap;

/// Tag on a service whose tasks were replaced for a retirement notice; its value is
/// [`marker`] of the notice's event ARN. A repeated or updated notice finds it and does
/// not deploy again.
pub const HANDLED_TAG: &str = "ecs-autopilot:retirement-handled";

/// Tag on what a put-off retirement will replace (a service, or the Auto Scaling group of
/// an instance): the [`marker`]s of the notices whose later look is already queued, newest
/// first. A repeated notice that finds its marker on everything it would replace does not
/// queue a second look.
pub const SCHEDULED_TAG: &str = "ecs-autopilot:retirement-scheduled";

/// Tag on an opted-in group whose budget forecast was sent: a fingerprint of the hosts
/// that were waiting, so the notices of one wave (one per host, each seeing the whole
/// group) warn once.
pub const FORECAST_TAG: &str = "ecs-autopilot:retirement-forecast";

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
    /// Stop a batch of a service's retiring tasks (`RETIREMENT_REPLACE=stop-tasks`): the
    /// scheduler replaces them within the current deployment, with the same image digests.
    /// The last batch also marks the service handled for the notice.
    StopTasks {
        cluster: String,
        service: String,
        service_arn: String,
        tasks: Vec<String>,
        last: bool,
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
        /// `schedule` (waiting for the window) or `wait-budget` (for the disruption budget).
        action: &'static str,
        /// The outcome the notice is sent with.
        outcome: Outcome,
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
            Step::StopTasks { .. } => "stop-tasks",
            Step::Defer { action, .. } => action,
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
        /// The cluster's services with a deployment rolling out now (the redeploy budget).
        deploying: Vec<String>,
        /// The images of the service's task definition (a new deployment resolves tags again).
        images: Vec<ContainerImage>,
        /// The service's tasks (read only with `RETIREMENT_REPLACE=stop-tasks`).
        tasks: Vec<Task>,
    },
    /// The service was deleted (or is being deleted): its tasks go anyway.
    ServiceGone { cluster: String, service: String },
    /// A service named by the old short ARN (no cluster) that several managed clusters
    /// have: which one retires is not known, so none is touched.
    AmbiguousService {
        service: String,
        arn: String,
        clusters: Vec<String>,
    },
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
        /// The group has Capacity Rebalancing on.
        capacity_rebalance: bool,
        /// The group's hosts with an EC2 scheduled event (DescribeInstanceStatus), this
        /// one included, whatever notice names them: what the budget forecast and the
        /// group's retirement queue count.
        others_retiring: Vec<RetiringHost>,
    },
}

/// A host that AWS has scheduled for retirement, stop or reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetiringHost {
    pub instance_id: String,
    /// The earliest `NotBefore` of its scheduled events.
    pub not_before: Option<DateTime<Utc>>,
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
        /// Other services of the cluster with a deployment rolling out.
        busy: Vec<String>,
        images: Vec<ContainerImage>,
        tasks: Vec<Task>,
    },
    ReplaceInstance {
        instance_id: String,
        group: String,
        cluster: String,
        /// The group's [`SCHEDULED_TAG`].
        scheduled: Option<String>,
        /// Other instances of the group in replacement (Unhealthy, Pending*, Terminating*).
        busy: Vec<String>,
        /// Hosts of the group that AWS has scheduled and are not in replacement yet (this
        /// one too, when EC2 lists it).
        others_waiting: Vec<RetiringHost>,
        /// The group's [`FORECAST_TAG`].
        forecast_sent: Option<String>,
    },
}

/// What a disruption budget counts: hosts of a group, or redeploys in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum BudgetKey {
    Group(String),
    Cluster(String),
}

impl Action {
    fn budget_key(&self) -> BudgetKey {
        match self {
            Action::Redeploy { cluster, .. } => BudgetKey::Cluster(cluster.clone()),
            Action::ReplaceInstance { group, .. } => BudgetKey::Group(group.clone()),
        }
    }

    /// Replacements of the same budget already under way, as observed in the fleet.
    fn busy(&self) -> &[String] {
        match self {
            Action::Redeploy { busy, .. } | Action::ReplaceInstance { busy, .. } => busy,
        }
    }

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
        match classify(r, o, config.replace) {
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
                    "These affected entities are neither a task ARN, a service ARN, `cluster | service`, `cluster/service` nor an instance id, so nothing was done about them: {}",
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
    let forecasts = budget_forecasts(r, &actions, config, now);
    match when(r.start_time, &config.window, lead, now) {
        When::At(until) => {
            let m = marker(&r.event_arn);
            if first_look && actions.iter().all(|a| has_marker(a.scheduled(), &m)) {
                plan.push(already_scheduled(r, &actions, until));
                return plan;
            }
            if first_look {
                plan.extend(forecast_warnings(r, &forecasts));
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
                action: "schedule",
                outcome: Outcome::Done,
                until,
                delay_seconds: delay as u32,
                deferral: Deferral {
                    deferrals: deferral.deferrals + 1,
                    first_deferred_at: deferral.first_deferred_at.or(Some(now)),
                    budget_waits: deferral.budget_waits,
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
            plan.extend(within_budget(
                r, actions, deferral, config, now, why, &reason, &forecasts,
            ));
        }
    }
    plan
}

fn limit(key: &BudgetKey, config: &Config) -> usize {
    match key {
        BudgetKey::Group(_) => config.max_replacements_per_group,
        BudgetKey::Cluster(_) => config.max_redeploys_per_cluster,
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

/// The disruption budget: acts on as many of `actions` as their budget has room for,
/// counting what the fleet shows in replacement now plus what this plan starts, and puts
/// the rest off for `RETIREMENT_POLL_SECONDS`. The count comes from the fleet on every
/// look, never from memory, so notices arriving in any order share one budget. At the
/// latest safe start (`startTime − LEAD_TIME_HOURS`) a waiting replacement goes anyway:
/// AWS retiring the resource without a drain would be worse than one more at once.
#[allow(clippy::too_many_arguments)]
fn within_budget(
    r: &Retirement,
    actions: Vec<Action>,
    deferral: &Deferral,
    config: &Config,
    now: DateTime<Utc>,
    why: Why,
    reason: &str,
    forecasts: &[Forecasted],
) -> Plan {
    let lead = Duration::hours(config.lead_time_hours);
    let latest = r.start_time.map(|s| s - lead);
    let past_latest = latest.is_some_and(|l| now >= l);
    let mut started: BTreeMap<BudgetKey, usize> = BTreeMap::new();
    let mut plan = vec![];
    let mut waiting: Vec<(Action, usize)> = vec![];
    let mut look_again = false;
    // Said early: on the first look, whatever happens next; on a later look (the first
    // came before the window opened), when it first waits for the budget.
    let first_look = deferral.deferrals == 0;
    if first_look {
        plan.extend(forecast_warnings(r, forecasts));
    }
    let queues = group_queues(r, &actions, config);
    let mut heads_started: Vec<String> = vec![];
    for a in actions {
        if config.replace == Replace::StopTasks && matches!(a, Action::Redeploy { .. }) {
            let (steps, again) = stop_tasks(r, a, deferral, now, why, reason);
            plan.extend(steps);
            look_again |= again;
            continue;
        }
        let key = a.budget_key();
        let limit = limit(&key, config);
        let ahead = a.busy().len() + started.get(&key).copied().unwrap_or(0);
        if let (
            Action::ReplaceInstance {
                instance_id,
                group,
                cluster,
                busy,
                ..
            },
            Some(go),
        ) = (&a, queues.get(&key))
        {
            // The group's queue decides, so every look (this notice's and any running
            // at the same moment) picks the same hosts, and none can take a slot twice.
            let mine = go.contains(instance_id);
            if !mine && !past_latest {
                for head in go {
                    if !heads_started.contains(head) {
                        heads_started.push(head.clone());
                        plan.push(head_of_queue(r, head, group, cluster, why, reason));
                    }
                }
                let ahead = busy.len() + go.len();
                // The heads just marked are in replacement too: what this one waits for.
                let mut a = a;
                if let Action::ReplaceInstance { busy, .. } = &mut a {
                    busy.extend(
                        go.iter()
                            .filter(|h| !busy.contains(h))
                            .cloned()
                            .collect::<Vec<_>>(),
                    );
                }
                waiting.push((a, ahead));
                continue;
            }
            if mine {
                if !heads_started.contains(instance_id) {
                    heads_started.push(instance_id.clone());
                    plan.push(act_now(r, a, why, reason));
                }
                continue;
            }
        }
        if ahead < limit {
            *started.entry(key).or_default() += 1;
            plan.push(act_now(r, a, why, reason));
        } else if past_latest {
            *started.entry(key.clone()).or_default() += 1;
            let over = format!(
                "{reason} The disruption budget ({}) is full ({ahead} in replacement: {}), but the latest safe start ({} hour(s) before the retirement) has come, so it goes anyway.",
                describe_budget(&key, config),
                escape(&a.busy().join(", "), 300),
                config.lead_time_hours
            );
            plan.push(act_now(r, a, why, &over));
        } else {
            *started.entry(key).or_default() += 1;
            waiting.push((a, ahead));
        }
    }
    if waiting.is_empty() && !look_again {
        return plan;
    }
    let delay = config.poll_seconds;
    let budget_wait = !waiting.is_empty();
    if budget_wait && deferral.budget_waits == 0 && !first_look {
        plan.extend(forecast_warnings(r, forecasts));
    }
    let notice = (budget_wait && deferral.budget_waits == 0)
        .then(|| budget_notice(r, &waiting, config, forecasts));
    let outcome = Outcome::Done;
    plan.push(Step::Defer {
        action: if budget_wait {
            "wait-budget"
        } else {
            "stop-tasks"
        },
        outcome,
        until: now + Duration::seconds(i64::from(delay)),
        delay_seconds: delay,
        deferral: Deferral {
            deferrals: deferral.deferrals + 1,
            first_deferred_at: deferral.first_deferred_at.or(Some(now)),
            budget_waits: deferral.budget_waits + u32::from(budget_wait),
        },
        notice,
        marks: vec![],
    });
    plan
}

/// Each group's retirement queue, when AWS has scheduled other hosts of it too: every
/// host to replace (this notice's and the others AWS scheduled, whatever notice names
/// them), earliest deadline first, then by instance id. The first `budget − in
/// replacement` go now. Every look reads the same queue from EC2 and the group, so looks
/// running at the same moment pick the same hosts: marking a host Unhealthy twice is
/// harmless, taking two slots is not possible. A look whose own host is not at the head
/// replaces the head (its deadline is no later, so whatever lets this host go now lets it
/// go too) and waits.
fn group_queues(
    r: &Retirement,
    actions: &[Action],
    config: &Config,
) -> BTreeMap<BudgetKey, Vec<String>> {
    pending(r, actions, config)
        .into_iter()
        .filter(|(key, p)| matches!(key, BudgetKey::Group(_)) && p.others_known)
        .map(|(key, p)| {
            let free = limit(&key, config).saturating_sub(p.in_replacement.len());
            let mut order: Vec<(DateTime<Utc>, String)> =
                p.waiting.into_iter().map(|(id, d)| (d, id)).collect();
            order.sort();
            let go = order.into_iter().take(free).map(|(_, id)| id).collect();
            (key, go)
        })
        .collect()
}

/// The host at the head of its group's retirement queue, replaced by a look for another
/// host of the group (its own notice's look does the same; twice is harmless).
fn head_of_queue(
    r: &Retirement,
    instance_id: &str,
    group: &str,
    cluster: &str,
    why: Why,
    reason: &str,
) -> Step {
    Step::ReplaceInstance {
        notice: Notice::info(
            format!("Replacing {instance_id}: next in its group's retirement queue"),
            format!(
                "`{instance_id}` is scheduled by AWS too and comes first in group `{group}`'s retirement queue (earliest deadline first), so it was marked Unhealthy now, within the disruption budget; the group replaces it through its terminate lifecycle hook, where instance-drain drains cluster `{cluster}` first. Its own notice finds it done. {reason}"
            ),
        )
        .detail("queue_of", group)
        .detail("why_now", why)
        .detail("event_arn", &r.event_arn),
        instance_id: instance_id.to_string(),
        group: group.to_string(),
        cluster: cluster.to_string(),
    }
}

/// `RETIREMENT_REPLACE=stop-tasks`: the next batch of the service's retiring tasks, as
/// many as keep `minimumHealthyPercent` of the desired count running, and whether to look
/// again (more to stop, or replacements still starting). Retiring: the tasks the notice
/// named and those started before it (`lastUpdatedTime`); their replacements start later.
fn stop_tasks(
    r: &Retirement,
    a: Action,
    deferral: &Deferral,
    now: DateTime<Utc>,
    why: Why,
    reason: &str,
) -> (Vec<Step>, bool) {
    let Action::Redeploy {
        cluster,
        service,
        via_tasks,
        tasks,
        ..
    } = a
    else {
        return (vec![], false);
    };
    let m = marker(&r.event_arn);
    let scope = Scope {
        cluster: Some(cluster.clone()),
        ..Scope::default()
    };
    let cutoff = r.last_updated.or(deferral.first_deferred_at).unwrap_or(now);
    let running: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.is_running() && t.desired_status == TaskStatus::Running)
        .collect();
    let retiring: Vec<&Task> = running
        .iter()
        .copied()
        .filter(|t| via_tasks.contains(&t.arn) || t.started_at.is_none_or(|s| s < cutoff))
        .collect();
    let desired = usize::try_from(service.desired_count).unwrap_or(0);
    let min_percent =
        usize::try_from(service.minimum_healthy_percent.unwrap_or(100)).unwrap_or(100);
    let floor = (desired * min_percent).div_ceil(100);
    let healthy = running
        .iter()
        .filter(|t| t.last_status == TaskStatus::Running)
        .count();
    let room = healthy.saturating_sub(floor);
    let label = format!("service `{}` (cluster `{cluster}`)", service.name);
    if retiring.is_empty() {
        let step = Step::Report {
            action: "stop-tasks",
            outcome: Outcome::AlreadyDone,
            scope,
            notice: Notice::info(
                format!("No retiring task left in {}", service.name),
                format!("Every running task of {label} started after the notice ({}); nothing to stop. {}", cutoff.to_rfc2822(), deadline(r)),
            )
            .detail("service", &service.name)
            .detail("event_arn", &r.event_arn),
            mark: Some(Mark::Ecs {
                arn: service.arn.clone(),
                key: HANDLED_TAG,
                value: m,
            }),
        };
        return (vec![step], false);
    }
    if room == 0 {
        if healthy < desired {
            // Replacements of an earlier batch are still starting.
            return (vec![], true);
        }
        let step = Step::Report {
            action: "stop-tasks",
            outcome: Outcome::Warning,
            scope,
            notice: Notice::warning(
                format!("Cannot stop tasks of {} within its minimumHealthyPercent", service.name),
                format!(
                    "{} {label} runs {healthy} of {desired} desired task(s) with minimumHealthyPercent {min_percent}: stopping even one would take it below {floor}, so none of its {} retiring task(s) was stopped (RETIREMENT_REPLACE=stop-tasks).",
                    deadline(r),
                    retiring.len()
                ),
            )
            .detail("service", &service.name)
            .detail("retiring_tasks", retiring.iter().map(|t| &t.arn).collect::<Vec<_>>())
            .detail("event_arn", &r.event_arn)
            .next_step("Raise the desired count by one for the replacement (then lower it), lower minimumHealthyPercent, or set RETIREMENT_REPLACE=redeploy (a forced deployment may start first within maximumPercent; image tags are resolved again).")
            .next_step("Or stop the retiring tasks one at a time yourself (aws ecs stop-task) when a brief dip is acceptable."),
            mark: None,
        };
        return (vec![step], false);
    }
    let batch: Vec<String> = retiring.iter().take(room).map(|t| t.arn.clone()).collect();
    let last = batch.len() == retiring.len();
    let notice = Notice::info(
        format!("Stopping {} retiring task(s) of {}", batch.len(), service.name),
        format!(
            "{} {} of the {} retiring task(s) of {label} are stopped now, keeping at least {floor} of {desired} running (minimumHealthyPercent {min_percent}); the scheduler replaces them within the current deployment, with the image digests it runs now.{} {reason}",
            deadline(r),
            batch.len(),
            retiring.len(),
            if last { "" } else { " The rest follow once the replacements run." }
        ),
    )
    .detail("service", &service.name)
    .detail("stopped_tasks", &batch)
    .detail("retiring_left", retiring.len() - batch.len())
    .detail("why_now", why)
    .detail("retires_at", r.start_time)
    .detail("event_arn", &r.event_arn);
    let step = Step::StopTasks {
        cluster,
        service: service.name.clone(),
        service_arn: service.arn.clone(),
        tasks: batch,
        last,
        marker: m,
        notice,
    };
    (vec![step], !last)
}

/// The first time replacements wait for the budget: what waits for what, with the
/// forecast of each budget (whether it makes the deadline is the `budget-forecast` step).
fn budget_notice(
    r: &Retirement,
    waiting: &[(Action, usize)],
    config: &Config,
    forecasts: &[Forecasted],
) -> Notice {
    let mut lines = vec![];
    for (a, ahead) in waiting {
        let key = a.budget_key();
        lines.push(format!(
            "{}: {ahead} ahead of it ({} in replacement now: {}), budget {}",
            a.label(),
            a.busy().len(),
            escape(&a.busy().join(", "), 200),
            describe_budget(&key, config)
        ));
    }
    let keys: Vec<BudgetKey> = waiting.iter().map(|(a, _)| a.budget_key()).collect();
    let labels: Vec<String> = waiting.iter().map(|(a, _)| a.label()).collect();
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
    .detail(
        "forecast",
        forecasts
            .iter()
            .filter(|f| keys.contains(&f.key))
            .map(|f| &f.forecast)
            .collect::<Vec<_>>(),
    )
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

/// One budget's forecast, and where to record that its warning was sent.
struct Forecasted {
    key: BudgetKey,
    forecast: Forecast,
    /// For a group: its name, the fingerprint of this forecast and the one last sent.
    group: Option<(String, String, Option<String>)>,
}

/// What one budget holds for a notice: what is in replacement now and what waits, with
/// its deadline (EC2's for a host AWS scheduled, so every look ranks it alike, else the
/// notice's). Replacements with `RETIREMENT_REPLACE=stop-tasks` take no budget.
#[derive(Default)]
struct Pending {
    in_replacement: Vec<String>,
    waiting: BTreeMap<String, DateTime<Utc>>,
    /// For a group: its name and its [`FORECAST_TAG`].
    group: Option<(String, Option<String>)>,
    /// EC2 lists hosts of the group other than the notice's.
    others_known: bool,
}

fn pending(r: &Retirement, actions: &[Action], config: &Config) -> BTreeMap<BudgetKey, Pending> {
    let mut by_key: BTreeMap<BudgetKey, Pending> = BTreeMap::new();
    let Some(deadline) = r.start_time else {
        return by_key;
    };
    for a in actions {
        if config.replace == Replace::StopTasks && matches!(a, Action::Redeploy { .. }) {
            continue;
        }
        let p = by_key.entry(a.budget_key()).or_default();
        p.in_replacement.extend(a.busy().iter().cloned());
        match a {
            Action::Redeploy { service, .. } => {
                p.waiting.insert(service.name.clone(), deadline);
            }
            Action::ReplaceInstance {
                instance_id,
                group,
                others_waiting,
                forecast_sent,
                ..
            } => {
                for h in others_waiting {
                    p.waiting
                        .entry(h.instance_id.clone())
                        .or_insert(h.not_before.unwrap_or(deadline));
                }
                p.waiting.entry(instance_id.clone()).or_insert(deadline);
                p.group = Some((group.clone(), forecast_sent.clone()));
                p.others_known |= others_waiting.iter().any(|h| h.instance_id != *instance_id);
            }
        }
    }
    for p in by_key.values_mut() {
        p.in_replacement.sort();
        p.in_replacement.dedup();
        let waiting = &p.waiting;
        p.in_replacement.retain(|b| !waiting.contains_key(b));
    }
    by_key
}

/// Forecasts each budget the notice's replacements need: what the notice names, what
/// else AWS has scheduled in the same group (other notices' hosts) and what is in
/// replacement now. Replacements with `RETIREMENT_REPLACE=stop-tasks` take no budget.
fn budget_forecasts(
    r: &Retirement,
    actions: &[Action],
    config: &Config,
    now: DateTime<Utc>,
) -> Vec<Forecasted> {
    let by_key = pending(r, actions, config);
    let lead = Duration::hours(config.lead_time_hours);
    by_key
        .into_iter()
        .filter_map(|(key, acc)| {
            let (of, var, minutes) = match &key {
                BudgetKey::Group(g) => (
                    format!("group `{g}`"),
                    "MAX_REPLACEMENTS_PER_GROUP",
                    config.host_replacement_minutes,
                ),
                BudgetKey::Cluster(c) => (
                    format!("cluster `{c}`"),
                    "MAX_REDEPLOYS_PER_CLUSTER",
                    config.redeploy_minutes,
                ),
            };
            let size = limit(&key, config);
            let ids: Vec<&str> = acc.waiting.keys().map(String::as_str).collect();
            let fingerprint = marker(&format!("{size}:{}", ids.join(",")));
            let f = forecast(
                Budget {
                    of,
                    var,
                    size,
                    in_replacement: acc.in_replacement.len(),
                    per: Duration::minutes(minutes),
                },
                acc.waiting.into_values().collect(),
                lead,
                &config.window,
                now,
            )?;
            Some(Forecasted {
                key,
                forecast: f,
                group: acc.group.map(|(name, sent)| (name, fingerprint, sent)),
            })
        })
        .collect()
}

/// A warning for each budget that cannot make the deadline, with the numbers, sent once
/// per group for the same waiting hosts (the group is tagged [`FORECAST_TAG`]).
fn forecast_warnings(r: &Retirement, forecasts: &[Forecasted]) -> Vec<Step> {
    forecasts
        .iter()
        .filter(|f| f.forecast.late > 0)
        .filter(|f| {
            f.group
                .as_ref()
                .is_none_or(|(_, fp, sent)| sent.as_deref() != Some(fp.as_str()))
        })
        .map(|f| {
            let fc = &f.forecast;
            let scope = match &f.key {
                BudgetKey::Group(g) => Scope {
                    group: Some(g.clone()),
                    ..Scope::default()
                },
                BudgetKey::Cluster(c) => Scope {
                    cluster: Some(c.clone()),
                    ..Scope::default()
                },
            };
            Step::Report {
                action: "budget-forecast",
                outcome: Outcome::Warning,
                scope,
                notice: Notice::warning(
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
                mark: f.group.as_ref().map(|(name, fp, _)| Mark::Group {
                    name: name.clone(),
                    key: FORECAST_TAG,
                    value: fp.clone(),
                }),
            }
        })
        .collect()
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

fn classify(r: &Retirement, o: &Observed, replace: Replace) -> Classified {
    let event = || format!("{} {}", r.code, r.event_arn);
    match o {
        Observed::Service {
            cluster,
            service,
            via_tasks,
            deploying,
            images,
            tasks,
        } => {
            let scope = Scope {
                cluster: Some(cluster.clone()),
                ..Scope::default()
            };
            // CODE_DEPLOY / EXTERNAL take no forced deployment; with stop-tasks their
            // tasks are stopped in batches like any (the scheduler replaces each in its
            // own task set, same task definition: no traffic shift, nothing to roll back).
            if service.deployment_controller != "ECS" && replace == Replace::Redeploy {
                return Classified::Report(other_controller(r, cluster, service, scope));
            }
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
                busy: deploying
                    .iter()
                    .filter(|s| **s != service.name)
                    .cloned()
                    .collect(),
                images: images.clone(),
                tasks: tasks.clone(),
            })
        }
        Observed::AmbiguousService {
            service,
            arn,
            clusters,
        } => Classified::Report(Step::Report {
            action: "redeploy-service",
            outcome: Outcome::Warning,
            scope: Scope::default(),
            notice: Notice::warning(
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
            mark: None,
        }),
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
        Observed::Instance {
            instance_id,
            group,
            capacity_rebalance,
            others_retiring,
        } => {
            if *capacity_rebalance && r.source == Source::Rebalance {
                return Classified::Report(left_to_capacity_rebalancing(instance_id, group.as_ref()));
            }
            classify_instance(r, instance_id, group.as_ref(), others_retiring)
        }
    }
}

/// A rebalance recommendation for an instance of a group with Capacity Rebalancing: Auto
/// Scaling launches the replacement before it terminates the instance; replacing it here
/// too would take the capacity away first.
fn left_to_capacity_rebalancing(instance_id: &str, group: Option<&Group>) -> Step {
    let name = group.map(|g| g.name.clone()).unwrap_or_default();
    report(
        "replace-instance",
        Outcome::Skipped,
        Scope {
            cluster: group.and_then(|g| g.cluster()).map(str::to_string),
            group: Some(name.clone()),
            instance: Some(instance_id.to_string()),
            task: None,
        },
        Notice::info(
            format!("{instance_id}: rebalance left to Capacity Rebalancing"),
            format!(
                "Group `{name}` has Capacity Rebalancing on, so Auto Scaling launches a replacement for `{instance_id}` before it terminates it (through the terminate lifecycle hook, where instance-drain drains it). It is not marked Unhealthy here."
            ),
        )
        .detail("capacity_rebalance", true),
    )
}

/// A service whose deployment controller does not take a forced new deployment
/// (`CODE_DEPLOY`, `EXTERNAL`), with `RETIREMENT_REPLACE=redeploy`: people are told how to
/// replace its tasks. Stopping them is left to an explicit `stop-tasks`: a CodeDeploy
/// deployment or a new task set is the controller's own way, and a service whose owner
/// chose it may also hold tasks that must only move through it (hooks, test listeners).
fn other_controller(r: &Retirement, cluster: &str, s: &ServiceDescription, scope: Scope) -> Step {
    let how = if s.deployment_controller == "CODE_DEPLOY" {
        "Start a CodeDeploy deployment of the current task definition (same AppSpec, same image digests) for this service's deployment group; it moves the tasks to new capacity with your traffic shifting and rollback."
    } else {
        "Have your deployment controller create a new task set with the current task definition and make it primary, then delete the old task set."
    };
    Step::Report {
        action: "redeploy-service",
        outcome: Outcome::Warning,
        scope,
        notice: Notice::warning(
            format!("Service {} ({}) must be replaced by its controller", s.name, s.deployment_controller),
            format!(
                "{} Service `{}` (cluster `{cluster}`) uses the {} deployment controller, which does not accept a forced new deployment, so its {} task(s) were not replaced. Replace them before the deadline.",
                deadline(r),
                s.name,
                s.deployment_controller,
                s.running_count
            ),
        )
        .detail("service", &s.name)
        .detail("deployment_controller", &s.deployment_controller)
        .detail("retires_at", r.start_time)
        .detail("event_arn", &r.event_arn)
        .next_step(how)
        .next_step("Or stop the retiring tasks a few at a time (aws ecs stop-task), never more than keeps minimumHealthyPercent of the desired count running, and wait for each batch's replacements to be healthy: the scheduler starts them in the current task set with the same images. RETIREMENT_REPLACE=stop-tasks has this function do that."),
        mark: None,
    }
}

fn classify_instance(
    r: &Retirement,
    instance_id: &str,
    group: Option<&Group>,
    others_retiring: &[RetiringHost],
) -> Classified {
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
        m.health_status.eq_ignore_ascii_case("Unhealthy") || m.lifecycle_state.is_terminating()
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
        busy: group
            .instances
            .iter()
            .filter(|i| i.instance_id != instance_id && in_replacement(i))
            .map(|i| i.instance_id.clone())
            .collect(),
        others_waiting: others_retiring
            .iter()
            .filter(|h| {
                group
                    .instances
                    .iter()
                    .any(|i| i.instance_id == h.instance_id && !in_replacement(i))
            })
            .cloned()
            .collect(),
        forecast_sent: group.tags.get(FORECAST_TAG).cloned(),
    })
}

/// An instance of the group on its way out or not yet serving: marked Unhealthy,
/// terminating (draining in `Terminating:Wait`) or launching as a replacement.
fn in_replacement(i: &shared::aws::autoscaling::GroupInstance) -> bool {
    i.health_status.eq_ignore_ascii_case("Unhealthy")
        || i.lifecycle_state.is_terminating()
        || i.lifecycle_state.is_pending()
}

fn act_now(r: &Retirement, action: Action, why: Why, reason: &str) -> Step {
    match action {
        Action::Redeploy {
            cluster,
            service,
            via_tasks,
            images,
            ..
        } => Step::Redeploy {
            notice: Notice::info(
                format!("Replacing tasks of {} ahead of retirement", service.name),
                format!(
                    "{} A new deployment of service `{}` (cluster `{cluster}`) was forced, so ECS replaces its {} task(s) within the service's minimumHealthyPercent / maximumPercent. {reason}{}",
                    deadline(r),
                    service.name,
                    service.running_count,
                    image_note(&images)
                ),
            )
            .detail("mutable_images", images.iter().filter(|i| !i.is_pinned()).collect::<Vec<_>>())
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
    use serde_json::json;
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
                deployment_controller: "ECS".into(),
                task_definition: "arn:aws:ecs:us-east-1:1:task-definition/web:1".into(),
                deploying: false,
                minimum_healthy_percent: Some(50),
            },
            via_tasks: vec![],
            deploying: vec![],
            images: vec![],
            tasks: vec![],
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
            capacity_rebalance: false,
            others_retiring: vec![],
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
            ..
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
            ..Deferral::default()
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
                ..Deferral::default()
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
                ..Deferral::default()
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
    fn a_short_service_arn_in_several_managed_clusters_is_a_warning_not_a_guess() {
        let now = wednesday_noon();
        let plan = retire(
            &retirement(Some(now + days(7))),
            &[Observed::AmbiguousService {
                service: "web".into(),
                arn: "arn:aws:ecs:us-east-1:1:service/web".into(),
                clusters: vec!["blue".into(), "green".into()],
            }],
            &Deferral::default(),
            &config(""),
            now,
        );
        assert_eq!(actions(&plan), ["redeploy-service"]);
        assert_eq!(outcomes(&plan), [Outcome::Warning]);
        let Step::Report { notice, .. } = &plan[0] else {
            panic!()
        };
        assert!(
            notice.description.contains("blue, green"),
            "{}",
            notice.description
        );
        assert!(!notice.next_steps.is_empty());
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
            ..Deferral::default()
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
            ..Deferral::default()
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

    // --- the disruption budget ------------------------------------------------------

    /// A group of `n` healthy hosts `i-0000`… plus, for each state given, one more host in it.
    fn fleet_group(n: usize, others: &[(&str, &str)]) -> Group {
        let mut g = group(true, "InService", "Healthy");
        g.instances = (0..n)
            .map(|k| GroupInstance {
                instance_id: format!("i-{k:04}"),
                lifecycle_state: "InService".into(),
                health_status: "Healthy".into(),
            })
            .collect();
        for (k, (state, health)) in others.iter().enumerate() {
            g.instances.push(GroupInstance {
                instance_id: format!("i-busy{k}"),
                lifecycle_state: (*state).into(),
                health_status: health.to_string(),
            });
        }
        g
    }

    fn host(id: &str, g: &Group) -> Observed {
        Observed::Instance {
            instance_id: id.into(),
            group: Some(g.clone()),
            capacity_rebalance: false,
            others_retiring: vec![],
        }
    }

    fn ec2_retirement(start: Option<DateTime<Utc>>, ids: &[&str]) -> Retirement {
        let mut r = retirement(start);
        r.source = Source::Ec2Instances;
        r.targets = ids
            .iter()
            .map(|i| Target::Instance {
                instance_id: i.to_string(),
            })
            .collect();
        r
    }

    #[test]
    fn one_host_of_a_group_is_replaced_at_a_time_and_the_rest_wait_in_the_queue() {
        let now = wednesday_noon();
        let g = fleet_group(3, &[]);
        let r = ec2_retirement(Some(now + days(7)), &["i-0000", "i-0001", "i-0002"]);
        let observed: Vec<Observed> = ["i-0000", "i-0001", "i-0002"]
            .iter()
            .map(|i| host(i, &g))
            .collect();
        let plan = retire(&r, &observed, &Deferral::default(), &config(""), now);
        assert_eq!(actions(&plan), ["replace-instance", "wait-budget"]);
        let Step::Defer {
            delay_seconds,
            deferral,
            notice: Some(notice),
            outcome,
            marks,
            ..
        } = &plan[1]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(*delay_seconds, 300);
        assert!(*delay_seconds <= MAX_DELAY_SECONDS);
        assert_eq!(deferral.budget_waits, 1);
        assert_eq!(*outcome, Outcome::Done);
        assert!(marks.is_empty());
        assert_eq!(notice.details["waiting"].as_array().unwrap().len(), 2);

        // A later look is silent while it waits.
        let plan = retire(&r, &observed, deferral, &config(""), now);
        assert!(
            matches!(&plan[..], [_, Step::Defer { notice: None, .. }]),
            "{plan:?}"
        );
    }

    #[test]
    fn hosts_already_in_replacement_count_against_the_budget_whoever_started_them() {
        let now = wednesday_noon();
        let r = ec2_retirement(Some(now + days(7)), &["i-0000"]);
        for busy in [
            ("InService", "Unhealthy"),
            ("Terminating:Wait", "Healthy"),
            ("Pending:Wait", "Healthy"),
        ] {
            let g = fleet_group(2, &[busy]);
            let plan = retire(
                &r,
                &[host("i-0000", &g)],
                &Deferral::default(),
                &config(""),
                now,
            );
            assert_eq!(actions(&plan), ["wait-budget"], "{busy:?}");
        }
        let mut c = config("");
        c.max_replacements_per_group = 2;
        let g = fleet_group(2, &[("InService", "Unhealthy")]);
        let plan = retire(&r, &[host("i-0000", &g)], &Deferral::default(), &c, now);
        assert_eq!(actions(&plan), ["replace-instance"]);
    }

    #[test]
    fn at_the_latest_safe_start_a_waiting_host_goes_regardless_of_the_budget() {
        let now = wednesday_noon();
        let g = fleet_group(2, &[("Terminating:Wait", "Unhealthy")]);
        let r = ec2_retirement(Some(now + Duration::hours(1)), &["i-0000"]);
        let plan = retire(
            &r,
            &[host("i-0000", &g)],
            &Deferral::default(),
            &config(""),
            now,
        );
        let [Step::ReplaceInstance { notice, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert!(
            notice.description.contains("goes anyway"),
            "{}",
            notice.description
        );
    }

    #[test]
    fn a_budget_that_cannot_make_the_deadline_is_a_warning_with_the_numbers() {
        let now = wednesday_noon();
        let g = fleet_group(4, &[("Terminating:Wait", "Unhealthy")]);
        // One in replacement, 2 h per replacement, latest start in 3 h: the first waiting
        // starts in 2 h, the next two in 4 h and 6 h, too late.
        let ids = ["i-0000", "i-0001", "i-0002"];
        let r = ec2_retirement(Some(now + Duration::hours(5)), &ids);
        let observed: Vec<Observed> = ids.iter().map(|i| host(i, &g)).collect();
        let plan = retire(&r, &observed, &Deferral::default(), &config(""), now);
        assert_eq!(actions(&plan), ["budget-forecast", "wait-budget"]);
        let Step::Report {
            notice,
            outcome,
            mark,
            ..
        } = &plan[0]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(*outcome, Outcome::Warning);
        assert_eq!(notice.severity, Severity::Warning);
        let f = &notice.details["forecast"];
        assert_eq!(
            (
                &f["waiting"],
                &f["in_replacement"],
                &f["budget"],
                &f["late"]
            ),
            (&json!(3), &json!(1), &json!(1), &json!(2))
        );
        assert_eq!(f["minutes_per_replacement"], 120);
        assert!(notice.description.contains("MAX_REPLACEMENTS_PER_GROUP=1"));
        assert!(matches!(mark, Some(Mark::Group { key, .. }) if *key == FORECAST_TAG));

        // Another notice of the same wave, with the group tagged: not said twice.
        let Some(Mark::Group { value, .. }) = mark else {
            panic!()
        };
        let mut tagged = g.clone();
        tagged.tags.insert(FORECAST_TAG.into(), value.clone());
        let observed: Vec<Observed> = ids.iter().map(|i| host(i, &tagged)).collect();
        let plan = retire(&r, &observed, &Deferral::default(), &config(""), now);
        assert_eq!(actions(&plan), ["wait-budget"]);
    }

    #[test]
    fn every_look_picks_the_head_of_the_groups_retirement_queue_so_none_takes_a_second_slot() {
        let now = wednesday_noon();
        let g = fleet_group(3, &[]);
        let scheduled: Vec<RetiringHost> = ["i-0000", "i-0001", "i-0002"]
            .iter()
            .map(|id| RetiringHost {
                instance_id: id.to_string(),
                not_before: Some(now + days(7)),
            })
            .collect();
        let look = |id: &str| {
            let r = ec2_retirement(Some(now + days(7)), &[id]);
            let o = Observed::Instance {
                instance_id: id.into(),
                group: Some(g.clone()),
                capacity_rebalance: false,
                others_retiring: scheduled.clone(),
            };
            retire(&r, &[o], &Deferral::default(), &config(""), now)
        };
        // Looks for different hosts, at the same moment: each marks only the head.
        for id in ["i-0000", "i-0001", "i-0002"] {
            let plan = look(id);
            let marked: Vec<&str> = plan
                .iter()
                .filter_map(|s| match s {
                    Step::ReplaceInstance { instance_id, .. } => Some(instance_id.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(marked, ["i-0000"], "look for {id}: {plan:?}");
            let waits = actions(&plan).contains(&"wait-budget");
            assert_eq!(waits, id != "i-0000", "{id}");
        }
    }

    #[test]
    fn the_forecast_counts_hosts_other_notices_name_and_is_sent_when_first_seen() {
        let now = wednesday_noon();
        let g = fleet_group(10, &[]);
        // Window closed now (opens Thu 03:00 for 3 h), deadline Sat noon, 2 h lead (latest
        // start Sat 10:00): one host per 2 h round, two rounds in each of three daily
        // windows, then (the next window being too late) Sat 07:00 and 09:00: eight fit.
        let r = ec2_retirement(Some(now + days(3)), &["i-0000"]);
        let others = |n: usize| -> Vec<RetiringHost> {
            (1..n)
                .map(|i| RetiringHost {
                    instance_id: format!("i-{i:04}"),
                    not_before: Some(now + days(3)),
                })
                .collect()
        };
        let seen = |n: usize| Observed::Instance {
            instance_id: "i-0000".into(),
            group: Some(g.clone()),
            capacity_rebalance: false,
            others_retiring: others(n),
        };
        let c = config("Mon-Sun 03:00-06:00");
        let plan = retire(&r, &[seen(8)], &Deferral::default(), &c, now);
        assert_eq!(actions(&plan), ["schedule"]);
        let plan = retire(&r, &[seen(10)], &Deferral::default(), &c, now);
        assert_eq!(actions(&plan), ["budget-forecast", "schedule"]);
        let Step::Report { notice, .. } = &plan[0] else {
            panic!()
        };
        assert_eq!(notice.details["forecast"]["waiting"], 10);
        assert_eq!(notice.details["forecast"]["late"], 2);
        // Not on a later look that only waits for the window.
        let later = Deferral {
            deferrals: 1,
            ..Deferral::default()
        };
        let plan = retire(&r, &[seen(10)], &later, &c, now);
        assert_eq!(actions(&plan), ["schedule"]);
    }

    #[test]
    fn redeploys_wait_while_the_cluster_has_as_many_deployments_in_progress_as_allowed() {
        let now = wednesday_noon();
        let r = retirement(Some(now + days(7)));
        let mut busy = service(&[]);
        if let Observed::Service { deploying, .. } = &mut busy {
            *deploying = vec!["api".into(), "web".into(), "jobs".into()];
        }
        // web itself does not count: api and jobs fill the default budget of 2.
        let plan = retire(&r, &[busy.clone()], &Deferral::default(), &config(""), now);
        assert_eq!(actions(&plan), ["wait-budget"]);
        let mut c = config("");
        c.max_redeploys_per_cluster = 3;
        let plan = retire(&r, &[busy], &Deferral::default(), &c, now);
        assert_eq!(actions(&plan), ["redeploy-service"]);
    }

    // --- Capacity Rebalancing, deployment controllers, images -----------------------

    #[test]
    fn a_rebalance_recommendation_in_a_group_with_capacity_rebalancing_is_left_to_auto_scaling() {
        let mut r = retirement(None);
        r.source = Source::Rebalance;
        let o = Observed::Instance {
            instance_id: "i-0aaa".into(),
            group: Some(group(true, "InService", "Healthy")),
            capacity_rebalance: true,
            others_retiring: vec![],
        };
        let plan = retire(
            &r,
            std::slice::from_ref(&o),
            &Deferral::default(),
            &config(""),
            wednesday_noon(),
        );
        assert_eq!(actions(&plan), ["replace-instance"]);
        assert_eq!(outcomes(&plan), [Outcome::Skipped]);
        // A scheduled retirement is still acted on: Capacity Rebalancing does not cover it.
        let r = ec2_retirement(Some(wednesday_noon() + days(7)), &["i-0aaa"]);
        let plan = retire(
            &r,
            &[o],
            &Deferral::default(),
            &config(""),
            wednesday_noon(),
        );
        assert!(
            matches!(&plan[..], [Step::ReplaceInstance { .. }]),
            "{plan:?}"
        );
    }

    #[test]
    fn code_deploy_and_external_services_are_not_force_deployed_but_warned_with_steps() {
        for controller in ["CODE_DEPLOY", "EXTERNAL"] {
            let mut o = service(&[]);
            if let Observed::Service { service, .. } = &mut o {
                service.deployment_controller = controller.into();
            }
            let plan = retire(
                &retirement(Some(wednesday_noon() + days(7))),
                &[o],
                &Deferral::default(),
                &config(""),
                wednesday_noon(),
            );
            let [Step::Report {
                action,
                outcome,
                notice,
                ..
            }] = &plan[..]
            else {
                panic!("{plan:?}")
            };
            assert_eq!((*action, *outcome), ("redeploy-service", Outcome::Warning));
            assert!(notice.description.contains(controller));
            assert_eq!(notice.next_steps.len(), 2);
        }
    }

    #[test]
    fn with_stop_tasks_code_deploy_and_external_services_are_stopped_in_batches() {
        let now = wednesday_noon();
        for controller in ["CODE_DEPLOY", "EXTERNAL"] {
            let mut o = service(&[]);
            if let Observed::Service { service, tasks, .. } = &mut o {
                service.deployment_controller = controller.into();
                *tasks = vec![
                    running_task(1, now - days(1)),
                    running_task(2, now - days(1)),
                ];
            }
            let mut r = retirement(Some(now + days(7)));
            r.last_updated = Some(now - Duration::hours(1));
            let plan = retire(&r, &[o], &Deferral::default(), &stop_tasks_config(), now);
            let Step::StopTasks { tasks, last, .. } = &plan[0] else {
                panic!("{controller}: {plan:?}")
            };
            // Desired 2, minimumHealthyPercent 50: one at a time.
            assert_eq!((tasks.len(), *last), (1, false), "{controller}");
        }
    }

    #[test]
    fn a_redeploy_notice_says_which_images_may_be_newer() {
        let mut o = service(&[]);
        if let Observed::Service { images, .. } = &mut o {
            *images = vec![
                ContainerImage {
                    container: "app".into(),
                    image: "repo/app:latest".into(),
                },
                ContainerImage {
                    container: "proxy".into(),
                    image: "repo/proxy@sha256:abc".into(),
                },
            ];
        }
        let plan = retire(
            &retirement(Some(wednesday_noon() + days(7))),
            &[o],
            &Deferral::default(),
            &config(""),
            wednesday_noon(),
        );
        let [Step::Redeploy { notice, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert!(
            notice.description.contains("repo/app:latest"),
            "{}",
            notice.description
        );
        assert!(!notice.description.contains("repo/proxy"));
        assert_eq!(
            notice.details["mutable_images"].as_array().unwrap().len(),
            1
        );
        let plan = retire(
            &retirement(Some(wednesday_noon() + days(7))),
            &[service(&[])],
            &Deferral::default(),
            &config(""),
            wednesday_noon(),
        );
        let [Step::Redeploy { notice, .. }] = &plan[..] else {
            panic!()
        };
        assert!(!notice.description.contains("resolves image tags"));
    }

    // --- RETIREMENT_REPLACE=stop-tasks ----------------------------------------------

    fn running_task(n: u32, started: DateTime<Utc>) -> Task {
        let mut t = task("service:web", Some("ecs-svc/1"));
        t.arn = format!("arn:aws:ecs:us-east-1:1:task/prod/t{n}");
        t.started_at = Some(started);
        t
    }

    fn stop_tasks_config() -> Config {
        let mut c = config("");
        c.replace = crate::config::Replace::StopTasks;
        c
    }

    #[test]
    fn stop_tasks_stops_only_as_many_retiring_tasks_as_minimum_healthy_percent_allows() {
        let now = wednesday_noon();
        let mut r = retirement(Some(now + days(7)));
        r.last_updated = Some(now - Duration::hours(1));
        let mut o = service(&[]);
        if let Observed::Service { service, tasks, .. } = &mut o {
            service.desired_count = 4;
            service.minimum_healthy_percent = Some(50);
            *tasks = (0..4).map(|n| running_task(n, now - days(1))).collect();
        }
        let plan = retire(
            &r,
            &[o.clone()],
            &Deferral::default(),
            &stop_tasks_config(),
            now,
        );
        let [Step::StopTasks { tasks, last, .. }, Step::Defer {
            notice: None,
            delay_seconds,
            ..
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!((tasks.len(), *last, *delay_seconds), (2, false, 300));

        // Two replaced (started after the notice), two old left, four running: the last two go.
        if let Observed::Service { tasks, .. } = &mut o {
            tasks[0].started_at = Some(now);
            tasks[1].started_at = Some(now);
        }
        let plan = retire(
            &r,
            &[o.clone()],
            &Deferral::default(),
            &stop_tasks_config(),
            now,
        );
        let [Step::StopTasks {
            tasks, last: true, ..
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(tasks.len(), 2);

        // Replacements still starting (3 of 4 running, floor 2, one old left): one goes.
        if let Observed::Service { tasks, .. } = &mut o {
            tasks.truncate(3);
            tasks[2].started_at = Some(now - days(1));
        }
        let plan = retire(&r, &[o], &Deferral::default(), &stop_tasks_config(), now);
        assert!(
            matches!(&plan[..], [Step::StopTasks { last: true, .. }]),
            "{plan:?}"
        );
    }

    #[test]
    fn stop_tasks_never_goes_below_the_floor_and_warns_when_it_cannot_start() {
        let now = wednesday_noon();
        let mut r = retirement(Some(now + days(7)));
        r.last_updated = Some(now - Duration::hours(1));
        let mut o = service(&[]);
        if let Observed::Service { service, tasks, .. } = &mut o {
            service.desired_count = 1;
            service.minimum_healthy_percent = Some(100);
            *tasks = vec![running_task(0, now - days(1))];
        }
        let plan = retire(
            &r,
            &[o.clone()],
            &Deferral::default(),
            &stop_tasks_config(),
            now,
        );
        assert_eq!(actions(&plan), ["stop-tasks"]);
        assert_eq!(outcomes(&plan), [Outcome::Warning]);
        // Below the desired count (a replacement starting): wait, stop nothing.
        if let Observed::Service { service, .. } = &mut o {
            service.desired_count = 2;
            service.minimum_healthy_percent = Some(50);
        }
        let plan = retire(&r, &[o], &Deferral::default(), &stop_tasks_config(), now);
        assert!(
            matches!(&plan[..], [Step::Defer { notice: None, .. }]),
            "{plan:?}"
        );
    }
}
