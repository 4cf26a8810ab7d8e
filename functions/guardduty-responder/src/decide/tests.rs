//! decide's tests assert on the plan and its reasons; `notices/tests.rs` pins the
//! wording, over the same fixtures (shared from here).

use super::*;
use shared::aws::ecs::Task;
use shared::events::Envelope;

use crate::parse::{intent, Intent};

pub(crate) fn config(extra: &[(&'static str, &'static str)]) -> Config {
    shared::testing::config(extra.iter().copied())
}

pub(crate) fn threat_from(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Threat {
    let mut e = shared::testing::envelope(name);
    edit(&mut e.detail);
    match intent(&e).unwrap() {
        Intent::Respond(t) => *t,
        Intent::Host(h) => {
            let (cluster, cluster_ref) = h.cluster.unwrap();
            Threat {
                finding: h.finding,
                cluster,
                cluster_ref,
            }
        }
        other => panic!("{other:?}"),
    }
}

/// The EC2 reverse shell finding (High, 8.0) in cluster prod, service web.
pub(crate) fn high() -> Threat {
    threat_from("guardduty-reverse-shell-ec2.json", |_| {})
}

pub(crate) fn with_severity(severity: f64) -> Threat {
    threat_from("guardduty-reverse-shell-ec2.json", |d| {
        d["severity"] = severity.into()
    })
}

pub(crate) const TASK: &str =
    "arn:aws:ecs:us-east-1:123456789012:task/prod/0f9e8d7c6b5a49382716051423324150";

pub(crate) fn evidence(arn: &str, last: &str, desired: &str) -> TaskEvidence {
    TaskEvidence {
        task: Task {
            arn: arn.into(),
            last_status: last.into(),
            desired_status: desired.into(),
            group: "service:web".into(),
            started_by: Some("ecs-svc/1".into()),
            started_at: None,
            task_definition_arn: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:42".into(),
            launch_type: Some("EC2".into()),
            container_instance_arn: Some("arn:ci/1".into()),
        },
        stopped_reason: None,
        stopped_at: None,
        availability_zone: None,
        capacity_provider: None,
        platform_version: None,
        containers: vec![],
        attachments: vec![],
        tags: Default::default(),
    }
}

pub(crate) fn stopped_by_us(arn: &str, minutes_ago: i64, now: DateTime<Utc>) -> TaskEvidence {
    let mut e = evidence(arn, "STOPPED", "STOPPED");
    e.stopped_reason = Some(format!("{STOP_REASON_PREFIX} GuardDuty finding x y"));
    e.stopped_at = Some(now - Duration::minutes(minutes_ago));
    e
}

pub(crate) fn host(status: &str, group: Option<(&str, &str)>) -> Host {
    Host {
        instance_id: "i-0abc123def4567890".into(),
        container_instance: ContainerInstance {
            arn: "arn:ci/1".into(),
            ec2_instance_id: "i-0abc123def4567890".into(),
            status: status.into(),
            agent_connected: true,
            running_tasks_count: 3,
            ami_id: None,
        },
        group: group.map(|(tag, state)| HostGroup {
            name: "prod-asg".into(),
            cluster_tag: Some(tag.into()),
            lifecycle_state: Some(state.into()),
        }),
        network_interfaces: vec![Interface {
            id: "eni-host0".into(),
            groups: vec!["sg-0aaaaaaaaaaaaaaa0".into()],
        }],
        snapshots: vec![],
        quarantined_for: None,
    }
}

pub(crate) const FINDING: &str = "c6c7e4a1f2b3d4e5a6b7c8d9e0f1a2b3";

/// The host as an earlier delivery left it: DRAINING, detached and tagged.
pub(crate) fn quarantined() -> Host {
    Host {
        quarantined_for: Some(FINDING.into()),
        ..host("DRAINING", None)
    }
}

/// A running task of service web (3 running) on an ACTIVE host in opted-in group prod-asg.
pub(crate) fn running() -> Observed {
    Observed {
        task: Some(evidence(TASK, "RUNNING", "RUNNING")),
        service_running: Some(3),
        service_stopped: vec![],
        host: Some(host("ACTIVE", Some(("prod", "InService")))),
    }
}

/// Only a host, as a host finding sees it.
pub(crate) fn on_host(h: Host) -> Observed {
    Observed {
        host: Some(h),
        ..Observed::default()
    }
}

/// Our task as an earlier delivery left it (stopped two minutes ago), on host `h`.
pub(crate) fn stopped_on(h: Host) -> Observed {
    Observed {
        task: Some(stopped_by_us(TASK, 2, Utc::now())),
        host: Some(h),
        ..running()
    }
}

/// Service web, with as many of our stops in the window as MAX_STOPS_PER_SERVICE allows.
pub(crate) fn breaker_tripped(now: DateTime<Utc>) -> Observed {
    Observed {
        service_stopped: vec![
            stopped_by_us("t1", 5, now),
            stopped_by_us("t2", 10, now),
            stopped_by_us("t3", 29, now),
        ],
        ..running()
    }
}

/// The host as an earlier delivery left it, isolated in QUARANTINE_SG and snapshotted.
pub(crate) fn contained_host() -> Host {
    let mut h = quarantined();
    h.network_interfaces[0].groups = vec![QUARANTINE_SG.into()];
    h.snapshots = vec!["snap-1".into(), "snap-2".into()];
    h
}

fn actions(plan: &Plan) -> Vec<&'static str> {
    plan.steps
        .iter()
        .filter(|s| s.changes_something())
        .map(Step::action)
        .collect()
}

fn notes(plan: &Plan) -> Vec<(&'static str, Outcome)> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            Step::Report(Report { notice: n, .. }) => Some((n.action(), n.outcome())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_high_finding_snapshots_the_host_stops_the_task_then_drains_tags_protects_and_detaches_it() {
    let c = config(&[]);
    assert!(screen(&high(), true, &c).is_none());
    let plan = respond(&high(), &running(), &c, Utc::now());
    assert_eq!(
        actions(&plan),
        [
            "snapshot-host",
            "stop-task",
            "drain-host",
            "tag-host",
            "protect-host",
            "detach-host"
        ]
    );
    assert_eq!(plan.action, "contain");
    assert_eq!(plan.why, Why::Threat);
    let Step::TagInstance { tags, .. } = &plan.steps[4] else {
        panic!()
    };
    assert_eq!(
        tags[0],
        (
            QUARANTINE_TAG.to_string(),
            "c6c7e4a1f2b3d4e5a6b7c8d9e0f1a2b3".to_string()
        )
    );
}

#[test]
fn the_stop_names_the_finding_and_the_cluster_by_arn() {
    let plan = respond(&high(), &running(), &config(&[]), Utc::now());
    let Step::StopTask {
        cluster,
        finding_id,
        finding_type,
        ..
    } = &plan.steps[2]
    else {
        panic!()
    };
    assert_eq!(finding_id, "c6c7e4a1f2b3d4e5a6b7c8d9e0f1a2b3");
    assert_eq!(finding_type, "Execution:Runtime/ReverseShell");
    assert_eq!(cluster, "arn:aws:ecs:us-east-1:123456789012:cluster/prod");
}

#[test]
fn a_fargate_task_is_stopped_and_no_host_is_touched() {
    let t = threat_from("guardduty-bitcoin-tool-fargate.json", |_| {});
    let mut seen = running();
    let e = seen.task.as_mut().unwrap();
    e.task.launch_type = Some("FARGATE".into());
    e.task.container_instance_arn = None;
    seen.host = None;
    let plan = respond(&t, &seen, &config(&[]), Utc::now());
    assert_eq!(actions(&plan), ["stop-task"]);
    assert_eq!(
        notes(&plan),
        [
            ("isolate-network", Outcome::Skipped),
            ("snapshot-host", Outcome::Skipped),
            ("quarantine-host", Outcome::Skipped)
        ]
    );
}

#[test]
fn a_plan_logs_its_notes_with_their_reasons() {
    let plan = respond(&high(), &running(), &config(&[]), Utc::now());
    let logged = serde_json::to_value(&plan.steps).unwrap();
    assert_eq!(
        logged[0],
        serde_json::json!({
            "step": "report",
            "action": "isolate-network",
            "outcome": "skipped",
            "notice": {"note": "isolation_off"}
        })
    );
    assert_eq!(logged[2]["step"], "stop_task");
}

#[test]
fn with_a_quarantine_group_the_network_is_cut_off_first_then_evidence_then_the_stop() {
    let c = config(&[("QUARANTINE_SECURITY_GROUP", "sg-0123456789abcdef0")]);
    let plan = respond(&high(), &running(), &c, Utc::now());
    assert_eq!(
        actions(&plan)[..3],
        ["isolate-network", "snapshot-host", "stop-task"]
    );
    let Step::Isolate {
        network_interface_id,
        security_group,
    } = &plan.steps[0]
    else {
        panic!()
    };
    assert_eq!(
        network_interface_id, "eni-host0",
        "bridge networking: the host's ENI"
    );
    assert_eq!(security_group, "sg-0123456789abcdef0");
}

#[test]
fn an_awsvpc_task_isolates_its_own_interface_not_the_hosts() {
    let c = config(&[("QUARANTINE_SECURITY_GROUP", "sg-0123456789abcdef0")]);
    let mut seen = running();
    seen.task.as_mut().unwrap().attachments = vec![shared::aws::ecs::AttachmentEvidence {
        kind: "ElasticNetworkInterface".into(),
        status: Some("ATTACHED".into()),
        details: [("networkInterfaceId".to_string(), "eni-task1".to_string())].into(),
    }];
    let plan = respond(&high(), &seen, &c, Utc::now());
    let isolated: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Isolate {
                network_interface_id,
                ..
            } => Some(network_interface_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(isolated, ["eni-task1"]);
}

#[test]
fn snapshots_already_taken_for_the_finding_are_not_taken_again() {
    let mut seen = running();
    seen.host.as_mut().unwrap().snapshots = vec!["snap-1".into()];
    let plan = respond(&high(), &seen, &config(&[]), Utc::now());
    assert!(notes(&plan).contains(&("snapshot-host", Outcome::AlreadyDone)));
    let plan = respond(
        &high(),
        &running(),
        &config(&[("SNAPSHOT_VOLUMES", "false")]),
        Utc::now(),
    );
    assert!(notes(&plan).contains(&("snapshot-host", Outcome::Skipped)));
}

#[test]
fn a_host_finding_quarantines_the_host_and_stops_nothing() {
    let t = threat_from("guardduty-host-new-binary-instance.json", |_| {});
    let seen = on_host(host("ACTIVE", Some(("prod", "InService"))));
    let plan = respond_host(&t, &seen, &config(&[]));
    assert_eq!(
        actions(&plan),
        [
            "snapshot-host",
            "drain-host",
            "tag-host",
            "protect-host",
            "detach-host"
        ]
    );
    assert_eq!(plan.action, "contain");
    let plan = respond_host(&t, &Observed::default(), &config(&[]));
    assert!(!plan.changes_something());
    assert_eq!(plan.why, Why::HostNotInCluster);
}

#[test]
fn quarantine_host_false_leaves_the_host_alone() {
    let plan = respond(
        &high(),
        &running(),
        &config(&[("QUARANTINE_HOST", "false")]),
        Utc::now(),
    );
    assert_eq!(actions(&plan), ["snapshot-host", "stop-task"]);
}

#[test]
fn findings_below_min_severity_are_only_notified() {
    let t = threat_from("guardduty-docker-socket-medium.json", |_| {});
    let plan = screen(&t, true, &config(&[])).unwrap();
    assert!(plan.steps.is_empty());
    assert_eq!(plan.outcome, Outcome::Skipped);
    assert_eq!(plan.why, Why::BelowMinSeverity { min_severity: 7.0 });
    assert!(screen(&t, true, &config(&[("MIN_SEVERITY", "4")])).is_none());
}

#[test]
fn sample_findings_are_not_acted_on_unless_drills_are_enabled() {
    let t = threat_from("guardduty-sample-finding.json", |d| {
        d["severity"] = 8.into()
    });
    let plan = screen(&t, true, &config(&[])).unwrap();
    assert_eq!(plan.why, Why::Sample);
    assert!(plan.steps.is_empty());
    assert!(screen(&t, true, &config(&[("ACT_ON_SAMPLE_FINDINGS", "true")])).is_none());
}

#[test]
fn an_unmanaged_cluster_is_only_notified() {
    let plan = screen(&high(), false, &config(&[])).unwrap();
    assert!(plan.steps.is_empty());
    assert_eq!(plan.why, Why::NotOptedIn);
}

#[test]
fn type_lists_match_prefixes_and_deny_wins() {
    let c = config(&[
        ("FINDING_TYPES_ALLOW", "Execution:Runtime/"),
        ("FINDING_TYPES_DENY", "Execution:Runtime/ReverseShell"),
    ]);
    assert_eq!(
        screen(&high(), true, &c).unwrap().why,
        Why::TypeDenied {
            prefix: "Execution:Runtime/ReverseShell".into()
        }
    );
    let c = config(&[("FINDING_TYPES_ALLOW", "Execution:Runtime/")]);
    assert!(screen(&high(), true, &c).is_none());
    let c = config(&[("FINDING_TYPES_ALLOW", "CryptoCurrency:")]);
    assert_eq!(screen(&high(), true, &c).unwrap().why, Why::TypeNotAllowed);
}

#[test]
fn a_finding_without_a_task_is_only_notified() {
    let t = threat_from("guardduty-reverse-shell-ec2.json", |d| {
        d["resource"]["ecsClusterDetails"]["taskDetails"] = serde_json::json!({});
    });
    let plan = screen(&t, true, &config(&[])).unwrap();
    assert!(plan.steps.is_empty());
    assert_eq!(plan.why, Why::NoTaskNamed);
}

#[test]
fn a_duplicate_finding_for_a_stopped_task_on_a_quarantined_host_is_already_contained() {
    let seen = stopped_on(quarantined());
    let plan = respond(&high(), &seen, &config(&[]), Utc::now());
    assert!(!plan.changes_something());
    assert_eq!(plan.outcome, Outcome::AlreadyDone);
    assert_eq!(
        plan.why,
        Why::TaskContained {
            stopped_reason: Some(format!("{STOP_REASON_PREFIX} GuardDuty finding x y"))
        }
    );
}

#[test]
fn a_duplicate_finding_names_the_snapshots_taken_earlier_and_takes_none() {
    let mut h = quarantined();
    h.snapshots = vec!["snap-1".into()];
    let seen = stopped_on(h);
    let plan = respond(&high(), &seen, &config(&[]), Utc::now());
    assert!(!plan.changes_something());
    assert_eq!(
        notes(&plan),
        [
            ("snapshot-host", Outcome::AlreadyDone),
            ("quarantine-host", Outcome::AlreadyDone)
        ]
    );
    let refs = plan.steps[0].refs();
    assert_eq!(
        plan.steps[0],
        Step::note(Note::AlreadySnapshotted {
            snapshots: vec!["snap-1".into()]
        })
    );
    assert_eq!(refs, &["snap-1"]);
}

#[test]
fn a_retry_after_a_partial_quarantine_finishes_the_host_without_stopping_again() {
    let mut seen = running();
    seen.task = Some(stopped_by_us(TASK, 1, Utc::now()));
    seen.host = Some(host("DRAINING", Some(("prod", "InService"))));
    let plan = respond(&high(), &seen, &config(&[]), Utc::now());
    assert_eq!(actions(&plan), ["tag-host", "protect-host", "detach-host"]);
    assert_eq!(
        notes(&plan),
        [
            ("stop-task", Outcome::AlreadyDone),
            ("drain-host", Outcome::AlreadyDone)
        ]
    );
    assert!(matches!(plan.why, Why::TaskStopped { .. }));
}

#[test]
fn a_task_being_stopped_counts_as_stopped() {
    let mut seen = running();
    seen.task = Some(evidence(TASK, "RUNNING", "STOPPED"));
    seen.host = Some(quarantined());
    let plan = respond(&high(), &seen, &config(&[]), Utc::now());
    assert_eq!(plan.outcome, Outcome::AlreadyDone);
}

#[test]
fn a_task_ecs_does_not_know_is_reported_and_not_stopped() {
    let plan = respond(&high(), &Observed::default(), &config(&[]), Utc::now());
    assert!(plan.steps.is_empty());
    assert_eq!(plan.why, Why::TaskNotFound);
}

#[test]
fn excluded_services_and_families_are_held_for_a_person() {
    let plan = respond(
        &high(),
        &running(),
        &config(&[("ACTION_EXCLUDE_SERVICES", "other, web")]),
        Utc::now(),
    );
    assert!(plan.steps.is_empty());
    assert_eq!(
        plan.why,
        Why::ServiceExcluded {
            service: "web".into()
        }
    );
    let plan = respond(
        &high(),
        &running(),
        &config(&[("ACTION_EXCLUDE_TASK_FAMILIES", "web")]),
        Utc::now(),
    );
    assert_eq!(
        plan.why,
        Why::FamilyExcluded {
            family: "web".into()
        }
    );
}

#[test]
fn the_breaker_trips_after_max_stops_in_the_window() {
    let now = Utc::now();
    let seen = breaker_tripped(now);
    let plan = respond(&high(), &seen, &config(&[]), now);
    assert!(plan.steps.is_empty());
    assert_eq!(
        plan.why,
        Why::BreakerTripped {
            service: "web".into(),
            stops: 3,
            window_minutes: 30,
            max_stops: 3
        }
    );
}

#[test]
fn only_our_own_stops_within_the_window_count_towards_the_breaker() {
    let now = Utc::now();
    let mut scaled_in = evidence("t4", "STOPPED", "STOPPED");
    scaled_in.stopped_reason = Some("Scaling activity initiated by deployment".into());
    let stopped = vec![
        stopped_by_us("t1", 5, now),
        stopped_by_us("t2", 31, now),
        stopped_by_us(TASK, 1, now),
        scaled_in,
    ];
    assert_eq!(recent_stops(&stopped, TASK, now, 30), 1);
    let mut seen = running();
    seen.service_stopped = stopped;
    // Evidence first (SNAPSHOT_VOLUMES defaults to true), then the stop.
    assert_eq!(
        actions(&respond(&high(), &seen, &config(&[]), now))[..2],
        ["snapshot-host", "stop-task"]
    );
}

#[test]
fn the_health_floor_holds_high_findings_for_a_person_but_critical_ones_stop_anyway() {
    let c = config(&[("MIN_HEALTHY_TASKS", "3")]);
    let floor = Floor {
        service: "web".into(),
        running: 3,
        min_healthy: 3,
    };
    let plan = respond(&high(), &running(), &c, Utc::now());
    assert!(plan.steps.is_empty());
    assert_eq!(plan.why, Why::HealthFloor(floor.clone()));
    let plan = respond(&with_severity(9.2), &running(), &c, Utc::now());
    assert_eq!(actions(&plan)[..2], ["snapshot-host", "stop-task"]);
    assert_eq!(plan.why, Why::FloorOverridden(floor));
    let plan = respond(
        &high(),
        &running(),
        &config(&[("MIN_HEALTHY_TASKS", "2")]),
        Utc::now(),
    );
    assert_eq!(
        actions(&plan)[..2],
        ["snapshot-host", "stop-task"],
        "3 running, 2 left: at the floor"
    );
}

#[test]
fn a_group_not_opted_in_for_the_cluster_is_not_detached() {
    let mut seen = running();
    seen.host = Some(host("ACTIVE", Some(("other-cluster", "InService"))));
    let plan = respond(&high(), &seen, &config(&[]), Utc::now());
    assert_eq!(
        actions(&plan),
        ["snapshot-host", "stop-task", "drain-host", "tag-host"]
    );
    assert_eq!(
        notes(&plan),
        [
            ("isolate-network", Outcome::Skipped),
            ("detach-host", Outcome::Warning)
        ]
    );
}

#[test]
fn an_instance_already_terminating_is_not_detached_and_the_note_says_why() {
    let mut seen = running();
    seen.host = Some(host("ACTIVE", Some(("prod", "Terminating:Wait"))));
    let plan = respond(&high(), &seen, &config(&[]), Utc::now());
    assert_eq!(
        actions(&plan),
        ["snapshot-host", "stop-task", "drain-host", "tag-host"]
    );
    assert_eq!(
        plan.steps.last(),
        Some(&Step::note(Note::NotDetachable {
            group: "prod-asg".into(),
            state: Some(LifecycleState::TerminatingWait)
        }))
    );
}

pub(crate) fn host_threat() -> Threat {
    threat_from("guardduty-host-new-binary-instance.json", |_| {})
}

pub(crate) const QUARANTINE_SG: &str = "sg-0123456789abcdef0";

#[test]
fn a_redelivered_host_finding_finds_the_host_contained_and_changes_nothing() {
    let c = config(&[("QUARANTINE_SECURITY_GROUP", QUARANTINE_SG)]);
    let seen = on_host(contained_host());
    let plan = respond_host(&host_threat(), &seen, &c);
    assert!(!plan.changes_something(), "{:?}", plan.steps);
    assert_eq!(plan.outcome, Outcome::AlreadyDone);
    assert_eq!(
        plan.why,
        Why::HostContained {
            instance_id: "i-0abc123def4567890".into(),
            quarantined_for: Some(FINDING.into())
        }
    );
    assert_eq!(
        notes(&plan),
        [
            ("isolate-network", Outcome::AlreadyDone),
            ("snapshot-host", Outcome::AlreadyDone),
            ("quarantine-host", Outcome::AlreadyDone)
        ]
    );
    // The evidence kept earlier is named, for the notification's record.
    let refs = plan.steps[1].refs();
    assert!(matches!(plan.steps[1], Step::Report(_)));
    assert_eq!(refs, &["snap-1", "snap-2"]);
}

#[test]
fn an_interface_in_other_groups_too_is_isolated_again() {
    let c = config(&[("QUARANTINE_SECURITY_GROUP", QUARANTINE_SG)]);
    let mut h = quarantined();
    h.network_interfaces[0].groups = vec![QUARANTINE_SG.into(), "sg-0aaaaaaaaaaaaaaa0".into()];
    let seen = on_host(h);
    let plan = respond_host(&host_threat(), &seen, &c);
    assert_eq!(actions(&plan), ["isolate-network", "snapshot-host"]);
}

#[test]
fn a_host_quarantined_for_an_earlier_finding_keeps_that_finding_on_its_tag() {
    let mut h = host("DRAINING", Some(("prod", "InService")));
    h.quarantined_for = Some("earlier-finding".into());
    let seen = on_host(h);
    let plan = respond_host(&host_threat(), &seen, &config(&[]));
    assert_eq!(
        actions(&plan),
        ["snapshot-host", "protect-host", "detach-host"],
        "the snapshots are this finding's; the tag stays the first finding's"
    );
    assert!(notes(&plan).contains(&("tag-host", Outcome::AlreadyDone)));
    assert!(plan.steps.contains(&Step::note(Note::AlreadyTagged {
        marked: "earlier-finding".into()
    })));
}

#[test]
fn a_detached_draining_host_without_the_tag_is_tagged() {
    let seen = on_host(host("DRAINING", None));
    let plan = respond_host(&host_threat(), &seen, &config(&[]));
    assert_eq!(actions(&plan), ["snapshot-host", "tag-host"]);
}

#[test]
fn a_host_finding_with_every_step_switched_off_is_only_reported() {
    let c = config(&[("QUARANTINE_HOST", "false"), ("SNAPSHOT_VOLUMES", "false")]);
    let seen = on_host(host("ACTIVE", Some(("prod", "InService"))));
    let plan = respond_host(&host_threat(), &seen, &c);
    assert!(!plan.changes_something());
    assert_eq!(plan.outcome, Outcome::Skipped);
    assert_eq!(plan.why, Why::NothingApplies);
}

/// The documented fixture `name`, mutated in one to three places, as the decision sees it
/// when it still parses (shared::testing::strategies strategies).
pub(crate) fn mutated_fixture(
    name: &str,
) -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    let (_, v) = shared::testing::strategies::fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap();
    shared::testing::strategies::mutated(v)
}

#[test]
fn any_host_finding_shape_stops_no_task_and_touches_only_the_host_ecs_placed() {
    let c = config(&[("QUARANTINE_SECURITY_GROUP", QUARANTINE_SG)]);
    let seen = on_host(host("ACTIVE", Some(("prod", "InService"))));
    let ours = "i-0abc123def4567890";
    let planned = std::cell::Cell::new(0);
    shared::testing::strategies::check(
        "respond_host over mutated host findings",
        mutated_fixture("guardduty-host-new-binary-instance.json"),
        |v| {
            let Ok(e) = Envelope::parse(v) else { return };
            let Ok(Intent::Host(h)) = intent(&e) else {
                return;
            };
            let threat = Threat {
                finding: h.finding,
                cluster: "prod".into(),
                cluster_ref: "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into(),
            };
            if screen(&threat, true, &c).is_some() {
                return;
            }
            let plan = respond_host(&threat, &seen, &c);
            planned.set(planned.get() + 1);
            for step in &plan.steps {
                match step {
                    Step::StopTask { .. } => panic!("a host finding stopped a task: {step:?}"),
                    Step::Snapshot { instance_id, .. }
                    | Step::TagInstance { instance_id, .. }
                    | Step::Protect { instance_id, .. }
                    | Step::Detach { instance_id, .. } => assert_eq!(instance_id, ours),
                    Step::Isolate {
                        network_interface_id,
                        security_group,
                    } => assert_eq!(
                        (network_interface_id.as_str(), security_group.as_str()),
                        ("eni-host0", QUARANTINE_SG)
                    ),
                    Step::SetDraining {
                        container_instance_arn,
                        ..
                    } => assert_eq!(container_instance_arn, "arn:ci/1"),
                    Step::Report(_) => {}
                }
            }
        },
    );
    assert!(planned.get() > 0, "no mutated finding reached the decision");
}
