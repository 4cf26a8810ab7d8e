use super::*;

pub(crate) fn c(kind: &'static str, outcome: Outcome) -> Contained {
    Contained {
        kind,
        resource: format!("{kind}-1"),
        outcome,
    }
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
