//! The pure core: from the retirement notice, what the fleet looks like now, the
//! maintenance window and the clock, decide what to do and when, and why. No AWS calls
//! here and no wording: the plan is data (each step with a typed reason, [`Told`]), so it
//! is asserted in tests; [`crate::notices`] puts it into words. When to act is
//! [`crate::timing`]'s rule; the tags that remember what was done are [`crate::markers`].

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use shared::aws::autoscaling::{Group, GroupInstance};
use shared::aws::ecs::{ContainerImage, ServiceDescription, Task, TaskStatus};
use shared::aws::sqs::MAX_DELAY_SECONDS;
use shared::exec::{action, About};
use shared::notify::Outcome;

use crate::config::{Config, Replace};
use crate::forecast::{forecast, Budget, Forecast};
use crate::markers::{
    has_marker, marker, with_marker, Mark, FORECAST_TAG, HANDLED_TAG, SCHEDULED_TAG,
};
use crate::observe::{Observed, RetiringHost};
use crate::parse::{Deferral, Retirement, Source};
use crate::timing::{when, When, Why};
use std::collections::BTreeMap;

/// The actions only this function takes (the shared ones are [`shared::exec::action`]).
pub mod acts {
    /// The event sent back to the queue until the maintenance window opens.
    pub const SCHEDULE: &str = "schedule";
    /// The event sent back to the queue until the disruption budget has room.
    pub const WAIT_BUDGET: &str = "wait-budget";
    pub const BUDGET_FORECAST: &str = "budget-forecast";
    pub const STANDALONE_TASK: &str = "standalone-task";
    pub const RETIRE_TASK: &str = "retire-task";
    pub const RETIRE: &str = "retire";
    pub const IGNORE: &str = "ignore";
}

/// One step of what to do about a notice, with why (worded by [`crate::notices`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Decision {
    /// Force a new deployment so ECS replaces the service's tasks, then mark the service.
    Redeploy {
        #[serde(flatten)]
        target: Redeploy,
        told: Told,
    },
    /// Stop a batch of a service's retiring tasks (`RETIREMENT_REPLACE=stop-tasks`): the
    /// scheduler replaces them within the current deployment, with the same image digests.
    /// The last batch also marks the service handled for the notice.
    StopTasks {
        #[serde(flatten)]
        target: StopTasks,
        told: Told,
    },
    /// Mark the instance Unhealthy so its group replaces it (drained by instance-drain
    /// through the terminate lifecycle hook).
    ReplaceInstance {
        #[serde(flatten)]
        target: ReplaceInstance,
        told: Told,
    },
    /// Look again later by sending the event back to our queue; people are told only
    /// the first time the retirement is put off, and then what it will replace is marked
    /// (once the look is queued) so a repeated notice does not queue another.
    Defer {
        #[serde(flatten)]
        look: LookAgain,
        told: Option<Told>,
        marks: Vec<Mark>,
    },
    /// Only tell people (a skip, something already done, something only a person can do),
    /// then leave a mark, if any, so a repeated notice does not tell them again.
    Tell {
        action: &'static str,
        outcome: Outcome,
        about: About,
        told: Told,
        mark: Option<Mark>,
    },
}

/// When to look at the notice again: the event goes back to our queue with a delay and
/// its deferral carried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LookAgain {
    /// [`acts::SCHEDULE`] (waiting for the window), [`acts::WAIT_BUDGET`] (for the
    /// disruption budget) or [`action::STOP_TASKS`] (for the next batch).
    pub action: &'static str,
    /// The outcome people are told with.
    pub outcome: Outcome,
    pub until: DateTime<Utc>,
    pub delay_seconds: u32,
    pub deferral: Deferral,
}

/// A service to redeploy, and the marker it gets once the deployment started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redeploy {
    pub cluster: String,
    pub service: String,
    pub service_arn: String,
    pub marker: String,
}

/// A batch of a service's retiring tasks to stop; the `last` batch marks the service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StopTasks {
    pub cluster: String,
    pub service: String,
    pub service_arn: String,
    pub tasks: Vec<String>,
    pub last: bool,
    pub marker: String,
}

/// A host to mark Unhealthy so its group replaces it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplaceInstance {
    pub instance_id: String,
    pub group: String,
    pub cluster: String,
}

impl Decision {
    /// The action name used in notifications and metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Decision::Redeploy { .. } => action::REDEPLOY_SERVICE,
            Decision::ReplaceInstance { .. } => action::REPLACE_INSTANCE,
            Decision::StopTasks { .. } => action::STOP_TASKS,
            Decision::Defer { look, .. } => look.action,
            Decision::Tell { action, .. } => action,
        }
    }
}

pub type Plan = Vec<Decision>;

/// Why: what people are told about a step, as data. Everything a notice says comes from
/// here, the retirement notice and the settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "told", rename_all = "snake_case")]
pub enum Told {
    /// Entities of the notice that name nothing this function knows.
    Unrecognized,
    /// Put off until the maintenance window opens at `until`.
    Scheduled {
        until: DateTime<Utc>,
        resources: Vec<Resource>,
    },
    /// A repeated notice whose later look is already queued.
    AlreadyScheduled {
        until: DateTime<Utc>,
        resources: Vec<Resource>,
    },
    /// Replacements that wait for their disruption budget, with the forecast of each.
    WaitsForBudget {
        waiting: Vec<Waiting>,
        forecasts: Vec<Forecast>,
    },
    /// A budget that cannot make the deadline.
    BudgetLate {
        forecast: Forecast,
    },
    /// The service's tasks are replaced by a forced new deployment.
    Redeploying {
        cluster: String,
        service: String,
        running: i32,
        via_tasks: Vec<String>,
        images: Vec<ContainerImage>,
        now: Now,
    },
    /// The instance is marked Unhealthy so its group replaces it.
    Replacing {
        instance_id: String,
        group: String,
        cluster: String,
        now: Now,
    },
    /// Another host of the group, first in its retirement queue, replaced by this look.
    NextInQueue {
        instance_id: String,
        group: String,
        cluster: String,
        now: Now,
    },
    /// A batch of a service's retiring tasks is stopped.
    StoppingTasks {
        cluster: String,
        service: String,
        stopped: Vec<String>,
        retiring: usize,
        floor: usize,
        desired: usize,
        min_percent: usize,
        last: bool,
        now: Now,
    },
    /// Every running task of the service started after the notice.
    NoRetiringTaskLeft {
        cluster: String,
        service: String,
        cutoff: DateTime<Utc>,
    },
    /// Stopping even one task would take the service below its minimumHealthyPercent.
    BelowFloor {
        cluster: String,
        service: String,
        healthy: usize,
        desired: usize,
        min_percent: usize,
        floor: usize,
        retiring: Vec<String>,
    },
    AlreadyRedeployed {
        cluster: String,
        service: String,
    },
    /// A service named by the old short ARN that several managed clusters have.
    AmbiguousService {
        service: String,
        arn: String,
        clusters: Vec<String>,
    },
    ServiceGone {
        cluster: String,
        service: String,
    },
    /// A service whose deployment controller takes no forced new deployment.
    OtherController {
        cluster: String,
        service: String,
        controller: String,
        running: i32,
    },
    /// A running task no service owns: only a person can re-run it.
    Standalone {
        cluster: String,
        task: Task,
    },
    StandaloneAlreadyReported {
        cluster: String,
        task: String,
    },
    TaskGone {
        arn: String,
    },
    Unmanaged {
        cluster: Option<String>,
        entity: String,
    },
    /// A rebalance recommendation that Capacity Rebalancing answers.
    LeftToCapacityRebalancing {
        instance_id: String,
        group: String,
    },
    NoGroup {
        instance_id: String,
    },
    UnmanagedGroup {
        instance_id: String,
        group: String,
    },
    /// The instance is Unhealthy or terminating (`state`), or gone from its group (`None`).
    BeingReplaced {
        instance_id: String,
        group: String,
        state: Option<InstanceState>,
    },
    /// AWS closed the notice.
    Closed,
}

/// A resource a retirement replaces, as a notice names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resource {
    Service { cluster: String, service: String },
    Instance { instance_id: String, group: String },
}

/// A replacement waiting for its budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Waiting {
    pub resource: Resource,
    pub budget: BudgetKey,
    /// Replacements ahead of it: in replacement now, and started before it by this look.
    pub ahead: usize,
    /// What is in replacement now.
    pub in_replacement: Vec<String>,
}

/// Why a replacement starts now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Now {
    pub why: Why,
    /// The budget was full, but the latest safe start has come.
    pub over_budget: Option<FullBudget>,
}

/// A disruption budget found full at the latest safe start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FullBudget {
    pub budget: BudgetKey,
    pub ahead: usize,
    pub in_replacement: Vec<String>,
}

/// An instance's lifecycle state and health, as its group reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceState {
    pub lifecycle: String,
    pub health: String,
}

/// What a disruption budget counts: hosts of a group, or redeploys in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetKey {
    Group(String),
    Cluster(String),
}

impl Now {
    fn because(why: Why) -> Self {
        Now {
            why,
            over_budget: None,
        }
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

    fn resource(&self) -> Resource {
        match self {
            Action::Redeploy {
                cluster, service, ..
            } => Resource::Service {
                cluster: cluster.clone(),
                service: service.name.clone(),
            },
            Action::ReplaceInstance {
                instance_id, group, ..
            } => Resource::Instance {
                instance_id: instance_id.clone(),
                group: group.clone(),
            },
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
        plan.push(tell(
            acts::IGNORE,
            Outcome::Skipped,
            About::default(),
            Told::Unrecognized,
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
            let resources: Vec<Resource> = actions.iter().map(Action::resource).collect();
            if first_look && actions.iter().all(|a| has_marker(a.scheduled(), &m)) {
                plan.push(tell(
                    acts::SCHEDULE,
                    Outcome::Skipped,
                    About::default(),
                    Told::AlreadyScheduled { until, resources },
                ));
                return plan;
            }
            if first_look {
                plan.extend(forecast_warnings(&forecasts));
            }
            let delay = (until - now)
                .num_seconds()
                .clamp(1, i64::from(MAX_DELAY_SECONDS));
            plan.push(Decision::Defer {
                look: LookAgain {
                    action: acts::SCHEDULE,
                    outcome: Outcome::Done,
                    until,
                    delay_seconds: delay as u32,
                    deferral: Deferral {
                        deferrals: deferral.deferrals + 1,
                        first_deferred_at: deferral.first_deferred_at.or(Some(now)),
                        budget_waits: deferral.budget_waits,
                    },
                },
                told: first_look.then_some(Told::Scheduled { until, resources }),
                marks: if first_look {
                    actions.iter().map(|a| a.schedule_mark(&m)).collect()
                } else {
                    vec![]
                },
            });
        }
        When::Now(why) => {
            plan.extend(within_budget(
                r, actions, deferral, config, now, why, &forecasts,
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

/// The disruption budget: acts on as many of `actions` as their budget has room for,
/// counting what the fleet shows in replacement now plus what this plan starts, and puts
/// the rest off for `RETIREMENT_POLL_SECONDS`. The count comes from the fleet on every
/// look, never from memory, so notices arriving in any order share one budget. At the
/// latest safe start (`startTime − LEAD_TIME_HOURS`) a waiting replacement goes anyway:
/// AWS retiring the resource without a drain would be worse than one more at once.
fn within_budget(
    r: &Retirement,
    actions: Vec<Action>,
    deferral: &Deferral,
    config: &Config,
    now: DateTime<Utc>,
    why: Why,
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
        plan.extend(forecast_warnings(forecasts));
    }
    let queues = group_queues(r, &actions, config);
    let mut heads_started: Vec<String> = vec![];
    for a in actions {
        if config.replace == Replace::StopTasks && matches!(a, Action::Redeploy { .. }) {
            let (steps, again) = stop_tasks(r, a, deferral, now, why);
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
                        plan.push(head_of_queue(head, group, cluster, why));
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
                    plan.push(act_now(r, a, Now::because(why)));
                }
                continue;
            }
        }
        if ahead < limit {
            *started.entry(key).or_default() += 1;
            plan.push(act_now(r, a, Now::because(why)));
        } else if past_latest {
            *started.entry(key.clone()).or_default() += 1;
            let over = FullBudget {
                budget: key,
                ahead,
                in_replacement: a.busy().to_vec(),
            };
            plan.push(act_now(
                r,
                a,
                Now {
                    why,
                    over_budget: Some(over),
                },
            ));
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
        plan.extend(forecast_warnings(forecasts));
    }
    let told =
        (budget_wait && deferral.budget_waits == 0).then(|| waits_for_budget(&waiting, forecasts));
    plan.push(Decision::Defer {
        look: LookAgain {
            action: if budget_wait {
                acts::WAIT_BUDGET
            } else {
                action::STOP_TASKS
            },
            outcome: Outcome::Done,
            until: now + Duration::seconds(i64::from(delay)),
            delay_seconds: delay,
            deferral: Deferral {
                deferrals: deferral.deferrals + 1,
                first_deferred_at: deferral.first_deferred_at.or(Some(now)),
                budget_waits: deferral.budget_waits + u32::from(budget_wait),
            },
        },
        told,
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
fn head_of_queue(instance_id: &str, group: &str, cluster: &str, why: Why) -> Decision {
    Decision::ReplaceInstance {
        told: Told::NextInQueue {
            instance_id: instance_id.to_string(),
            group: group.to_string(),
            cluster: cluster.to_string(),
            now: Now::because(why),
        },
        target: ReplaceInstance {
            instance_id: instance_id.to_string(),
            group: group.to_string(),
            cluster: cluster.to_string(),
        },
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
) -> (Vec<Decision>, bool) {
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
    let about = About::cluster(&cluster);
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
    if retiring.is_empty() {
        let step = Decision::Tell {
            action: action::STOP_TASKS,
            outcome: Outcome::AlreadyDone,
            about,
            told: Told::NoRetiringTaskLeft {
                cluster,
                service: service.name.clone(),
                cutoff,
            },
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
        let step = tell(
            action::STOP_TASKS,
            Outcome::Warning,
            about,
            Told::BelowFloor {
                cluster,
                service: service.name.clone(),
                healthy,
                desired,
                min_percent,
                floor,
                retiring: retiring.iter().map(|t| t.arn.clone()).collect(),
            },
        );
        return (vec![step], false);
    }
    let batch: Vec<String> = retiring.iter().take(room).map(|t| t.arn.clone()).collect();
    let last = batch.len() == retiring.len();
    let step = Decision::StopTasks {
        told: Told::StoppingTasks {
            cluster: cluster.clone(),
            service: service.name.clone(),
            stopped: batch.clone(),
            retiring: retiring.len(),
            floor,
            desired,
            min_percent,
            last,
            now: Now::because(why),
        },
        target: StopTasks {
            cluster,
            service: service.name.clone(),
            service_arn: service.arn.clone(),
            tasks: batch,
            last,
            marker: m,
        },
    };
    (vec![step], !last)
}

/// The first time replacements wait for the budget: what waits for what, with the
/// forecast of each budget (whether it makes the deadline is the `budget-forecast` step).
fn waits_for_budget(waiting: &[(Action, usize)], forecasts: &[Forecasted]) -> Told {
    let keys: Vec<BudgetKey> = waiting.iter().map(|(a, _)| a.budget_key()).collect();
    Told::WaitsForBudget {
        waiting: waiting
            .iter()
            .map(|(a, ahead)| Waiting {
                resource: a.resource(),
                budget: a.budget_key(),
                ahead: *ahead,
                in_replacement: a.busy().to_vec(),
            })
            .collect(),
        forecasts: forecasts
            .iter()
            .filter(|f| keys.contains(&f.key))
            .map(|f| f.forecast.clone())
            .collect(),
    }
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
fn forecast_warnings(forecasts: &[Forecasted]) -> Vec<Decision> {
    forecasts
        .iter()
        .filter(|f| f.forecast.late > 0)
        .filter(|f| {
            f.group
                .as_ref()
                .is_none_or(|(_, fp, sent)| sent.as_deref() != Some(fp.as_str()))
        })
        .map(|f| Decision::Tell {
            action: acts::BUDGET_FORECAST,
            outcome: Outcome::Warning,
            about: match &f.key {
                BudgetKey::Group(g) => About::group(g),
                BudgetKey::Cluster(c) => About::cluster(c),
            },
            told: Told::BudgetLate {
                forecast: f.forecast.clone(),
            },
            mark: f.group.as_ref().map(|(name, fp, _)| Mark::Group {
                name: name.clone(),
                key: FORECAST_TAG,
                value: fp.clone(),
            }),
        })
        .collect()
}

enum Classified {
    Act(Action),
    Report(Decision),
}

fn tell(action: &'static str, outcome: Outcome, about: About, told: Told) -> Decision {
    Decision::Tell {
        action,
        outcome,
        about,
        told,
        mark: None,
    }
}

fn report(action: &'static str, outcome: Outcome, about: About, told: Told) -> Classified {
    Classified::Report(tell(action, outcome, about, told))
}

fn classify(r: &Retirement, o: &Observed, replace: Replace) -> Classified {
    match o {
        Observed::Service {
            cluster,
            service,
            via_tasks,
            deploying,
            images,
            tasks,
        } => {
            let about = About::cluster(cluster);
            // CODE_DEPLOY / EXTERNAL take no forced deployment; with stop-tasks their
            // tasks are stopped in batches like any (the scheduler replaces each in its
            // own task set, same task definition: no traffic shift, nothing to roll back).
            if service.deployment_controller != "ECS" && replace == Replace::Redeploy {
                return report(
                    action::REDEPLOY_SERVICE,
                    Outcome::Warning,
                    about,
                    Told::OtherController {
                        cluster: cluster.clone(),
                        service: service.name.clone(),
                        controller: service.deployment_controller.clone(),
                        running: service.running_count,
                    },
                );
            }
            if service.tags.get(HANDLED_TAG) == Some(&marker(&r.event_arn)) {
                return report(
                    action::REDEPLOY_SERVICE,
                    Outcome::AlreadyDone,
                    about,
                    Told::AlreadyRedeployed {
                        cluster: cluster.clone(),
                        service: service.name.clone(),
                    },
                );
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
        } => report(
            action::REDEPLOY_SERVICE,
            Outcome::Warning,
            About::default(),
            Told::AmbiguousService {
                service: service.clone(),
                arn: arn.clone(),
                clusters: clusters.clone(),
            },
        ),
        Observed::ServiceGone { cluster, service } => report(
            action::REDEPLOY_SERVICE,
            Outcome::AlreadyDone,
            About::cluster(cluster),
            Told::ServiceGone {
                cluster: cluster.clone(),
                service: service.clone(),
            },
        ),
        Observed::Standalone {
            cluster,
            task,
            handled,
        } => {
            let about = About {
                task: Some(task.arn.clone()),
                ..About::cluster(cluster)
            };
            let m = marker(&r.event_arn);
            if handled.as_deref() == Some(m.as_str()) {
                return report(
                    acts::STANDALONE_TASK,
                    Outcome::AlreadyDone,
                    about,
                    Told::StandaloneAlreadyReported {
                        cluster: cluster.clone(),
                        task: task.arn.clone(),
                    },
                );
            }
            Classified::Report(Decision::Tell {
                action: acts::STANDALONE_TASK,
                outcome: Outcome::Warning,
                about,
                told: Told::Standalone {
                    cluster: cluster.clone(),
                    task: task.clone(),
                },
                mark: Some(Mark::Ecs {
                    arn: task.arn.clone(),
                    key: HANDLED_TAG,
                    value: m,
                }),
            })
        }
        Observed::TaskGone { cluster, arn } => report(
            acts::RETIRE_TASK,
            Outcome::AlreadyDone,
            About {
                cluster: cluster.clone(),
                task: Some(arn.clone()),
                ..About::default()
            },
            Told::TaskGone { arn: arn.clone() },
        ),
        Observed::Unmanaged { cluster, entity } => report(
            acts::RETIRE_TASK,
            Outcome::Skipped,
            About {
                cluster: cluster.clone(),
                ..About::default()
            },
            Told::Unmanaged {
                cluster: cluster.clone(),
                entity: entity.clone(),
            },
        ),
        Observed::Instance {
            instance_id,
            group,
            capacity_rebalance,
            others_retiring,
        } => {
            if *capacity_rebalance && r.source == Source::Rebalance {
                return left_to_capacity_rebalancing(instance_id, group.as_ref());
            }
            classify_instance(instance_id, group.as_ref(), others_retiring)
        }
    }
}

/// A rebalance recommendation for an instance of a group with Capacity Rebalancing: Auto
/// Scaling launches the replacement before it terminates the instance; replacing it here
/// too would take the capacity away first.
fn left_to_capacity_rebalancing(instance_id: &str, group: Option<&Group>) -> Classified {
    let name = group.map(|g| g.name.clone()).unwrap_or_default();
    report(
        action::REPLACE_INSTANCE,
        Outcome::Skipped,
        About {
            cluster: group.and_then(|g| g.cluster()).map(str::to_string),
            group: Some(name.clone()),
            instance: Some(instance_id.to_string()),
            task: None,
        },
        Told::LeftToCapacityRebalancing {
            instance_id: instance_id.to_string(),
            group: name,
        },
    )
}

fn classify_instance(
    instance_id: &str,
    group: Option<&Group>,
    others_retiring: &[RetiringHost],
) -> Classified {
    let about = About {
        group: group.map(|g| g.name.clone()),
        instance: Some(instance_id.to_string()),
        ..About::default()
    };
    let Some(group) = group else {
        return report(
            action::REPLACE_INSTANCE,
            Outcome::Skipped,
            about,
            Told::NoGroup {
                instance_id: instance_id.to_string(),
            },
        );
    };
    let Some(cluster) = group.cluster() else {
        return report(
            action::REPLACE_INSTANCE,
            Outcome::Skipped,
            about,
            Told::UnmanagedGroup {
                instance_id: instance_id.to_string(),
                group: group.name.clone(),
            },
        );
    };
    let member = group
        .instances
        .iter()
        .find(|i| i.instance_id == instance_id);
    let going = member.is_none_or(|m| {
        m.health_status.eq_ignore_ascii_case("Unhealthy") || m.lifecycle_state.is_terminating()
    });
    if going {
        return report(
            action::REPLACE_INSTANCE,
            Outcome::AlreadyDone,
            About {
                cluster: Some(cluster.to_string()),
                ..about
            },
            Told::BeingReplaced {
                instance_id: instance_id.to_string(),
                group: group.name.clone(),
                state: member.map(|m| InstanceState {
                    lifecycle: m.lifecycle_state.to_string(),
                    health: m.health_status.clone(),
                }),
            },
        );
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
fn in_replacement(i: &GroupInstance) -> bool {
    i.health_status.eq_ignore_ascii_case("Unhealthy")
        || i.lifecycle_state.is_terminating()
        || i.lifecycle_state.is_pending()
}

fn act_now(r: &Retirement, action: Action, now: Now) -> Decision {
    match action {
        Action::Redeploy {
            cluster,
            service,
            via_tasks,
            images,
            ..
        } => Decision::Redeploy {
            told: Told::Redeploying {
                cluster: cluster.clone(),
                service: service.name.clone(),
                running: service.running_count,
                via_tasks,
                images,
                now,
            },
            target: Redeploy {
                marker: marker(&r.event_arn),
                service_arn: service.arn,
                service: service.name,
                cluster,
            },
        },
        Action::ReplaceInstance {
            instance_id,
            group,
            cluster,
            ..
        } => Decision::ReplaceInstance {
            told: Told::Replacing {
                instance_id: instance_id.clone(),
                group: group.clone(),
                cluster: cluster.clone(),
                now,
            },
            target: ReplaceInstance {
                instance_id,
                group,
                cluster,
            },
        },
    }
}

// --- what to read next ------------------------------------------------------------
// Observe follows what the notice names; where what it read decides what it reads next,
// the decision is here.

/// What a retiring task leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskLead {
    /// A running service task: read its service next (replaced with it, once however
    /// many of its tasks the notice names).
    Service { cluster: String, service: String },
    /// Nothing more to read.
    Found(Box<Observed>),
}

/// A retiring task as ECS describes it in `cluster`, with its [`HANDLED_TAG`].
pub fn task_lead(cluster: String, arn: &str, task: Task, handled: Option<String>) -> TaskLead {
    let found = |o| TaskLead::Found(Box::new(o));
    match (task.is_running(), task.service()) {
        (true, Some(s)) => TaskLead::Service {
            service: s.to_string(),
            cluster,
        },
        (true, None) => found(Observed::Standalone {
            cluster,
            handled,
            task,
        }),
        (false, _) => found(Observed::TaskGone {
            cluster: Some(cluster),
            arn: arn.to_string(),
        }),
    }
}

/// A retiring task that no cluster looked in knows: gone from the cluster its ARN names,
/// or (the old short ARN) in no cluster we manage.
pub fn task_not_found(cluster: Option<&str>, arn: &str) -> Observed {
    match cluster {
        Some(c) => Observed::TaskGone {
            cluster: Some(c.to_string()),
            arn: arn.to_string(),
        },
        None => Observed::Unmanaged {
            cluster: None,
            entity: arn.to_string(),
        },
    }
}

/// The cluster of a service named by the old short ARN, from the clusters found with an
/// ACTIVE service of that name: `Some(Err(clusters))` when there are several (a guess
/// could redeploy the wrong one); `None` when there is none.
pub fn service_cluster(mut candidates: Vec<String>) -> Option<Result<String, Vec<String>>> {
    match candidates.len() {
        0 => None,
        1 => Some(Ok(candidates.remove(0))),
        _ => Some(Err(candidates)),
    }
}

/// What else a service's replacement needs read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceReads {
    /// Its tasks (`RETIREMENT_REPLACE=stop-tasks` picks the retiring ones).
    pub tasks: bool,
    /// The cluster's deployments under way (the redeploy budget) and the service's
    /// images: only a service that may be redeployed needs them.
    pub redeploy: bool,
}

pub fn service_reads(service: &ServiceDescription, replace: Replace) -> ServiceReads {
    ServiceReads {
        tasks: replace == Replace::StopTasks,
        redeploy: service.deployment_controller == "ECS" && replace == Replace::Redeploy,
    }
}

/// Whether a host's group retirement queue is read (the group's hosts AWS has scheduled,
/// whatever notice names them: what the budget forecast and the queue count). Only a
/// scheduled notice of a managed group needs it.
pub fn reads_queue(group: &Group, r: &Retirement) -> bool {
    group.cluster().is_some() && r.start_time.is_some()
}

/// A notice AWS has closed: nothing left to do.
pub fn closed() -> Plan {
    vec![tell(
        acts::RETIRE,
        Outcome::Skipped,
        About::default(),
        Told::Closed,
    )]
}

#[cfg(test)]
pub(crate) mod tests;
