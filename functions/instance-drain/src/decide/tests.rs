use super::*;
use crate::notices::notice;
use chrono::Duration;
use shared::events::autoscaling::Transition;
use shared::notify::Severity;
use shared::testing::{self, lifecycle_action as action};

fn config() -> Config {
    testing::config([
        ("DRAIN_QUEUE_URL", "http://q"),
        ("DRAIN_TIMEOUT_SECONDS", "3600"),
        ("STANDALONE_TASK_GRACE_SECONDS", "300"),
        ("LAUNCH_TIMEOUT_SECONDS", "600"),
    ])
}

/// The host `i-0aaa`'s container instance, in `status`.
fn ci(status: &str) -> ContainerInstance {
    ContainerInstance {
        status: status.into(),
        running_tasks_count: 9,
        ami_id: Some("ami-1".into()),
        ..testing::container_instance("arn:ci/1", "i-0aaa")
    }
}

fn task(arn: &str, group: &str, last: &str, desired: &str) -> Task {
    Task {
        group: group.into(),
        last_status: last.into(),
        desired_status: desired.into(),
        ..testing::task(arn)
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

/// A look at the terminating host `i-0aaa` under the default settings.
fn look_terminating(p: &Progress, h: &HostState, now: DateTime<Utc>) -> Plan {
    terminate(&action(Transition::Terminating), p, h, &config(), now)
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.iter().map(Move::action).collect()
}

#[test]
fn first_look_at_a_busy_host_drains_heartbeats_and_checks_again() {
    let (p, now) = started(5, 0);
    let h = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
    let plan = look_terminating(&p, &h, now);
    assert_eq!(kinds(&plan), ["drain-host", "recheck"]);
    let Move::Recheck {
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
    let plan = look_terminating(&p, &host(vec![stopping], &[]), now);
    assert_eq!(kinds(&plan), ["recheck"]);
    let gone = task("t1", "service:web", "STOPPED", "STOPPED");
    let plan = look_terminating(&p, &host(vec![gone], &[]), now);
    assert_eq!(kinds(&plan), ["complete-lifecycle"]);
}

#[test]
fn daemon_tasks_do_not_block_a_drain() {
    let (p, now) = started(60, 2);
    let h = host(
        vec![task("d1", "service:log-agent", "RUNNING", "RUNNING")],
        &["log-agent"],
    );
    let plan = look_terminating(&p, &h, now);
    let Move::Complete { result, why } = &plan[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(*result, HookResult::Continue);
    assert_eq!(notice(why).severity, Severity::Info);
}

#[test]
fn an_empty_host_is_drained_and_released_on_first_look() {
    let (p, now) = started(1, 0);
    let plan = look_terminating(&p, &host(vec![], &[]), now);
    assert_eq!(kinds(&plan), ["drain-host", "complete-lifecycle"]);
}

#[test]
fn a_host_already_draining_is_not_set_again() {
    let (p, now) = started(1, 0);
    let mut h = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
    h.container_instance = Some(ci("DRAINING"));
    let plan = look_terminating(&p, &h, now);
    assert!(matches!(
        &plan[0],
        Move::Tell {
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
    let plan = look_terminating(&p, &h, now);
    assert!(matches!(
        &plan[..],
        [Move::Complete {
            result: HookResult::Continue,
            ..
        }]
    ));
}

#[test]
fn past_the_deadline_the_instance_goes_with_a_warning() {
    let (p, now) = started(3600, 100);
    let h = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
    let plan = look_terminating(&p, &h, now);
    let [Move::Complete { result, why }] = &plan[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(*result, HookResult::Continue);
    assert_eq!(notice(why).severity, Severity::Warning);
    assert_eq!(notice(why).details["tasks_left"], serde_json::json!(["t1"]));
}

#[test]
fn standalone_tasks_are_stopped_only_after_the_grace_and_only_once() {
    let standalone = task("s1", "family:batch", "RUNNING", "RUNNING");
    let (p, now) = started(299, 5);
    let h = host(vec![standalone.clone()], &[]);
    assert_eq!(kinds(&look_terminating(&p, &h, now)), ["recheck"]);
    let (p, now) = started(301, 6);
    let plan = look_terminating(&p, &h, now);
    assert_eq!(kinds(&plan), ["stop-task", "recheck"]);
    let stopping = task("s1", "family:batch", "RUNNING", "STOPPED");
    let plan = look_terminating(&p, &host(vec![stopping], &[]), now);
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
        [Move::Complete {
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
    let [Move::Complete { result, why }] = &plan[..] else {
        panic!()
    };
    assert_eq!(*result, HookResult::Abandon);
    assert!(notice(why).severity >= Severity::Warning);
}

#[test]
fn a_spot_warning_drains_once() {
    let w = InstanceWarning {
        instance_id: "i-0aaa".into(),
        action: "terminate".into(),
    };
    assert!(matches!(
        &spot(&w, "prod", Some(&ci("ACTIVE")), 2)[..],
        [Move::Drain { .. }]
    ));
    assert!(matches!(
        &spot(&w, "prod", Some(&ci("DRAINING")), 2)[..],
        [Move::Tell {
            outcome: Outcome::AlreadyDone,
            ..
        }]
    ));
    assert!(matches!(
        &spot(&w, "prod", None, 0)[..],
        [Move::Tell {
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
    let plan = look_terminating(&p, &h, now);
    let Some(Move::Recheck { progress, .. }) = plan.last() else {
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
    let first = look_terminating(&p, &busy, now);
    assert!(writes_to_ecs(&first));
    let (p, now) = started(60, 2);
    let again = look_terminating(&p, &busy, now);
    assert!(!writes_to_ecs(&again));
    let released = not_opted_in(&action(Transition::Terminating), "prod");
    assert!(!writes_to_ecs(&released));
    assert!(matches!(
        &released[..],
        [Move::Complete {
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
    let [Move::Complete { why, .. }] = &plan[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(notice(why).details["deadline"], "hook_global_timeout");
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
    let plan = look_terminating(&p, &h, now);
    assert_eq!(kinds(&plan), ["drain-host", "complete-lifecycle"]);
    let Move::Complete { why, result } = &plan[1] else {
        panic!()
    };
    assert_eq!(*result, HookResult::Continue);
    assert_eq!(notice(why).severity, Severity::Warning);
    assert_eq!(notice(why).details["tasks_left"], serde_json::json!(["t1"]));
    let mut stopped = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
    stopped.facts.state = "stopped".into();
    let plan = look_terminating(&p, &stopped, now);
    assert_eq!(kinds(&plan), ["drain-host", "complete-lifecycle"]);
}

#[test]
fn a_service_that_can_never_leave_is_named_on_the_first_look() {
    let (p, now) = started(5, 0);
    let mut h = host(vec![task("t1", "service:web", "RUNNING", "RUNNING")], &[]);
    h.cannot_move
        .insert("web".into(), "maximumPercent 100".into());
    let plan = look_terminating(&p, &h, now);
    assert_eq!(kinds(&plan), ["drain-host", "drain-host", "recheck"]);
    let Move::Tell { why, outcome, .. } = &plan[1] else {
        panic!()
    };
    assert_eq!(*outcome, Outcome::Warning);
    assert_eq!(notice(why).details["services"], serde_json::json!(["web"]));
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
    let Move::Tell { why, .. } = &plan[0] else {
        panic!()
    };
    assert_eq!(notice(why).severity, Severity::High);
    let Move::Recheck { progress, .. } = &plan[1] else {
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
    let [Move::Tell { outcome, why, .. }] = &action_gone(&a, Some(&h))[..] else {
        panic!()
    };
    assert_eq!(*outcome, Outcome::Warning);
    assert_eq!(notice(why).details["tasks_left"], serde_json::json!(["t1"]));
    let [Move::Tell { outcome, .. }] = &action_gone(&a, None)[..] else {
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
    let [Move::Drain { why: n, .. }] = &spot(&w, "prod", Some(&ci("ACTIVE")), 1)[..] else {
        panic!()
    };
    assert!(notice(n)
        .next_steps
        .iter()
        .any(|s| s.contains("--status ACTIVE")));
}

fn group(cluster: Option<&str>, members: &[&str]) -> Group {
    testing::group(
        "web-asg",
        cluster,
        members
            .iter()
            .map(|i| testing::member(i, "Terminating:Wait", "Healthy")),
    )
}

fn look<'a>(
    action: &'a LifecycleAction,
    progress: &'a Progress,
    group: Option<&'a Group>,
    beat: Beat,
) -> Look<'a> {
    Look {
        action,
        progress,
        origin: Place::AutoScalingGroup,
        destination: Place::Ec2,
        beat,
        group,
    }
}

fn read_of(next: Next) -> Read {
    match next {
        Next::Read(read) => read,
        Next::Plan(plan) => panic!("a plan, not a read: {plan:?}"),
    }
}

fn plan_of(next: Next) -> Plan {
    match next {
        Next::Plan(plan) => plan,
        Next::Read(read) => panic!("a read, not a plan: {read:?}"),
    }
}

#[test]
fn our_hook_on_a_group_without_the_opt_in_tag_is_a_warning_and_nothing_is_read() {
    let a = action(Transition::Terminating);
    let p = Progress::default();
    let untagged = group(None, &["i-0aaa"]);
    for g in [Some(&untagged), None] {
        let plan = plan_of(lifecycle(
            &look(&a, &p, g, Beat::Unknown),
            &Seen::default(),
            &config(),
            Utc::now(),
        ));
        let [Move::Tell {
            action: "lifecycle",
            outcome: Outcome::Warning,
            why: Why::UntaggedGroup { .. },
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
    }
    assert!(!heartbeats::<()>(&Ok(Some(untagged.clone()))));
    assert!(!heartbeats::<()>(&Ok(None)));
    assert!(heartbeats::<()>(&Ok(Some(group(Some("prod"), &[])))));
    assert!(heartbeats(&Err(())), "a failed read still heartbeats");
}

#[test]
fn a_first_terminate_look_reads_hooks_then_the_host_then_the_opt_in_then_the_tasks() {
    let a = action(Transition::Terminating);
    let (p, now) = started(5, 0);
    let g = group(Some("prod"), &["i-0aaa"]);
    let l = look(&a, &p, Some(&g), Beat::Alive);
    let mut seen = Seen::default();
    let next = |seen: &Seen| lifecycle(&l, seen, &config(), now);
    assert!(matches!(read_of(next(&seen)), Read::Hooks { group } if group == "web-asg"));
    seen.hooks = Some(vec![]);
    assert!(matches!(read_of(next(&seen)), Read::HostFacts { .. }));
    seen.facts = Some(HostFacts::default());
    assert!(matches!(read_of(next(&seen)), Read::Managed { cluster } if cluster == "prod"));
    seen.managed = Some(true);
    assert!(matches!(
        read_of(next(&seen)),
        Read::Host { measured: true, .. }
    ));
    seen.host = Some(host(
        vec![task("t1", "service:web", "RUNNING", "RUNNING")],
        &[],
    ));
    assert_eq!(kinds(&plan_of(next(&seen))), ["drain-host", "recheck"]);
    // A cluster without the opt-in tag: released, nothing read of the host's tasks.
    seen.managed = Some(false);
    seen.host = None;
    let [Move::Complete {
        why: Why::NotOptedIn { .. },
        ..
    }] = &plan_of(next(&seen))[..]
    else {
        panic!()
    };
}

#[test]
fn a_recheck_whose_carried_container_instance_is_another_hosts_changes_nothing() {
    let a = action(Transition::Terminating);
    let (mut p, now) = started(400, 3);
    p.cluster = Some("prod".into());
    p.container_instance_arn = Some("arn:ci/other".into());
    p.heartbeat_timeout = Some(300);
    let g = group(Some("prod"), &["i-0aaa"]);
    let l = look(&a, &p, Some(&g), Beat::Alive);
    let mut c = config();
    c.standalone_grace_seconds = 0;
    // A standalone task makes the re-check write to ECS (StopTask).
    let mut seen = Seen {
        host: Some(host(
            vec![task("s1", "family:batch", "RUNNING", "RUNNING")],
            &[],
        )),
        ..Seen::default()
    };
    assert!(matches!(
        read_of(lifecycle(&l, &seen, &c, now)),
        Read::Managed { .. }
    ));
    seen.managed = Some(true);
    assert!(matches!(
        read_of(lifecycle(&l, &seen, &c, now)),
        Read::CarriedHost { container_instance_arn, .. } if container_instance_arn == "arn:ci/other"
    ));
    seen.carried = Some(vec!["i-0bbb".into()]);
    let plan = plan_of(lifecycle(&l, &seen, &c, now));
    let [Move::Tell {
        action: "lifecycle",
        outcome: Outcome::Skipped,
        why: Why::CarriedMismatch {
            carried, cluster, ..
        },
    }] = &plan[..]
    else {
        panic!("{plan:?}")
    };
    assert_eq!(
        (carried.as_str(), cluster.as_str()),
        ("arn:ci/other", "prod")
    );
    assert!(!writes_to_ecs(&plan));
    // The host's own container instance: the re-check goes ahead.
    seen.carried = Some(vec!["i-0aaa".into()]);
    assert_eq!(
        kinds(&plan_of(lifecycle(&l, &seen, &c, now))),
        ["stop-task", "recheck"]
    );
    // ECS does not know the carried container instance at all: nothing changes either.
    seen.carried = Some(vec![]);
    assert!(!writes_to_ecs(&plan_of(lifecycle(&l, &seen, &c, now))));
}

#[test]
fn a_recheck_that_only_waits_reads_no_opt_in() {
    let a = action(Transition::Terminating);
    let (mut p, now) = started(60, 2);
    p.cluster = Some("prod".into());
    p.container_instance_arn = Some("arn:ci/1".into());
    let g = group(Some("prod"), &["i-0aaa"]);
    let seen = Seen {
        host: Some(host(
            vec![task("t1", "service:web", "RUNNING", "RUNNING")],
            &[],
        )),
        ..Seen::default()
    };
    let plan = plan_of(lifecycle(
        &look(&a, &p, Some(&g), Beat::Alive),
        &seen,
        &config(),
        now,
    ));
    assert_eq!(kinds(&plan), ["recheck"]);
}

#[test]
fn a_quarantine_hold_ends_when_the_host_leaves_the_group_or_the_action_ends() {
    let a = action(Transition::Terminating);
    let (mut p, now) = started(60, 2);
    p.cluster = Some("prod".into());
    p.quarantined = true;
    let detached = group(Some("prod"), &[]);
    let plan = plan_of(lifecycle(
        &look(&a, &p, Some(&detached), Beat::Alive),
        &Seen::default(),
        &config(),
        now,
    ));
    assert!(matches!(
        &plan[..],
        [Move::Tell {
            why: Why::HoldEnded {
                ended: HoldEnd::Detached,
                ..
            },
            ..
        }]
    ));
    let member = group(Some("prod"), &["i-0aaa"]);
    let plan = plan_of(lifecycle(
        &look(&a, &p, Some(&member), Beat::Gone),
        &Seen::default(),
        &config(),
        now,
    ));
    assert!(matches!(
        &plan[..],
        [Move::Tell {
            why: Why::HoldEnded {
                ended: HoldEnd::ActionCompleted,
                ..
            },
            ..
        }]
    ));
    // Still tagged: held on; the tag removed: drained from a first look.
    let l = look(&a, &p, Some(&member), Beat::Alive);
    let mut seen = Seen::default();
    assert!(matches!(
        read_of(lifecycle(&l, &seen, &config(), now)),
        Read::QuarantineTag { .. }
    ));
    seen.quarantine_tag = Some(true);
    assert_eq!(
        kinds(&plan_of(lifecycle(&l, &seen, &config(), now))),
        ["recheck"]
    );
    seen.quarantine_tag = Some(false);
    assert!(matches!(
        read_of(lifecycle(&l, &seen, &config(), now)),
        Read::Hooks { .. }
    ));
}

#[test]
fn a_spot_host_outside_every_managed_cluster_is_only_logged() {
    let w = InstanceWarning {
        instance_id: "i-0aaa".into(),
        action: "terminate".into(),
    };
    let [Move::Quiet { action, why }] = &spot_host(&w, None)[..] else {
        panic!()
    };
    assert_eq!(*action, "drain-host");
    assert!(matches!(why, Why::SpotOutside { instance_id } if instance_id == "i-0aaa"));
    let found = SpotHost {
        cluster: "prod".into(),
        container_instance: ci("ACTIVE"),
        tasks: 2,
    };
    assert!(matches!(
        &spot_host(&w, Some(&found))[..],
        [Move::Drain { .. }]
    ));
}
