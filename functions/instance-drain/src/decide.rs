//! The pure core: from what the event says and what the cluster looks like now, decide
//! what to do. No AWS calls here; the plan is data, so it is logged, dry-run and
//! asserted in tests.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::aws::autoscaling::HookResult;
use shared::aws::ecs::{ContainerInstance, Task};
use shared::events::autoscaling::LifecycleAction;
use shared::events::ec2::InstanceWarning;
use shared::notify::{Notice, Outcome, Severity};

use crate::config::{Config, StandaloneTasks};
use crate::parse::Progress;

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
    /// Keep the lifecycle action alive while we wait.
    Heartbeat,
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
}

impl Step {
    /// The action name used in notifications and metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Step::SetDraining { .. } => "drain",
            Step::StopTask { .. } => "stop-task",
            Step::Heartbeat => "heartbeat",
            Step::Complete { .. } => "complete-lifecycle",
            Step::Recheck { .. } => "recheck",
            Step::Report { action, .. } => action,
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

fn recheck(config: &Config, progress: &Progress) -> Step {
    Step::Recheck {
        delay_seconds: config.poll_seconds,
        progress: Progress {
            checks: progress.checks + 1,
            ..progress.clone()
        },
    }
}

/// Task ARNs carried to the next look at most; a busier host is listed in full each time
/// (an SQS message holds 256 KB).
const MAX_CARRIED_TASKS: usize = 100;

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
    progress.running_tasks = (host.tasks.len() <= MAX_CARRIED_TASKS)
        .then(|| host.tasks.iter().map(|t| t.arn.clone()).collect());
    let mut plan = vec![];

    if progress.checks == 0 {
        progress.tasks_at_start = blocking.len();
        let services: BTreeSet<&str> = blocking.iter().filter_map(|t| t.service()).collect();
        let notice = Notice::info(
            format!("Draining {} ({} tasks to move)", action.instance_id, blocking.len()),
            format!(
                "Auto Scaling group `{}` is terminating `{}`. Its container instance in cluster `{}` is set to DRAINING; the instance goes once its {} task(s) have moved (deadline {} s).",
                action.group, action.instance_id, host.cluster, blocking.len(), config.drain_timeout_seconds
            ),
        )
        .detail("tasks", blocking.len())
        .detail("services", &services)
        .detail("container_instance", &ci.arn);
        if ci.status == "DRAINING" {
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

    if elapsed >= config.drain_timeout_seconds {
        let left: Vec<&str> = blocking.iter().map(|t| t.arn.as_str()).collect();
        plan.push(Step::Complete {
            result: HookResult::Continue,
            notice: Notice::warning(
                format!("Drain of {} timed out with {} task(s) left", action.instance_id, left.len()),
                format!(
                    "`{}` (cluster `{}`) still ran {} task(s) after {} s, past DRAIN_TIMEOUT_SECONDS ({} s). The instance was let go anyway; those tasks stop with it.",
                    action.instance_id, host.cluster, left.len(), elapsed, config.drain_timeout_seconds
                ),
            )
            .detail("duration_seconds", elapsed)
            .detail("tasks_left", &left)
            .detail("tasks_moved", progress.tasks_at_start.saturating_sub(left.len()))
            .next_step("Check why the tasks did not move: service deployment limits (minimumHealthyPercent), placement constraints, or capacity in the cluster.")
            .next_step("Raise DRAIN_TIMEOUT_SECONDS if drains legitimately take longer."),
        });
        return plan;
    }

    if config.standalone_tasks == StandaloneTasks::Stop
        && elapsed >= config.standalone_grace_seconds
    {
        for t in blocking
            .iter()
            .filter(|t| t.service().is_none() && t.desired_status != "STOPPED")
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

    plan.push(Step::Heartbeat);
    plan.push(recheck(config, &progress));
    plan
}

/// A launching instance: let it in once its ECS agent has joined the cluster.
pub fn launch(
    action: &LifecycleAction,
    progress: &Progress,
    cluster: &str,
    ci: Option<&ContainerInstance>,
    config: &Config,
    now: DateTime<Utc>,
) -> Plan {
    let elapsed = seconds_since(progress.started_at, now);
    match ci {
        Some(ci) if ci.status == "ACTIVE" && ci.agent_connected => vec![Step::Complete {
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
        _ => vec![Step::Heartbeat, recheck(config, progress)],
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
    let notice = Notice::warning(
        format!("Spot interruption: draining {} ({} tasks)", warning.instance_id, tasks),
        format!(
            "AWS reclaims spot instance `{}` in about two minutes (action: {}). Its container instance in cluster `{}` is set to DRAINING so ECS starts replacements elsewhere now.",
            warning.instance_id, warning.action, cluster
        ),
    )
    .detail("tasks", tasks)
    .detail("container_instance", &ci.arn);
    if ci.status == "DRAINING" {
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
        assert_eq!(kinds(&plan), ["drain", "heartbeat", "recheck"]);
        let Step::Recheck {
            progress,
            delay_seconds,
        } = &plan[2]
        else {
            panic!()
        };
        assert_eq!(progress.checks, 1);
        assert_eq!(progress.tasks_at_start, 1);
        assert_eq!(progress.container_instance_arn.as_deref(), Some("arn:ci/1"));
        assert_eq!(progress.running_tasks, Some(vec!["t1".to_string()]));
        assert_eq!(*delay_seconds, 30);
    }

    #[test]
    fn a_very_busy_host_is_listed_in_full_on_the_next_look() {
        let (p, now) = started(5, 0);
        let tasks = (0..=MAX_CARRIED_TASKS)
            .map(|n| task(&format!("t{n}"), "service:web", "RUNNING", "RUNNING"))
            .collect();
        let plan = terminate(
            &action(Transition::Terminating),
            &p,
            &host(tasks, &[]),
            &config(),
            now,
        );
        let Some(Step::Recheck { progress, .. }) = plan.last() else {
            panic!()
        };
        assert_eq!(progress.running_tasks, None);
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
        assert_eq!(kinds(&plan), ["heartbeat", "recheck"]);
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
            ["heartbeat", "recheck"]
        );
        let (p, now) = started(301, 6);
        let plan = terminate(&action(Transition::Terminating), &p, &h, &config(), now);
        assert_eq!(kinds(&plan), ["stop-task", "heartbeat", "recheck"]);
        let stopping = task("s1", "family:batch", "RUNNING", "STOPPED");
        let plan = terminate(
            &action(Transition::Terminating),
            &p,
            &host(vec![stopping], &[]),
            &config(),
            now,
        );
        assert_eq!(kinds(&plan), ["heartbeat", "recheck"]);
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
            ["heartbeat", "recheck"]
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
            ["heartbeat", "recheck"]
        );
        assert_eq!(
            kinds(&launch(&a, &p, "prod", None, &config(), now)),
            ["heartbeat", "recheck"]
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
}
