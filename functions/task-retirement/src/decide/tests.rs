use super::*;
use crate::parse::{Source, Target};
use chrono::TimeZone;
use serde_json::json;
use shared::notify::{Notice, Severity};
use shared::testing;

const ARN: &str = "arn:aws:health:us-east-1::event/ECS/AWS_ECS_TASK_PATCHING_RETIREMENT/X";

/// Wednesday 2024-01-10 12:00 UTC.
fn wednesday_noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap()
}

pub(crate) fn config(window: &str) -> Config {
    testing::config([
        ("RETIREMENT_QUEUE_URL", "http://q"),
        ("MAINTENANCE_WINDOW", window),
        ("LEAD_TIME_HOURS", "2"),
    ])
}

/// A retirement of service `prod/web`'s tasks from `start`.
pub(crate) fn retirement(start: Option<DateTime<Utc>>) -> Retirement {
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
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..testing::service("prod", "web")
        },
        via_tasks: vec![],
        deploying: vec![],
        images: vec![],
        tasks: vec![],
    }
}

/// A running Fargate task of `group`.
fn task(group: &str, started_by: Option<&str>) -> Task {
    Task {
        group: group.into(),
        started_by: started_by.map(str::to_string),
        task_definition_arn: "td:1".into(),
        launch_type: Some("FARGATE".into()),
        container_instance_arn: None,
        ..testing::task("arn:aws:ecs:us-east-1:1:task/prod/t1")
    }
}

/// Group `web-asg` (opted in for `prod` when `tagged`) of host `i-0aaa`.
fn group(tagged: bool, lifecycle: &str, health: &str) -> Group {
    let cluster = tagged.then_some("prod");
    testing::group(
        "web-asg",
        cluster,
        [testing::member("i-0aaa", lifecycle, health)],
    )
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
    plan.iter().map(Decision::action).collect()
}

fn outcomes(plan: &Plan) -> Vec<Outcome> {
    plan.iter()
        .filter_map(|s| match s {
            Decision::Tell { outcome, .. } => Some(*outcome),
            _ => None,
        })
        .collect()
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// A first look at a notice (nothing deferred yet): what `retire` plans.
fn first_look(r: &Retirement, observed: &[Observed], c: &Config, now: DateTime<Utc>) -> Plan {
    retire(r, observed, &Deferral::default(), c, now)
}

/// What people are told, in words: for the tests that pin the wording.
fn words(told: &Told, r: &Retirement, c: &Config) -> Notice {
    crate::notices::notice(told, r, c)
}

// --- services -------------------------------------------------------------------

#[test]
fn a_managed_service_is_redeployed_and_marked_for_this_event() {
    let now = wednesday_noon();
    let (r, c) = (retirement(Some(now + days(7))), config(""));
    let plan = first_look(&r, &[service(&[])], &c, now);
    let [Decision::Redeploy {
        target:
            Redeploy {
                cluster,
                service,
                marker: m,
                ..
            },
        told,
    }] = &plan[..]
    else {
        panic!("{plan:?}")
    };
    assert_eq!((cluster.as_str(), service.as_str()), ("prod", "web"));
    assert_eq!(m, &marker(ARN));
    assert!(
        matches!(
            told,
            Told::Redeploying {
                now: Now {
                    why: Why::AlwaysOpen,
                    over_budget: None
                },
                ..
            }
        ),
        "{told:?}"
    );
    let notice = words(told, &r, &c);
    assert!(notice.description.contains("always open"));
    assert_eq!(notice.details["why_now"]["reason"], "always_open");
}

#[test]
fn a_service_already_marked_for_this_event_is_already_done() {
    let now = wednesday_noon();
    let plan = first_look(
        &retirement(Some(now + days(7))),
        &[service(&[(HANDLED_TAG, &marker(ARN))])],
        &config(""),
        now,
    );
    assert_eq!(actions(&plan), ["redeploy-service"]);
    assert_eq!(outcomes(&plan), [Outcome::AlreadyDone]);
}

#[test]
fn a_mark_from_another_retirement_does_not_stop_this_one() {
    let now = wednesday_noon();
    let plan = first_look(
        &retirement(Some(now + days(7))),
        &[service(&[(HANDLED_TAG, &marker("arn:older-event"))])],
        &config(""),
        now,
    );
    assert!(matches!(&plan[..], [Decision::Redeploy { .. }]));
}

#[test]
fn outside_the_window_the_retirement_is_scheduled_once_with_a_capped_delay() {
    let now = wednesday_noon();
    let r = retirement(Some(now + days(7)));
    let c = config("Sat 02:00-05:00");
    let plan = first_look(&r, &[service(&[])], &c, now);
    let [Decision::Defer {
        look:
            LookAgain {
                until,
                delay_seconds,
                deferral,
                ..
            },
        told: Some(told),
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
    assert!(matches!(told, Told::Scheduled { resources, .. } if resources.len() == 1));
    let notice = words(told, &r, &c);
    assert!(notice.description.contains("service `web`"));

    // Re-deferred silently until the window opens.
    let later = now + Duration::hours(1);
    let plan = retire(&r, &[service(&[])], deferral, &c, later);
    let [Decision::Defer {
        told: None,
        look: LookAgain {
            deferral: again, ..
        },
        marks,
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
    let repeat = first_look(&r, &[service(&[(SCHEDULED_TAG, &scheduled)])], &c, now);
    let [Decision::Tell {
        action: "schedule",
        outcome: Outcome::Skipped,
        told,
        mark: None,
        ..
    }] = &repeat[..]
    else {
        panic!("{repeat:?}")
    };
    assert!(matches!(told, Told::AlreadyScheduled { .. }), "{told:?}");
    let notice = words(told, &r, &c);
    assert!(
        notice.description.contains("service `web`"),
        "{}",
        notice.description
    );

    // Another notice's marker does not count, and this one is added in front of it.
    let other = first_look(
        &r,
        &[service(&[(SCHEDULED_TAG, &marker("arn:other"))])],
        &c,
        now,
    );
    let [Decision::Defer { marks, .. }] = &other[..] else {
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
        matches!(&plan[..], [Decision::Defer { told: None, .. }]),
        "{plan:?}"
    );

    // A repeat inside the window acts: the queued look then finds it done.
    let open = Utc.with_ymd_and_hms(2024, 1, 13, 3, 0, 0).unwrap();
    let plan = first_look(&r, &[service(&[(SCHEDULED_TAG, &scheduled)])], &c, open);
    assert_eq!(actions(&plan), ["redeploy-service"]);
}

#[test]
fn a_scheduled_instance_is_marked_on_its_group_and_a_repeat_skips() {
    let now = wednesday_noon();
    let r = retirement(Some(now + days(7)));
    let c = config("Sat 02:00-05:00");
    let plan = first_look(
        &r,
        &[instance(Some(group(true, "InService", "Healthy")))],
        &c,
        now,
    );
    let [Decision::Defer { marks, .. }] = &plan[..] else {
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
    let repeat = first_look(&r, &[instance(Some(marked))], &c, now);
    assert_eq!(outcomes(&repeat), [Outcome::Skipped]);
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
        [Decision::Defer {
            look: LookAgain {
                delay_seconds: 125,
                ..
            },
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
    let (r, c) = (retirement(Some(now + days(1))), config("Sat 02:00-05:00"));
    let plan = first_look(&r, &[service(&[])], &c, now);
    let [Decision::Redeploy { told, .. }] = &plan[..] else {
        panic!("{plan:?}")
    };
    assert!(
        matches!(
            told,
            Told::Redeploying {
                now: Now {
                    why: Why::WindowTooLate { .. },
                    ..
                },
                ..
            }
        ),
        "{told:?}"
    );
    let notice = words(told, &r, &c);
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
    let plan = first_look(
        &retirement(Some(now + days(7))),
        &[Observed::ServiceGone {
            cluster: "prod".into(),
            service: "web".into(),
        }],
        &config(""),
        now,
    );
    assert_eq!(outcomes(&plan), [Outcome::AlreadyDone]);
}

// --- tasks the function cannot replace -------------------------------------------

#[test]
fn a_standalone_task_is_reported_with_who_started_it_and_the_deadline_never_stopped() {
    let now = wednesday_noon();
    let (r, c) = (retirement(Some(now + days(7))), config(""));
    let plan = first_look(
        &r,
        &[Observed::Standalone {
            cluster: "prod".into(),
            task: task("family:batch", Some("events-rule/nightly")),
            handled: Some(marker("arn:an-older-notice")),
        }],
        &c,
        now,
    );
    let [Decision::Tell {
        action,
        outcome,
        told,
        about: scope,
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
    assert!(matches!(told, Told::Standalone { .. }), "{told:?}");
    let notice = words(told, &r, &c);
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
    let plan = first_look(
        &retirement(Some(now + days(7))),
        &[Observed::Standalone {
            cluster: "prod".into(),
            task: task("family:batch", None),
            handled: Some(marker(ARN)),
        }],
        &config(""),
        now,
    );
    let [Decision::Tell {
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
    let plan = first_look(
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
        &config(""),
        now,
    );
    assert_eq!(outcomes(&plan), [Outcome::Skipped, Outcome::AlreadyDone]);
}

#[test]
fn a_short_service_arn_in_several_managed_clusters_is_a_warning_not_a_guess() {
    let now = wednesday_noon();
    let (r, c) = (retirement(Some(now + days(7))), config(""));
    let plan = first_look(
        &r,
        &[Observed::AmbiguousService {
            service: "web".into(),
            arn: "arn:aws:ecs:us-east-1:1:service/web".into(),
            clusters: vec!["blue".into(), "green".into()],
        }],
        &c,
        now,
    );
    assert_eq!(actions(&plan), ["redeploy-service"]);
    assert_eq!(outcomes(&plan), [Outcome::Warning]);
    let Decision::Tell { told, .. } = &plan[0] else {
        panic!()
    };
    assert!(matches!(told, Told::AmbiguousService { clusters, .. } if clusters.len() == 2));
    let notice = words(told, &r, &c);
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
    let first = first_look(&r, &observed, &c, now);
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
    let plan = first_look(
        &retirement(Some(now + days(7))),
        &[Observed::TaskGone {
            cluster: None,
            arn: "t".into(),
        }],
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
    let plan = first_look(&r, &[], &config(""), now);
    assert_eq!(actions(&plan), ["ignore"]);
}

// --- EC2 instances --------------------------------------------------------------

#[test]
fn an_instance_in_a_managed_group_is_marked_unhealthy() {
    let now = wednesday_noon();
    let (r, c) = (retirement(Some(now + days(7))), config(""));
    let plan = first_look(
        &r,
        &[instance(Some(group(true, "InService", "Healthy")))],
        &c,
        now,
    );
    let [Decision::ReplaceInstance {
        target:
            ReplaceInstance {
                instance_id,
                group,
                cluster,
            },
        told,
    }] = &plan[..]
    else {
        panic!("{plan:?}")
    };
    assert_eq!(
        (instance_id.as_str(), group.as_str(), cluster.as_str()),
        ("i-0aaa", "web-asg", "prod")
    );
    assert!(matches!(told, Told::Replacing { .. }), "{told:?}");
    let notice = words(told, &r, &c);
    assert!(notice.description.contains("instance-drain"));
}

#[test]
fn instances_outside_managed_groups_are_only_reported() {
    let now = wednesday_noon();
    for g in [None, Some(group(false, "InService", "Healthy"))] {
        let plan = first_look(
            &retirement(Some(now + days(7))),
            &[instance(g)],
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
        let plan = first_look(
            &retirement(Some(now + days(7))),
            &[instance(Some(g))],
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
    let c = config("Sat 02:00-05:00");
    let plan = first_look(
        &r,
        &[instance(Some(group(true, "InService", "Healthy")))],
        &c,
        now,
    );
    let [Decision::ReplaceInstance { told, .. }] = &plan[..] else {
        panic!("{plan:?}")
    };
    assert!(
        matches!(
            told,
            Told::Replacing {
                now: Now {
                    why: Why::NoSchedule,
                    ..
                },
                ..
            }
        ),
        "{told:?}"
    );
    let notice = words(told, &r, &c);
    assert_eq!(notice.details["why_now"]["reason"], "no_schedule");
}

// --- closed notices -----------------------------------------------------------------

#[test]
fn a_closed_notice_is_reported_and_not_acted_on() {
    let plan = closed();
    assert_eq!(actions(&plan), ["retire"]);
    assert_eq!(outcomes(&plan), [Outcome::Skipped]);
}

// --- the disruption budget ------------------------------------------------------

/// A group of `n` healthy hosts `i-0000`… plus, for each state given, one more host in it.
fn fleet_group(n: usize, others: &[(&str, &str)]) -> Group {
    let mut g = group(true, "InService", "Healthy");
    g.instances = (0..n)
        .map(|k| testing::member(&format!("i-{k:04}"), "InService", "Healthy"))
        .collect();
    for (k, (state, health)) in others.iter().enumerate() {
        g.instances
            .push(testing::member(&format!("i-busy{k}"), state, health));
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
    let plan = first_look(&r, &observed, &config(""), now);
    assert_eq!(actions(&plan), ["replace-instance", "wait-budget"]);
    let Decision::Defer {
        look:
            LookAgain {
                delay_seconds,
                deferral,
                outcome,
                ..
            },
        told: Some(told),
        marks,
    } = &plan[1]
    else {
        panic!("{plan:?}")
    };
    assert_eq!(*delay_seconds, 300);
    assert!(*delay_seconds <= MAX_DELAY_SECONDS);
    assert_eq!(deferral.budget_waits, 1);
    assert_eq!(*outcome, Outcome::Done);
    assert!(marks.is_empty());
    let Told::WaitsForBudget { waiting, .. } = told else {
        panic!("{told:?}")
    };
    assert_eq!(waiting.len(), 2);
    let notice = words(told, &r, &config(""));
    assert_eq!(notice.details["waiting"].as_array().unwrap().len(), 2);

    // A later look is silent while it waits.
    let plan = retire(&r, &observed, deferral, &config(""), now);
    assert!(
        matches!(&plan[..], [_, Decision::Defer { told: None, .. }]),
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
        let plan = first_look(&r, &[host("i-0000", &g)], &config(""), now);
        assert_eq!(actions(&plan), ["wait-budget"], "{busy:?}");
    }
    let mut c = config("");
    c.max_replacements_per_group = 2;
    let g = fleet_group(2, &[("InService", "Unhealthy")]);
    let plan = first_look(&r, &[host("i-0000", &g)], &c, now);
    assert_eq!(actions(&plan), ["replace-instance"]);
}

#[test]
fn at_the_latest_safe_start_a_waiting_host_goes_regardless_of_the_budget() {
    let now = wednesday_noon();
    let g = fleet_group(2, &[("Terminating:Wait", "Unhealthy")]);
    let r = ec2_retirement(Some(now + Duration::hours(1)), &["i-0000"]);
    let plan = first_look(&r, &[host("i-0000", &g)], &config(""), now);
    let [Decision::ReplaceInstance { told, .. }] = &plan[..] else {
        panic!("{plan:?}")
    };
    assert!(
        matches!(
            told,
            Told::Replacing {
                now: Now {
                    over_budget: Some(_),
                    ..
                },
                ..
            }
        ),
        "{told:?}"
    );
    let notice = words(told, &r, &config(""));
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
    let plan = first_look(&r, &observed, &config(""), now);
    assert_eq!(actions(&plan), ["budget-forecast", "wait-budget"]);
    let Decision::Tell {
        told,
        outcome,
        mark,
        ..
    } = &plan[0]
    else {
        panic!("{plan:?}")
    };
    assert_eq!(*outcome, Outcome::Warning);
    let Told::BudgetLate { forecast } = told else {
        panic!("{told:?}")
    };
    assert_eq!((forecast.waiting, forecast.late), (3, 2));
    let notice = words(told, &r, &config(""));
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
    let plan = first_look(&r, &observed, &config(""), now);
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
        first_look(&r, &[o], &config(""), now)
    };
    // Looks for different hosts, at the same moment: each marks only the head.
    for id in ["i-0000", "i-0001", "i-0002"] {
        let plan = look(id);
        let marked: Vec<&str> = plan
            .iter()
            .filter_map(|s| match s {
                Decision::ReplaceInstance { target, .. } => Some(target.instance_id.as_str()),
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
    let plan = first_look(&r, &[seen(8)], &c, now);
    assert_eq!(actions(&plan), ["schedule"]);
    let plan = first_look(&r, &[seen(10)], &c, now);
    assert_eq!(actions(&plan), ["budget-forecast", "schedule"]);
    let Decision::Tell { told, .. } = &plan[0] else {
        panic!()
    };
    let notice = words(told, &r, &c);
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
    let plan = first_look(&r, &[busy.clone()], &config(""), now);
    assert_eq!(actions(&plan), ["wait-budget"]);
    let mut c = config("");
    c.max_redeploys_per_cluster = 3;
    let plan = first_look(&r, &[busy], &c, now);
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
    let plan = first_look(&r, std::slice::from_ref(&o), &config(""), wednesday_noon());
    assert_eq!(actions(&plan), ["replace-instance"]);
    assert_eq!(outcomes(&plan), [Outcome::Skipped]);
    // A scheduled retirement is still acted on: Capacity Rebalancing does not cover it.
    let r = ec2_retirement(Some(wednesday_noon() + days(7)), &["i-0aaa"]);
    let plan = first_look(&r, &[o], &config(""), wednesday_noon());
    assert!(
        matches!(&plan[..], [Decision::ReplaceInstance { .. }]),
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
        let plan = first_look(
            &retirement(Some(wednesday_noon() + days(7))),
            &[o],
            &config(""),
            wednesday_noon(),
        );
        let [Decision::Tell {
            action,
            outcome,
            told,
            ..
        }] = &plan[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!((*action, *outcome), ("redeploy-service", Outcome::Warning));
        assert!(matches!(told, Told::OtherController { controller: c, .. } if c == controller));
        let notice = words(
            told,
            &retirement(Some(wednesday_noon() + days(7))),
            &config(""),
        );
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
        let plan = stop_tasks_look(&r, &o, now);
        let Decision::StopTasks {
            target: StopTasks { tasks, last, .. },
            ..
        } = &plan[0]
        else {
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
    let plan = first_look(
        &retirement(Some(wednesday_noon() + days(7))),
        &[o],
        &config(""),
        wednesday_noon(),
    );
    let [Decision::Redeploy { told, .. }] = &plan[..] else {
        panic!("{plan:?}")
    };
    let r = retirement(Some(wednesday_noon() + days(7)));
    let notice = words(told, &r, &config(""));
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
    let plan = first_look(
        &retirement(Some(wednesday_noon() + days(7))),
        &[service(&[])],
        &config(""),
        wednesday_noon(),
    );
    let [Decision::Redeploy { told, .. }] = &plan[..] else {
        panic!()
    };
    let notice = words(told, &r, &config(""));
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

/// A notice updated an hour ago about service `web`, which wants `desired` tasks and
/// keeps `min_healthy` percent of them, running `tasks` started a day ago.
fn stop_tasks_service(
    now: DateTime<Utc>,
    desired: i32,
    min_healthy: i32,
    tasks: u32,
) -> (Retirement, Observed) {
    let mut r = retirement(Some(now + days(7)));
    r.last_updated = Some(now - Duration::hours(1));
    let mut o = service(&[]);
    if let Observed::Service {
        service,
        tasks: running,
        ..
    } = &mut o
    {
        service.desired_count = desired;
        service.minimum_healthy_percent = Some(min_healthy);
        *running = (0..tasks).map(|n| running_task(n, now - days(1))).collect();
    }
    (r, o)
}

/// A first look at `o` with `RETIREMENT_REPLACE=stop-tasks`.
fn stop_tasks_look(r: &Retirement, o: &Observed, now: DateTime<Utc>) -> Plan {
    first_look(r, std::slice::from_ref(o), &stop_tasks_config(), now)
}

#[test]
fn stop_tasks_stops_only_as_many_retiring_tasks_as_minimum_healthy_percent_allows() {
    let now = wednesday_noon();
    let (r, mut o) = stop_tasks_service(now, 4, 50, 4);
    let plan = stop_tasks_look(&r, &o, now);
    let [Decision::StopTasks {
        target: StopTasks { tasks, last, .. },
        ..
    }, Decision::Defer {
        told: None,
        look: LookAgain { delay_seconds, .. },
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
    let plan = stop_tasks_look(&r, &o, now);
    let [Decision::StopTasks {
        target: StopTasks {
            tasks, last: true, ..
        },
        ..
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
    let plan = stop_tasks_look(&r, &o, now);
    assert!(
        matches!(
            &plan[..],
            [Decision::StopTasks {
                target: StopTasks { last: true, .. },
                ..
            }]
        ),
        "{plan:?}"
    );
}

#[test]
fn stop_tasks_never_goes_below_the_floor_and_warns_when_it_cannot_start() {
    let now = wednesday_noon();
    let (r, mut o) = stop_tasks_service(now, 1, 100, 1);
    let plan = stop_tasks_look(&r, &o, now);
    assert_eq!(actions(&plan), ["stop-tasks"]);
    assert_eq!(outcomes(&plan), [Outcome::Warning]);
    // Below the desired count (a replacement starting): wait, stop nothing.
    if let Observed::Service { service, .. } = &mut o {
        service.desired_count = 2;
        service.minimum_healthy_percent = Some(50);
    }
    let plan = stop_tasks_look(&r, &o, now);
    assert!(
        matches!(&plan[..], [Decision::Defer { told: None, .. }]),
        "{plan:?}"
    );
}

// --- what to read next ------------------------------------------------------------

#[test]
fn a_running_service_task_leads_to_its_service_and_others_are_what_they_are() {
    let mut t = task("service:web", None);
    assert_eq!(
        task_lead("prod".into(), "t", t.clone(), None),
        TaskLead::Service {
            cluster: "prod".into(),
            service: "web".into()
        }
    );
    t.group = "family:batch".into();
    assert!(matches!(
        task_lead("prod".into(), "t", t.clone(), Some("m".into())),
        TaskLead::Found(o) if matches!(*o, Observed::Standalone { ref handled, .. } if handled.as_deref() == Some("m"))
    ));
    t.last_status = "STOPPED".into();
    assert!(matches!(
        task_lead("prod".into(), "t", t, None),
        TaskLead::Found(o) if matches!(*o, Observed::TaskGone { .. })
    ));
}

#[test]
fn a_task_no_cluster_knows_is_gone_or_unmanaged_when_its_cluster_is_unknown() {
    assert!(matches!(
        task_not_found(Some("prod"), "t"),
        Observed::TaskGone {
            cluster: Some(_),
            ..
        }
    ));
    assert!(matches!(
        task_not_found(None, "t"),
        Observed::Unmanaged { cluster: None, .. }
    ));
}

#[test]
fn a_short_service_arn_names_a_cluster_only_when_exactly_one_has_it() {
    assert_eq!(service_cluster(vec![]), None);
    assert_eq!(service_cluster(vec!["a".into()]), Some(Ok("a".into())));
    assert_eq!(
        service_cluster(vec!["a".into(), "b".into()]),
        Some(Err(vec!["a".into(), "b".into()]))
    );
}

#[test]
fn a_service_reads_its_tasks_for_stop_tasks_and_its_budget_only_when_it_may_be_redeployed() {
    let Observed::Service { service: s, .. } = service(&[]) else {
        panic!()
    };
    assert_eq!(
        service_reads(&s, Replace::Redeploy),
        ServiceReads {
            tasks: false,
            redeploy: true
        }
    );
    assert_eq!(
        service_reads(&s, Replace::StopTasks),
        ServiceReads {
            tasks: true,
            redeploy: false
        }
    );
    let code_deploy = ServiceDescription {
        deployment_controller: "CODE_DEPLOY".into(),
        ..s
    };
    assert!(!service_reads(&code_deploy, Replace::Redeploy).redeploy);
}

#[test]
fn only_a_scheduled_notice_of_a_managed_group_reads_the_groups_queue() {
    let now = wednesday_noon();
    assert!(reads_queue(
        &group(true, "InService", "Healthy"),
        &retirement(Some(now))
    ));
    assert!(!reads_queue(
        &group(false, "InService", "Healthy"),
        &retirement(Some(now))
    ));
    assert!(!reads_queue(
        &group(true, "InService", "Healthy"),
        &retirement(None)
    ));
}
