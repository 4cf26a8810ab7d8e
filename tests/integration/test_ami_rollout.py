"""ami-rollout end to end: the real binary (target/debug/ami-rollout) under the Lambda
Runtime API emulator, against moto. Each test seeds its own groups in a region of its
own (a scheduled check sees every managed group of the region) and reads notifications
from an SQS queue subscribed to the topic.

The seeded groups launch from a launch template with a literal AMI at `$Latest`, and
moto reports each container instance's `ecs.ami-id` from its EC2 instance's image.
"""

from __future__ import annotations

import os
import time

import pytest

from harness import fleet as fl
from harness.ami_rollout_helpers import (
    PARAMETER_TAG, RECOMMENDED, ROLLOUT_TAG, complete_refresh, fresh_region, publish_recommended, refreshes,
    running_amis, set_group_tag, set_template_image, team_parameter, template_versions,
)
from harness.events import (
    ami, ami_release_sns_event, closed_days_ahead, parameter_event, refresh_event, scheduled_event,
    window_around_now, window_guard_event,
)
from harness.aws_proxy import AwsProxy
from harness.functions import FunctionUnderTest
from harness.notifications import Inbox

# A window that is closed now: a four-hour slot on the day after tomorrow.
closed_window = closed_days_ahead


@pytest.fixture
def region(emulator):
    return fresh_region(emulator.url)


@pytest.fixture
def inbox(emulator, region):
    return Inbox.create(emulator, region=region)


@pytest.fixture
def start(start_function, inbox, region):
    """start(**env) -> FunctionUnderTest: a process in the test's region, on its inbox."""
    return lambda **env: start_function("ami-rollout", region=region, inbox=inbox, **env)


@pytest.fixture
def run(start):
    """run(event, **env) -> InvokeResult: one invocation of a fresh process."""
    return lambda event, **env: start(**env).invoke(event, timeout=120)


@pytest.fixture
def drifted(make_fleet, emulator, region):
    """drifted(instances=2, **seed) -> (fleet, parameter, new_ami): a managed group on
    an old AMI whose team parameter now names a new one."""

    def make(instances=2, **seed):
        old, new = ami("old"), ami("new")
        param = team_parameter(emulator, region, new)
        tags = {PARAMETER_TAG: param, **seed.pop("extra_group_tags", {})}
        fleet = make_fleet(region=region, instances=instances, ami=old, services=(), hooks=False,
                           extra_group_tags=tags, **seed)
        return fleet, param, new

    return make


def of_group(notes, fleet):
    """The notifications about one group (a region's other groups may be in view)."""
    return [n for n in notes if n.group == fleet.asg_name]


def only(notes, action):
    found = [n for n in notes if n.action == action]
    assert len(found) == 1, [(n.action, n.title) for n in notes]
    return found[0]


def test_a_group_on_its_parameters_ami_is_not_rolled_and_nobody_is_told(make_fleet, emulator, region, run, inbox):
    current = ami("current")
    param = team_parameter(emulator, region, current)
    fleet = make_fleet(region=region, instances=2, ami=current, services=(), hooks=False,
                       extra_group_tags={PARAMETER_TAG: param})
    result = run(scheduled_event(region))
    assert result.ok, result.error
    assert refreshes(emulator, region, fleet.asg_name) == []
    assert inbox.read() == []
    checked = [j for j in result.json_logs if j.get("message") == "fleet checked"]
    assert checked and checked[0]["drifted"] == 0 and checked[0]["instances"] == 2


def test_a_literal_ami_template_gets_a_new_version_and_a_refresh_to_it(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted(instances=3)
    result = run(parameter_event(region, param))
    assert result.ok, result.error
    versions = template_versions(fleet)
    assert max(int(v["VersionNumber"]) for v in versions) == 2
    newest = max(versions, key=lambda v: int(v["VersionNumber"]))
    assert newest["LaunchTemplateData"]["ImageId"] == new
    [refresh] = refreshes(emulator, region, fleet.asg_name)
    assert refresh["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "$Latest"
    prefs = refresh["Preferences"]
    # Neither is sent by default: AWS applies the group's instance maintenance policy.
    assert "MinHealthyPercentage" not in prefs and "MaxHealthyPercentage" not in prefs
    assert str(prefs["SkipMatching"]).lower() == "true"
    # The group follows $Latest, which AWS cannot roll back to.
    assert str(prefs["AutoRollback"]).lower() == "false"
    note = only(inbox.read(), "rollout")
    assert note.outcome == "done" and note.group == fleet.asg_name
    assert note.details["target_ami"] == new and note.details["stale_instances"] == 3
    assert note.details["refresh_id"] == refresh["InstanceRefreshId"]


def test_a_pinned_template_version_is_refreshed_with_auto_rollback(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    fleet.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=fleet.asg_name,
        LaunchTemplate={"LaunchTemplateId": fleet.launch_template_id, "Version": "1"})
    assert run(parameter_event(region, param)).ok
    [refresh] = refreshes(emulator, region, fleet.asg_name)
    assert refresh["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "2"
    assert str(refresh["Preferences"]["AutoRollback"]).lower() == "true"


def test_a_resolve_ssm_template_is_refreshed_as_it_is(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    set_template_image(fleet, f"resolve:ssm:{param}")
    assert run(parameter_event(region, param)).ok
    [refresh] = refreshes(emulator, region, fleet.asg_name)
    assert "DesiredConfiguration" not in refresh
    assert str(refresh["Preferences"]["SkipMatching"]).lower() == "false"
    assert len(template_versions(fleet)) == 2  # no version created by the rollout
    assert only(inbox.read(), "rollout").details["mode"]["mode"] == "current"


def test_the_json_value_of_the_public_recommended_parameter_is_understood(make_fleet, emulator, region, run, inbox):
    old, new = ami("old"), ami("new")
    fleet = make_fleet(region=region, instances=2, ami=old, services=(), hooks=False,
                       extra_group_tags={PARAMETER_TAG: RECOMMENDED})
    publish_recommended(emulator, region, new)
    assert run(ami_release_sns_event()).ok
    note = only(inbox.read(), "rollout")
    assert note.details["target_ami"] == new
    assert len(refreshes(emulator, region, fleet.asg_name)) == 1


def test_the_default_parameter_is_the_ecs_optimized_image_id(make_fleet, emulator, region, run, inbox):
    old, new = ami("old"), ami("new")
    fleet = make_fleet(region=region, instances=1, ami=old, services=(), hooks=False)
    publish_recommended(emulator, region, new)
    assert run(scheduled_event(region)).ok
    assert only(inbox.read(), "rollout").details["parameter"] == f"{RECOMMENDED}/image_id"
    assert len(refreshes(emulator, region, fleet.asg_name)) == 1


def test_a_refresh_already_in_progress_is_not_an_error(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    fleet.autoscaling.start_instance_refresh(AutoScalingGroupName=fleet.asg_name)
    result = run(parameter_event(region, param))
    assert result.ok, result.error
    assert len(refreshes(emulator, region, fleet.asg_name)) == 1
    note = only(inbox.read(), "rollout")
    assert note.outcome == "already_done"
    assert len(template_versions(fleet)) == 1


def test_a_duplicate_event_starts_nothing_twice(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    event = parameter_event(region, param)
    assert run(event).ok
    assert run(event).ok
    assert len(refreshes(emulator, region, fleet.asg_name)) == 1
    assert len(template_versions(fleet)) == 2
    outcomes = [n.outcome for n in inbox.read() if n.action == "rollout"]
    assert outcomes == ["done", "already_done"]


def test_the_budget_rolls_the_oldest_drift_first_and_lists_the_rest(drifted, emulator, region, run, inbox):
    first, _, _ = drifted()
    time.sleep(1.1)  # parameters modified a second apart: the first drifted first
    second, _, _ = drifted()
    result = run(scheduled_event(region), MAX_CONCURRENT_ROLLOUTS="1")
    assert result.ok, result.error
    assert len(refreshes(emulator, region, first.asg_name)) == 1
    assert refreshes(emulator, region, second.asg_name) == []
    notes = inbox.read()
    waiting = [n for n in notes if n.action == "rollout" and n.outcome == "skipped"]
    assert len(waiting) == 1 and waiting[0].details["waiting_for_budget"] == [second.asg_name]
    # The next check finds the budget still taken by the first group's refresh.
    assert run(scheduled_event(region), MAX_CONCURRENT_ROLLOUTS="1").ok
    assert refreshes(emulator, region, second.asg_name) == []
    assert [n.outcome for n in inbox.read() if n.action == "rollout"] == ["already_done", "skipped"]


def test_outside_the_window_drift_is_reported_but_not_rolled(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    assert run(scheduled_event(region), MAINTENANCE_WINDOW=closed_window()).ok
    assert refreshes(emulator, region, fleet.asg_name) == []
    assert len(template_versions(fleet)) == 1
    note = only(inbox.read(), "rollout")
    assert note.outcome == "skipped"
    assert note.details["waiting_for_window"] == [fleet.asg_name]
    assert "window_opens" in note.details


def test_a_paused_group_is_reported_not_rolled(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted(extra_group_tags={ROLLOUT_TAG: "paused"})
    assert run(parameter_event(region, param)).ok
    assert refreshes(emulator, region, fleet.asg_name) == []
    note = only(inbox.read(), "rollout")
    assert note.outcome == "skipped" and "paused" in note.title


def test_unmanaged_groups_and_clusters_are_never_touched(make_fleet, emulator, region, run, inbox):
    old, new = ami("old"), ami("new")
    param = team_parameter(emulator, region, new)
    untagged = make_fleet(region=region, instances=1, ami=old, services=(), hooks=False,
                          group_tagged=False, extra_group_tags={PARAMETER_TAG: param})
    foreign = make_fleet(region=region, instances=1, ami=old, services=(), hooks=False,
                         managed=False, extra_group_tags={PARAMETER_TAG: param})
    assert run(scheduled_event(region)).ok
    assert refreshes(emulator, region, untagged.asg_name) == []
    assert refreshes(emulator, region, foreign.asg_name) == []
    notes = inbox.read()
    assert [n.group for n in notes] == [foreign.asg_name]
    assert notes[0].action == "check" and "not opted in" in notes[0].title


def test_a_parameter_no_group_follows_is_ignored_quietly(drifted, emulator, region, run, inbox):
    fleet, _, _ = drifted()
    other = team_parameter(emulator, region, ami("x"))
    result = run(parameter_event(region, other))
    assert result.ok, result.error
    assert refreshes(emulator, region, fleet.asg_name) == []
    assert inbox.read() == []


def test_dry_run_changes_nothing_and_says_what_it_would_do(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    assert run(parameter_event(region, param), DRY_RUN="true").ok
    assert refreshes(emulator, region, fleet.asg_name) == []
    assert len(template_versions(fleet)) == 1
    note = only(inbox.read(), "rollout")
    assert note.outcome == "planned" and "[dry run]" in note.subject


def test_a_successful_refresh_is_reported_with_the_ami_the_group_now_runs(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    assert run(parameter_event(region, param)).ok
    [refresh] = refreshes(emulator, region, fleet.asg_name)
    complete_refresh(emulator, fleet)
    assert running_amis(fleet)[new] == 2
    inbox.read()
    assert run(refresh_event(region, fleet.asg_name, refresh["InstanceRefreshId"])).ok
    note = only(inbox.read(), "refresh-outcome")
    assert note.outcome == "done"
    assert note.details["running_amis"] == {new: 2}
    assert "2 of 2" in note.description
    # And the next check finds nothing to do.
    assert run(scheduled_event(region)).ok
    assert inbox.read() == []


def test_a_failed_refresh_is_reported_and_the_ami_is_not_retried(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    assert run(parameter_event(region, param)).ok
    [refresh] = refreshes(emulator, region, fleet.asg_name)
    complete_refresh(emulator, fleet, "Failed", reason="Instances failed to join the cluster")
    inbox.read()
    assert run(refresh_event(region, fleet.asg_name, refresh["InstanceRefreshId"], "failed")).ok
    note = only(inbox.read(), "refresh-outcome")
    assert note.outcome == "warning" and "failed" in note.title
    assert "failed to join" in note.description
    assert run(scheduled_event(region)).ok
    assert len(refreshes(emulator, region, fleet.asg_name)) == 1
    assert "Not retrying" in only(inbox.read(), "rollout").title


def test_a_malformed_event_fails_without_acting(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    bad = parameter_event(region, param)
    del bad["detail"]["name"]
    result = run(bad)
    assert not result.ok and result.error["errorType"] == "BadEvent"
    result = run({"Records": [{"EventSource": "aws:sns"}]})
    assert not result.ok and result.error["errorType"] == "BadEvent"
    assert refreshes(emulator, region, fleet.asg_name) == []


def test_a_bad_knob_fails_the_cold_start_naming_the_variable(start, region):
    with start(MAX_HEALTHY_PERCENTAGE="250") as fx:
        result = fx.invoke(scheduled_event(region), timeout=20)
        output = fx.fn.output()
    assert not result.ok
    assert "MAX_HEALTHY_PERCENTAGE" in output and "between 100 and 200" in output


# --------------------------------------------------------------------------
# issue 13: permissions AWS accepts
# --------------------------------------------------------------------------


def test_a_rollout_makes_only_calls_the_role_grants_with_what_aws_implies_for_them(drifted, emulator, region, start):
    """A literal-AMI rollout (new template version, refresh with a desired configuration)
    behind the recording proxy: every call, and what AWS also checks for it given its
    arguments (harness.iam.IMPLIED: ec2:RunInstances, iam:PassRole, ec2:CreateTags,
    ssm:GetParameters for a refresh to a launch template version), is granted."""
    from harness.iam import allowed_actions, implied_actions, is_allowed, required_actions
    fleet, param, new = drifted()
    with AwsProxy(emulator.url) as proxy:
        with start(endpoint=proxy.url) as fn:
            assert fn.invoke(parameter_event(region, param), timeout=120).ok
        calls = [(f"{c.service}:{c.operation}", c.params) for c in proxy.calls()]
    [refresh_call] = [p for c, p in calls if c == "autoscaling:StartInstanceRefresh"]
    assert implied_actions("autoscaling:StartInstanceRefresh", refresh_call) >= {"ec2:RunInstances", "iam:PassRole"}
    granted = allowed_actions("ami-rollout")
    missing = sorted(a for a in required_actions(calls) if not is_allowed(a, granted))
    assert not missing, f"AmiRolloutRole lacks {missing}"


# --------------------------------------------------------------------------
# issue 13: the group's own maintenance policy, alarms, bake time
# --------------------------------------------------------------------------


def test_by_default_a_refresh_carries_no_healthy_percentages_so_the_groups_policy_applies(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    fleet.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=fleet.asg_name,
        InstanceMaintenancePolicy={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 110})
    assert run(parameter_event(region, param)).ok
    [refresh] = refreshes(emulator, region, fleet.asg_name)
    assert "MinHealthyPercentage" not in refresh["Preferences"]
    assert "MaxHealthyPercentage" not in refresh["Preferences"]
    assert "maintenance policy" in only(inbox.read(), "rollout").description


def test_set_healthy_percentages_rollback_alarms_and_bake_time_reach_the_refresh(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    fleet.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=fleet.asg_name,
        LaunchTemplate={"LaunchTemplateId": fleet.launch_template_id, "Version": "1"})
    assert run(parameter_event(region, param), MIN_HEALTHY_PERCENTAGE="100", MAX_HEALTHY_PERCENTAGE="110",
               ROLLBACK_ALARMS="web-5xx, web-latency", BAKE_TIME_SECONDS="900").ok
    [refresh] = refreshes(emulator, region, fleet.asg_name)
    prefs = refresh["Preferences"]
    assert (int(prefs["MinHealthyPercentage"]), int(prefs["MaxHealthyPercentage"])) == (100, 110)
    assert prefs["AlarmSpecification"]["Alarms"] == ["web-5xx", "web-latency"]
    assert int(prefs["BakeTime"]) == 900
    # A numbered version with a desired configuration: AWS can roll back on the alarms.
    assert str(prefs["AutoRollback"]).lower() == "true"


# --------------------------------------------------------------------------
# issue 13: no endless refreshes
# --------------------------------------------------------------------------


def test_a_successful_refresh_that_left_drift_is_reported_and_not_started_again(drifted, emulator, region, run, inbox):
    fleet, param, new = drifted()
    protected = fleet.instances[0].ec2_instance_id
    fleet.autoscaling.set_instance_protection(
        InstanceIds=[protected], AutoScalingGroupName=fleet.asg_name, ProtectedFromScaleIn=True)
    assert run(parameter_event(region, param), SCALE_IN_PROTECTED_INSTANCES="Ignore").ok
    [refresh] = refreshes(emulator, region, fleet.asg_name)
    # AWS finished, but the protected host (Ignore) still runs the old AMI.
    fl.set_refresh_status(emulator.url, fleet.asg_name, "Successful", region=region, replace_instances=False)
    inbox.read()
    for _ in range(2):  # every later check: reported, never started again
        assert run(scheduled_event(region), SCALE_IN_PROTECTED_INSTANCES="Ignore").ok
        assert len(refreshes(emulator, region, fleet.asg_name)) == 1
        note = only(inbox.read(), "rollout")
        assert note.outcome == "warning"
        assert note.details["refresh_id"] == refresh["InstanceRefreshId"]
        assert protected in note.details["stale_instances"]
        assert "protected from scale in" in note.description and "Ignore" in note.description
    # A new AMI in the parameter is a new target: that one is rolled.
    time.sleep(1.1)
    newer = ami("newer")
    team_parameter(emulator, region, newer, name=param)
    assert run(parameter_event(region, param)).ok
    assert len(refreshes(emulator, region, fleet.asg_name)) == 2


# --------------------------------------------------------------------------
# issue 13 item 4: the window bounds the rollout, not only its start
# --------------------------------------------------------------------------

MARGIN = "1800"  # WINDOW_END_MARGIN_SECONDS in these tests: 30 minutes


def in_window(**extra: str) -> dict[str, str]:
    """A window open for three more hours."""
    return {"MAINTENANCE_WINDOW": window_around_now(60, 180), "WINDOW_END_MARGIN_SECONDS": MARGIN,
            "MAX_CONCURRENT_ROLLOUTS": "1000", **extra}


def closing(**extra: str) -> dict[str, str]:
    """A window that closes in 20 minutes: inside the 30-minute margin."""
    return {"MAINTENANCE_WINDOW": window_around_now(200, 20), "WINDOW_END_MARGIN_SECONDS": MARGIN,
            "MAX_CONCURRENT_ROLLOUTS": "1000", **extra}


def group_ids(fleet) -> set[str]:
    return set(fleet.group_instance_ids("InService"))


def halt_and_resume(emulator, region, run, inbox, fleet, new) -> tuple[dict, set[str]]:
    """The rollout's refresh replaces half the group, the window guard halts it at the
    close, and the guard resumes it in the next window. Returns the resumed refresh and
    the instances already replaced when it was halted."""
    [first] = refreshes(emulator, region, fleet.asg_name)
    before = group_ids(fleet)
    fl.set_refresh_status(emulator.url, fleet.asg_name, "InProgress", region=region, percentage=50, replace=2)
    fl.register_new_instances(fleet)
    replaced = group_ids(fleet) - before
    assert len(replaced) == 2 and running_amis(fleet)[new] == 2
    inbox.read()

    # The window is about to close: the guard halts the refresh ami-rollout started.
    assert run(window_guard_event(region), **closing()).ok
    [halted] = refreshes(emulator, region, fleet.asg_name)
    assert halted["Status"] == "Cancelling"
    note = only(inbox.read(), "window-halt")
    assert note.outcome == "done" and note.details["refresh_id"] == first["InstanceRefreshId"]
    assert "resumes_at" in note.details and "window_closes" in note.details
    # A second guard run finds nothing more to halt.
    assert run(window_guard_event(region), **closing()).ok
    assert inbox.read() == []
    # AWS finishes cancelling; the outcome event reports the halt and when it resumes.
    fl.set_refresh_status(emulator.url, fleet.asg_name, "Cancelled", region=region)
    assert run(refresh_event(region, fleet.asg_name, first["InstanceRefreshId"], "cancelled"), **closing()).ok
    note = only(inbox.read(), "refresh-outcome")
    assert note.outcome == "done" and "halted for the maintenance window" in note.title
    # Outside the window nothing is resumed.
    assert run(scheduled_event(region), MAINTENANCE_WINDOW=closed_window()).ok
    assert len(refreshes(emulator, region, fleet.asg_name)) == 1
    inbox.read()

    # The next window: the guard resumes it, skipping the instances already replaced.
    assert run(window_guard_event(region), **in_window()).ok
    resumed = refreshes(emulator, region, fleet.asg_name)[-1]
    assert resumed["InstanceRefreshId"] != first["InstanceRefreshId"]
    assert str(resumed["Preferences"]["SkipMatching"]).lower() == "true"
    assert resumed["InstancesToUpdate"] == len(before) - 2
    note = only(inbox.read(), "rollout")
    assert note.outcome == "done" and note.details["resumed_refresh_id"] == first["InstanceRefreshId"]
    assert "Resuming" in note.title
    return resumed, replaced


def test_a_refresh_is_halted_when_the_window_closes_and_resumed_in_the_next_without_replacing_twice(
        drifted, emulator, region, run, inbox):
    fleet, param, new = drifted(instances=4)
    # Too close to the window's end: nothing starts.
    assert run(scheduled_event(region), **closing()).ok
    assert refreshes(emulator, region, fleet.asg_name) == []
    assert only(inbox.read(), "rollout").details["waiting_for_window"] == [fleet.asg_name]
    assert run(scheduled_event(region), **in_window()).ok
    [first] = refreshes(emulator, region, fleet.asg_name)
    assert first["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "$Latest"
    resumed, replaced = halt_and_resume(emulator, region, run, inbox, fleet, new)
    assert resumed["DesiredConfiguration"] == first["DesiredConfiguration"]
    # The resumed refresh finishes: the instances replaced before the halt are still there.
    complete_refresh(emulator, fleet)
    assert replaced <= group_ids(fleet)
    assert running_amis(fleet) == {new: 4}


def test_a_resolve_ssm_group_in_a_bounded_window_resumes_without_replacing_twice(
        drifted, emulator, region, run, inbox):
    """AWS's skip matching compares launch template versions, and a resolve:ssm template
    doesn't change when its parameter does: in a bounded window ami-rollout refreshes
    such a group to a copy of its version (still resolve:ssm), so the instances the
    halted refresh launched carry that version and the resumed one skips them."""
    fleet, param, new = drifted(instances=4)
    set_template_image(fleet, f"resolve:ssm:{param}")  # version 2; the group follows $Latest
    assert run(scheduled_event(region), **in_window()).ok
    [first] = refreshes(emulator, region, fleet.asg_name)
    versions = template_versions(fleet)
    assert len(versions) == 3
    newest = max(versions, key=lambda v: int(v["VersionNumber"]))
    assert newest["LaunchTemplateData"]["ImageId"] == f"resolve:ssm:{param}"
    assert str(first["Preferences"]["SkipMatching"]).lower() == "true"
    assert str(first["Preferences"]["AutoRollback"]).lower() == "false"
    resumed, replaced = halt_and_resume(emulator, region, run, inbox, fleet, new)
    assert len(template_versions(fleet)) == 3  # the resume made no other copy
    complete_refresh(emulator, fleet)
    assert replaced <= group_ids(fleet)
    assert running_amis(fleet) == {new: 4}


def test_without_a_window_the_guard_makes_no_calls_and_refreshes_of_others_are_never_halted(
        drifted, emulator, region, start, inbox, run):
    fleet, param, new = drifted()
    # Someone else's refresh: not marked as ami-rollout's, never halted.
    fleet.autoscaling.start_instance_refresh(AutoScalingGroupName=fleet.asg_name)
    assert run(window_guard_event(region), **closing()).ok
    assert refreshes(emulator, region, fleet.asg_name)[0]["Status"] == "Pending"
    assert inbox.read() == []
    with AwsProxy(emulator.url) as proxy, start(endpoint=proxy.url) as fn:
        assert fn.invoke(window_guard_event(region), timeout=60).ok
    assert proxy.calls() == []


# --------------------------------------------------------------------------
# issue 13 item 2: mixed instances groups judged per override template
# --------------------------------------------------------------------------


def mixed_fleet(make_fleet, emulator, region, *, arm_image: str | None = None, **seed):
    """A mixed instances group of two instances: m5.large from the group's template
    (resolve:ssm of an x86_64 parameter) and m7g.large from an override template (by
    default resolve:ssm of an arm64 parameter; `arm_image`: that literal AMI)."""
    x86, arm = ami("x86"), ami("arm")
    fl.register_image(emulator.url, arm, region, architecture="arm64")
    x86_param, arm_param = team_parameter(emulator, region, x86), team_parameter(emulator, region, arm)
    fleet = make_fleet(region=region, instances=0, ami=x86, services=(), hooks=False, max_size=4, **seed)
    set_template_image(fleet, f"resolve:ssm:{x86_param}")
    arm_template = fleet.ec2.create_launch_template(
        LaunchTemplateName=f"{fleet.cluster_name}-arm64",
        LaunchTemplateData={"ImageId": arm_image or f"resolve:ssm:{arm_param}", "InstanceType": "m7g.large"},
    )["LaunchTemplate"]
    fleet.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=fleet.asg_name, MinSize=2, MaxSize=4, DesiredCapacity=2,
        MixedInstancesPolicy={"LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": fleet.launch_template_id, "Version": "$Latest"},
            "Overrides": [
                {"InstanceType": "m5.large"},
                {"InstanceType": "m7g.large", "LaunchTemplateSpecification": {
                    "LaunchTemplateId": arm_template["LaunchTemplateId"], "Version": "$Latest"}},
            ]}})
    fl.register_new_instances(fleet)
    assert sorted(running_amis(fleet)) == sorted([x86, arm if arm_image is None else arm_image])
    return fleet, x86_param, arm_param, arm_template


def test_a_mixed_group_whose_lanes_match_their_parameters_is_not_rolled_and_holds_no_slot(
        make_fleet, drifted, emulator, region, run, inbox):
    fleet, *_ = mixed_fleet(make_fleet, emulator, region)
    other, _, _ = drifted()
    # One free slot (other tests' refreshes in this region hold theirs). The mixed
    # group's parameters are older: had it drifted, it would have taken the slot.
    active = [r for r in fl.instance_refreshes(emulator.url, region)
              if r["Status"] in ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")]
    assert run(scheduled_event(region), MAX_CONCURRENT_ROLLOUTS=str(len(active) + 1)).ok
    assert refreshes(emulator, region, fleet.asg_name) == []
    assert of_group(inbox.read(), fleet) == []
    # The fleet's single slot went to the drifted group.
    assert len(refreshes(emulator, region, other.asg_name)) == 1


def test_drift_on_the_arm64_override_template_rolls_the_mixed_group(make_fleet, emulator, region, run, inbox):
    fleet, x86_param, arm_param, _ = mixed_fleet(make_fleet, emulator, region)
    newer_arm = ami("newer-arm")
    fl.register_image(emulator.url, newer_arm, region, architecture="arm64")
    time.sleep(1.1)
    team_parameter(emulator, region, newer_arm, name=arm_param)
    assert run(parameter_event(region, arm_param), MAX_CONCURRENT_ROLLOUTS="1000").ok
    [refresh] = refreshes(emulator, region, fleet.asg_name)
    assert "DesiredConfiguration" not in refresh  # each lane resolves its own parameter
    note = only(of_group(inbox.read(), fleet), "rollout")
    assert note.outcome == "done" and note.details["stale_instances"] == 1
    assert newer_arm in note.description and arm_param in note.description
    assert [l["parameter"] for l in note.details["lanes"]] == [x86_param, arm_param]


def test_a_mixed_group_that_cannot_be_judged_is_reported_not_rolled(make_fleet, emulator, region, run, inbox):
    arm_literal = ami("arm-literal")
    fl.register_image(emulator.url, arm_literal, region, architecture="arm64")
    fleet, *_ = mixed_fleet(make_fleet, emulator, region, arm_image=arm_literal)
    for _ in range(2):
        assert run(scheduled_event(region)).ok
        assert refreshes(emulator, region, fleet.asg_name) == []
        note = only(of_group(inbox.read(), fleet), "check")
        assert note.outcome == "skipped" and "no AMI parameter fits" in note.title
        assert f"{PARAMETER_TAG}:arm64" in note.description and arm_literal in note.description


def test_a_literal_arm64_override_follows_the_per_architecture_tag(make_fleet, emulator, region, run, inbox):
    arm_literal = ami("arm-literal")
    fl.register_image(emulator.url, arm_literal, region, architecture="arm64")
    newer_arm = ami("newer-arm")
    fl.register_image(emulator.url, newer_arm, region, architecture="arm64")
    tagged = team_parameter(emulator, region, arm_literal)
    fleet, *_ = mixed_fleet(make_fleet, emulator, region, arm_image=arm_literal,
                            extra_group_tags={f"{PARAMETER_TAG}:arm64": tagged})
    assert run(scheduled_event(region), MAX_CONCURRENT_ROLLOUTS="1000").ok
    assert of_group(inbox.read(), fleet) == []  # judged: both lanes on their AMI
    time.sleep(1.1)
    team_parameter(emulator, region, newer_arm, name=tagged)
    assert run(scheduled_event(region), MAX_CONCURRENT_ROLLOUTS="1000").ok
    # Judged and drifted, but a literal AMI in a mixed policy is not rewritten: reported.
    assert refreshes(emulator, region, fleet.asg_name) == []
    note = only(of_group(inbox.read(), fleet), "rollout")
    assert note.outcome == "skipped" and "literal AMI" in note.description


# --------------------------------------------------------------------------
# issue 19 item 1: a group is rolled only to an image it can run
# --------------------------------------------------------------------------


@pytest.mark.parametrize("label, image, instances, why", [
    ("arm", {"architecture": "arm64"}, 2, "architecture `arm64`"),
    ("br", {"name": "bottlerocket-aws-ecs-2-x86_64-v1.20.3-5d9ac849"}, 1, "family"),
], ids=["another_architecture", "another_ecs_family"])
def test_an_image_the_group_cannot_run_is_never_rolled_to(make_fleet, emulator, region, run, inbox, label, image,
                                                          instances, why):
    old, new = ami("old"), ami(label)
    fl.register_image(emulator.url, new, region, **image)
    param = team_parameter(emulator, region, new)
    fleet = make_fleet(region=region, instances=instances, ami=old, services=(), hooks=False,
                       extra_group_tags={PARAMETER_TAG: param})
    assert run(parameter_event(region, param)).ok
    assert refreshes(emulator, region, fleet.asg_name) == []
    assert len(template_versions(fleet)) == 1
    note = only(of_group(inbox.read(), fleet), "rollout")
    assert note.outcome == "skipped" and why in note.description


def test_an_image_that_cannot_be_described_is_not_rolled_to(make_fleet, emulator, region, run, inbox):
    old, unknown = ami("old"), ami("unknown")
    param = f"/team/{unknown}/ami"
    emulator.client("ssm", region).put_parameter(Name=param, Value=unknown, Type="String")  # never registered
    fleet = make_fleet(region=region, instances=1, ami=old, services=(), hooks=False,
                       extra_group_tags={PARAMETER_TAG: param})
    assert run(parameter_event(region, param)).ok
    assert refreshes(emulator, region, fleet.asg_name) == []
    assert "cannot be described" in only(of_group(inbox.read(), fleet), "rollout").description


def test_an_untagged_graviton_group_follows_the_arm64_parameter_of_its_family(make_fleet, emulator, region, run, inbox):
    old_arm, new_arm, new_x86 = ami("old-arm"), ami("new-arm"), ami("new-x86")
    fl.register_image(emulator.url, old_arm, region, architecture="arm64")
    fl.register_image(emulator.url, new_arm, region, architecture="arm64")
    arm_parameter = "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
    fl.put_ssm_parameter(emulator.url, arm_parameter, new_arm, region)
    publish_recommended(emulator, region, new_x86)
    fleet = make_fleet(region=region, instances=2, ami=old_arm, services=(), hooks=False)
    assert run(scheduled_event(region), MAX_CONCURRENT_ROLLOUTS="1000").ok
    assert len(refreshes(emulator, region, fleet.asg_name)) == 1
    newest = max(template_versions(fleet), key=lambda v: int(v["VersionNumber"]))
    assert newest["LaunchTemplateData"]["ImageId"] == new_arm
    assert only(of_group(inbox.read(), fleet), "rollout").details["parameter"] == arm_parameter


def test_a_per_architecture_tag_wins_over_the_plain_tag(make_fleet, emulator, region, run, inbox):
    old_arm, new_arm, new_x86 = ami("old-arm"), ami("new-arm"), ami("new-x86")
    fl.register_image(emulator.url, old_arm, region, architecture="arm64")
    fl.register_image(emulator.url, new_arm, region, architecture="arm64")
    arm_param, x86_param = team_parameter(emulator, region, new_arm), team_parameter(emulator, region, new_x86)
    fleet = make_fleet(region=region, instances=1, ami=old_arm, services=(), hooks=False,
                       extra_group_tags={PARAMETER_TAG: x86_param, f"{PARAMETER_TAG}:arm64": arm_param})
    assert run(parameter_event(region, arm_param), MAX_CONCURRENT_ROLLOUTS="1000").ok
    assert len(refreshes(emulator, region, fleet.asg_name)) == 1
    assert only(of_group(inbox.read(), fleet), "rollout").details["target_ami"] == new_arm


def test_an_untagged_group_on_its_own_image_is_report_only(make_fleet, emulator, region, run, inbox):
    golden, new = ami("golden"), ami("new")
    fl.register_image(emulator.url, golden, region, name="team-golden-2024-07", owner_alias="")
    publish_recommended(emulator, region, new)
    fleet = make_fleet(region=region, instances=1, ami=golden, services=(), hooks=False)
    assert run(scheduled_event(region), MAX_CONCURRENT_ROLLOUTS="1000").ok
    assert refreshes(emulator, region, fleet.asg_name) == []
    note = only(of_group(inbox.read(), fleet), "check")
    assert note.outcome == "skipped" and "team-golden-2024-07" in note.description
    assert "no AMI parameter fits" in note.title


# --------------------------------------------------------------------------
# issue 18 item 4: refreshes are read only where they can hold a slot
# --------------------------------------------------------------------------


def test_groups_of_clusters_that_never_opted_in_cost_no_refresh_reads(make_fleet, drifted, emulator, region, start):
    def refresh_reads() -> int:
        with AwsProxy(emulator.url) as proxy, start(endpoint=proxy.url, DRY_RUN="true") as fn:
            assert fn.invoke(scheduled_event(region), timeout=120).ok
        return proxy.counts()["autoscaling:DescribeInstanceRefreshes"]

    drifted()
    before = refresh_reads()
    assert before >= 1  # the drifted group's own refreshes (and any other opted-in group's)
    for _ in range(3):
        make_fleet(region=region, instances=1, ami=ami("x"), services=(), hooks=False, managed=False)
    assert refresh_reads() == before


SCALE = os.environ.get("AMI_ROLLOUT_SCALE", "20x10")


def test_a_fleet_check_uses_batched_calls(make_fleet, emulator):
    """One scheduled check over GROUPS x INSTANCES (AMI_ROLLOUT_SCALE, default 20x10;
    the issue's figure is 200x100), every group drifted, budget 1: counts the API calls."""
    # A region no other test here uses: the counts are this fleet's alone.
    region = "ap-southeast-7"
    inbox = Inbox.create(emulator, region=region)

    groups, per_group = (int(n) for n in SCALE.split("x"))
    old, new = ami("old"), ami("new")
    param = team_parameter(emulator, region, new)
    seeded = [
        make_fleet(region=region, instances=per_group, ami=old, services=(), hooks=False,
                   max_size=per_group, extra_group_tags={PARAMETER_TAG: param})
        for _ in range(groups)
    ]
    with AwsProxy(emulator.url) as proxy:
        with FunctionUnderTest.start(emulator, "ami-rollout", region=region, inbox=inbox, endpoint=proxy.url) as fn:
            started = time.monotonic()
            result = fn.invoke(scheduled_event(region), timeout=300)
            seconds = time.monotonic() - started
    assert result.ok, result.error
    print(f"\nami-rollout fleet check {groups}x{per_group}: {seconds:.1f} s, {len(proxy.calls())} API calls")
    for op, n in sorted(proxy.counts().items()):
        print(f"  {op}: {n}")
    calls = proxy.counts()
    # Per group: a container-instance list and describe, one refresh read; per check:
    # one DescribeImages for the target and the images it replaces.
    assert calls["ec2:DescribeImages"] == 1
    assert calls["autoscaling:DescribeInstanceRefreshes"] == groups
    assert calls["autoscaling:DescribeAutoScalingGroups"] <= groups // 100 + 1
    assert calls["ssm:GetParameters"] == 1
    assert calls["ecs:DescribeContainerInstances"] == groups * -(-per_group // 100)
    assert calls["autoscaling:StartInstanceRefresh"] == 1
    # The started refresh is marked as ami-rollout's (for the window guard), before and
    # after the start: per started refresh, not per group.
    assert calls["autoscaling:CreateOrUpdateTags"] == 2
    # Templates are read in drift order only until the budget is filled.
    assert calls["ec2:DescribeLaunchTemplateVersions"] == 1
    assert sum(len(refreshes(emulator, region, f.asg_name)) for f in seeded) == 1
    assert seconds < 60
