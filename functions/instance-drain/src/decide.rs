//! The pure core: from what the event says and what the cluster looks like now, decide
//! what to do. No AWS calls here; the plan is data, so it is logged, dry-run and
//! asserted in tests.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::aws::autoscaling::HookResult;
use shared::aws::ecs::{ContainerInstance, ContainerInstanceStatus, Task, TaskStatus};
use shared::events::autoscaling::LifecycleAction;
use shared::events::ec2::InstanceWarning;
use shared::notify::{Notice, Outcome, Severity};

use crate::aws::HostFacts;
use crate::config::{Config, StandaloneTasks};
use crate::parse::Progress;

/// ECS's own terminate hook on a group whose capacity provider has managed draining.
pub const ECS_MANAGED_DRAINING_HOOK: &str = "ecs-managed-draining-termination-hook";
/// Auto Scaling ends any lifecycle action after 48 hours.
const MAX_GLOBAL_TIMEOUT: i64 = 172_800;
/// The function's timeout in template.yaml: the longest a look may take.
pub const LOOK_SECONDS: i64 = 20;

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
    Report {
        action: &'static str,
        outcome: Outcome,
        notice: Notice,
    },
    /// Not ours: a debug log line and a metric, no notification.
    Quiet {
        action: &'static str,
        reason: String,
    },
}

impl Step {
    /// The action name used in notifications and metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Step::SetDraining { .. } => "drain",
            Step::StopTask { .. } => "stop-task",
            Step::SetActive { .. } => "reactivate",
            Step::Complete { .. } => "complete-lifecycle",
            Step::Recheck { .. } => "recheck",
            Step::Report { action, .. } | Step::Quiet { action, .. } => action,
        }
    }
}

pub type Plan = Vec<Step>;

/// What the cluster looks like for a host being drained.
#[derive(Debug, Clone, Default)]
pub struct HostState {
    pub cluster: String,
    pub container_instance: Option<ContainerInstance>,
    /// Tasks on the host that have not reached STOPPED.
    pub tasks: Vec<Task>,
    /// Services on the host that use the DAEMON strategy.
    pub daemon_services: BTreeSet<String>,
    /// Services whose tasks ECS can never move off a draining host, and why (first look
    /// only).
    pub cannot_move: BTreeMap<String, String>,
    /// What EC2 says of the host (first look only).
    pub facts: HostFacts,
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

fn recheck(config: &Config, progress: &Progress) -> Step {
    Step::Recheck {
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
            Step::SetDraining { .. } | Step::StopTask { .. } | Step::SetActive { .. }
        )
    })
}

/// A tagged group whose cluster is not opted in: let the instance go without touching
/// the cluster, so the group is not held up.
pub fn not_opted_in(action: &LifecycleAction, cluster: &str) -> Plan {
    vec![Step::Complete {
        result: HookResult::Continue,
        notice: Notice::warning(
            format!("Released {} without draining: cluster {} not opted in", action.instance_id, cluster),
            format!(
                "Group `{}` names cluster `{}`, but that cluster lacks the tag `ecs-autopilot:managed=true` (or does not exist), so its container instances are not touched. The lifecycle action was completed with CONTINUE so the group is not held up.",
                action.group, cluster
            ),
        )
        .next_step("Tag the cluster ecs-autopilot:managed=true to have its instances drained."),
    }]
}

fn task_arns(tasks: &[&Task]) -> Vec<String> {
    tasks.iter().map(|t| t.arn.clone()).collect()
}

/// Why a host can no longer have its tasks confirmed stopped, if it can't.
fn dead_reason(ci: &ContainerInstance, facts: &HostFacts) -> Option<String> {
    if facts.impaired {
        Some("its EC2 status checks report it impaired".into())
    } else if facts.is_dead() {
        Some(format!("its EC2 instance is {}", facts.state))
    } else if !ci.agent_connected {
        Some("its ECS agent is disconnected".into())
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
    let Some(ci) = &host.container_instance else {
        return vec![Step::Complete {
            result: HookResult::Continue,
            notice: Notice::info(
                format!("{} released: not a container instance", action.instance_id),
                format!(
                    "EC2 instance `{}` is not registered in cluster `{}` (never joined, or already deregistered), so there is nothing to drain. The terminate lifecycle action was completed with CONTINUE.",
                    action.instance_id, host.cluster
                ),
            ),
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
        let services: BTreeSet<&str> = blocking.iter().filter_map(|t| t.service()).collect();
        let notice = Notice::info(
            format!("Draining {} ({} tasks to move)", action.instance_id, blocking.len()),
            format!(
                "Auto Scaling group `{}` is terminating `{}`. Its container instance in cluster `{}` is set to DRAINING; the instance goes once its {} task(s) have moved (deadline {} s).",
                action.group, action.instance_id, host.cluster, blocking.len(), deadline
            ),
        )
        .detail("tasks", blocking.len())
        .detail("services", &services)
        .detail("container_instance", &ci.arn);
        if ci.status == ContainerInstanceStatus::Draining {
            plan.push(Step::Report {
                action: "drain",
                outcome: Outcome::AlreadyDone,
                notice,
            });
        } else {
            plan.push(Step::SetDraining {
                cluster: host.cluster.clone(),
                container_instance_arn: ci.arn.clone(),
                notice: Some(notice),
            });
        }
        let stuck: Vec<(&str, &str)> = blocking
            .iter()
            .filter_map(|t| t.service())
            .filter_map(|s| host.cannot_move.get_key_value(s))
            .map(|(s, why)| (s.as_str(), why.as_str()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !stuck.is_empty() && dead.is_none() {
            let names: Vec<&str> = stuck.iter().map(|(s, _)| *s).collect();
            let reasons: BTreeMap<&str, &str> = stuck.iter().copied().collect();
            plan.push(Step::Report {
                action: "drain",
                outcome: Outcome::Warning,
                notice: Notice::warning(
                    format!("Drain of {} cannot finish: {} service(s) can never leave", action.instance_id, stuck.len()),
                    format!(
                        "The tasks of {} can never be moved off `{}`: {}. They stay until the drain's deadline ({} s), and then the instance goes with them (where no other host qualifies, a service whose minimumHealthyPercent is below 100 may instead have its tasks stopped without replacement).",
                        names.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
                        action.instance_id,
                        stuck.iter().map(|(s, why)| format!("`{s}`: {why}")).collect::<Vec<_>>().join("; "),
                        deadline
                    ),
                )
                .detail("services", &names)
                .detail("reasons", &reasons)
                .next_step("Lower minimumHealthyPercent or raise maximumPercent of those services, or relax their placement constraints (or add hosts that meet them), so ECS can move their tasks."),
            });
        }
    }

    if let Some(why) = dead {
        let left = task_arns(&blocking);
        plan.push(Step::Complete {
            result: HookResult::Continue,
            notice: Notice::warning(
                format!("Released {} without waiting: host is dead, {} task(s) cut off", action.instance_id, left.len()),
                format!(
                    "`{}` (cluster `{}`) cannot have its tasks confirmed stopped: {}. Waiting would only hold the group until the deadline, so the instance was let go now; the tasks it held stop with it, and ECS starts service tasks elsewhere.",
                    action.instance_id, host.cluster, why
                ),
            )
            .detail("reason", &why)
            .detail("tasks_left", &left)
            .next_step("Check that the services of those tasks are back at their desired count."),
        });
        return plan;
    }
    if blocking.is_empty() {
        let moved = progress.tasks_at_start;
        plan.push(Step::Complete {
            result: HookResult::Continue,
            notice: Notice::info(
                format!("Drained {} in {} s", action.instance_id, elapsed),
                format!(
                    "All {} task(s) have left `{}` (cluster `{}`) after {} s and {} check(s). The terminate lifecycle action was completed with CONTINUE.",
                    moved, action.instance_id, host.cluster, elapsed, progress.checks + 1
                ),
            )
            .detail("duration_seconds", elapsed)
            .detail("tasks_moved", moved)
            .detail("standalone_tasks_stopped", progress.standalone_stopped)
            .detail("checks", progress.checks + 1),
        });
        return plan;
    }

    if elapsed >= deadline {
        let left = task_arns(&blocking);
        let limit = if hook_limit {
            format!(
                "the lifecycle hook's global timeout ({} s, which Auto Scaling enforces whatever the heartbeats)",
                global_timeout(&progress).unwrap_or_default()
            )
        } else {
            format!("DRAIN_TIMEOUT_SECONDS ({} s)", config.drain_timeout_seconds)
        };
        plan.push(Step::Complete {
            result: HookResult::Continue,
            notice: Notice::warning(
                format!("Drain of {} timed out with {} task(s) left", action.instance_id, left.len()),
                format!(
                    "`{}` (cluster `{}`) still ran {} task(s) after {} s, at the drain's deadline: {}. The instance was let go anyway; those tasks stop with it.",
                    action.instance_id, host.cluster, left.len(), elapsed, limit
                ),
            )
            .detail("duration_seconds", elapsed)
            .detail("deadline_seconds", deadline)
            .detail("deadline", if hook_limit { "hook_global_timeout" } else { "drain_timeout" })
            .detail("tasks_left", &left)
            .detail("tasks_moved", progress.tasks_at_start.saturating_sub(left.len()))
            .next_step("Check why the tasks did not move: service deployment limits (minimumHealthyPercent), placement constraints, or capacity in the cluster.")
            .next_step("Raise DRAIN_TIMEOUT_SECONDS (or the hook's HeartbeatTimeout, whose 100-fold is its global timeout) if drains legitimately take longer."),
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
            plan.push(Step::StopTask {
                cluster: host.cluster.clone(),
                task_arn: t.arn.clone(),
                reason: format!(
                    "ecs-autopilot: host {} is being terminated; standalone task stopped after {} s grace",
                    action.instance_id, config.standalone_grace_seconds
                ),
                notice: Notice::warning(
                    format!("Stopped standalone task on {}", action.instance_id),
                    format!(
                        "Task `{}` is not part of a service, so ECS will not move it off `{}`. It was stopped after the {} s grace period so the drain can finish (STANDALONE_TASKS=stop).",
                        t.arn, action.instance_id, config.standalone_grace_seconds
                    ),
                )
                .detail("started_by", &t.started_by)
                .detail("task_definition", &t.task_definition_arn)
                .next_step("Re-run the task elsewhere if it had not finished its work."),
            });
        }
    }

    plan.push(recheck(config, &progress));
    plan
}

/// The group has ECS's managed-draining hook as well: ECS drains the host and Auto
/// Scaling waits for its hook, so ours lets go at once instead of draining twice.
pub fn ecs_drains(action: &LifecycleAction) -> Plan {
    vec![Step::Complete {
        result: HookResult::Continue,
        notice: Notice::warning(
            format!("{}: ECS managed draining owns this drain", action.instance_id),
            format!(
                "Group `{}` also has ECS's own terminate hook `{ECS_MANAGED_DRAINING_HOOK}` (a capacity provider with managed draining). instance-drain did not drain `{}` and completed its own hook `{}` with CONTINUE; Auto Scaling still waits for ECS's hook.",
                action.group, action.instance_id, action.hook
            ),
        )
        .next_step("Remove instance-drain's terminate hook from this group (keep the ecs-autopilot:cluster tag for ami-rollout), or turn managed draining off on the capacity provider."),
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
        let global = global_timeout(&progress).unwrap_or(MAX_GLOBAL_TIMEOUT);
        plan.push(Step::Report {
            action: "hold",
            outcome: Outcome::Done,
            notice: Notice::new(
                Severity::High,
                format!("Quarantined host {} is being terminated: evidence about to be lost", action.instance_id),
                format!(
                    "Auto Scaling group `{}` is terminating `{}`, which carries the `{}` tag: its disk and memory are evidence of a security finding. instance-drain does not drain it and holds the terminate lifecycle action with heartbeats for up to the hook's global timeout ({} s after it began); then Auto Scaling terminates the host. To keep it, detach it from the group; or complete the action by hand once the evidence is saved.",
                    action.group, action.instance_id, crate::aws::QUARANTINE_TAG, global
                ),
            )
            .detail("global_timeout_seconds", global)
            .next_step(format!("Keep the host: detach it from the group (aws autoscaling detach-instances --instance-ids {} --auto-scaling-group-name {} --no-should-decrement-desired-capacity); the hold ends once it has left the group.", action.instance_id, action.group))
            .next_step(format!("Or, once the evidence is saved, let it go: aws autoscaling complete-lifecycle-action --lifecycle-action-result CONTINUE --instance-id {} --lifecycle-hook-name {} --auto-scaling-group-name {}", action.instance_id, action.hook, action.group)),
        });
    }
    progress.cluster = Some(cluster.to_string());
    plan.push(recheck(config, &progress));
    plan
}

/// The quarantined host left the group (detached to keep it): nothing left to hold.
pub fn hold_ended(action: &LifecycleAction, why: &str) -> Plan {
    vec![Step::Report {
        action: "hold",
        outcome: Outcome::AlreadyDone,
        notice: Notice::info(
            format!("Stopped holding quarantined host {}", action.instance_id),
            format!("The hold on `{}` ended: {why}.", action.instance_id),
        ),
    }]
}

/// A heartbeat found no active lifecycle action: someone completed it, or its timeout
/// ran out. Tasks still on the host were cut off without a drain.
pub fn action_gone(action: &LifecycleAction, host: Option<&HostState>) -> Plan {
    let left: Vec<String> = host
        .map(|h| h.blocking().map(|t| t.arn.clone()).collect())
        .unwrap_or_default();
    let notice = if left.is_empty() {
        Notice::info(
            format!("Stopped watching {}: lifecycle action already ended", action.instance_id),
            format!(
                "Auto Scaling has no active lifecycle action for `{}` any more (completed by an earlier delivery, or its heartbeat timeout ran out), so there is nothing left to wait for.",
                action.instance_id
            ),
        )
    } else {
        Notice::warning(
            format!("Lifecycle action of {} ended with {} task(s) still on it", action.instance_id, left.len()),
            format!(
                "Auto Scaling has no active lifecycle action for `{}` any more (completed by someone else, or its timeout ran out) while {} task(s) still ran on it: they were cut off without finishing their drain.",
                action.instance_id, left.len()
            ),
        )
        .detail("tasks_left", &left)
        .next_step("Check the services of those tasks, and who completed the action or why its heartbeats lapsed.")
    };
    let outcome = if left.is_empty() {
        Outcome::AlreadyDone
    } else {
        Outcome::Warning
    };
    vec![Step::Report {
        action: "heartbeat",
        outcome,
        notice,
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
        let mut plan = vec![Step::SetActive {
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
        Some(ci) if ci.status == ContainerInstanceStatus::Active && ci.agent_connected => vec![Step::Complete {
            result: HookResult::Continue,
            notice: Notice::info(
                format!("Admitted {} to {}", action.instance_id, cluster),
                format!(
                    "`{}` joined cluster `{}` (ACTIVE, agent connected) {} s after launch. The launch lifecycle action was completed with CONTINUE.",
                    action.instance_id, cluster, elapsed
                ),
            )
            .detail("join_seconds", elapsed)
            .detail("container_instance", &ci.arn)
            .detail("ami_id", &ci.ami_id),
        }],
        _ if elapsed >= config.launch_timeout_seconds => {
            let state = ci
                .map(|c| format!("registered as {} (agent connected: {})", c.status, c.agent_connected))
                .unwrap_or_else(|| "never registered".to_string());
            vec![Step::Complete {
                result: HookResult::Abandon,
                notice: Notice::new(
                    Severity::High,
                    format!("Abandoned launch of {}: did not join {}", action.instance_id, cluster),
                    format!(
                        "`{}` in group `{}` {} in cluster `{}` within LAUNCH_TIMEOUT_SECONDS ({} s). The launch was abandoned so a broken instance does not replace healthy capacity.",
                        action.instance_id, action.group, state, cluster, config.launch_timeout_seconds
                    ),
                )
                .detail("waited_seconds", elapsed)
                .next_step("Check the AMI and user data: ECS_CLUSTER in /etc/ecs/ecs.config, the instance role, and network access to the ECS endpoint.")
                .next_step("If an AMI rollout is in progress, it may be rolling out a broken image: pause it with tag ecs-autopilot:rollout=paused."),
            }]
        }
        _ => vec![recheck(config, progress)],
    }
}

fn release(title: String, description: String) -> Plan {
    vec![Step::Complete {
        result: HookResult::Continue,
        notice: Notice::info(title, description),
    }]
}

/// An instance launched into a warm pool: it is stopped there and never registers with
/// ECS (the agent runs with ECS_WARM_POOLS_CHECK=true), so there is nothing to wait for.
/// Its admission is when it leaves the pool for the group.
pub fn into_warm_pool(action: &LifecycleAction) -> Plan {
    release(
        format!("{} let into the warm pool", action.instance_id),
        format!(
            "`{}` was launched into the warm pool of `{}`; it joins ECS only when it moves into the group, where it is admitted then. The launch lifecycle action was completed with CONTINUE.",
            action.instance_id, action.group
        ),
    )
}

/// A warm-pool instance that is terminated runs no tasks: let it go.
pub fn out_of_warm_pool(action: &LifecycleAction) -> Plan {
    release(
        format!("{} released from the warm pool", action.instance_id),
        format!(
            "`{}` is terminated from the warm pool of `{}`, where it ran no tasks. The terminate lifecycle action was completed with CONTINUE.",
            action.instance_id, action.group
        ),
    )
}

/// Our own hook on a group that did not opt in: a misconfiguration worth a warning. The
/// action is left to the hook's DefaultResult (IAM lets instance-drain complete the
/// actions of tagged groups only).
pub fn untagged_group(action: &LifecycleAction) -> Plan {
    vec![Step::Report {
        action: "lifecycle",
        outcome: Outcome::Warning,
        notice: Notice::warning(
            format!("Hook {} is on group {}, which has not opted in", action.hook, action.group),
            format!(
                "Auto Scaling group `{}` has instance-drain's lifecycle hook `{}` but no `ecs-autopilot:cluster` tag (or no longer exists), so instance-drain leaves the action for `{}` alone: it waits out the hook's heartbeat timeout and then takes its DefaultResult.",
                action.group, action.hook, action.instance_id
            ),
        )
        .next_step("Tag the group ecs-autopilot:cluster=CLUSTER_NAME, or remove the hook from it."),
    }]
}

/// A spot interruption warning: drain at once; there is no hook to hold the instance.
pub fn spot(
    warning: &InstanceWarning,
    cluster: &str,
    ci: Option<&ContainerInstance>,
    tasks: usize,
) -> Plan {
    let Some(ci) = ci else {
        return vec![Step::Report {
            action: "drain",
            outcome: Outcome::Skipped,
            notice: Notice::info(
                format!(
                    "Spot interruption of {}: not a container instance",
                    warning.instance_id
                ),
                format!(
                    "`{}` is not registered in cluster `{}`; nothing to drain.",
                    warning.instance_id, cluster
                ),
            ),
        }];
    };
    let mut notice = Notice::warning(
        format!("Spot interruption: draining {} ({} tasks)", warning.instance_id, tasks),
        format!(
            "AWS reclaims spot instance `{}` in about two minutes (action: {}). Its container instance in cluster `{}` is set to DRAINING so ECS starts replacements elsewhere now.",
            warning.instance_id, warning.action, cluster
        ),
    )
    .detail("tasks", tasks)
    .detail("container_instance", &ci.arn);
    if matches!(warning.action.as_str(), "stop" | "hibernate") {
        // The host comes back when Spot capacity returns, still DRAINING: nothing here
        // watches for that, so the notice says what to do.
        notice = notice.next_step(format!(
            "The instance is {}, not terminated: once it runs again, its container instance stays DRAINING and gets no tasks until reactivated: aws ecs update-container-instances-state --cluster {} --container-instances {} --status ACTIVE",
            if warning.action == "stop" { "stopped" } else { "hibernated" }, cluster, ci.arn
        ));
    }
    if ci.status == ContainerInstanceStatus::Draining {
        return vec![Step::Report {
            action: "drain",
            outcome: Outcome::AlreadyDone,
            notice,
        }];
    }
    vec![Step::SetDraining {
        cluster: cluster.to_string(),
        container_instance_arn: ci.arn.clone(),
        notice: Some(notice),
    }]
}

/// Not ours to touch: say why and do nothing.
pub fn skip(action: &'static str, title: String, reason: String) -> Plan {
    vec![Step::Report {
        action,
        outcome: Outcome::Skipped,
        notice: Notice::info(title, reason),
    }]
}

/// About resources that never opted in: no notification, a debug line and a metric.
pub fn quiet(action: &'static str, reason: String) -> Plan {
    vec![Step::Quiet { action, reason }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use shared::config::Env;
    use shared::events::autoscaling::Transition;

    fn config() -> Config {
        Config::from_env(&Env::from_pairs([
            ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
            ("DRAIN_QUEUE_URL", "http://q"),
            ("DRAIN_TIMEOUT_SECONDS", "3600"),
            ("STANDALONE_TASK_GRACE_SECONDS", "300"),
            ("LAUNCH_TIMEOUT_SECONDS", "600"),
        ]))
        .unwrap()
    }

    fn action(transition: Transition) -> LifecycleAction {
        LifecycleAction {
            group: "web-asg".into(),
            hook: "drain".into(),
            instance_id: "i-0aaa".into(),
            token: Some("tok".into()),
            transition,
        }
    }

    fn ci(status: &str) -> ContainerInstance {
        ContainerInstance {
            arn: "arn:ci/1".into(),
            ec2_instance_id: "i-0aaa".into(),
            status: status.into(),
            agent_connected: true,
            running_tasks_count: 9,
            ami_id: Some("ami-1".into()),
        }
    }

    fn task(arn: &str, group: &str, last: &str, desired: &str) -> Task {
        Task {
            arn: arn.into(),
            last_status: last.into(),
            desired_status: desired.into(),
            group: group.into(),
            started_by: None,
            started_at: None,
            task_definition_arn: "td".into(),
            launch_type: Some("EC2".into()),
            container_instance_arn: Some("arn:ci/1".into()),
        }
    }

    fn host(tasks: Vec<Task>, daemons: &[&str]) -> HostState {
        HostState {
            cluster: "prod".into(),
            container_instance: Some(ci("ACTIVE")),
            tasks,
            daemon_services: daemons.iter().map(|s| s.to_string()).collect(),
            cannot_move: BTreeMap::new(),
            facts: HostFacts::default(),
        }
    }

    fn started(ago_seconds: i64, checks: u32) -> (Progress, DateTime<Utc>) {
        let now = Utc::now();
        let p = Progress {
            checks,
            started_at: Some(now - Duration::seconds(ago_seconds)),
            ..Progress::default()
        };
        (p, now)
    }

    fn kinds(plan: &Plan) -> Vec<&'static str> {
        plan.iter().map(Step::action).collect()
    }

    #[test]
    fn first_look_at_a_busy_host_drains_heartbeats_and_checks_again() {
        let (p, now) = started(5, 0);
        let h = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
        let plan = terminate(&action(Transition::Terminating), &p, &h, &config(), now);
        assert_eq!(kinds(&plan), ["drain", "recheck"]);
        let Step::Recheck {
            progress,
            delay_seconds,
        } = &plan[1]
        else {
            panic!()
        };
        assert_eq!(progress.checks, 1);
        assert_eq!(progress.tasks_at_start, 1);
        assert_eq!(progress.container_instance_arn.as_deref(), Some("arn:ci/1"));
        assert_eq!(*delay_seconds, 30);
    }

    #[test]
    fn a_task_being_stopped_still_blocks_until_it_is_stopped() {
        let (p, now) = started(60, 3);
        let stopping = task("t1", "service:web", "RUNNING", "STOPPED");
        let plan = terminate(
            &action(Transition::Terminating),
            &p,
            &host(vec![stopping], &[]),
            &config(),
            now,
        );
        assert_eq!(kinds(&plan), ["recheck"]);
        let gone = task("t1", "service:web", "STOPPED", "STOPPED");
        let plan = terminate(
            &action(Transition::Terminating),
            &p,
            &host(vec![gone], &[]),
            &config(),
            now,
        );
        assert_eq!(kinds(&plan), ["complete-lifecycle"]);
    }

    #[test]
    fn daemon_tasks_do_not_block_a_drain() {
        let (p, now) = started(60, 2);
        let h = host(
            vec![task("d1", "service:log-agent", "RUNNING", "RUNNING")],
            &["log-agent"],
        );
        let plan = terminate(&action(Transition::Terminating), &p, &h, &config(), now);
        let Step::Complete { result, notice } = &plan[0] else {
            panic!("{plan:?}")
        };
        assert_eq!(*result, HookResult::Continue);
        assert_eq!(notice.severity, Severity::Info);
    }

    #[test]
    fn an_empty_host_is_drained_and_released_on_first_look() {
        let (p, now) = started(1, 0);
        let plan = terminate(
            &action(Transition::Terminating),
            &p,
            &host(vec![], &[]),
            &config(),
            now,
        );
        assert_eq!(kinds(&plan), ["drain", "complete-lifecycle"]);
    }

    #[test]
    fn a_host_already_draining_is_not_set_again() {
        let (p, now) = started(1, 0);
        let mut h = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
        h.container_instance = Some(ci("DRAINING"));
        let plan = terminate(&action(Transition::Terminating), &p, &h, &config(), now);
        assert!(matches!(
            &plan[0],
            Step::Report {
                outcome: Outcome::AlreadyDone,
                ..
            }
        ));
    }

    #[test]
    fn no_container_instance_releases_at_once() {
        let (p, now) = started(1, 0);
        let mut h = host(vec![], &[]);
        h.container_instance = None;
        let plan = terminate(&action(Transition::Terminating), &p, &h, &config(), now);
        assert!(matches!(
            &plan[..],
            [Step::Complete {
                result: HookResult::Continue,
                ..
            }]
        ));
    }

    #[test]
    fn past_the_deadline_the_instance_goes_with_a_warning() {
        let (p, now) = started(3600, 100);
        let h = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
        let plan = terminate(&action(Transition::Terminating), &p, &h, &config(), now);
        let [Step::Complete { result, notice }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(*result, HookResult::Continue);
        assert_eq!(notice.severity, Severity::Warning);
        assert_eq!(notice.details["tasks_left"], serde_json::json!(["t1"]));
    }

    #[test]
    fn standalone_tasks_are_stopped_only_after_the_grace_and_only_once() {
        let standalone = task("s1", "family:batch", "RUNNING", "RUNNING");
        let (p, now) = started(299, 5);
        let h = host(vec![standalone.clone()], &[]);
        assert_eq!(
            kinds(&terminate(
                &action(Transition::Terminating),
                &p,
                &h,
                &config(),
                now
            )),
            ["recheck"]
        );
        let (p, now) = started(301, 6);
        let plan = terminate(&action(Transition::Terminating), &p, &h, &config(), now);
        assert_eq!(kinds(&plan), ["stop-task", "recheck"]);
        let stopping = task("s1", "family:batch", "RUNNING", "STOPPED");
        let plan = terminate(
            &action(Transition::Terminating),
            &p,
            &host(vec![stopping], &[]),
            &config(),
            now,
        );
        assert_eq!(kinds(&plan), ["recheck"]);
    }

    #[test]
    fn standalone_tasks_are_waited_for_when_configured() {
        let mut c = config();
        c.standalone_tasks = StandaloneTasks::Wait;
        let (p, now) = started(1000, 5);
        let h = host(vec![task("s1", "family:batch", "RUNNING", "RUNNING")], &[]);
        assert_eq!(
            kinds(&terminate(
                &action(Transition::Terminating),
                &p,
                &h,
                &c,
                now
            )),
            ["recheck"]
        );
    }

    #[test]
    fn a_launch_is_admitted_only_when_active_and_connected() {
        let (p, now) = started(20, 0);
        let a = action(Transition::Launching);
        let plan = launch(&a, &p, "prod", Some(&ci("ACTIVE")), &config(), now);
        assert!(matches!(
            &plan[..],
            [Step::Complete {
                result: HookResult::Continue,
                ..
            }]
        ));
        let mut disconnected = ci("ACTIVE");
        disconnected.agent_connected = false;
        assert_eq!(
            kinds(&launch(&a, &p, "prod", Some(&disconnected), &config(), now)),
            ["recheck"]
        );
        assert_eq!(
            kinds(&launch(&a, &p, "prod", None, &config(), now)),
            ["recheck"]
        );
    }

    #[test]
    fn a_launch_that_never_joins_is_abandoned() {
        let (p, now) = started(601, 20);
        let plan = launch(
            &action(Transition::Launching),
            &p,
            "prod",
            None,
            &config(),
            now,
        );
        let [Step::Complete { result, notice }] = &plan[..] else {
            panic!()
        };
        assert_eq!(*result, HookResult::Abandon);
        assert!(notice.severity >= Severity::Warning);
    }

    #[test]
    fn a_spot_warning_drains_once() {
        let w = InstanceWarning {
            instance_id: "i-0aaa".into(),
            action: "terminate".into(),
        };
        assert!(matches!(
            &spot(&w, "prod", Some(&ci("ACTIVE")), 2)[..],
            [Step::SetDraining { .. }]
        ));
        assert!(matches!(
            &spot(&w, "prod", Some(&ci("DRAINING")), 2)[..],
            [Step::Report {
                outcome: Outcome::AlreadyDone,
                ..
            }]
        ));
        assert!(matches!(
            &spot(&w, "prod", None, 0)[..],
            [Step::Report {
                outcome: Outcome::Skipped,
                ..
            }]
        ));
    }

    #[test]
    fn a_recheck_carries_the_tasks_still_blocking_and_what_each_service_is() {
        let (p, now) = started(5, 0);
        let h = host(
            vec![
                task("t1", "service:web", "RUNNING", "RUNNING"),
                task("d1", "service:log-agent", "RUNNING", "RUNNING"),
            ],
            &["log-agent"],
        );
        let plan = terminate(&action(Transition::Terminating), &p, &h, &config(), now);
        let Some(Step::Recheck { progress, .. }) = plan.last() else {
            panic!("{plan:?}")
        };
        assert_eq!(progress.blocking_tasks, Some(vec!["t1".to_string()]));
        assert_eq!(progress.daemon_services, ["log-agent"]);
        assert_eq!(progress.replica_services, ["web"]);
    }

    #[test]
    fn carried_progress_is_trusted_only_for_the_groups_own_cluster_after_a_first_look() {
        let genuine = Progress {
            checks: 3,
            started_at: Some(Utc::now()),
            cluster: Some("prod".into()),
            container_instance_arn: Some("arn:ci/1".into()),
            blocking_tasks: Some(vec!["t1".into()]),
            ..Progress::default()
        };
        assert_eq!(trusted(&genuine, "prod"), genuine);
        // Another cluster than the group's tag names: start over with a first look.
        let other = trusted(&genuine, "staging");
        assert_eq!(other.cluster, None);
        assert_eq!(other.container_instance_arn, None);
        assert_eq!(other.blocking_tasks, None);
        assert_eq!((other.checks, other.started_at), (0, genuine.started_at));
        // A "first look" that already names a cluster or a host skips no check either.
        let forged_first = Progress {
            checks: 0,
            ..genuine.clone()
        };
        assert_eq!(trusted(&forged_first, "prod").cluster, None);
        let host_only = Progress {
            container_instance_arn: Some("arn:ci/9".into()),
            ..Progress::default()
        };
        assert_eq!(trusted(&host_only, "prod").container_instance_arn, None);
        // A launch check carries no cluster and is kept as it is.
        let launch = Progress {
            checks: 2,
            ..Progress::default()
        };
        assert_eq!(trusted(&launch, "prod"), launch);
    }

    #[test]
    fn only_draining_and_stopping_tasks_count_as_ecs_writes() {
        let (p, now) = started(5, 0);
        let busy = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
        let first = terminate(&action(Transition::Terminating), &p, &busy, &config(), now);
        assert!(writes_to_ecs(&first));
        let (p, now) = started(60, 2);
        let again = terminate(&action(Transition::Terminating), &p, &busy, &config(), now);
        assert!(!writes_to_ecs(&again));
        let released = not_opted_in(&action(Transition::Terminating), "prod");
        assert!(!writes_to_ecs(&released));
        assert!(matches!(
            &released[..],
            [Step::Complete {
                result: HookResult::Continue,
                ..
            }]
        ));
    }

    #[test]
    fn the_hooks_global_timeout_ends_a_drain_before_drain_timeout_seconds() {
        let mut c = config();
        c.drain_timeout_seconds = 7200;
        let (mut p, now) = started(2990, 50);
        p.heartbeat_timeout = Some(30);
        // 100 x 30 s = 3000 s, kept two 5 s polls early.
        assert_eq!(global_timeout(&p), Some(3000));
        assert_eq!(poll_delay(&c, &p), 5);
        assert_eq!(drain_deadline(&c, &p), (2990, true));
        let h = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
        let plan = terminate(&action(Transition::Terminating), &p, &h, &c, now);
        let [Step::Complete { notice, .. }] = &plan[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(notice.details["deadline"], "hook_global_timeout");
        // A reported GlobalTimeout wins over the rule; a longer one leaves DRAIN_TIMEOUT.
        p.global_timeout = Some(172_800);
        assert_eq!(drain_deadline(&c, &p), (7200, false));
    }

    #[test]
    fn the_poll_keeps_a_heartbeat_within_half_the_heartbeat_timeout() {
        let mut c = config();
        c.poll_seconds = 900;
        let mut p = Progress::default();
        assert_eq!(poll_delay(&c, &p), 900);
        p.heartbeat_timeout = Some(300);
        assert_eq!(poll_delay(&c, &p), 130);
        assert!(i64::from(poll_delay(&c, &p)) + LOOK_SECONDS <= 150);
    }

    #[test]
    fn a_host_with_a_disconnected_agent_is_released_on_the_first_look_naming_its_tasks() {
        let (p, now) = started(5, 0);
        let mut h = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
        h.container_instance.as_mut().unwrap().agent_connected = false;
        let plan = terminate(&action(Transition::Terminating), &p, &h, &config(), now);
        assert_eq!(kinds(&plan), ["drain", "complete-lifecycle"]);
        let Step::Complete { notice, result } = &plan[1] else {
            panic!()
        };
        assert_eq!(*result, HookResult::Continue);
        assert_eq!(notice.severity, Severity::Warning);
        assert_eq!(notice.details["tasks_left"], serde_json::json!(["t1"]));
        let mut stopped = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
        stopped.facts.state = "stopped".into();
        let plan = terminate(
            &action(Transition::Terminating),
            &p,
            &stopped,
            &config(),
            now,
        );
        assert_eq!(kinds(&plan), ["drain", "complete-lifecycle"]);
    }

    #[test]
    fn a_service_that_can_never_leave_is_named_on_the_first_look() {
        let (p, now) = started(5, 0);
        let mut h = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
        h.cannot_move
            .insert("web".into(), "maximumPercent 100".into());
        let plan = terminate(&action(Transition::Terminating), &p, &h, &config(), now);
        assert_eq!(kinds(&plan), ["drain", "drain", "recheck"]);
        let Step::Report {
            notice, outcome, ..
        } = &plan[1]
        else {
            panic!()
        };
        assert_eq!(*outcome, Outcome::Warning);
        assert_eq!(notice.details["services"], serde_json::json!(["web"]));
    }

    #[test]
    fn a_host_back_from_the_warm_pool_is_reactivated_then_admitted() {
        let (p, now) = started(5, 0);
        let a = action(Transition::Launching);
        let plan = launch(&a, &p, "prod", Some(&ci("DRAINING")), &config(), now);
        assert_eq!(kinds(&plan), ["reactivate", "complete-lifecycle"]);
        assert!(writes_to_ecs(&plan));
        assert_eq!(kinds(&into_warm_pool(&a)), ["complete-lifecycle"]);
    }

    #[test]
    fn a_quarantined_host_is_held_with_a_high_notice_once() {
        let (p, _) = started(5, 0);
        let a = action(Transition::Terminating);
        let plan = hold_quarantined(&a, &p, "prod", &config());
        assert_eq!(kinds(&plan), ["hold", "recheck"]);
        let Step::Report { notice, .. } = &plan[0] else {
            panic!()
        };
        assert_eq!(notice.severity, Severity::High);
        let Step::Recheck { progress, .. } = &plan[1] else {
            panic!()
        };
        assert!(progress.quarantined);
        assert_eq!(
            kinds(&hold_quarantined(&a, progress, "prod", &config())),
            ["recheck"]
        );
        assert!(!writes_to_ecs(&plan));
    }

    #[test]
    fn an_action_gone_with_tasks_still_on_the_host_is_a_warning_naming_them() {
        let h = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
        let a = action(Transition::Terminating);
        let [Step::Report {
            outcome, notice, ..
        }] = &action_gone(&a, Some(&h))[..]
        else {
            panic!()
        };
        assert_eq!(*outcome, Outcome::Warning);
        assert_eq!(notice.details["tasks_left"], serde_json::json!(["t1"]));
        let [Step::Report { outcome, .. }] = &action_gone(&a, None)[..] else {
            panic!()
        };
        assert_eq!(*outcome, Outcome::AlreadyDone);
    }

    #[test]
    fn a_spot_stop_says_how_to_reactivate_the_host() {
        let w = InstanceWarning {
            instance_id: "i-0aaa".into(),
            action: "stop".into(),
        };
        let [Step::SetDraining {
            notice: Some(n), ..
        }] = &spot(&w, "prod", Some(&ci("ACTIVE")), 1)[..]
        else {
            panic!()
        };
        assert!(n.next_steps.iter().any(|s| s.contains("--status ACTIVE")));
    }
}
