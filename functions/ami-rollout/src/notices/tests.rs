//! A few pins on the wording; decide's tests assert the reasons.

use super::*;

#[test]
fn reasons_read_as_sentences_about_the_group() {
    let why = NoParameter::Untagged(NoFit::Undescribed {
        missing: 1,
        total: 2,
    });
    assert_eq!(
        why.to_string(),
        "it has no `ecs-autopilot:ami-parameter` tag and 1 of the 2 image(s) its instances run could not be described, so the AMI family it can run is unknown"
    );
    assert_eq!(
        TemplateProblem::LiteralLanes(vec!["lt-1".into(), "lt-arm".into()])
            .to_string()
            .split(';')
            .next(),
        Some("its mixed instances policy launches from launch templates with a literal AMI (`lt-1`, `lt-arm`)")
    );
    assert_eq!(
        NoFit::NotPublished(vec![("ami-1".into(), "team-image".into())]).to_string(),
        "its instances run `ami-1` (team-image), not an ECS-optimized AMI AWS publishes a parameter for, so ami-rollout does not guess which image it can run"
    );
}

#[test]
fn a_step_that_found_its_work_done_says_so_over_what_was_planned() {
    let planned = Notice::info("Rolling web to ami-new", "3 of 3 run ami-old.");
    let n = refresh_already_running("web", planned.clone());
    assert_eq!(n.title, "web is already being refreshed");
    assert!(n.description.starts_with(
        "3 of 3 run ami-old. Auto Scaling answered that a refresh is already in progress"
    ));
    let n = halt_already_ended("web", planned);
    assert_eq!(n.title, "web's refresh had already ended");
}
