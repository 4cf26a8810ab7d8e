use super::*;
use crate::decide::tests as decide;
use crate::decide::{FullBudget, InstanceState};

fn config() -> Config {
    decide::config("Sat 02:00-05:00")
}

/// Starting Wednesday 2024-01-17 12:00 UTC.
fn retirement() -> Retirement {
    let start = chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 1, 17, 12, 0, 0).unwrap();
    decide::retirement(Some(start))
}

#[test]
fn ignored_events_are_reported_as_skipped() {
    let Step::Report(report) = ignored("other code") else {
        panic!()
    };
    assert_eq!(report.outcome, Outcome::Skipped);
    assert_eq!(report.notice.title, "Ignored event");
}

#[test]
fn a_replacement_says_the_deadline_and_why_now() {
    let told = Told::Replacing {
        instance_id: "i-0aaa".into(),
        group: "web-asg".into(),
        cluster: "prod".into(),
        now: Now {
            why: Why::AlwaysOpen,
            over_budget: None,
        },
    };
    let n = notice(&told, &retirement(), &config());
    assert_eq!(n.title, "Replacing i-0aaa ahead of retirement");
    assert_eq!(
        n.description,
        "AWS retires it at Wed, 17 Jan 2024 12:00:00 +0000 (AWS_ECS_TASK_PATCHING_RETIREMENT). `i-0aaa` was marked Unhealthy in group `web-asg`, so the group launches a replacement and terminates it through its terminate lifecycle hook, where instance-drain drains cluster `prod` first. No MAINTENANCE_WINDOW is set (always open), so it is replaced now."
    );
    assert_eq!(n.details["why_now"]["reason"], "always_open");
}

#[test]
fn a_full_budget_at_the_latest_safe_start_says_it_goes_anyway() {
    let told = Told::Replacing {
        instance_id: "i-0aaa".into(),
        group: "web-asg".into(),
        cluster: "prod".into(),
        now: Now {
            why: Why::WindowOpen,
            over_budget: Some(FullBudget {
                budget: BudgetKey::Group("web-asg".into()),
                ahead: 1,
                in_replacement: vec!["i-0bbb".into()],
            }),
        },
    };
    let n = notice(&told, &retirement(), &config());
    assert!(n.description.ends_with(
        "The disruption budget (MAX_REPLACEMENTS_PER_GROUP=1 host(s) of group `web-asg` at once) is full (1 in replacement: i-0bbb), but the latest safe start (2 hour(s) before the retirement) has come, so it goes anyway."
    ), "{}", n.description);
}

#[test]
fn an_instance_on_its_way_out_says_its_state() {
    let told = |state| Told::BeingReplaced {
        instance_id: "i-0aaa".into(),
        group: "web-asg".into(),
        state,
    };
    let n = notice(
        &told(Some(InstanceState {
            lifecycle: "Terminating:Wait".into(),
            health: "Healthy".into(),
        })),
        &retirement(),
        &config(),
    );
    assert!(
        n.description.contains("(Terminating:Wait / Healthy)"),
        "{}",
        n.description
    );
    let n = notice(&told(None), &retirement(), &config());
    assert!(
        n.description.contains("(no longer in the group)"),
        "{}",
        n.description
    );
}

#[test]
fn each_mark_becomes_a_step_after_what_it_records() {
    let mark = crate::markers::Mark::Ecs {
        arn: "arn:t".into(),
        key: HANDLED_TAG,
        value: "m".into(),
    };
    let decided = vec![Decision::Tell {
        action: acts::STANDALONE_TASK,
        outcome: Outcome::Warning,
        about: About::cluster("prod"),
        told: Told::TaskGone { arn: "t".into() },
        mark: Some(mark.clone()),
    }];
    let steps = plan(decided, &retirement(), &config());
    assert!(
        matches!(&steps[..], [Step::Report(r), Step::Mark(m)] if r.about == About::cluster("prod") && *m == mark),
        "{steps:?}"
    );
}

/// The plan is logged as JSON (`decided`): a step's target is flat beside its tag, as it
/// was before the targets became types of their own.
#[test]
fn a_planned_step_logs_its_target_flat() {
    let plan = plan(
        vec![Decision::StopTasks {
            target: crate::decide::StopTasks {
                cluster: "prod".into(),
                service: "web".into(),
                service_arn: "arn:aws:ecs:us-east-1:1:service/prod/web".into(),
                tasks: vec!["t1".into()],
                last: true,
                marker: "m".into(),
            },
            told: Told::Unrecognized,
        }],
        &retirement(),
        &config(),
    );
    let logged = serde_json::to_value(&plan[0]).unwrap();
    assert_eq!(logged["step"], "stop_tasks");
    assert_eq!(logged["cluster"], "prod");
    assert_eq!(logged["tasks"], serde_json::json!(["t1"]));
    assert_eq!(logged["last"], true);
    assert!(logged.get("target").is_none());
}
