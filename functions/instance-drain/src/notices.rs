//! All of instance-drain's wording: turns decide's moves and their reasons ([`Why`])
//! into the steps act carries out, with the notification each reports (title,
//! description, details, next steps).

use std::collections::BTreeMap;

use shared::exec::{About, Report};
use shared::notify::{Notice, Severity};

use crate::act::Step;
use crate::aws::QUARANTINE_TAG;
use crate::decide::{Dead, HoldEnd, Limit, Move, Why, ECS_MANAGED_DRAINING_HOOK};

/// The steps of a decided plan, worded.
pub fn plan(moves: Vec<Move>) -> Vec<Step> {
    moves.into_iter().map(step).collect()
}

fn step(m: Move) -> Step {
    match m {
        Move::Drain {
            cluster,
            container_instance_arn,
            why,
        } => Step::SetDraining {
            cluster,
            container_instance_arn,
            notice: Some(notice(&why)),
        },
        Move::StopTask {
            cluster,
            task_arn,
            why,
        } => Step::StopTask {
            cluster,
            task_arn,
            reason: stop_reason(&why),
            notice: notice(&why),
        },
        Move::Reactivate {
            cluster,
            container_instance_arn,
        } => Step::SetActive {
            cluster,
            container_instance_arn,
        },
        Move::Complete { result, why } => Step::Complete {
            result,
            notice: notice(&why),
        },
        Move::Recheck {
            delay_seconds,
            progress,
        } => Step::Recheck {
            delay_seconds,
            progress,
        },
        Move::Tell {
            action,
            outcome,
            why,
        } => Step::Report(Report {
            action,
            outcome,
            about: About::default(),
            notice: notice(&why),
        }),
        Move::Quiet { action, why } => Step::Quiet {
            action,
            reason: quiet_reason(&why),
        },
    }
}

/// The stop reason ECS records on a task we stop.
fn stop_reason(why: &Why) -> String {
    match why {
        Why::StandaloneStopped {
            instance_id,
            grace_seconds,
            ..
        } => format!(
            "ecs-autopilot: host {instance_id} is being terminated; standalone task stopped after {grace_seconds} s grace"
        ),
        other => format!("ecs-autopilot: {}", notice(other).title),
    }
}

/// The debug line of a move that tells nobody.
fn quiet_reason(why: &Why) -> String {
    match why {
        Why::SpotOutside { instance_id } => format!(
            "spot interruption of {instance_id}: not a container instance of any cluster tagged ecs-autopilot:managed=true"
        ),
        other => notice(other).title,
    }
}

fn quoted(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    names
        .into_iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What people are told about a reason.
pub fn notice(why: &Why) -> Notice {
    match why {
        Why::NotContainerInstance { instance_id, cluster } => Notice::info(
            format!("{instance_id} released: not a container instance"),
            format!(
                "EC2 instance `{instance_id}` is not registered in cluster `{cluster}` (never joined, or already deregistered), so there is nothing to drain. The terminate lifecycle action was completed with CONTINUE."
            ),
        ),
        Why::Draining {
            instance_id,
            group,
            cluster,
            tasks,
            services,
            container_instance,
            deadline,
        } => Notice::info(
            format!("Draining {instance_id} ({tasks} tasks to move)"),
            format!(
                "Auto Scaling group `{group}` is terminating `{instance_id}`. Its container instance in cluster `{cluster}` is set to DRAINING; the instance goes once its {tasks} task(s) have moved (deadline {deadline} s)."
            ),
        )
        .detail("tasks", tasks)
        .detail("services", services)
        .detail("container_instance", container_instance),
        Why::CannotLeave {
            instance_id,
            stuck,
            deadline,
        } => {
            let names: Vec<&str> = stuck.keys().map(String::as_str).collect();
            let reasons: BTreeMap<&str, &str> =
                stuck.iter().map(|(s, why)| (s.as_str(), why.as_str())).collect();
            Notice::warning(
                format!("Drain of {instance_id} cannot finish: {} service(s) can never leave", stuck.len()),
                format!(
                    "The tasks of {} can never be moved off `{instance_id}`: {}. They stay until the drain's deadline ({deadline} s), and then the instance goes with them (where no other host qualifies, a service whose minimumHealthyPercent is below 100 may instead have its tasks stopped without replacement).",
                    quoted(&names),
                    stuck.iter().map(|(s, why)| format!("`{s}`: {why}")).collect::<Vec<_>>().join("; "),
                ),
            )
            .detail("services", &names)
            .detail("reasons", &reasons)
            .next_step("Lower minimumHealthyPercent or raise maximumPercent of those services, or relax their placement constraints (or add hosts that meet them), so ECS can move their tasks.")
        }
        Why::Dead {
            instance_id,
            cluster,
            dead,
            tasks_left,
        } => {
            let reason = match dead {
                Dead::Impaired => "its EC2 status checks report it impaired".to_string(),
                Dead::Ec2State(state) => format!("its EC2 instance is {state}"),
                Dead::AgentDisconnected => "its ECS agent is disconnected".to_string(),
            };
            Notice::warning(
                format!("Released {instance_id} without waiting: host is dead, {} task(s) cut off", tasks_left.len()),
                format!(
                    "`{instance_id}` (cluster `{cluster}`) cannot have its tasks confirmed stopped: {reason}. Waiting would only hold the group until the deadline, so the instance was let go now; the tasks it held stop with it, and ECS starts service tasks elsewhere."
                ),
            )
            .detail("reason", &reason)
            .detail("tasks_left", tasks_left)
            .next_step("Check that the services of those tasks are back at their desired count.")
        }
        Why::Drained {
            instance_id,
            cluster,
            elapsed,
            moved,
            standalone_stopped,
            checks,
        } => Notice::info(
            format!("Drained {instance_id} in {elapsed} s"),
            format!(
                "All {moved} task(s) have left `{instance_id}` (cluster `{cluster}`) after {elapsed} s and {checks} check(s). The terminate lifecycle action was completed with CONTINUE."
            ),
        )
        .detail("duration_seconds", elapsed)
        .detail("tasks_moved", moved)
        .detail("standalone_tasks_stopped", standalone_stopped)
        .detail("checks", checks),
        Why::TimedOut {
            instance_id,
            cluster,
            elapsed,
            deadline,
            limit,
            tasks_left,
            moved,
        } => {
            let (text, which) = match limit {
                Limit::HookGlobalTimeout(global) => (
                    format!("the lifecycle hook's global timeout ({global} s, which Auto Scaling enforces whatever the heartbeats)"),
                    "hook_global_timeout",
                ),
                Limit::DrainTimeout(seconds) => (
                    format!("DRAIN_TIMEOUT_SECONDS ({seconds} s)"),
                    "drain_timeout",
                ),
            };
            Notice::warning(
                format!("Drain of {instance_id} timed out with {} task(s) left", tasks_left.len()),
                format!(
                    "`{instance_id}` (cluster `{cluster}`) still ran {} task(s) after {elapsed} s, at the drain's deadline: {text}. The instance was let go anyway; those tasks stop with it.",
                    tasks_left.len()
                ),
            )
            .detail("duration_seconds", elapsed)
            .detail("deadline_seconds", deadline)
            .detail("deadline", which)
            .detail("tasks_left", tasks_left)
            .detail("tasks_moved", moved)
            .next_step("Check why the tasks did not move: service deployment limits (minimumHealthyPercent), placement constraints, or capacity in the cluster.")
            .next_step("Raise DRAIN_TIMEOUT_SECONDS (or the hook's HeartbeatTimeout, whose 100-fold is its global timeout) if drains legitimately take longer.")
        }
        Why::StandaloneStopped {
            instance_id,
            task_arn,
            started_by,
            task_definition,
            grace_seconds,
        } => Notice::warning(
            format!("Stopped standalone task on {instance_id}"),
            format!(
                "Task `{task_arn}` is not part of a service, so ECS will not move it off `{instance_id}`. It was stopped after the {grace_seconds} s grace period so the drain can finish (STANDALONE_TASKS=stop)."
            ),
        )
        .detail("started_by", started_by)
        .detail("task_definition", task_definition)
        .next_step("Re-run the task elsewhere if it had not finished its work."),
        Why::EcsDrains {
            instance_id,
            group,
            hook,
        } => Notice::warning(
            format!("{instance_id}: ECS managed draining owns this drain"),
            format!(
                "Group `{group}` also has ECS's own terminate hook `{ECS_MANAGED_DRAINING_HOOK}` (a capacity provider with managed draining). instance-drain did not drain `{instance_id}` and completed its own hook `{hook}` with CONTINUE; Auto Scaling still waits for ECS's hook."
            ),
        )
        .next_step("Remove instance-drain's terminate hook from this group (keep the ecs-autopilot:cluster tag for ami-rollout), or turn managed draining off on the capacity provider."),
        Why::Quarantined {
            instance_id,
            group,
            hook,
            global_timeout,
        } => Notice::new(
            Severity::High,
            format!("Quarantined host {instance_id} is being terminated: evidence about to be lost"),
            format!(
                "Auto Scaling group `{group}` is terminating `{instance_id}`, which carries the `{QUARANTINE_TAG}` tag: its disk and memory are evidence of a security finding. instance-drain does not drain it and holds the terminate lifecycle action with heartbeats for up to the hook's global timeout ({global_timeout} s after it began); then Auto Scaling terminates the host. To keep it, detach it from the group; or complete the action by hand once the evidence is saved."
            ),
        )
        .detail("global_timeout_seconds", global_timeout)
        .next_step(format!("Keep the host: detach it from the group (aws autoscaling detach-instances --instance-ids {instance_id} --auto-scaling-group-name {group} --no-should-decrement-desired-capacity); the hold ends once it has left the group."))
        .next_step(format!("Or, once the evidence is saved, let it go: aws autoscaling complete-lifecycle-action --lifecycle-action-result CONTINUE --instance-id {instance_id} --lifecycle-hook-name {hook} --auto-scaling-group-name {group}")),
        Why::HoldEnded { instance_id, ended } => {
            let why = match ended {
                HoldEnd::ActionCompleted => {
                    "the lifecycle action was completed (or its global timeout passed)"
                }
                HoldEnd::Detached => "the host was detached from the group",
            };
            Notice::info(
                format!("Stopped holding quarantined host {instance_id}"),
                format!("The hold on `{instance_id}` ended: {why}."),
            )
        }
        Why::ActionGone {
            instance_id,
            tasks_left,
        } if tasks_left.is_empty() => Notice::info(
            format!("Stopped watching {instance_id}: lifecycle action already ended"),
            format!(
                "Auto Scaling has no active lifecycle action for `{instance_id}` any more (completed by an earlier delivery, or its heartbeat timeout ran out), so there is nothing left to wait for."
            ),
        ),
        Why::ActionGone {
            instance_id,
            tasks_left,
        } => Notice::warning(
            format!("Lifecycle action of {instance_id} ended with {} task(s) still on it", tasks_left.len()),
            format!(
                "Auto Scaling has no active lifecycle action for `{instance_id}` any more (completed by someone else, or its timeout ran out) while {} task(s) still ran on it: they were cut off without finishing their drain.",
                tasks_left.len()
            ),
        )
        .detail("tasks_left", tasks_left)
        .next_step("Check the services of those tasks, and who completed the action or why its heartbeats lapsed."),
        Why::Admitted {
            instance_id,
            cluster,
            elapsed,
            container_instance,
            ami_id,
        } => Notice::info(
            format!("Admitted {instance_id} to {cluster}"),
            format!(
                "`{instance_id}` joined cluster `{cluster}` (ACTIVE, agent connected) {elapsed} s after launch. The launch lifecycle action was completed with CONTINUE."
            ),
        )
        .detail("join_seconds", elapsed)
        .detail("container_instance", container_instance)
        .detail("ami_id", ami_id),
        Why::NeverJoined {
            instance_id,
            group,
            cluster,
            registered,
            waited,
            timeout,
        } => {
            let state = registered
                .as_ref()
                .map(|(status, connected)| format!("registered as {status} (agent connected: {connected})"))
                .unwrap_or_else(|| "never registered".to_string());
            Notice::new(
                Severity::High,
                format!("Abandoned launch of {instance_id}: did not join {cluster}"),
                format!(
                    "`{instance_id}` in group `{group}` {state} in cluster `{cluster}` within LAUNCH_TIMEOUT_SECONDS ({timeout} s). The launch was abandoned so a broken instance does not replace healthy capacity."
                ),
            )
            .detail("waited_seconds", waited)
            .next_step("Check the AMI and user data: ECS_CLUSTER in /etc/ecs/ecs.config, the instance role, and network access to the ECS endpoint.")
            .next_step("If an AMI rollout is in progress, it may be rolling out a broken image: pause it with tag ecs-autopilot:rollout=paused.")
        }
        Why::IntoWarmPool { instance_id, group } => Notice::info(
            format!("{instance_id} let into the warm pool"),
            format!(
                "`{instance_id}` was launched into the warm pool of `{group}`; it joins ECS only when it moves into the group, where it is admitted then. The launch lifecycle action was completed with CONTINUE."
            ),
        ),
        Why::OutOfWarmPool { instance_id, group } => Notice::info(
            format!("{instance_id} released from the warm pool"),
            format!(
                "`{instance_id}` is terminated from the warm pool of `{group}`, where it ran no tasks. The terminate lifecycle action was completed with CONTINUE."
            ),
        ),
        Why::UntaggedGroup {
            instance_id,
            group,
            hook,
        } => Notice::warning(
            format!("Hook {hook} is on group {group}, which has not opted in"),
            format!(
                "Auto Scaling group `{group}` has instance-drain's lifecycle hook `{hook}` but no `ecs-autopilot:cluster` tag (or no longer exists), so instance-drain leaves the action for `{instance_id}` alone: it waits out the hook's heartbeat timeout and then takes its DefaultResult."
            ),
        )
        .next_step("Tag the group ecs-autopilot:cluster=CLUSTER_NAME, or remove the hook from it."),
        Why::NotOptedIn {
            instance_id,
            group,
            cluster,
        } => Notice::warning(
            format!("Released {instance_id} without draining: cluster {cluster} not opted in"),
            format!(
                "Group `{group}` names cluster `{cluster}`, but that cluster lacks the tag `ecs-autopilot:managed=true` (or does not exist), so its container instances are not touched. The lifecycle action was completed with CONTINUE so the group is not held up."
            ),
        )
        .next_step("Tag the cluster ecs-autopilot:managed=true to have its instances drained."),
        Why::CarriedMismatch {
            instance_id,
            carried,
            cluster,
        } => Notice::info(
            format!("Ignored a re-check of {instance_id}: carried progress does not match"),
            format!(
                "The re-check names container instance `{carried}`, which is not `{instance_id}`'s in cluster `{cluster}`; nothing was changed."
            ),
        ),
        Why::SpotNotRegistered { instance_id, cluster } => Notice::info(
            format!("Spot interruption of {instance_id}: not a container instance"),
            format!("`{instance_id}` is not registered in cluster `{cluster}`; nothing to drain."),
        ),
        Why::Spot {
            instance_id,
            spot_action,
            cluster,
            tasks,
            container_instance,
        } => {
            let notice = Notice::warning(
                format!("Spot interruption: draining {instance_id} ({tasks} tasks)"),
                format!(
                    "AWS reclaims spot instance `{instance_id}` in about two minutes (action: {spot_action}). Its container instance in cluster `{cluster}` is set to DRAINING so ECS starts replacements elsewhere now."
                ),
            )
            .detail("tasks", tasks)
            .detail("container_instance", container_instance);
            match spot_action.as_str() {
                // The host comes back when Spot capacity returns, still DRAINING: nothing
                // here watches for that, so the notice says what to do.
                "stop" | "hibernate" => notice.next_step(format!(
                    "The instance is {}, not terminated: once it runs again, its container instance stays DRAINING and gets no tasks until reactivated: aws ecs update-container-instances-state --cluster {cluster} --container-instances {container_instance} --status ACTIVE",
                    if spot_action == "stop" { "stopped" } else { "hibernated" }
                )),
                _ => notice,
            }
        }
        Why::SpotOutside { .. } => Notice::info(
            "Spot interruption outside the managed clusters",
            quiet_reason(why),
        ),
    }
}

#[cfg(test)]
mod tests;
