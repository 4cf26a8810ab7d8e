use super::*;
use crate::drift::{can_roll, roll_order, rollable};
use crate::tags::{halted_value, starting_value, ROLLOUT_TAG};
use crate::templates::Lane;
use chrono::Duration;
use shared::events::autoscaling::refresh::Phase;
use shared::notify::Severity;
use shared::testing;
use shared::window::MaintenanceWindow;

const OLD: &str = "ami-0000000000000old";
const NEW: &str = "ami-0000000000000new";
const PARAM: &str = "/team/ami";
const OTHER: &str = "ami-0000000000other";

fn config() -> Config {
    testing::config([("DEFAULT_AMI_PARAMETER", PARAM)])
}

fn now() -> DateTime<Utc> {
    // A Tuesday.
    DateTime::parse_from_rfc3339("2024-01-02T03:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn template(version: &str) -> LaunchTemplateRef {
    LaunchTemplateRef {
        id: Some("lt-1".into()),
        name: None,
        version: version.into(),
    }
}

fn group(name: &str, amis: &[Option<&str>]) -> GroupState {
    let running: BTreeMap<String, Option<String>> = amis
        .iter()
        .enumerate()
        .map(|(n, a)| (format!("i-{name}{n}"), a.map(str::to_string)))
        .collect();
    let members = running
        .keys()
        .map(|i| testing::member(i, "InService", "Healthy"));
    GroupState {
        // Launch template `lt-1` version 1: template("1").
        details: testing::details(testing::group(name, Some("prod"), members)),
        cluster: "prod".into(),
        cluster_managed: true,
        parameter: PARAM.into(),
        no_parameter: None,
        lanes: vec![],
        expected: BTreeMap::new(),
        running,
    }
}

fn version(n: i64, image: ImageRef) -> TemplateVersion {
    TemplateVersion {
        template_id: "lt-1".into(),
        template_name: "web".into(),
        version: n,
        is_default: n == 1,
        image,
    }
}

fn literal(n: i64, ami: &str) -> TemplateVersion {
    version(
        n,
        ImageRef::Ami {
            image_id: ami.into(),
        },
    )
}

fn parameter(ami: &str, changed_minutes_ago: i64) -> AmiParameter {
    AmiParameter {
        name: PARAM.into(),
        image_id: ami.into(),
        version: 2,
        last_modified: Some(now() - Duration::minutes(changed_minutes_ago)),
    }
}

fn observed(groups: Vec<GroupState>) -> Observed {
    let templates = groups
        .iter()
        .map(|g| {
            (
                g.name().to_string(),
                Templates {
                    current: Some(literal(1, OLD)),
                    latest: Some(literal(1, OLD)),
                },
            )
        })
        .collect();
    Observed {
        groups,
        parameters: AmiParameters {
            found: BTreeMap::from([(PARAM.into(), parameter(NEW, 60))]),
            unusable: BTreeMap::new(),
        },
        refreshes: BTreeMap::new(),
        templates,
        images: [OLD, NEW, OTHER]
            .into_iter()
            .map(|id| (id.to_string(), al2023(id, "x86_64")))
            .collect(),
        managed_clusters: BTreeSet::from(["prod".to_string()]),
        ..Observed::default()
    }
}

/// An ECS-optimized Amazon Linux 2023 image.
fn al2023(id: &str, arch: &str) -> Image {
    let name = format!("al2023-ami-ecs-hvm-2023.0.{id}-kernel-6.1-{arch}");
    testing::image(id, &name, arch)
}

fn refresh(group: &str, status: &str, started_minutes_ago: i64) -> InstanceRefresh {
    InstanceRefresh {
        id: format!("r-{group}"),
        group: group.into(),
        status: status.into(),
        status_reason: Some("reason".into()),
        start_time: Some(now() - Duration::minutes(started_minutes_ago)),
        end_time: None,
        percentage_complete: Some(40),
        instances_to_update: Some(2),
        desired_template: None,
    }
}

fn outcomes(plan: &Plan) -> Vec<(&'static str, Option<Outcome>)> {
    plan.iter()
        .map(|s| match s {
            Step::Roll { .. } => ("rollout", None),
            Step::Report(r) => (r.action, Some(r.outcome)),
            Step::MarkReported { .. } => ("mark-reported", None),
            Step::Halt { .. } => ("window-halt", None),
        })
        .collect()
}

#[test]
fn a_group_on_its_parameters_ami_is_left_alone_silently() {
    let o = observed(vec![group("web", &[Some(NEW), Some(NEW), None])]);
    assert!(check(&o, &config(), now()).is_empty());
    assert!(rollable(&o, &config(), now()).is_empty());
}

#[test]
fn a_literal_ami_template_gets_a_new_version_and_a_pinned_refresh_with_rollback() {
    let o = observed(vec![group("web", &[Some(OLD), Some(NEW)])]);
    let plan = check(&o, &config(), now());
    let [Step::Roll {
        mode,
        request,
        notice,
        ..
    }] = &plan[..]
    else {
        panic!("{plan:?}")
    };
    assert_eq!(
        *mode,
        RollMode::NewVersion {
            template_id: "lt-1".into(),
            source_version: 1,
            image_id: NEW.into(),
            target_ami: NEW.into(),
            pin: true
        }
    );
    assert!(request.settings.skip_matching);
    assert!(request.settings.auto_rollback);
    // Unset by default: AWS applies the group's instance maintenance policy.
    assert_eq!(request.settings.min_healthy_percentage, None);
    assert_eq!(request.settings.max_healthy_percentage, None);
    assert_eq!(notice.details["stale_instances"], 1);
}

#[test]
fn a_version_an_earlier_delivery_created_is_reused() {
    let mut o = observed(vec![group("web", &[Some(OLD)])]);
    o.templates.get_mut("web").unwrap().latest = Some(literal(2, NEW));
    let plan = check(&o, &config(), now());
    let [Step::Roll { mode, request, .. }] = &plan[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(
        *mode,
        RollMode::ExistingVersion {
            template: template("2")
        }
    );
    assert_eq!(request.desired_template, Some(template("2")));
}

#[test]
fn a_resolve_ssm_template_is_refreshed_as_is_without_skip_matching_or_rollback() {
    let mut o = observed(vec![group("web", &[Some(OLD)])]);
    o.templates.get_mut("web").unwrap().current = Some(version(
        1,
        ImageRef::Parameter {
            name: PARAM.into(),
            selector: None,
        },
    ));
    let plan = check(&o, &config(), now());
    let [Step::Roll { mode, request, .. }] = &plan[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(*mode, RollMode::Current);
    assert_eq!(request.desired_template, None);
    assert!(!request.settings.skip_matching);
    assert!(!request.settings.auto_rollback);
}

#[test]
fn a_template_resolving_another_parameter_is_reported_not_rolled() {
    let mut o = observed(vec![group("web", &[Some(OLD)])]);
    o.templates.get_mut("web").unwrap().current = Some(version(
        1,
        ImageRef::Parameter {
            name: "/other".into(),
            selector: None,
        },
    ));
    let plan = check(&o, &config(), now());
    assert_eq!(outcomes(&plan), [("rollout", Some(Outcome::Skipped))]);
}

#[test]
fn groups_on_latest_are_refreshed_to_latest_without_rollback() {
    let mut g = group("web", &[Some(OLD)]);
    g.details.launch = LaunchSource::LaunchTemplate {
        template: template("$Latest"),
    };
    let plan = check(&observed(vec![g]), &config(), now());
    let [Step::Roll { mode, request, .. }] = &plan[..] else {
        panic!("{plan:?}")
    };
    assert!(matches!(mode, RollMode::NewVersion { pin: false, .. }));
    assert!(!request.settings.auto_rollback);
}

#[test]
fn launch_configurations_and_mixed_literal_templates_are_reported_as_unsupported() {
    let mut lc = group("old", &[Some(OLD)]);
    lc.details.launch = LaunchSource::LaunchConfiguration { name: "lc".into() };
    let mut mixed = group("mix", &[Some(OLD)]);
    mixed.details.launch = LaunchSource::MixedInstances {
        template: template("1"),
    };
    let plan = check(&observed(vec![lc, mixed]), &config(), now());
    assert_eq!(
        outcomes(&plan),
        [
            ("rollout", Some(Outcome::Skipped)),
            ("rollout", Some(Outcome::Skipped))
        ]
    );
    let Step::Report(Report { notice, .. }) = &plan[0] else {
        panic!()
    };
    assert!(notice.description.contains("launch configuration"));
}

#[test]
fn a_paused_group_is_reported_and_never_read_further() {
    let mut g = group("web", &[Some(OLD)]);
    g.details
        .group
        .tags
        .insert(ROLLOUT_TAG.into(), "Paused".into());
    let o = observed(vec![g]);
    assert!(rollable(&o, &config(), now()).is_empty());
    let plan = check(&o, &config(), now());
    assert_eq!(outcomes(&plan), [("rollout", Some(Outcome::Skipped))]);
}

#[test]
fn outside_the_window_drift_is_summarised_with_the_next_opening() {
    let mut c = config();
    c.window = MaintenanceWindow::parse("Sat,Sun 00:00-24:00").unwrap();
    let o = observed(vec![group("a", &[Some(OLD)]), group("b", &[Some(OLD)])]);
    assert!(rollable(&o, &c, now()).is_empty());
    let plan = check(&o, &c, now());
    let [Step::Report(Report {
        outcome: Outcome::Skipped,
        about: About { group: None, .. },
        notice,
        ..
    })] = &plan[..]
    else {
        panic!("{plan:?}")
    };
    assert_eq!(
        notice.details["waiting_for_window"],
        serde_json::json!(["a", "b"])
    );
    assert_eq!(notice.details["window_opens"], "2024-01-06T00:00:00Z");
}

#[test]
fn the_budget_counts_refreshes_fleet_wide_and_rolls_the_oldest_drift_first() {
    let mut c = config();
    c.max_concurrent_rollouts = 2;
    let mut o = observed(vec![
        group("young", &[Some(OLD)]),
        group("old", &[Some(OTHER)]),
        group("third", &[Some(OLD)]),
    ]);
    o.groups[1].parameter = "/other/ami".into();
    o.parameters.found.insert(
        "/other/ami".into(),
        AmiParameter {
            name: "/other/ami".into(),
            ..parameter(NEW, 600)
        },
    );
    // A group outside this check is refreshing: one of the two slots is taken.
    o.refreshes.insert(
        "elsewhere".into(),
        vec![refresh("elsewhere", "InProgress", 5)],
    );
    let plan = check(&o, &c, now());
    let rolled: Vec<&str> = plan
        .iter()
        .filter_map(|s| match s {
            Step::Roll { group, .. } => Some(group.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(rolled, ["old"]);
    let Some(Step::Report(Report { notice, .. })) = plan.last() else {
        panic!()
    };
    assert_eq!(
        notice.details["waiting_for_budget"],
        serde_json::json!(["third", "young"])
    );
}

#[test]
fn templates_are_read_in_drift_order_and_unread_groups_wait_for_the_budget() {
    let mut o = observed(vec![group("b", &[Some(OLD)]), group("a", &[Some(OLD)])]);
    let (order, slots) = roll_order(&o, &config(), now());
    let names: Vec<&str> = order.iter().map(|g| g.name()).collect();
    assert_eq!((names, slots), (vec!["a", "b"], 1));
    assert!(can_roll(&o, "a", &config()));
    o.templates.remove("b");
    let plan = check(&o, &config(), now());
    assert_eq!(
        outcomes(&plan),
        [("rollout", None), ("rollout", Some(Outcome::Skipped))]
    );
    let Some(Step::Report(Report { notice, .. })) = plan.last() else {
        panic!()
    };
    assert_eq!(
        notice.details["waiting_for_budget"],
        serde_json::json!(["b"])
    );
}

#[test]
fn a_refresh_in_progress_is_already_done_and_holds_its_slot() {
    let mut o = observed(vec![group("a", &[Some(OLD)]), group("b", &[Some(OLD)])]);
    o.refreshes
        .insert("a".into(), vec![refresh("a", "InProgress", 5)]);
    let plan = check(&o, &config(), now());
    assert_eq!(
        outcomes(&plan),
        [
            ("rollout", Some(Outcome::AlreadyDone)),
            ("rollout", Some(Outcome::Skipped))
        ]
    );
}

#[test]
fn a_refresh_that_failed_after_the_parameter_changed_is_not_retried() {
    let mut o = observed(vec![group("a", &[Some(OLD)])]);
    o.refreshes
        .insert("a".into(), vec![refresh("a", "RollbackSuccessful", 30)]);
    assert_eq!(
        outcomes(&check(&o, &config(), now())),
        [("rollout", Some(Outcome::Skipped))]
    );
    // A failure before the parameter named this AMI says nothing about it.
    o.refreshes
        .insert("a".into(), vec![refresh("a", "Failed", 120)]);
    assert_eq!(outcomes(&check(&o, &config(), now())), [("rollout", None)]);
}

#[test]
fn unusable_parameters_and_unmanaged_clusters_are_reported() {
    let mut lost = group("lost", &[Some(OLD)]);
    lost.parameter = "/missing".into();
    let mut foreign = group("foreign", &[Some(OLD)]);
    foreign.cluster_managed = false;
    let mut o = observed(vec![lost, foreign]);
    o.parameters
        .unusable
        .insert("/missing".into(), "parameter not found".into());
    let plan = check(&o, &config(), now());
    assert_eq!(
        outcomes(&plan),
        [
            ("check", Some(Outcome::Skipped)),
            ("check", Some(Outcome::Skipped))
        ]
    );
}

#[test]
fn instances_not_registered_in_the_cluster_are_not_drift() {
    let o = observed(vec![group("web", &[None, Some(NEW)])]);
    assert!(check(&o, &config(), now()).is_empty());
}

#[test]
fn the_parameter_tag_overrides_the_default() {
    let mut g = group("web", &[]);
    assert_eq!(parameter_of(&g.details, &config()), PARAM);
    g.details
        .group
        .tags
        .insert(PARAMETER_TAG.into(), " /mine ".into());
    assert_eq!(parameter_of(&g.details, &config()), "/mine");
}

#[test]
fn refresh_outcomes_say_what_the_group_runs_now() {
    let g = group("web", &[Some(NEW), Some(NEW), Some(OLD), None]);
    let event = RefreshEvent {
        phase: Phase::Succeeded,
        group: "web".into(),
        refresh_id: "r-1".into(),
    };
    let target = parameter(NEW, 60);
    let plan = refresh_outcome(&event, &g, None, Some(&target), None);
    let [Step::Report(Report {
        outcome, notice, ..
    }), Step::MarkReported { group, refresh_id }] = &plan[..]
    else {
        panic!("{plan:?}")
    };
    assert_eq!((group.as_str(), refresh_id.as_str()), ("web", "r-1"));
    assert_eq!(*outcome, Outcome::Done);
    assert_eq!(notice.details["running_amis"][NEW], 2);
    assert_eq!(notice.details["unregistered_instances"], 1);
    assert!(notice.description.contains("2 of 4"));
    let failed = RefreshEvent {
        phase: Phase::RollbackSucceeded,
        ..event
    };
    let Step::Report(Report {
        outcome, notice, ..
    }) = refresh_outcome(
        &failed,
        &g,
        Some(&refresh("web", "RollbackSuccessful", 1)),
        None,
        None,
    )
    .remove(0)
    else {
        panic!()
    };
    assert_eq!(outcome, Outcome::Warning);
    assert!(notice.severity >= Severity::Warning);
    assert!(notice.description.contains("reason"));
}

#[test]
fn a_refresh_already_reported_is_already_done_and_not_reported_again() {
    let mut g = group("web", &[Some(NEW)]);
    g.details
        .group
        .tags
        .insert(REPORTED_TAG.into(), "r-1".into());
    let event = RefreshEvent {
        phase: Phase::Failed,
        group: "web".into(),
        refresh_id: "r-1".into(),
    };
    let plan = refresh_outcome(&event, &g, None, None, None);
    assert_eq!(
        outcomes(&plan),
        [("refresh-outcome", Some(Outcome::AlreadyDone))]
    );
    // Another refresh of the same group is a new outcome.
    let next = RefreshEvent {
        refresh_id: "r-2".into(),
        ..event
    };
    let plan = refresh_outcome(&next, &g, None, None, None);
    assert_eq!(
        outcomes(&plan),
        [
            ("refresh-outcome", Some(Outcome::Warning)),
            ("mark-reported", None)
        ]
    );
}

fn bounded(window: &str) -> Config {
    let mut c = config();
    c.window = MaintenanceWindow::parse(window).unwrap();
    c.window_end_margin = Duration::minutes(30);
    c
}

fn halted(g: &mut GroupState, id: &str) {
    g.details
        .group
        .tags
        .insert(REFRESH_TAG.into(), halted_value(id));
}

#[test]
fn no_refresh_starts_when_the_window_closes_within_the_margin() {
    // now() is Tuesday 03:00: a window to 03:20 leaves less than the 30 min margin.
    let o = observed(vec![group("web", &[Some(OLD)])]);
    let c = bounded("Tue 02:00-03:20");
    assert!(rollable(&o, &c, now()).is_empty());
    let plan = check(&o, &c, now());
    let [Step::Report(Report { notice, .. })] = &plan[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(
        notice.details["waiting_for_window"],
        serde_json::json!(["web"])
    );
    // The next opening that allows a rollout: next Tuesday 02:00.
    assert_eq!(notice.details["window_opens"], "2024-01-09T02:00:00Z");
    assert_eq!(
        outcomes(&check(&o, &bounded("Tue 02:00-04:00"), now())),
        [("rollout", None)]
    );
}

#[test]
fn in_a_bounded_window_a_resolve_template_is_refreshed_to_a_copy_that_skip_matching_can_tell_apart()
{
    let mut o = observed(vec![group("web", &[Some(OLD)])]);
    o.templates.get_mut("web").unwrap().current = Some(version(
        1,
        ImageRef::Parameter {
            name: PARAM.into(),
            selector: None,
        },
    ));
    let plan = check(&o, &bounded("Tue 02:00-06:00"), now());
    let [Step::Roll { mode, request, .. }] = &plan[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(
        *mode,
        RollMode::NewVersion {
            template_id: "lt-1".into(),
            source_version: 1,
            image_id: format!("resolve:ssm:{PARAM}"),
            target_ami: NEW.into(),
            pin: true
        }
    );
    assert!(request.settings.skip_matching);
    assert!(!request.settings.auto_rollback);
}

#[test]
fn a_refresh_halted_for_the_window_is_resumed_to_the_same_version_with_skip_matching() {
    let mut g = group("web", &[Some(NEW), Some(OLD)]);
    halted(&mut g, "r-web");
    let mut o = observed(vec![g]);
    let mut h = refresh("web", "Cancelled", 30);
    h.desired_template = Some(template("2"));
    o.refreshes.insert("web".into(), vec![h]);
    let mut c = config();
    c.refresh.skip_matching = false; // the operator's choice; a resume skips anyway
    let plan = check(&o, &c, now());
    let [Step::Roll {
        mode,
        request,
        notice,
        ..
    }] = &plan[..]
    else {
        panic!("{plan:?}")
    };
    assert_eq!(
        *mode,
        RollMode::ExistingVersion {
            template: template("2")
        }
    );
    assert!(request.settings.skip_matching);
    assert_eq!(request.desired_template, Some(template("2")));
    assert_eq!(notice.details["resumed_refresh_id"], "r-web");
    assert!(notice.title.starts_with("Resuming"));
    // A cancel nobody marked as a halt is a failure: not retried.
    o.groups[0].details.group.tags.remove(REFRESH_TAG);
    assert_eq!(
        outcomes(&check(&o, &c, now())),
        [("rollout", Some(Outcome::Skipped))]
    );
}

#[test]
fn a_halted_refresh_without_a_desired_version_is_reported_not_resumed() {
    let mut g = group("web", &[Some(NEW), Some(OLD)]);
    halted(&mut g, "r-web");
    let mut o = observed(vec![g]);
    o.refreshes
        .insert("web".into(), vec![refresh("web", "Cancelled", 30)]);
    let plan = check(&o, &config(), now());
    assert_eq!(outcomes(&plan), [("rollout", Some(Outcome::Warning))]);
    assert!(roll_order(&o, &config(), now()).0.is_empty());
}

#[test]
fn the_guard_halts_only_its_own_unreported_refreshes_near_the_close_and_resumes_halted_ones_after()
{
    let mut mine = group("mine", &[Some(OLD)]).details;
    mine.group.tags.insert(REFRESH_TAG.into(), "r-1".into());
    let mut ended = group("ended", &[Some(OLD)]).details;
    ended.group.tags.insert(REFRESH_TAG.into(), "r-2".into());
    ended.group.tags.insert(REPORTED_TAG.into(), "r-2".into());
    let mut waiting = group("waiting", &[Some(OLD)]).details;
    waiting
        .group
        .tags
        .insert(REFRESH_TAG.into(), halted_value("r-3"));
    let groups = vec![mine.clone(), ended, waiting];
    let closing = bounded("Tue 02:00-03:20");
    assert_eq!(
        guard_look(&groups, &closing, now()),
        GuardLook::Halt(vec![("mine".into(), Some("r-1".into()))])
    );
    assert_eq!(
        guard_look(&groups, &bounded("Tue 02:00-06:00"), now()),
        GuardLook::Resume(BTreeSet::from(["waiting".to_string()]))
    );
    mine.group.tags.insert(REFRESH_TAG.into(), "r-mine".into());
    let Some(Step::Halt {
        refresh_id, notice, ..
    }) = halt_plan(&mine, &refresh("mine", "InProgress", 20), &closing, now())
    else {
        panic!()
    };
    assert_eq!(refresh_id, "r-mine");
    // Someone else's refresh is never halted.
    assert!(halt_plan(&mine, &refresh("other", "InProgress", 20), &closing, now()).is_none());
    // Tagged "starting" only (the id write failed): a refresh started since is its own.
    mine.group.tags.insert(
        REFRESH_TAG.into(),
        starting_value(now() - Duration::minutes(30)),
    );
    assert!(halt_plan(&mine, &refresh("mine", "InProgress", 20), &closing, now()).is_some());
    assert!(halt_plan(&mine, &refresh("mine", "InProgress", 90), &closing, now()).is_none());
    assert_eq!(notice.details["window_closes"], "2024-01-02T03:20:00Z");
    assert_eq!(notice.details["resumes_at"], "2024-01-09T02:00:00Z");
    // Baking replaces nothing more; a rollback is AWS's own.
    assert!(halt_plan(&mine, &refresh("mine", "Baking", 20), &closing, now()).is_none());
}

#[test]
fn the_cancel_of_a_halted_refresh_is_reported_as_a_halt_with_its_resume() {
    let mut g = group("web", &[Some(NEW), Some(OLD)]);
    halted(&mut g, "r-1");
    let event = RefreshEvent {
        phase: Phase::Cancelled,
        group: "web".into(),
        refresh_id: "r-1".into(),
    };
    let plan = refresh_outcome(&event, &g, None, Some(&parameter(NEW, 60)), Some(now()));
    let Step::Report(Report {
        outcome, notice, ..
    }) = &plan[0]
    else {
        panic!()
    };
    assert_eq!(*outcome, Outcome::Done);
    assert!(
        notice.title.contains("halted for the maintenance window"),
        "{}",
        notice.title
    );
    assert!(notice.description.contains("resumed"));
}

fn mixed(g: &mut GroupState, arm_instances: &[&str]) {
    use shared::aws::autoscaling::Override;
    g.details.launch = LaunchSource::MixedInstances {
        template: template("1"),
    };
    let arm = LaunchTemplateRef {
        id: Some("lt-arm".into()),
        name: None,
        version: "$Latest".into(),
    };
    g.details.overrides = vec![
        Override {
            instance_type: Some("m5.large".into()),
            template: None,
        },
        Override {
            instance_type: Some("m7g.large".into()),
            template: Some(arm),
        },
    ];
    g.details.instance_types = g
        .running
        .keys()
        .map(|i| {
            let kind = if arm_instances.contains(&i.as_str()) {
                "m7g.large"
            } else {
                "m5.large"
            };
            (i.clone(), kind.to_string())
        })
        .collect();
}

fn lane_versions(x86: ImageRef, arm: ImageRef) -> BTreeMap<String, TemplateVersion> {
    BTreeMap::from([
        ("lt-1@1".to_string(), version(1, x86)),
        (
            "lt-arm@$Latest".to_string(),
            TemplateVersion {
                template_id: "lt-arm".into(),
                ..version(4, arm)
            },
        ),
    ])
}

fn resolve(name: &str) -> ImageRef {
    ImageRef::Parameter {
        name: name.into(),
        selector: None,
    }
}

#[test]
fn each_lane_of_a_mixed_group_is_compared_with_its_own_templates_parameter() {
    const ARM_PARAM: &str = "/team/arm";
    const ARM_NEW: &str = "ami-00000000000armnew";
    let mut g = group("mix", &[Some(NEW), Some(ARM_NEW)]);
    mixed(&mut g, &["i-mix1"]);
    let versions = lane_versions(resolve(PARAM), resolve(ARM_PARAM));
    let lanes = lanes(&g.details, &versions, &BTreeMap::new(), &g.running).unwrap();
    assert_eq!(
        lanes
            .iter()
            .map(|l| (l.parameter.as_str(), l.instances.clone()))
            .collect::<Vec<_>>(),
        [
            (PARAM, vec!["i-mix0".to_string()]),
            (ARM_PARAM, vec!["i-mix1".to_string()])
        ]
    );
    g.parameter = lanes[0].parameter.clone();
    g.lanes = lanes;
    let mut o = observed(vec![g]);
    o.parameters.found.insert(
        ARM_PARAM.into(),
        AmiParameter {
            name: ARM_PARAM.into(),
            ..parameter(ARM_NEW, 60)
        },
    );
    o.images.insert(ARM_NEW.into(), al2023(ARM_NEW, "arm64"));
    expect_lanes(&mut o.groups[0], &o.parameters.clone());
    // Both lanes on their parameter's AMI: nothing to roll, no slot taken.
    assert!(o.groups[0].stale(NEW).is_empty());
    assert!(check(&o, &config(), now()).is_empty());
    // The arm64 lane drifts: a plain refresh (every lane resolves its parameter).
    let arm_old = "ami-00000000000armold";
    o.groups[0]
        .running
        .insert("i-mix1".into(), Some(arm_old.into()));
    o.images.insert(arm_old.into(), al2023(arm_old, "arm64"));
    assert_eq!(o.groups[0].stale(NEW).len(), 1);
    let plan = check(&o, &config(), now());
    let [Step::Roll { mode, request, .. }] = &plan[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(*mode, RollMode::Current);
    assert_eq!(request.desired_template, None);
}

#[test]
fn a_literal_lane_follows_the_tag_of_its_architecture_or_cannot_be_judged() {
    let arm_ami = "ami-0000000000armlit";
    let mut g = group("mix", &[Some(NEW), Some(arm_ami)]);
    mixed(&mut g, &["i-mix1"]);
    let versions = lane_versions(
        resolve(PARAM),
        ImageRef::Ami {
            image_id: arm_ami.into(),
        },
    );
    let images = BTreeMap::from([(arm_ami.to_string(), al2023(arm_ami, "arm64"))]);
    let why = lanes(&g.details, &versions, &images, &g.running).unwrap_err();
    assert!(
        matches!(why, LaneProblem::LiteralUntagged { .. }),
        "{why:?}"
    );
    assert!(
        why.to_string()
            .contains("ecs-autopilot:ami-parameter:arm64"),
        "{why}"
    );
    g.details
        .group
        .tags
        .insert(format!("{PARAMETER_TAG}:arm64"), "/team/arm".into());
    let lanes = lanes(&g.details, &versions, &images, &g.running).unwrap();
    assert_eq!(lanes[1].parameter, "/team/arm");
    // An instance type no override names, with a requirements override on its own
    // template: which template launched it can't be told.
    g.details
        .instance_types
        .insert("i-mix0".into(), "c6i.large".into());
    g.details
        .overrides
        .push(shared::aws::autoscaling::Override {
            instance_type: None,
            template: Some(template("9")),
        });
    assert!(crate::templates::lanes(&g.details, &versions, &images, &g.running).is_err());
}

#[test]
fn a_mixed_group_with_a_literal_lane_is_judged_but_reported_not_rolled() {
    let arm_ami = "ami-0000000000armlit";
    let mut g = group("mix", &[Some(OLD), Some(arm_ami)]);
    mixed(&mut g, &["i-mix1"]);
    g.lanes = vec![Lane {
        template: template("1"),
        image: ImageRef::Ami {
            image_id: OLD.into(),
        },
        parameter: PARAM.into(),
        instances: vec!["i-mix0".into()],
    }];
    let plan = check(&observed(vec![g]), &config(), now());
    assert_eq!(outcomes(&plan), [("rollout", Some(Outcome::Skipped))]);
}

// Decisions that were made between reads in lib.rs.

fn details(name: &str, cluster: Option<&str>) -> GroupDetails {
    let mut d = group(name, &[Some(OLD)]).details;
    match cluster {
        Some(c) => d
            .group
            .tags
            .insert("ecs-autopilot:cluster".into(), c.into()),
        None => d.group.tags.remove("ecs-autopilot:cluster"),
    };
    d
}

#[test]
fn a_check_is_about_the_named_groups_or_those_that_may_follow_the_changed_parameter() {
    let plain = details("plain", Some("prod"));
    let mut other = details("other", Some("prod"));
    other
        .group
        .tags
        .insert(PARAMETER_TAG.into(), "/other".into());
    let mut by_arch = details("arch", Some("prod"));
    by_arch
        .group
        .tags
        .insert(format!("{PARAMETER_TAG}:arm64"), "/other".into());
    let managed = vec![plain, other, by_arch];
    let names =
        |t: Vec<&GroupDetails>| -> Vec<String> { t.iter().map(|g| g.group.name.clone()).collect() };
    assert_eq!(
        names(targets(&managed, None, None, &config())),
        ["plain", "other", "arch"]
    );
    // The per-architecture group may follow it: decided once its images are read.
    assert_eq!(
        names(targets(&managed, Some(PARAM), None, &config())),
        ["plain", "arch"]
    );
    let only = BTreeSet::from(["other".to_string()]);
    assert_eq!(
        names(targets(&managed, None, Some(&only), &config())),
        ["other"]
    );
    assert!(targets(&managed, Some("/nobody"), Some(&only), &config()).is_empty());
}

#[test]
fn only_the_opted_in_clusters_of_the_targets_are_read_and_the_budget_spans_every_opted_in_group() {
    let a = details("a", Some("prod"));
    let b = details("b", Some("dev"));
    let c = details("c", Some("prod"));
    let managed = BTreeSet::from(["prod".to_string()]);
    assert_eq!(clusters_to_read(&[&a, &b, &c], &managed), ["prod"]);
    assert_eq!(
        fleet(&[a, b, details("untagged", None)]),
        [
            ("a".to_string(), "prod".to_string()),
            ("b".to_string(), "dev".to_string())
        ]
    );
}

#[test]
fn a_groups_in_service_instances_run_what_their_container_instances_report() {
    let mut d = details("web", Some("prod"));
    d.group.instances[0].instance_id = "i-1".into();
    let mut pending = d.group.instances[0].clone();
    pending.instance_id = "i-2".into();
    pending.lifecycle_state = "Pending".into();
    let mut unregistered = d.group.instances[0].clone();
    unregistered.instance_id = "i-3".into();
    d.group.instances.extend([pending, unregistered]);
    let ami_of = BTreeMap::from([
        ("i-1".to_string(), Some(OLD.to_string())),
        ("i-2".to_string(), Some(OLD.to_string())),
    ]);
    let managed = BTreeSet::from(["prod".to_string()]);
    let [state] = &group_states(&[&d], &managed, &ami_of, &config())[..] else {
        panic!()
    };
    assert_eq!(
        state.running,
        BTreeMap::from([
            ("i-1".to_string(), Some(OLD.to_string())),
            ("i-3".to_string(), None)
        ])
    );
    assert!(state.cluster_managed);
    assert_eq!(
        (state.cluster.as_str(), state.parameter.as_str()),
        ("prod", PARAM)
    );
    let none = group_states(&[&d], &BTreeSet::new(), &ami_of, &config());
    assert!(!none[0].cluster_managed);
}

#[test]
fn a_group_without_a_parameter_takes_the_one_its_images_name_or_is_reported() {
    let mut c = config();
    c.default_parameter = String::new();
    let mut fits = group("fits", &[Some(OLD)]);
    let mut unknown = group("unknown", &[Some(OLD), Some(OTHER)]);
    let mut tagged = group("tagged", &[Some(OLD)]);
    tagged
        .details
        .group
        .tags
        .insert(PARAMETER_TAG.into(), PARAM.into());
    let mut foreign = group("foreign", &[Some(NEW)]);
    foreign.cluster_managed = false;
    for g in [&mut fits, &mut unknown, &mut tagged, &mut foreign] {
        g.parameter = parameter_of(&g.details, &c);
    }
    let mut groups = vec![fits, unknown, tagged, foreign];
    // Only the opted-in groups without a tag or default need their images.
    assert_eq!(
        images_to_choose(&groups, &BTreeMap::new(), &c),
        [OLD.to_string(), OTHER.to_string()]
    );
    let images = BTreeMap::from([(OLD.to_string(), al2023(OLD, "x86_64"))]);
    choose_parameters(&mut groups, &BTreeMap::new(), &images, &c);
    assert_eq!(
        groups[0].parameter,
        "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    );
    assert_eq!(groups[1].parameter, "");
    assert_eq!(
        groups[1].no_parameter,
        Some(NoParameter::Untagged(NoFit::Undescribed {
            missing: 1,
            total: 2
        }))
    );
    assert_eq!(groups[2].parameter, PARAM);
    assert!(groups[2].no_parameter.is_none());
    // Only the opted-in groups with a parameter have it read.
    assert_eq!(
        parameters_to_read(&groups),
        [
            "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id".to_string(),
            PARAM.to_string()
        ]
    );
    keep_following(&mut groups, Some(PARAM));
    assert_eq!(
        groups.iter().map(GroupState::name).collect::<Vec<_>>(),
        ["tagged"]
    );
}

#[test]
fn lane_templates_are_read_for_opted_in_lane_groups_and_their_literal_amis_described() {
    let mut lanes_group = group("mix", &[Some(NEW), Some(OLD)]);
    mixed(&mut lanes_group, &["i-mix1"]);
    let mut foreign = lanes_group.clone();
    foreign.details.group.name = "foreign".into();
    foreign.cluster_managed = false;
    let groups = vec![lanes_group, foreign, group("plain", &[Some(OLD)])];
    let reads = lane_reads(&groups);
    assert_eq!(
        reads
            .iter()
            .map(|(g, t)| (g.as_str(), crate::templates::lane_key(t)))
            .collect::<Vec<_>>(),
        [
            ("mix", "lt-1@1".to_string()),
            ("mix", "lt-arm@$Latest".to_string())
        ]
    );
    let versions = BTreeMap::from([(
        "mix".to_string(),
        lane_versions(
            resolve(PARAM),
            ImageRef::Ami {
                image_id: OTHER.into(),
            },
        ),
    )]);
    // With the default parameter set, only the lane group's images are described.
    assert_eq!(
        images_to_choose(&groups, &versions, &config()),
        [NEW.to_string(), OTHER.to_string(), OLD.to_string()]
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}

fn fleet_of(o: &Observed) -> Vec<(String, String)> {
    o.groups
        .iter()
        .map(|g| (g.name().to_string(), g.cluster.clone()))
        .chain([("elsewhere".to_string(), "not-opted-in".to_string())])
        .collect()
}

#[test]
fn a_check_reads_images_then_refreshes_then_templates_in_drift_order_until_the_slots_fill() {
    let mut o = observed(vec![group("b", &[Some(OLD)]), group("a", &[Some(OLD)])]);
    o.fleet = fleet_of(&o);
    o.images.clear();
    let templates = std::mem::take(&mut o.templates);
    let Next::Read(read) = next(&o, &config(), now()) else {
        panic!()
    };
    assert_eq!(read, Read::Images(vec![NEW.to_string(), OLD.to_string()]));
    o.absorb(Found::Images(BTreeMap::from([(
        NEW.to_string(),
        al2023(NEW, "x86_64"),
    )])));
    // An image that can't be described is not asked for again.
    let Next::Read(read) = next(&o, &config(), now()) else {
        panic!()
    };
    assert_eq!(read, Read::Refreshes(vec!["b".into(), "a".into()]));
    o.absorb(Found::Images(BTreeMap::from([(
        OLD.to_string(),
        al2023(OLD, "x86_64"),
    )])));
    o.absorb(Found::Refreshes(vec![
        ("a".into(), vec![]),
        ("b".into(), vec![]),
    ]));
    assert_eq!(
        o.looked,
        crate::observe::Looked {
            images: true,
            refreshes: true
        }
    );
    let Next::Read(read) = next(&o, &config(), now()) else {
        panic!()
    };
    assert_eq!(
        read,
        Read::Templates {
            group: "a".into(),
            template: template("1")
        }
    );
    o.absorb(Found::Templates(
        "a".into(),
        Box::new(templates["a"].clone()),
    ));
    // One slot, filled by a: b's template is never read.
    let Next::Plan(plan) = next(&o, &config(), now()) else {
        panic!()
    };
    assert_eq!(
        outcomes(&plan),
        [("rollout", None), ("rollout", Some(Outcome::Skipped))]
    );
}

#[test]
fn a_group_whose_template_does_not_allow_a_rollout_leaves_its_slot_to_the_next() {
    let mut o = observed(vec![group("a", &[Some(OLD)]), group("b", &[Some(OLD)])]);
    o.fleet = fleet_of(&o);
    o.looked.refreshes = true;
    o.templates.remove("b");
    o.templates.get_mut("a").unwrap().current = None;
    let Next::Read(Read::Templates { group, .. }) = next(&o, &config(), now()) else {
        panic!()
    };
    assert_eq!(group, "b");
}

#[test]
fn nothing_more_is_read_when_nothing_may_roll() {
    let mut o = observed(vec![group("a", &[Some(OLD)])]);
    o.images.clear();
    let closed = bounded("Sat 00:00-01:00");
    let Next::Plan(plan) = next(&o, &closed, now()) else {
        panic!()
    };
    assert_eq!(outcomes(&plan), [("rollout", Some(Outcome::Skipped))]);
    o.groups[0].running.insert("i-a0".into(), Some(NEW.into()));
    assert!(matches!(next(&o, &config(), now()), Next::Plan(p) if p.is_empty()));
}

#[test]
fn the_check_says_why_each_group_is_not_rolled_as_data() {
    let mut paused = group("paused", &[Some(OLD)]);
    paused
        .details
        .group
        .tags
        .insert(ROLLOUT_TAG.into(), "paused".into());
    let mut foreign = group("foreign", &[Some(OLD)]);
    foreign.cluster_managed = false;
    let mut o = observed(vec![paused, foreign, group("busy", &[Some(OLD)])]);
    let busy = refresh("busy", "InProgress", 5);
    o.refreshes.insert("busy".into(), vec![busy.clone()]);
    let decided = judge(&o, &config(), now());
    let reasons: Vec<(&str, &Reason)> = decided
        .findings
        .iter()
        .map(|f| (f.group.name(), &f.reason))
        .collect();
    assert!(matches!(
        reasons[0],
        (
            "paused",
            Reason::Drifted {
                why: NotRolled::Paused,
                ..
            }
        )
    ));
    assert_eq!(reasons[1], ("foreign", &Reason::NotOptedIn));
    assert!(
        matches!(reasons[2], ("busy", Reason::Drifted { why: NotRolled::Refreshing(r), .. }) if **r == busy)
    );
    assert!(decided.rolls.is_empty());
    assert!(decided.waiting.is_none());
    assert_eq!(
        reasons.iter().map(|(_, r)| r.outcome()).collect::<Vec<_>>(),
        [Outcome::Skipped, Outcome::Skipped, Outcome::AlreadyDone]
    );
}

#[test]
fn the_guard_looks_only_with_a_window_halts_what_it_found_and_resumes_only_rollouts() {
    assert!(!guards(&config()));
    let closing = bounded("Tue 02:00-03:20");
    assert!(guards(&closing));
    let mut mine = group("mine", &[Some(OLD)]).details;
    mine.group.tags.insert(REFRESH_TAG.into(), "r-mine".into());
    let found = vec![
        ("mine".to_string(), Some(refresh("mine", "InProgress", 20))),
        ("gone".to_string(), Some(refresh("gone", "InProgress", 20))),
        ("mine".to_string(), None),
    ];
    let plan = halts(std::slice::from_ref(&mine), &found, &closing, now());
    assert!(matches!(&plan[..], [Step::Halt { group, .. }] if group == "mine"));
    let o = observed(vec![group("a", &[Some(OLD)]), group("b", &[Some(OLD)])]);
    let checked = check(&o, &config(), now());
    assert_eq!(checked.len(), 2);
    assert_eq!(outcomes(&resumes(checked)), [("rollout", None)]);
}

#[test]
fn an_outcome_is_ours_only_for_a_group_that_still_exists_and_names_a_cluster() {
    assert_eq!(outcome_scope(None).unwrap_err(), NotOurs::GroupGone);
    let untagged = details("web", None);
    assert_eq!(
        outcome_scope(Some(&untagged)).unwrap_err(),
        NotOurs::UnmanagedGroup
    );
    let tagged = details("web", Some("prod"));
    assert_eq!(outcome_scope(Some(&tagged)).unwrap().1, "prod");
    assert_eq!(ended_outcome(Phase::Succeeded), Outcome::Done);
    assert_eq!(ended_outcome(Phase::RollbackFailed), Outcome::Warning);
}
