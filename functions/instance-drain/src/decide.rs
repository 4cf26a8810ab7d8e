//! The pure core: from what the event says and what the cluster looks like now, decide
//! what to do and why. No AWS calls here: a decision that needs another read returns
//! that read ([`Next::Read`]) and is made again once it is done; a plan is data (moves
//! with typed reasons, worded by `notices`), so it is logged, dry-run and asserted in
//! tests.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use shared::aws::autoscaling::{Group, HookResult};
use shared::aws::ecs::{ContainerInstance, ContainerInstanceStatus, Task, TaskStatus};
use shared::events::autoscaling::{LifecycleAction, Transition};
use shared::events::ec2::InstanceWarning;
use shared::exec::action::{COMPLETE_LIFECYCLE, DRAIN_HOST, REACTIVATE, RECHECK, STOP_TASK};
use shared::notify::Outcome;

use crate::aws::HostFacts;
use crate::config::{Config, StandaloneTasks};
use crate::observe::{Read, Seen, SpotHost};
use crate::parse::{Place, Progress};

pub use crate::observe::HostState;

/// ECS's own terminate hook on a group whose capacity provider has managed draining.
pub const ECS_MANAGED_DRAINING_HOOK: &str = "ecs-managed-draining-termination-hook";
/// Auto Scaling ends any lifecycle action after 48 hours.
pub(crate) const MAX_GLOBAL_TIMEOUT: i64 = 172_800;
/// The function's timeout in template.yaml: the longest a look may take.
pub const LOOK_SECONDS: i64 = 20;

/// One thing to do, and why (the reason `notices` words).
#[derive(Debug, Clone, PartialEq)]
pub enum Move {
    /// Stop new tasks landing on the host and let ECS move service tasks away.
    Drain {
        cluster: String,
        container_instance_arn: String,
        why: Why,
    },
    StopTask {
        cluster: String,
        task_arn: String,
        why: Why,
    },
    /// Let ECS place tasks on the host again (back from a warm pool).
    Reactivate {
        cluster: String,
        container_instance_arn: String,
    },
    /// Let the instance go (terminate) or in (launch), or abandon a launch.
    Complete { result: HookResult, why: Why },
    /// Look again after a delay, by sending the event back to our queue.
    Recheck {
        delay_seconds: u32,
        progress: Progress,
    },
    /// Only tell people (a skip, or a finding that needs no action).
    Tell {
        action: &'static str,
        outcome: Outcome,
        why: Why,
    },
    /// Not ours: a debug log line and a metric, no notification.
    Quiet { action: &'static str, why: Why },
}

impl Move {
    /// The action name used in notifications and metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Move::Drain { .. } => DRAIN_HOST,
            Move::StopTask { .. } => STOP_TASK,
            Move::Reactivate { .. } => REACTIVATE,
            Move::Complete { .. } => COMPLETE_LIFECYCLE,
            Move::Recheck { .. } => RECHECK,
            Move::Tell { action, .. } | Move::Quiet { action, .. } => action,
        }
    }

    /// Why it is made (`None`: a move that tells nobody).
    pub fn why(&self) -> Option<&Why> {
        match self {
            Move::Drain { why, .. }
            | Move::StopTask { why, .. }
            | Move::Complete { why, .. }
            | Move::Tell { why, .. }
            | Move::Quiet { why, .. } => Some(why),
            Move::Reactivate { .. } | Move::Recheck { .. } => None,
        }
    }
}

pub type Plan = Vec<Move>;

/// Why a move is made: everything its notification says, as data.
#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    /// A terminating instance that is no container instance of the cluster.
    NotContainerInstance {
        instance_id: String,
        cluster: String,
    },
    /// A terminate drain begins (or the host was DRAINING already).
    Draining {
        instance_id: String,
        group: String,
        cluster: String,
        tasks: usize,
        services: BTreeSet<String>,
        container_instance: String,
        deadline: i64,
    },
    /// Services whose tasks can never leave the host, with why (first look).
    CannotLeave {
        instance_id: String,
        stuck: BTreeMap<String, String>,
        deadline: i64,
    },
    /// The host can no longer have its tasks confirmed stopped.
    Dead {
        instance_id: String,
        cluster: String,
        dead: Dead,
        tasks_left: Vec<String>,
    },
    Drained {
        instance_id: String,
        cluster: String,
        elapsed: i64,
        moved: usize,
        standalone_stopped: usize,
        checks: u32,
    },
    TimedOut {
        instance_id: String,
        cluster: String,
        elapsed: i64,
        deadline: i64,
        limit: Limit,
        tasks_left: Vec<String>,
        moved: usize,
    },
    /// A standalone task stopped after the grace period (STANDALONE_TASKS=stop).
    StandaloneStopped {
        instance_id: String,
        task_arn: String,
        started_by: Option<String>,
        task_definition: String,
        grace_seconds: i64,
    },
    /// ECS's managed-draining hook is on the group too.
    EcsDrains {
        instance_id: String,
        group: String,
        hook: String,
    },
    /// A quarantined host is being terminated: held, not drained.
    Quarantined {
        instance_id: String,
        group: String,
        hook: String,
        global_timeout: i64,
    },
    HoldEnded {
        instance_id: String,
        ended: HoldEnd,
    },
    /// A heartbeat found no active lifecycle action.
    ActionGone {
        instance_id: String,
        tasks_left: Vec<String>,
    },
    Admitted {
        instance_id: String,
        cluster: String,
        elapsed: i64,
        container_instance: String,
        ami_id: Option<String>,
    },
    /// A launch that did not join its cluster in time.
    NeverJoined {
        instance_id: String,
        group: String,
        cluster: String,
        /// Its container instance's status and agent connection, if it registered.
        registered: Option<(String, bool)>,
        waited: i64,
        timeout: i64,
    },
    IntoWarmPool {
        instance_id: String,
        group: String,
    },
    OutOfWarmPool {
        instance_id: String,
        group: String,
    },
    /// Our hook on a group without the opt-in tag.
    UntaggedGroup {
        instance_id: String,
        group: String,
        hook: String,
    },
    /// A tagged group whose cluster is not opted in.
    NotOptedIn {
        instance_id: String,
        group: String,
        cluster: String,
    },
    /// A re-check names a container instance that is not the host's (forged progress).
    CarriedMismatch {
        instance_id: String,
        carried: String,
        cluster: String,
    },
    /// A Spot warning for a host that is no container instance of the cluster.
    SpotNotRegistered {
        instance_id: String,
        cluster: String,
    },
    /// A Spot warning: the host is drained at once.
    Spot {
        instance_id: String,
        spot_action: String,
        cluster: String,
        tasks: usize,
        container_instance: String,
    },
    /// A Spot warning for a host in no managed cluster.
    SpotOutside {
        instance_id: String,
    },
}

/// Why a host with tasks on it is dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dead {
    /// Its EC2 status checks report it impaired.
    Impaired,
    /// Its EC2 instance is stopping, stopped, shutting down or terminated.
    Ec2State(String),
    AgentDisconnected,
}

/// What set a drain's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The hook's global timeout (seconds), which Auto Scaling enforces.
    HookGlobalTimeout(i64),
    /// DRAIN_TIMEOUT_SECONDS.
    DrainTimeout(i64),
}

/// Why a quarantined host is no longer held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldEnd {
    /// The lifecycle action was completed (or its global timeout passed).
    ActionCompleted,
    /// The host was detached from the group.
    Detached,
}

/// What the look's first write, the heartbeat, found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    Alive,
    Gone,
    /// Not sent (dry run), or it failed (logged): the look goes on regardless.
    Unknown,
}

/// A decision that needs another read first, or the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Read(Read),
    Plan(Plan),
}

/// What a lifecycle look knows before it reads anything but the group.
#[derive(Debug, Clone, Copy)]
pub struct Look<'a> {
    pub action: &'a LifecycleAction,
    /// As carried by the event (see [`trusted`] for what of it is believed).
    pub progress: &'a Progress,
    pub origin: Place,
    pub destination: Place,
    pub beat: Beat,
    /// The group (`None`: it does not exist).
    pub group: Option<&'a Group>,
}

/// Whether the look heartbeats: only a group that carries the opt-in tag (a carried
/// progress can be forged by anyone who can send to the queue). A failed read still
/// heartbeats (IAM refuses untagged groups, and a live action matters more than one
/// read); the look then fails and is re-queued.
pub fn heartbeats<E>(group: &Result<Option<Group>, E>) -> bool {
    match group {
        Ok(g) => g.as_ref().and_then(|g| g.cluster()).is_some(),
        Err(_) => true,
    }
}

/// A lifecycle look: the plan, or the read it needs next. Made again from the start
/// after each read, so each answer depends only on `look` and what `seen` holds.
pub fn lifecycle(look: &Look, seen: &Seen, config: &Config, now: DateTime<Utc>) -> Next {
    let action = look.action;
    // The group's tag is what opts it in, and what a carried progress is checked against.
    let Some(cluster) = look.group.and_then(|g| g.cluster()) else {
        return Next::Plan(untagged_group(action));
    };
    let mut progress = trusted(look.progress, cluster);
    let terminating = action.transition == Transition::Terminating;
    if look.beat == Beat::Gone {
        if progress.quarantined {
            return Next::Plan(hold_ended(action, HoldEnd::ActionCompleted));
        }
        if !terminating {
            return Next::Plan(action_gone(action, None));
        }
        return match &seen.host {
            None => Next::Read(host(action, cluster, &progress, false)),
            Some(h) => Next::Plan(action_gone(action, Some(h))),
        };
    }
    if progress.quarantined {
        // The hold's re-check: heartbeat (done), the group (read), the host's tag.
        let in_group = look
            .group
            .iter()
            .flat_map(|g| &g.instances)
            .any(|i| i.instance_id == action.instance_id);
        if !in_group {
            return Next::Plan(hold_ended(action, HoldEnd::Detached));
        }
        match seen.quarantine_tag {
            None => return Next::Read(quarantine_tag(action)),
            Some(true) => return Next::Plan(hold_quarantined(action, &progress, cluster, config)),
            // The tag was removed: drain it like any other host, from a first look.
            Some(false) => {
                progress = Progress {
                    started_at: progress.started_at,
                    heartbeat_timeout: progress.heartbeat_timeout,
                    global_timeout: progress.global_timeout,
                    ..Progress::default()
                }
            }
        }
    }
    let first_look = progress.cluster.is_none() && progress.heartbeat_timeout.is_none();
    if first_look {
        // One DescribeLifecycleHooks: our hook's timeouts, and whether ECS drains too.
        let Some(hooks) = &seen.hooks else {
            return Next::Read(Read::Hooks {
                group: action.group.clone(),
            });
        };
        if let Some(own) = hooks.iter().find(|h| h.name == action.hook) {
            progress.heartbeat_timeout = own.heartbeat_timeout;
            progress.global_timeout = own.global_timeout;
        }
        if terminating && hooks.iter().any(|h| h.name == ECS_MANAGED_DRAINING_HOOK) {
            return match seen.quarantine_tag {
                None => Next::Read(quarantine_tag(action)),
                Some(true) => Next::Plan(hold_quarantined(action, &progress, cluster, config)),
                Some(false) => Next::Plan(ecs_drains(action)),
            };
        }
    }
    let managed = |plan: Plan| match seen.managed {
        None => Next::Read(Read::Managed {
            cluster: cluster.to_string(),
        }),
        Some(false) => Next::Plan(not_opted_in(action, cluster)),
        Some(true) => Next::Plan(plan),
    };
    match (action.transition, look.origin, look.destination) {
        (Transition::Launching, _, Place::WarmPool) => Next::Plan(into_warm_pool(action)),
        (Transition::Terminating, Place::WarmPool, _) => Next::Plan(out_of_warm_pool(action)),
        (Transition::Launching, _, _) => {
            let Some(ci) = &seen.container_instance else {
                return Next::Read(Read::ContainerInstance {
                    cluster: cluster.to_string(),
                    instance_id: action.instance_id.clone(),
                });
            };
            let plan = launch(action, &progress, cluster, ci.as_ref(), config, now);
            match writes_to_ecs(&plan) {
                true => managed(plan),
                false => Next::Plan(plan),
            }
        }
        (Transition::Terminating, _, _) => {
            let rechecking = progress.cluster.is_some();
            let mut facts = HostFacts::default();
            if !rechecking {
                let Some(f) = &seen.facts else {
                    return Next::Read(Read::HostFacts {
                        instance_id: action.instance_id.clone(),
                    });
                };
                if f.quarantined {
                    return Next::Plan(hold_quarantined(action, &progress, cluster, config));
                }
                if seen.managed != Some(true) {
                    return managed(vec![]);
                }
                facts = f.clone();
            }
            let Some(observed) = &seen.host else {
                return Next::Read(host(action, cluster, &progress, true));
            };
            let mut observed = observed.clone();
            observed.facts = facts;
            let plan = terminate(action, &progress, &observed, config, now);
            // A re-check skipped the opt-in reads; they are made before it writes to ECS.
            if !(rechecking && writes_to_ecs(&plan)) {
                return Next::Plan(plan);
            }
            if seen.managed != Some(true) {
                return managed(vec![]);
            }
            let carried = progress.container_instance_arn.clone().unwrap_or_default();
            match &seen.carried {
                None => Next::Read(Read::CarriedHost {
                    cluster: cluster.to_string(),
                    container_instance_arn: carried,
                }),
                Some(ec2_ids) => {
                    Next::Plan(carried_is_ours(action, cluster, &carried, ec2_ids, plan))
                }
            }
        }
    }
}

fn quarantine_tag(action: &LifecycleAction) -> Read {
    Read::QuarantineTag {
        instance_id: action.instance_id.clone(),
    }
}

fn host(action: &LifecycleAction, cluster: &str, progress: &Progress, measured: bool) -> Read {
    Read::Host {
        cluster: cluster.to_string(),
        instance_id: action.instance_id.clone(),
        progress: Box::new(progress.clone()),
        measured,
    }
}

/// A re-check writes to ECS only for the host its progress names: the container
/// instance it carries must be the one of the action's EC2 instance (`ec2_ids`: what
/// ECS says that container instance is), or the progress was forged to act on another
/// host and nothing is changed.
pub fn carried_is_ours(
    action: &LifecycleAction,
    cluster: &str,
    carried: &str,
    ec2_ids: &[String],
    plan: Plan,
) -> Plan {
    if ec2_ids.contains(&action.instance_id) {
        return plan;
    }
    vec![Move::Tell {
        action: "lifecycle",
        outcome: Outcome::Skipped,
        why: Why::CarriedMismatch {
            instance_id: action.instance_id.clone(),
            carried: carried.to_string(),
            cluster: cluster.to_string(),
        },
    }]
}

impl HostState {
    /// Tasks that keep the host from going: everything still running except daemon tasks,
    /// which ECS stops last on a draining host and which exist on every host anyway.
    fn blocking(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter().filter(|t| {
            t.is_running()
                && !t
                    .service()
                    .is_some_and(|s| self.daemon_services.contains(s))
        })
    }
}

fn seconds_since(start: Option<DateTime<Utc>>, now: DateTime<Utc>) -> i64 {
    start.map(|s| (now - s).num_seconds().max(0)).unwrap_or(0)
}

/// The hook's global timeout: as DescribeLifecycleHooks reported it, or AWS's rule
/// (100 × HeartbeatTimeout, at most 48 hours) where it did not.
pub fn global_timeout(progress: &Progress) -> Option<i64> {
    progress.global_timeout.or(progress
        .heartbeat_timeout
        .map(|hb| (100 * hb).min(MAX_GLOBAL_TIMEOUT)))
}

/// The delay before the next look: DRAIN_POLL_SECONDS, shortened so that a heartbeat
/// goes out at least every half HeartbeatTimeout (the next look may take LOOK_SECONDS).
pub fn poll_delay(config: &Config, progress: &Progress) -> u32 {
    match progress.heartbeat_timeout {
        Some(hb) => {
            let room = (hb / 2 - LOOK_SECONDS).max(5);
            config
                .poll_seconds
                .min(u32::try_from(room).unwrap_or(u32::MAX))
        }
        None => config.poll_seconds,
    }
}

/// When a drain gives up, in seconds since the action began, and whether the hook's
/// global timeout (rather than DRAIN_TIMEOUT_SECONDS) set it. The hook's limit is kept
/// two polls early, so the release is ours and not the hook's DefaultResult.
pub fn drain_deadline(config: &Config, progress: &Progress) -> (i64, bool) {
    match global_timeout(progress) {
        Some(global) => {
            let ours = (global - 2 * i64::from(poll_delay(config, progress))).max(0);
            if ours < config.drain_timeout_seconds {
                (ours, true)
            } else {
                (config.drain_timeout_seconds, false)
            }
        }
        None => (config.drain_timeout_seconds, false),
    }
}

fn recheck(config: &Config, progress: &Progress) -> Move {
    Move::Recheck {
        delay_seconds: poll_delay(config, progress),
        progress: Progress {
            checks: progress.checks + 1,
            failed_looks: 0,
            ..progress.clone()
        },
    }
}

/// The progress a look may rely on. It comes back through the drain queue, which anyone
/// allowed to send to it can write, so it is trusted only as the continuation of a first
/// look at this group's own cluster: a carried cluster other than the one the group is
/// tagged for, or a container instance or task list without a first look, starts over
/// (the first look checks the cluster's opt-in and finds the container instance itself).
pub fn trusted(progress: &Progress, group_cluster: &str) -> Progress {
    let consistent = match &progress.cluster {
        Some(c) => progress.checks > 0 && c == group_cluster,
        None => progress.container_instance_arn.is_none() && progress.blocking_tasks.is_none(),
    };
    if consistent {
        progress.clone()
    } else {
        Progress {
            started_at: progress.started_at,
            failed_looks: progress.failed_looks,
            ..Progress::default()
        }
    }
}

/// Whether a plan changes anything in ECS (which IAM cannot scope to managed clusters).
pub fn writes_to_ecs(plan: &Plan) -> bool {
    plan.iter().any(|s| {
        matches!(
            s,
            Move::Drain { .. } | Move::StopTask { .. } | Move::Reactivate { .. }
        )
    })
}

/// A tagged group whose cluster is not opted in: let the instance go without touching
/// the cluster, so the group is not held up.
pub fn not_opted_in(action: &LifecycleAction, cluster: &str) -> Plan {
    vec![Move::Complete {
        result: HookResult::Continue,
        why: Why::NotOptedIn {
            instance_id: action.instance_id.clone(),
            group: action.group.clone(),
            cluster: cluster.to_string(),
        },
    }]
}

fn task_arns(tasks: &[&Task]) -> Vec<String> {
    tasks.iter().map(|t| t.arn.clone()).collect()
}

/// A host that can no longer run or stop its tasks itself.
pub fn is_dead(facts: &HostFacts) -> bool {
    matches!(
        facts.state.as_str(),
        "stopping" | "stopped" | "shutting-down" | "terminated"
    ) || facts.impaired
}

/// Why a host can no longer have its tasks confirmed stopped, if it can't.
fn dead_reason(ci: &ContainerInstance, facts: &HostFacts) -> Option<Dead> {
    if facts.impaired {
        Some(Dead::Impaired)
    } else if is_dead(facts) {
        Some(Dead::Ec2State(facts.state.clone()))
    } else if !ci.agent_connected {
        Some(Dead::AgentDisconnected)
    } else {
        None
    }
}

/// A terminating instance: drain, wait for its tasks to move, then let it go.
pub fn terminate(
    action: &LifecycleAction,
    progress: &Progress,
    host: &HostState,
    config: &Config,
    now: DateTime<Utc>,
) -> Plan {
    let instance_id = action.instance_id.clone();
    let Some(ci) = &host.container_instance else {
        return vec![Move::Complete {
            result: HookResult::Continue,
            why: Why::NotContainerInstance {
                instance_id,
                cluster: host.cluster.clone(),
            },
        }];
    };
    let elapsed = seconds_since(progress.started_at, now);
    let blocking: Vec<&Task> = host.blocking().collect();
    let mut progress = progress.clone();
    progress.cluster = Some(host.cluster.clone());
    progress.container_instance_arn = Some(ci.arn.clone());
    let (deadline, hook_limit) = drain_deadline(config, &progress);
    let mut plan = vec![];
    let dead = dead_reason(ci, &host.facts).filter(|_| !blocking.is_empty());

    if progress.checks == 0 {
        progress.tasks_at_start = blocking.len();
        let why = Why::Draining {
            instance_id: instance_id.clone(),
            group: action.group.clone(),
            cluster: host.cluster.clone(),
            tasks: blocking.len(),
            services: blocking
                .iter()
                .filter_map(|t| t.service())
                .map(str::to_string)
                .collect(),
            container_instance: ci.arn.clone(),
            deadline,
        };
        if ci.status == ContainerInstanceStatus::Draining {
            plan.push(Move::Tell {
                action: DRAIN_HOST,
                outcome: Outcome::AlreadyDone,
                why,
            });
        } else {
            plan.push(Move::Drain {
                cluster: host.cluster.clone(),
                container_instance_arn: ci.arn.clone(),
                why,
            });
        }
        let stuck: BTreeMap<String, String> = blocking
            .iter()
            .filter_map(|t| t.service())
            .filter_map(|s| host.cannot_move.get_key_value(s))
            .map(|(s, why)| (s.clone(), why.clone()))
            .collect();
        if !stuck.is_empty() && dead.is_none() {
            plan.push(Move::Tell {
                action: DRAIN_HOST,
                outcome: Outcome::Warning,
                why: Why::CannotLeave {
                    instance_id: instance_id.clone(),
                    stuck,
                    deadline,
                },
            });
        }
    }

    if let Some(dead) = dead {
        plan.push(Move::Complete {
            result: HookResult::Continue,
            why: Why::Dead {
                instance_id,
                cluster: host.cluster.clone(),
                dead,
                tasks_left: task_arns(&blocking),
            },
        });
        return plan;
    }
    if blocking.is_empty() {
        plan.push(Move::Complete {
            result: HookResult::Continue,
            why: Why::Drained {
                instance_id,
                cluster: host.cluster.clone(),
                elapsed,
                moved: progress.tasks_at_start,
                standalone_stopped: progress.standalone_stopped,
                checks: progress.checks + 1,
            },
        });
        return plan;
    }

    if elapsed >= deadline {
        let left = task_arns(&blocking);
        let limit = match hook_limit {
            true => Limit::HookGlobalTimeout(global_timeout(&progress).unwrap_or_default()),
            false => Limit::DrainTimeout(config.drain_timeout_seconds),
        };
        plan.push(Move::Complete {
            result: HookResult::Continue,
            why: Why::TimedOut {
                instance_id,
                cluster: host.cluster.clone(),
                elapsed,
                deadline,
                limit,
                moved: progress.tasks_at_start.saturating_sub(left.len()),
                tasks_left: left,
            },
        });
        return plan;
    }

    progress.blocking_tasks = Some(task_arns(&blocking));
    // What each service on the host is, so a re-check need not ask ECS again.
    progress.daemon_services = host.daemon_services.iter().cloned().collect();
    progress.replica_services = host
        .tasks
        .iter()
        .filter_map(|t| t.service())
        .filter(|s| !host.daemon_services.contains(*s))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(str::to_string)
        .collect();

    if config.standalone_tasks == StandaloneTasks::Stop
        && elapsed >= config.standalone_grace_seconds
    {
        for t in blocking
            .iter()
            .filter(|t| t.service().is_none() && t.desired_status != TaskStatus::Stopped)
        {
            progress.standalone_stopped += 1;
            plan.push(Move::StopTask {
                cluster: host.cluster.clone(),
                task_arn: t.arn.clone(),
                why: Why::StandaloneStopped {
                    instance_id: instance_id.clone(),
                    task_arn: t.arn.clone(),
                    started_by: t.started_by.clone(),
                    task_definition: t.task_definition_arn.clone(),
                    grace_seconds: config.standalone_grace_seconds,
                },
            });
        }
    }

    plan.push(recheck(config, &progress));
    plan
}

/// The group has ECS's managed-draining hook as well: ECS drains the host and Auto
/// Scaling waits for its hook, so ours lets go at once instead of draining twice.
pub fn ecs_drains(action: &LifecycleAction) -> Plan {
    vec![Move::Complete {
        result: HookResult::Continue,
        why: Why::EcsDrains {
            instance_id: action.instance_id.clone(),
            group: action.group.clone(),
            hook: action.hook.clone(),
        },
    }]
}

/// A host guardduty-responder quarantined is caught by a terminate: hold it (heartbeats
/// up to the hook's global timeout) so the evidence on it is not lost, and say how to
/// keep it.
pub fn hold_quarantined(
    action: &LifecycleAction,
    progress: &Progress,
    cluster: &str,
    config: &Config,
) -> Plan {
    let mut progress = progress.clone();
    let mut plan = vec![];
    if !progress.quarantined {
        progress.quarantined = true;
        plan.push(Move::Tell {
            action: "hold",
            outcome: Outcome::Done,
            why: Why::Quarantined {
                instance_id: action.instance_id.clone(),
                group: action.group.clone(),
                hook: action.hook.clone(),
                global_timeout: global_timeout(&progress).unwrap_or(MAX_GLOBAL_TIMEOUT),
            },
        });
    }
    progress.cluster = Some(cluster.to_string());
    plan.push(recheck(config, &progress));
    plan
}

/// The quarantined host left the group (detached to keep it), or its action ended:
/// nothing left to hold.
pub fn hold_ended(action: &LifecycleAction, ended: HoldEnd) -> Plan {
    vec![Move::Tell {
        action: "hold",
        outcome: Outcome::AlreadyDone,
        why: Why::HoldEnded {
            instance_id: action.instance_id.clone(),
            ended,
        },
    }]
}

/// A heartbeat found no active lifecycle action: someone completed it, or its timeout
/// ran out. Tasks still on the host were cut off without a drain.
pub fn action_gone(action: &LifecycleAction, host: Option<&HostState>) -> Plan {
    let left: Vec<String> = host
        .map(|h| h.blocking().map(|t| t.arn.clone()).collect())
        .unwrap_or_default();
    let outcome = if left.is_empty() {
        Outcome::AlreadyDone
    } else {
        Outcome::Warning
    };
    vec![Move::Tell {
        action: "heartbeat",
        outcome,
        why: Why::ActionGone {
            instance_id: action.instance_id.clone(),
            tasks_left: left,
        },
    }]
}

/// A launching instance: let it in once its ECS agent has joined the cluster.
/// A host coming back from a warm pool kept the DRAINING status it was stopped with:
/// it is set ACTIVE again, then admitted like any launch.
pub fn launch(
    action: &LifecycleAction,
    progress: &Progress,
    cluster: &str,
    ci: Option<&ContainerInstance>,
    config: &Config,
    now: DateTime<Utc>,
) -> Plan {
    if let Some(c) =
        ci.filter(|c| c.status == ContainerInstanceStatus::Draining && c.agent_connected)
    {
        let mut plan = vec![Move::Reactivate {
            cluster: cluster.to_string(),
            container_instance_arn: c.arn.clone(),
        }];
        let active = ContainerInstance {
            status: ContainerInstanceStatus::Active,
            ..c.clone()
        };
        plan.extend(launch(
            action,
            progress,
            cluster,
            Some(&active),
            config,
            now,
        ));
        return plan;
    }
    let elapsed = seconds_since(progress.started_at, now);
    match ci {
        Some(ci) if ci.status == ContainerInstanceStatus::Active && ci.agent_connected => {
            vec![Move::Complete {
                result: HookResult::Continue,
                why: Why::Admitted {
                    instance_id: action.instance_id.clone(),
                    cluster: cluster.to_string(),
                    elapsed,
                    container_instance: ci.arn.clone(),
                    ami_id: ci.ami_id.clone(),
                },
            }]
        }
        _ if elapsed >= config.launch_timeout_seconds => vec![Move::Complete {
            result: HookResult::Abandon,
            why: Why::NeverJoined {
                instance_id: action.instance_id.clone(),
                group: action.group.clone(),
                cluster: cluster.to_string(),
                registered: ci.map(|c| (c.status.to_string(), c.agent_connected)),
                waited: elapsed,
                timeout: config.launch_timeout_seconds,
            },
        }],
        _ => vec![recheck(config, progress)],
    }
}

/// An instance launched into a warm pool: it is stopped there and never registers with
/// ECS (the agent runs with ECS_WARM_POOLS_CHECK=true), so there is nothing to wait for.
/// Its admission is when it leaves the pool for the group.
pub fn into_warm_pool(action: &LifecycleAction) -> Plan {
    vec![Move::Complete {
        result: HookResult::Continue,
        why: Why::IntoWarmPool {
            instance_id: action.instance_id.clone(),
            group: action.group.clone(),
        },
    }]
}

/// A warm-pool instance that is terminated runs no tasks: let it go.
pub fn out_of_warm_pool(action: &LifecycleAction) -> Plan {
    vec![Move::Complete {
        result: HookResult::Continue,
        why: Why::OutOfWarmPool {
            instance_id: action.instance_id.clone(),
            group: action.group.clone(),
        },
    }]
}

/// Our own hook on a group that did not opt in: a misconfiguration worth a warning. The
/// action is left to the hook's DefaultResult (IAM lets instance-drain complete the
/// actions of tagged groups only).
pub fn untagged_group(action: &LifecycleAction) -> Plan {
    vec![Move::Tell {
        action: "lifecycle",
        outcome: Outcome::Warning,
        why: Why::UntaggedGroup {
            instance_id: action.instance_id.clone(),
            group: action.group.clone(),
            hook: action.hook.clone(),
        },
    }]
}

/// A Spot warning, given the managed cluster the host was found in (`None`: in none):
/// a host outside every managed cluster is not ours, and only logged.
pub fn spot_host(warning: &InstanceWarning, found: Option<&SpotHost>) -> Plan {
    match found {
        Some(f) => spot(warning, &f.cluster, Some(&f.container_instance), f.tasks),
        None => vec![Move::Quiet {
            action: DRAIN_HOST,
            why: Why::SpotOutside {
                instance_id: warning.instance_id.clone(),
            },
        }],
    }
}

/// A spot interruption warning: drain at once; there is no hook to hold the instance.
pub fn spot(
    warning: &InstanceWarning,
    cluster: &str,
    ci: Option<&ContainerInstance>,
    tasks: usize,
) -> Plan {
    let Some(ci) = ci else {
        return vec![Move::Tell {
            action: DRAIN_HOST,
            outcome: Outcome::Skipped,
            why: Why::SpotNotRegistered {
                instance_id: warning.instance_id.clone(),
                cluster: cluster.to_string(),
            },
        }];
    };
    let why = Why::Spot {
        instance_id: warning.instance_id.clone(),
        spot_action: warning.action.clone(),
        cluster: cluster.to_string(),
        tasks,
        container_instance: ci.arn.clone(),
    };
    if ci.status == ContainerInstanceStatus::Draining {
        return vec![Move::Tell {
            action: DRAIN_HOST,
            outcome: Outcome::AlreadyDone,
            why,
        }];
    }
    vec![Move::Drain {
        cluster: cluster.to_string(),
        container_instance_arn: ci.arn.clone(),
        why,
    }]
}

#[cfg(test)]
mod tests;
