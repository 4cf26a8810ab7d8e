"""The operator CLI end to end: the real binary (target/debug/ecs-autopilot) against the
emulator. Each test seeds its fleet in a region of its own, so `status` and `plan` see
only what the test made. The CLI only reads: every test checks it changed nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from harness import fleet as fl
from harness.ami_rollout_helpers import PARAMETER_TAG, ROLLOUT_TAG, fresh_region, refreshes, team_parameter
from harness.events import ami

QUARANTINE_TAG = "ecs-autopilot:quarantine"
SCHEDULED_TAG = "ecs-autopilot:retirement-scheduled"


@pytest.fixture
def cli(function_binary, emulator):
    binary = function_binary("ecs-autopilot")

    def run(*args: str, env: dict[str, str] | None = None, **extra: str) -> subprocess.CompletedProcess:
        environ = env if env is not None else emulator.env(**extra)
        environ = {"PATH": os.environ.get("PATH", ""), **environ}
        return subprocess.run([str(binary), *args], env=environ, capture_output=True, text=True, timeout=120)

    return run


@pytest.fixture
def region(emulator):
    return fresh_region(emulator.url)


def closed_window() -> str:
    day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][(time.gmtime().tm_wday + 2) % 7]
    return f"{day} 02:00-06:00"  # longer than WINDOW_END_MARGIN_SECONDS (2 h 20 min)


def drifted(emulator, make_fleet, region, instances=2, **seed):
    old, new = ami("old"), ami("new")
    param = team_parameter(emulator, region, new)
    tags = {PARAMETER_TAG: param, **seed.pop("extra_group_tags", {})}
    fleet = make_fleet(region=region, instances=instances, ami=old, services=(), extra_group_tags=tags, **seed)
    return fleet, param, old, new


def group_of(doc, fleet):
    return next(g for g in doc["groups"] if g["name"] == fleet.asg_name)


def test_status_shows_drift_refresh_holds_quarantine_retirements_and_pauses(emulator, make_fleet, region, cli):
    busy, param, old, new = drifted(emulator, make_fleet, region, instances=3,
                                    extra_group_tags={SCHEDULED_TAG: "00aa11bb22cc33dd 44ee55ff66778899"})
    # A refresh a fifth done, its checkpoints at 50 and 100 %.
    busy.autoscaling.start_instance_refresh(
        AutoScalingGroupName=busy.asg_name, Preferences={"CheckpointPercentages": [50, 100]})
    fl.set_refresh_status(emulator.url, busy.asg_name, "InProgress", region=region, percentage=20)
    # One instance held by the terminate hook, another quarantined.
    held, quarantined = busy.instances[0].ec2_instance_id, busy.instances[1].ec2_instance_id
    fl.create_lifecycle_action(emulator.url, region=region, group=busy.asg_name, hook=busy.terminate_hook,
                               transition="terminate", instance_id=held)
    busy.ec2.create_tags(Resources=[quarantined], Tags=[
        {"Key": QUARANTINE_TAG, "Value": "finding-123"},
        {"Key": "ecs-autopilot:quarantine-type", "Value": "Execution:Runtime/ReverseShell"}])
    # A second group on its parameter's AMI, rollouts paused.
    current = ami("current")
    calm = make_fleet(region=region, instances=1, ami=current, services=(), extra_group_tags={
        PARAMETER_TAG: team_parameter(emulator, region, current), ROLLOUT_TAG: "paused"})
    before = [r["Status"] for r in refreshes(emulator, region, busy.asg_name)]

    out = cli("status", "--json", "--region", region)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["region"] == region
    b = group_of(doc, busy)
    assert (b["cluster"], b["cluster_managed"], b["parameter"], b["target_ami"]) == (busy.cluster_name, True, param, new)
    assert b["instances"] == 2 and b["amis"] == {old: 2} and b["drifted"] == 2, b
    r = b["refresh"]
    assert (r["status"], r["active"], r["percentage_complete"], r["checkpoints"], r["next_checkpoint"]) == (
        "InProgress", True, 20, [50, 100], 50), r
    assert [(h["instance_id"], h["lifecycle_state"]) for h in b["held"]] == [(held, "Terminating:Wait")]
    assert b["held"][0]["since"] and 0 <= b["held"][0]["held_seconds"] < 600
    assert b["quarantined"] == [quarantined]
    assert b["retirements_scheduled"] == ["00aa11bb22cc33dd", "44ee55ff66778899"]
    assert not b["paused"]
    c = group_of(doc, calm)
    assert (c["paused"], c["drifted"], c["target_ami"], c["refresh"]) == (True, 0, current, None)
    assert [(q["instance_id"], q["group"], q["finding_type"]) for q in doc["quarantined"]] == [
        (quarantined, busy.asg_name, "Execution:Runtime/ReverseShell")]
    assert {"kind": "group", "name": busy.asg_name, "cluster": busy.cluster_name,
            "markers": ["00aa11bb22cc33dd", "44ee55ff66778899"]} in doc["retirements_scheduled"]
    assert sorted(c["name"] for c in doc["clusters"]) == sorted([busy.cluster_name, calm.cluster_name])

    table = cli("status", "--region", region)
    assert table.returncode == 0, table.stderr
    text = table.stdout
    row = next(line for line in text.splitlines() if line.startswith(busy.cluster_name))
    assert busy.asg_name in row and f"2/2 -> {new}" in row and "InProgress 20% (checkpoint 50%)" in row, text
    assert next(line for line in text.splitlines() if line.startswith(calm.cluster_name)).endswith("paused")
    assert "Held by a lifecycle hook" in text and held in text
    assert "Quarantined hosts" in text and "Execution:Runtime/ReverseShell" in text
    assert "Retirements scheduled" in text
    # Read only: the refresh is where the test left it, the hold is still active.
    assert [r["Status"] for r in refreshes(emulator, region, busy.asg_name)] == before
    assert [a["status"] for a in fl.lifecycle_actions(emulator.url, region, group=busy.asg_name)] == ["active"]


def test_plan_rolls_the_oldest_drift_first_and_the_rest_wait_for_the_budget(emulator, make_fleet, region, cli):
    first, _, _, first_ami = drifted(emulator, make_fleet, region)
    time.sleep(1.1)  # the second parameter changes later: a younger drift
    second, _, _, _ = drifted(emulator, make_fleet, region)
    paused, _, _, _ = drifted(emulator, make_fleet, region, extra_group_tags={ROLLOUT_TAG: "paused"})

    out = cli("plan", "--json", "--region", region, MAX_CONCURRENT_ROLLOUTS="1")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)["ami_rollout"]
    assert plan["window_open"] and plan["max_concurrent_rollouts"] == 1
    assert [(r["order"], r["group"], r["target_ami"]) for r in plan["rollouts"]] == [(1, first.asg_name, first_ami)]
    assert plan["rollouts"][0]["mode"]["mode"] == "new_version"
    assert plan["waiting_for_budget"] == [second.asg_name]
    assert [(o["group"], o["outcome"]) for o in plan["other"]] == [(paused.asg_name, "skipped")]
    assert [s["step"] for s in plan["steps"]].count("roll") == 1

    table = cli("plan", "--region", region, MAX_CONCURRENT_ROLLOUTS="2")
    assert table.returncode == 0, table.stderr
    rows = [line.split()[:2] for line in table.stdout.splitlines() if line[:2] in ("1 ", "2 ")]
    assert rows == [["1", first.asg_name], ["2", second.asg_name]], table.stdout
    # Nothing was rolled: the plan is a dry run of the decide code.
    assert all(refreshes(emulator, region, f.asg_name) == [] for f in (first, second))


def test_plan_outside_the_window_says_every_drifted_group_waits_for_it(emulator, make_fleet, region, cli):
    fleet, _, _, _ = drifted(emulator, make_fleet, region)
    out = cli("plan", "--json", "--region", region, MAINTENANCE_WINDOW=closed_window())
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)["ami_rollout"]
    assert not plan["window_open"] and plan["rollouts"] == []
    assert plan["waiting_for_window"] == [fleet.asg_name]
    text = cli("plan", "--region", region, MAINTENANCE_WINDOW=closed_window()).stdout
    assert "waits for the maintenance window" in text and fleet.asg_name in text


def test_a_region_with_nothing_managed_is_a_clear_error(emulator, make_fleet, region, cli):
    make_fleet(region=region, instances=1, managed=False, group_tagged=False, services=())
    for command in ("status", "plan"):
        out = cli(command, "--region", region)
        assert out.returncode == 3, (out.returncode, out.stderr)
        assert f"nothing managed in {region}" in out.stderr and "ecs-autopilot:managed=true" in out.stderr
        assert out.stdout == ""


def test_missing_credentials_are_a_clear_error(emulator, region, cli, tmp_path):
    env = {k: v for k, v in emulator.env().items() if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    out = cli("status", "--region", region, env=env)
    assert out.returncode == 4, (out.returncode, out.stderr)
    assert "no AWS credentials" in out.stderr and "--profile" in out.stderr
    out = cli("status", "--region", region, "--profile", "nosuch", env=env)
    assert out.returncode == 4 and "profile nosuch" in out.stderr, out.stderr


def test_throttling_is_a_clear_error_after_the_sdk_retries(emulator, make_fleet, region, cli, proxy):
    make_fleet(region=region, instances=1, services=())
    proxy.inject("throttle", service="autoscaling", operation="DescribeAutoScalingGroups", times=None)
    out = cli("status", "--region", region, env=emulator.env(AWS_ENDPOINT_URL=proxy.url))
    assert out.returncode == 5, (out.returncode, out.stderr)
    assert "AWS is throttling" in out.stderr and "DescribeAutoScalingGroups" in out.stderr
    assert len(proxy.calls("autoscaling", "DescribeAutoScalingGroups")) == 5  # the SDK retried


def test_bad_usage_prints_the_usage(cli):
    out = cli("stats")
    assert out.returncode == 2 and "Usage:" in out.stderr and "unexpected argument" in out.stderr
    assert cli("--help").stdout.startswith("ecs-autopilot:")


def test_status_and_plan_only_read(emulator, make_fleet, region, cli, proxy):
    fleet, _, _, _ = drifted(emulator, make_fleet, region)
    fl.create_lifecycle_action(emulator.url, region=region, group=fleet.asg_name, hook=fleet.terminate_hook,
                               transition="terminate", instance_id=fleet.instances[0].ec2_instance_id)
    env = emulator.env(AWS_ENDPOINT_URL=proxy.url)
    for command in ("status", "plan"):
        proxy.clear_calls()
        out = cli(command, "--json", "--region", region, env=env)
        assert out.returncode == 0, out.stderr
        assert proxy.calls(), "the calls went through the proxy"
        assert proxy.mutations() == [], [(c.service, c.operation) for c in proxy.mutations()]
    # plan ran ami-rollout's check up to its decision: the drifted group would roll.
    assert [r["group"] for r in json.loads(out.stdout)["ami_rollout"]["rollouts"]] == [fleet.asg_name]
