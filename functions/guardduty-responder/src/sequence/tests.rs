use super::*;
use shared::events::Envelope;

use crate::parse::{intent, Intent};

/// The documented `AttackSequence:ECS/CompromisedCluster` example (tests/fixtures).
fn sequence() -> SequenceThreat {
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

fn c(kind: &'static str, outcome: Outcome) -> Contained {
    Contained {
        kind,
        resource: format!("{kind}-1"),
        outcome,
    }
}

#[test]
fn a_first_delivery_that_contains_something_is_a_critical_contained_notice() {
    let (outcome, n) = notice(
        &sequence(),
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
    let (outcome, n) = notice(
        &sequence(),
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
        outcome(&[c("task", Outcome::Skipped), c("host", Outcome::AlreadyDone)]),
        Outcome::AlreadyDone
    );
    let (outcome, n) = notice(&sequence(), &[c("task", Outcome::Skipped)]);
    assert_eq!(outcome, Outcome::Skipped);
    assert_eq!(n.severity, Severity::Critical);
    assert!(n.title.ends_with("needs a person"), "{}", n.title);
    let (outcome, n) = notice(&sequence(), &[]);
    assert_eq!(outcome, Outcome::Skipped);
    assert!(n.title.ends_with("no task or host named"), "{}", n.title);
}

#[test]
fn the_worst_outcome_of_any_resource_wins() {
    let all = [
        c("task", Outcome::Done),
        c("task", Outcome::Warning),
        c("host", Outcome::Failed),
    ];
    assert_eq!(outcome(&all), Outcome::Failed);
    assert_eq!(outcome(&all[..2]), Outcome::Warning);
    assert_eq!(
        outcome(&[c("task", Outcome::Planned), c("host", Outcome::AlreadyDone)]),
        Outcome::Planned
    );
}
