use super::*;
use shared::aws::autoscaling::HookResult;
use shared::notify::Outcome;

#[test]
fn a_drain_notice_names_its_tasks_services_and_deadline() {
    let why = Why::Draining {
        instance_id: "i-0aaa".into(),
        group: "web-asg".into(),
        cluster: "prod".into(),
        tasks: 2,
        services: ["web".to_string(), "api".to_string()].into(),
        container_instance: "arn:ci/1".into(),
        deadline: 3540,
    };
    let n = notice(&why);
    assert_eq!(n.title, "Draining i-0aaa (2 tasks to move)");
    assert_eq!(
        n.description,
        "Auto Scaling group `web-asg` is terminating `i-0aaa`. Its container instance in cluster `prod` is set to DRAINING; the instance goes once its 2 task(s) have moved (deadline 3540 s)."
    );
    assert_eq!(n.details["services"], serde_json::json!(["api", "web"]));
}

#[test]
fn a_timeout_says_which_limit_ended_the_drain() {
    let why = |limit| Why::TimedOut {
        instance_id: "i-0aaa".into(),
        cluster: "prod".into(),
        elapsed: 3600,
        deadline: 3600,
        limit,
        tasks_left: vec!["t1".into()],
        moved: 2,
    };
    let n = notice(&why(Limit::DrainTimeout(3600)));
    assert_eq!(n.severity, Severity::Warning);
    assert!(n.description.ends_with("at the drain's deadline: DRAIN_TIMEOUT_SECONDS (3600 s). The instance was let go anyway; those tasks stop with it."), "{}", n.description);
    assert_eq!(n.details["deadline"], "drain_timeout");
    let n = notice(&why(Limit::HookGlobalTimeout(3000)));
    assert_eq!(n.details["deadline"], "hook_global_timeout");
}

#[test]
fn a_forged_recheck_is_reported_as_a_skip_naming_the_carried_host() {
    let n = notice(&Why::CarriedMismatch {
        instance_id: "i-0aaa".into(),
        carried: "arn:ci/other".into(),
        cluster: "prod".into(),
    });
    assert_eq!(
        n.title,
        "Ignored a re-check of i-0aaa: carried progress does not match"
    );
    assert_eq!(
        n.description,
        "The re-check names container instance `arn:ci/other`, which is not `i-0aaa`'s in cluster `prod`; nothing was changed."
    );
}

#[test]
fn moves_become_steps_with_their_wording() {
    let steps = plan(vec![
        Move::StopTask {
            cluster: "prod".into(),
            task_arn: "t1".into(),
            why: Why::StandaloneStopped {
                instance_id: "i-0aaa".into(),
                task_arn: "t1".into(),
                started_by: None,
                task_definition: "td".into(),
                grace_seconds: 300,
            },
        },
        Move::Tell {
            action: "hold",
            outcome: Outcome::AlreadyDone,
            why: Why::HoldEnded {
                instance_id: "i-0aaa".into(),
                ended: HoldEnd::Detached,
            },
        },
        Move::Quiet {
            action: "drain-host",
            why: Why::SpotOutside {
                instance_id: "i-0aaa".into(),
            },
        },
        Move::Complete {
            result: HookResult::Continue,
            why: Why::IntoWarmPool {
                instance_id: "i-0aaa".into(),
                group: "web-asg".into(),
            },
        },
    ]);
    let [Step::StopTask { reason, .. }, Step::Report(report), Step::Quiet { reason: quiet, .. }, Step::Complete { .. }] =
        &steps[..]
    else {
        panic!("{steps:?}")
    };
    assert_eq!(
        reason,
        "ecs-autopilot: host i-0aaa is being terminated; standalone task stopped after 300 s grace"
    );
    assert_eq!(
        report.notice.description,
        "The hold on `i-0aaa` ended: the host was detached from the group."
    );
    assert_eq!(quiet, "spot interruption of i-0aaa: not a container instance of any cluster tagged ecs-autopilot:managed=true");
}
