"""task-retirement end to end: the real binary (target/debug/task-retirement) under the
Lambda Runtime API emulator, against moto. Each test seeds its own cluster, topic and
queue; notifications are read from an SQS queue subscribed to the topic.

Clock: the binary reads the real clock, so each test sets the retirement time
(`startTime`) relative to now and picks a window that is open or closed now.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from harness import fleet as fl
from harness.delivery import FunctionQueue
from harness.task_retirement_helpers import deployment_ids, instance_health, service_tags
from harness.events import (
    ALWAYS_OPEN_WINDOW, closed_window, ec2_retirement_event, ecs_retirement_event, rebalance_event,
    window_at,
)
from harness.notifications import Inbox

HANDLED_TAG = "ecs-autopilot:retirement-handled"


@pytest.fixture
def inbox(emulator):
    return Inbox.create(emulator)


@pytest.fixture
def queue(emulator):
    """The function's own queue: no DLQ, and its delays kept (tests count them)."""
    return FunctionQueue.create(emulator.client("sqs"), "retirement", max_receive=None)


@pytest.fixture
def start(start_function, inbox, queue):
    """start(**env) -> FunctionUnderTest: a process on the test's queue and inbox."""
    return lambda **env: start_function("task-retirement", inbox=inbox, queue=queue, **env)


@pytest.fixture
def run(start):
    """run(event, **env) -> InvokeResult: one invocation of a fresh process."""
    return lambda event, **env: start(**env).invoke(event)


def web_task(fleet) -> str:
    return next(t for ts in fleet.tasks.values() for t in ts if t in _service_tasks(fleet, "web"))


def _service_tasks(fleet, service):
    arns = [t for ts in fleet.tasks.values() for t in ts]
    return {t["taskArn"] for t in fl.describe_tasks(fleet, arns) if fl.service_of(t) == service}


def only(notes, action):
    found = [n for n in notes if n.action == action]
    assert len(found) == 1, [(n.action, n.outcome, n.title) for n in notes]
    return found[0]


# --------------------------------------------------------------------------
# ECS services, by every entity form
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form", ["task-arn", "cluster | service", "cluster|service", "cluster/service", "service-arn"],
)
def test_a_retiring_service_is_redeployed_once_and_marked(form, make_fleet, run, inbox, emulator):
    fleet = make_fleet(instances=1, services=["web"])
    entity = {
        "task-arn": web_task(fleet),
        # AWS's own notices write `cluster | service`, with spaces.
        "cluster | service": f"{fleet.cluster_name} | web",
        "cluster|service": f"{fleet.cluster_name}|web",
        "cluster/service": f"{fleet.cluster_name}/web",
        "service-arn": fleet.service_arns["web"],
    }[form]
    before = deployment_ids(fleet.ecs, fleet.cluster_name, "web")

    result = run(ecs_retirement_event([entity]))

    assert result.ok, result.error
    assert deployment_ids(fleet.ecs, fleet.cluster_name, "web") != before
    assert HANDLED_TAG in service_tags(fleet.ecs, fleet.cluster_name, "web")
    note = only(inbox.read(), "redeploy-service")
    assert note.outcome == "done"
    assert note.context["cluster"] == fleet.cluster_name
    assert note.details["why_now"]["reason"] == "always_open"


def _extra_service(fleet, name=None, desired=1, **kwargs):
    """Another service of web's task definition; by default with a name no other test's
    cluster has (the emulator is shared)."""
    name = name or f"svc-{uuid.uuid4().hex[:8]}"
    fleet.ecs.create_service(
        cluster=fleet.cluster_name,
        serviceName=name,
        taskDefinition=fleet.task_definitions["web"],
        desiredCount=desired,
        **kwargs,
    )
    fleet.task_definitions[name] = fleet.task_definitions["web"]
    return name


def _short_arn(name):
    # The old ARN format names no cluster.
    return f"arn:aws:ecs:us-east-1:123456789012:service/{name}"


@pytest.mark.parametrize("beside", [None, "task-arn"])
def test_an_old_format_service_arn_without_the_cluster_finds_its_managed_cluster(
    beside, make_fleet, run, inbox
):
    fleet = make_fleet(instances=1, services=["web"])
    name = _extra_service(fleet)
    # Another cluster with that service, but not managed: never a candidate.
    other = make_fleet(instances=0, services=["web"], managed=False)
    _extra_service(other, name)
    entities = [_short_arn(name)] + ([web_task(fleet)] if beside else [])
    before = deployment_ids(fleet.ecs, fleet.cluster_name, name)

    # The new service's own first deployment still rolls out: room for both.
    result = run(ecs_retirement_event(entities), MAX_REDEPLOYS_PER_CLUSTER="3")

    assert result.ok, result.error
    assert deployment_ids(fleet.ecs, fleet.cluster_name, name) != before
    assert HANDLED_TAG in service_tags(fleet.ecs, fleet.cluster_name, name)
    assert HANDLED_TAG not in service_tags(other.ecs, other.cluster_name, name)
    notes = inbox.read()
    redeploys = [n for n in notes if n.action == "redeploy-service"]
    assert {n.details["service"] for n in redeploys} == ({name, "web"} if beside else {name}), [(n.action, n.outcome, n.description) for n in notes]
    assert all(n.outcome == "done" for n in redeploys)
    assert not [n for n in notes if n.action in ("ignore", "retire-task")], notes


def test_an_old_format_service_arn_in_several_managed_clusters_is_a_warning_not_a_guess(make_fleet, run, inbox):
    blue = make_fleet(instances=1, services=["web"])
    name = _extra_service(blue)
    green = make_fleet(instances=1, services=["web"])
    _extra_service(green, name)
    before = {f.cluster_name: deployment_ids(f.ecs, f.cluster_name, name) for f in (blue, green)}

    result = run(ecs_retirement_event([_short_arn(name)]))

    assert result.ok, result.error
    assert {f.cluster_name: deployment_ids(f.ecs, f.cluster_name, name) for f in (blue, green)} == before
    note = only(inbox.read(), "redeploy-service")
    assert note.outcome == "warning"
    assert sorted(note.details["clusters"]) == sorted([blue.cluster_name, green.cluster_name])
    assert blue.cluster_name in note.description and note.next_steps


def test_an_old_format_service_arn_no_managed_cluster_has_is_reported_not_failed(make_fleet, run, inbox):
    make_fleet(instances=1, services=["web"])
    result = run(ecs_retirement_event([_short_arn(f"gone-{uuid.uuid4().hex[:8]}")]))
    assert result.ok, result.error
    note = only(inbox.read(), "retire-task")
    assert note.outcome == "skipped"


def test_a_service_named_by_several_tasks_and_its_name_is_redeployed_once(make_fleet, run, inbox):
    fleet = make_fleet(instances=2, services=["web"])
    tasks = sorted(_service_tasks(fleet, "web"))
    result = run(ecs_retirement_event([*tasks, f"{fleet.cluster_name}|web"]))
    assert result.ok, result.error
    note = only(inbox.read(), "redeploy-service")
    assert sorted(note.details["retiring_tasks"]) == tasks


def test_a_duplicate_or_updated_notice_does_not_redeploy_again(make_fleet, run, inbox):
    fleet = make_fleet(instances=1, services=["web"])
    event = ecs_retirement_event([f"{fleet.cluster_name}|web"])
    assert run(event).ok
    first = deployment_ids(fleet.ecs, fleet.cluster_name, "web")
    inbox.read()

    updated = ecs_retirement_event(
        [f"{fleet.cluster_name}|web"],
        event_arn=event["detail"]["eventArn"],
        updated_at=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    for again in (event, updated):
        assert run(again).ok
        assert deployment_ids(fleet.ecs, fleet.cluster_name, "web") == first
        note = only(inbox.read(), "redeploy-service")
        assert note.outcome == "already_done"


def test_a_standalone_task_is_reported_with_its_starter_and_left_running(make_fleet, run, inbox):
    fleet = make_fleet(instances=1, services=[], standalone_tasks=1)
    task = fleet.standalone_tasks[0]
    result = run(ecs_retirement_event([task], starts_in=timedelta(days=3)))
    assert result.ok, result.error
    note = only(inbox.read(), "standalone-task")
    assert note.outcome == "warning"
    assert "batch-job" in note.description
    assert note.context["task"] == task
    [described] = fl.describe_tasks(fleet, [task])
    assert described["lastStatus"] == "RUNNING" and described["desiredStatus"] == "RUNNING"


def test_services_of_an_unmanaged_cluster_are_left_alone(make_fleet, run, inbox):
    fleet = make_fleet(instances=1, services=["web"], managed=False)
    before = deployment_ids(fleet.ecs, fleet.cluster_name, "web")
    result = run(ecs_retirement_event([f"{fleet.cluster_name}|web", web_task(fleet)]))
    assert result.ok, result.error
    assert deployment_ids(fleet.ecs, fleet.cluster_name, "web") == before
    assert HANDLED_TAG not in service_tags(fleet.ecs, fleet.cluster_name, "web")
    notes = inbox.read()
    assert notes and {n.outcome for n in notes} == {"skipped"}
    assert not [n for n in notes if n.action == "redeploy-service"]


# --------------------------------------------------------------------------
# EC2 hosts
# --------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["instance-id", "instance-arn"])
def test_a_retiring_instance_of_a_managed_group_is_marked_unhealthy(form, make_fleet, run, inbox):
    fleet = make_fleet(instances=2, services=["web"])
    victim = fleet.instances[0].ec2_instance_id
    entity = victim if form == "instance-id" else f"arn:aws:ec2:us-east-1:123456789012:instance/{victim}"
    result = run(ec2_retirement_event([entity]))
    assert result.ok, result.error
    assert instance_health(fleet.autoscaling, victim).lower() == "unhealthy"
    assert instance_health(fleet.autoscaling, fleet.instances[1].ec2_instance_id).lower() == "healthy"
    note = only(inbox.read(), "replace-instance")
    assert note.outcome == "done"
    assert (note.context["group"], note.context["instance"]) == (fleet.asg_name, victim)

    # The same notice again: already on its way out.
    assert run(ec2_retirement_event([victim])).ok
    assert only(inbox.read(), "replace-instance").outcome == "already_done"


def test_instances_outside_managed_groups_are_only_reported(make_fleet, run, inbox, emulator):
    fleet = make_fleet(instances=1, services=["web"], group_tagged=False)
    in_unmanaged_group = fleet.instances[0].ec2_instance_id
    ec2 = emulator.client("ec2")
    loose = ec2.run_instances(ImageId=fl.DEFAULT_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]

    result = run(ec2_retirement_event([in_unmanaged_group, loose], code="AWS_EC2_INSTANCE_STOP_SCHEDULED"))

    assert result.ok, result.error
    assert instance_health(fleet.autoscaling, in_unmanaged_group).lower() == "healthy"
    notes = [n for n in inbox.read() if n.action == "replace-instance"]
    assert sorted(n.context["instance"] for n in notes) == sorted([in_unmanaged_group, loose])
    assert {n.outcome for n in notes} == {"skipped"}


@pytest.mark.parametrize("enabled", [True, False])
def test_a_rebalance_recommendation_replaces_the_instance_only_when_opted_in(enabled, make_fleet, run, inbox):
    fleet = make_fleet(instances=1, services=["web"])
    victim = fleet.instances[0].ec2_instance_id
    # A closed window does not hold back a rebalance: there is no schedule to wait for.
    result = run(rebalance_event(victim), DRAIN_ON_REBALANCE=str(enabled).lower(), MAINTENANCE_WINDOW=closed_window())
    assert result.ok, result.error
    health = instance_health(fleet.autoscaling, victim).lower()
    notes = inbox.read()
    if enabled:
        assert health == "unhealthy"
        note = only(notes, "replace-instance")
        assert note.details["why_now"]["reason"] == "no_schedule"
    else:
        # Logged only: the rule delivers every recommendation whatever the setting.
        assert health == "healthy"
        assert notes == []
        assert any(line.get("message") == "ignored" for line in result.json_logs)


# --------------------------------------------------------------------------
# the maintenance window and the clock
# --------------------------------------------------------------------------


def retire_web(make_fleet, run, window, **event):
    """Runs a retirement of one service, web, in the given maintenance window; whether it
    was redeployed."""
    fleet = make_fleet(instances=1, services=["web"])
    before = deployment_ids(fleet.ecs, fleet.cluster_name, "web")
    result = run(ecs_retirement_event([f"{fleet.cluster_name}|web"], **event), MAINTENANCE_WINDOW=window)
    assert result.ok, result.error
    return deployment_ids(fleet.ecs, fleet.cluster_name, "web") != before


def test_inside_the_window_the_service_is_redeployed_now(make_fleet, run, inbox, queue, emulator):
    assert retire_web(make_fleet, run, ALWAYS_OPEN_WINDOW)
    assert only(inbox.read(), "redeploy-service").details["why_now"]["reason"] == "window_open"
    assert queue.delayed() == 0


def test_outside_the_window_the_retirement_is_scheduled_not_done(make_fleet, run, inbox, queue, emulator):
    assert not retire_web(make_fleet, run, closed_window(hours_from_now=3), starts_in=timedelta(days=7))
    note = only(inbox.read(), "schedule")
    assert note.outcome == "done"
    assert "web" in note.description
    # The follow-up waits in the function's own queue (SQS's longest delay, 15 min).
    assert queue.delayed() == 1


def test_a_window_opening_after_the_retirement_is_not_waited_for(make_fleet, run, inbox, queue, emulator):
    assert retire_web(make_fleet, run, closed_window(hours_from_now=3), starts_in=timedelta(hours=1))
    note = only(inbox.read(), "redeploy-service")
    assert note.details["why_now"]["reason"] == "window_too_late"
    assert "next opens at" in note.description
    assert queue.delayed() == 0


def test_a_start_time_already_past_is_acted_on_at_once(make_fleet, run, inbox):
    fleet = make_fleet(instances=1, services=["web"])
    result = run(
        ecs_retirement_event([f"{fleet.cluster_name}|web"], starts_in=-timedelta(minutes=5)),
        MAINTENANCE_WINDOW=closed_window(hours_from_now=3),
    )
    assert result.ok, result.error
    assert only(inbox.read(), "redeploy-service").details["why_now"]["reason"] == "start_passed"


def test_a_deferred_retirement_comes_back_through_the_queue_and_acts_when_the_window_opens(
    make_fleet, start, inbox, queue
):
    fleet = make_fleet(instances=1, services=["web"])
    before = deployment_ids(fleet.ecs, fleet.cluster_name, "web")
    now = datetime.now(timezone.utc)
    opens = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    with start(MAINTENANCE_WINDOW=window_at(opens, minutes=30)) as fn:
        # Delivered like EventBridge -> queue -> Lambda.
        event = ecs_retirement_event([f"{fleet.cluster_name}|web"], starts_in=timedelta(days=7))
        fn.send(event)
        [first] = fn.check(10)
        assert first.ok, first.invoke.error
        assert deployment_ids(fleet.ecs, fleet.cluster_name, "web") == before
        assert only(inbox.read(), "schedule").outcome == "done"

        time.sleep(max(0.0, (opens - datetime.now(timezone.utc)).total_seconds()) + 1.5)
        batches = fn.check(3, wait=3)
        assert batches and all(b.ok for b in batches), [b.invoke.error for b in batches]
    assert deployment_ids(fleet.ecs, fleet.cluster_name, "web") != before
    notes = inbox.read()
    note = only(notes, "redeploy-service")
    assert note.outcome == "done"
    assert note.details["why_now"]["reason"] == "window_open"
    assert not [n for n in notes if n.action == "schedule"]


# --------------------------------------------------------------------------
# dry run, closed notices, bad input
# --------------------------------------------------------------------------


def test_dry_run_changes_nothing_and_says_what_it_would_do(make_fleet, run, inbox):
    fleet = make_fleet(instances=1, services=["web"])
    before = deployment_ids(fleet.ecs, fleet.cluster_name, "web")
    victim = fleet.instances[0].ec2_instance_id
    assert run(ecs_retirement_event([f"{fleet.cluster_name}|web"]), DRY_RUN="true").ok
    assert run(ec2_retirement_event([victim]), DRY_RUN="true").ok
    assert deployment_ids(fleet.ecs, fleet.cluster_name, "web") == before
    assert HANDLED_TAG not in service_tags(fleet.ecs, fleet.cluster_name, "web")
    assert instance_health(fleet.autoscaling, victim).lower() == "healthy"
    notes = inbox.read()
    assert {(n.action, n.outcome) for n in notes} == {("redeploy-service", "planned"), ("replace-instance", "planned")}
    assert all("[dry run]" in n.subject for n in notes)


def test_a_closed_notice_is_reported_not_acted_on(make_fleet, run, inbox):
    fleet = make_fleet(instances=1, services=["web"])
    before = deployment_ids(fleet.ecs, fleet.cluster_name, "web")
    result = run(ecs_retirement_event([f"{fleet.cluster_name}|web"], status="closed"))
    assert result.ok, result.error
    assert deployment_ids(fleet.ecs, fleet.cluster_name, "web") == before
    note = only(inbox.read(), "retire")
    assert note.outcome == "skipped" and "closed" in note.title


def test_other_health_events_are_ignored_not_failed(run, inbox):
    event = ec2_retirement_event(["i-0123456789abcdef0"], code="AWS_EC2_OPERATIONAL_ISSUE")
    result = run(event)
    assert result.ok, result.error
    assert only(inbox.read(), "ignore").outcome == "skipped"


def test_a_malformed_event_fails_without_acting(make_fleet, start, inbox, queue):
    fleet = make_fleet(instances=1, services=["web"])
    before = deployment_ids(fleet.ecs, fleet.cluster_name, "web")
    event = ecs_retirement_event([f"{fleet.cluster_name}|web"])
    event["detail"]["startTime"] = "soon"
    with start() as fn:
        direct = fn.invoke(event)
        assert not direct.ok and direct.error["errorType"] == "BadEvent"
        fn.send("{not json")
        [batch] = fn.check(1)
        assert batch.failed_ids == batch.message_ids
        assert fn.fn.alive
    assert deployment_ids(fleet.ecs, fleet.cluster_name, "web") == before
    assert inbox.read() == []


def test_a_bad_window_fails_the_cold_start_naming_the_variable(start, inbox, queue):
    with start(MAINTENANCE_WINDOW="weekends") as fx:
        result = fx.invoke(ecs_retirement_event(["c|s"]))
        assert not result.ok
        assert "MAINTENANCE_WINDOW" in fx.fn.output()


# --------------------------------------------------------------------------
# classify first; a failing field is named
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"eventTypeCode": "AWS_EC2_OPERATIONAL_ISSUE"},
        {"eventTypeCategory": "issue"},
        {"service": "RDS", "eventTypeCode": "AWS_RDS_MAINTENANCE_SCHEDULED"},
    ],
)
def test_an_event_it_skips_is_not_dead_lettered_by_a_field_it_does_not_need(
    change, start, inbox, queue
):
    event = ec2_retirement_event(["i-0123456789abcdef0"])
    event["detail"].update(change)
    event["detail"]["startTime"] = "soon"
    event["detail"]["lastUpdatedTime"] = 12
    with start() as fn:
        fn.send(event)
        [batch] = fn.check(1)
    assert batch.ok, (batch.failed_ids, batch.invoke.error)
    assert only(inbox.read(), "ignore").outcome == "skipped"


@pytest.mark.parametrize(
    "field, value, named",
    [
        ("startTime", "next Tuesday", "detail.startTime"),
        ("affectedEntities", "prod-web", "detail.affectedEntities"),
        ("affectedEntities", [{"entityValue": 7}], "detail.affectedEntities[0].entityValue"),
    ],
)
def test_a_bad_field_of_a_retirement_is_named_with_its_value(field, value, named, make_fleet, run, inbox):
    fleet = make_fleet(instances=1, services=["web"])
    event = ecs_retirement_event([f"{fleet.cluster_name} | web"])
    event["detail"][field] = value
    result = run(event)
    assert not result.ok and result.error["errorType"] == "BadEvent"
    assert named in result.error["errorMessage"]
    shown = value if isinstance(value, str) else "7"
    assert shown in result.error["errorMessage"]
    assert inbox.read() == []


# --------------------------------------------------------------------------
# the disruption budget
# --------------------------------------------------------------------------


def _leave_group(fleet, instance_id):
    """What the end of a replacement looks like from the group: the host is gone."""
    fleet.autoscaling.detach_instances(
        InstanceIds=[instance_id], AutoScalingGroupName=fleet.asg_name, ShouldDecrementDesiredCapacity=True
    )


@pytest.mark.parametrize("scheduled_in_ec2", [False, True])
def test_many_hosts_of_a_group_retiring_in_the_same_window_are_replaced_one_at_a_time(
    scheduled_in_ec2, make_fleet, start, inbox, queue
):
    fleet = make_fleet(instances=4, services=["web"], hooks=False)
    hosts = [i.ec2_instance_id for i in fleet.instances[:3]]
    if scheduled_in_ec2:
        # As in AWS: the hosts' scheduled events are in EC2 too (the group's queue).
        for h in hosts:
            _schedule_retirement(fleet, h, datetime.now(timezone.utc) + timedelta(days=7))
    # The template's 60 s timeout: a batch takes a record only while its 40 s budget fits.
    with start(RETIREMENT_POLL_SECONDS="1", timeout=60) as fn:
        # One notice per host, as AWS sends them, all delivered at the same minute.
        for h in hosts:
            fn.send(ec2_retirement_event([h]))
        # A receive may return fewer messages than are visible: take batches until the
        # queue gives nothing (the re-queued looks are delayed; a later one only waits).
        batches = fn.check(3)
        assert all(b.ok for b in batches), [b.invoke.error for b in batches]
        health = {h: instance_health(fleet.autoscaling, h).lower() for h in hosts}
        assert sorted(health.values()) == ["healthy", "healthy", "unhealthy"], health
        first = next(h for h, v in health.items() if v == "unhealthy")
        notes = inbox.read()
        replaced = [n.outcome for n in notes if n.action == "replace-instance"]
        if scheduled_in_ec2:
            # The head of the group's queue (same deadline: lowest id) goes first, marked by
            # whichever look came first; its own notice, if later, finds it done.
            assert first == min(hosts)
            assert replaced.count("done") == 1 and set(replaced) <= {"done", "already_done"}, replaced
        else:
            assert replaced == ["done"]
        waits = [n for n in notes if n.action == "wait-budget"]
        assert len(waits) == 2 and {n.outcome for n in waits} == {"done"}
        assert all(first in n.description for n in waits)
        assert queue.queued() == 2

        # While the first is still in replacement, the others look again and keep waiting, silently.
        time.sleep(1.5)
        batches = fn.check(2, wait=1)
        assert batches and all(b.ok for b in batches)
        assert sorted(instance_health(fleet.autoscaling, h).lower() for h in hosts) == ["healthy", "healthy", "unhealthy"]
        assert inbox.read() == []

        # The first one is replaced: the next goes, the last still waits.
        _leave_group(fleet, first)
        time.sleep(1.5)
        batches = fn.check(2, wait=1)
        assert batches and all(b.ok for b in batches)
        rest = [h for h in hosts if h != first]
        assert sorted(instance_health(fleet.autoscaling, h).lower() for h in rest) == ["healthy", "unhealthy"]
        assert [n.outcome for n in inbox.read() if n.action == "replace-instance"] == ["done"]


def test_a_budget_that_cannot_make_the_deadline_warns_early_with_the_numbers(make_fleet, run, inbox, queue, emulator):
    fleet = make_fleet(instances=4, services=["web"], hooks=False)
    hosts = [i.ec2_instance_id for i in fleet.instances[:3]]
    # 2 h per replacement (HOST_REPLACEMENT_MINUTES) and one at a time: the third starts
    # ~4 h from now, after the latest safe start 3 h from now.
    result = run(ec2_retirement_event(hosts, starts_in=timedelta(hours=5)))
    assert result.ok, result.error
    notes = inbox.read()
    assert [n.outcome for n in notes if n.action == "replace-instance"] == ["done"]
    warning = only(notes, "budget-forecast")
    assert warning.outcome == "warning" and warning.attributes["severity"] == "warning"
    f = warning.details["forecast"]
    assert (f["waiting"], f["budget"], f["minutes_per_replacement"], f["late"]) == (3, 1, 120, 1)
    assert "MAX_REPLACEMENTS_PER_GROUP=1" in warning.description
    assert only(notes, "wait-budget").outcome == "done"
    assert queue.delayed() == 1


def _schedule_retirement(fleet, instance_id, at):
    """What AWS does before it sends the notice: the host gets an EC2 scheduled event."""
    fl.control(
        fleet.endpoint,
        "POST",
        "/_autopilot/scheduled-events",
        {"instance_id": instance_id, "code": "instance-retirement", "not_before": at.isoformat()},
    )


def test_the_budget_forecast_counts_every_scheduled_host_of_the_group_when_the_first_notice_arrives(
    make_fleet, run, inbox, queue, emulator
):
    fleet = make_fleet(instances=6, services=["web"], hooks=False)
    hosts = [i.ec2_instance_id for i in fleet.instances]
    starts_in = timedelta(hours=6)
    retires_at = datetime.now(timezone.utc) + starts_in
    for h in hosts:
        _schedule_retirement(fleet, h, retires_at)
    # A one-hour window opening in an hour, 2 h lead (latest start in 4 h), 2 h per host,
    # one at a time: rounds at +1 h and +3 h fit, the other four would start later.
    env = {"MAINTENANCE_WINDOW": closed_window(1), "RETIREMENT_POLL_SECONDS": "1"}

    # One notice per host, as AWS sends them; the first one already sees all six.
    assert run(ec2_retirement_event([hosts[0]], starts_in=starts_in), **env).ok
    notes = inbox.read()
    warning = only(notes, "budget-forecast")
    assert warning.outcome == "warning" and warning.attributes["severity"] == "warning"
    f = warning.details["forecast"]
    assert (f["waiting"], f["in_replacement"], f["budget"], f["minutes_per_replacement"], f["late"]) == (6, 0, 1, 120, 4), json.dumps(f)
    assert f["rounds_needed"] == 6
    assert "MAX_REPLACEMENTS_PER_GROUP=1" in warning.description and "4 of them" in warning.description
    assert only(notes, "schedule").outcome == "done"
    assert all(instance_health(fleet.autoscaling, h).lower() == "healthy" for h in hosts)

    # The next notice of the wave sees the same forecast: not said twice.
    assert run(ec2_retirement_event([hosts[1]], starts_in=starts_in), **env).ok
    assert [n.action for n in inbox.read()] == ["schedule"]

    # A budget that fits says nothing.
    assert run(ec2_retirement_event([hosts[2]], starts_in=starts_in), MAX_REPLACEMENTS_PER_GROUP="3", **env).ok
    assert [n.action for n in inbox.read()] == ["schedule"]


def test_looks_running_at_the_same_moment_take_one_slot_the_head_of_the_groups_queue(
    make_fleet, start, inbox, queue
):
    fleet = make_fleet(instances=4, services=["web"], hooks=False)
    hosts = sorted(i.ec2_instance_id for i in fleet.instances[:3])
    retires_at = datetime.now(timezone.utc) + timedelta(days=7)
    for h in hosts:
        _schedule_retirement(fleet, h, retires_at)
    # Two notices (not the head's own) handled by two invocations at the same moment.
    procs = [start(RETIREMENT_POLL_SECONDS="900") for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(lambda p_h: p_h[0].invoke(ec2_retirement_event([p_h[1]])), zip(procs, hosts[1:]))
        )
    for p in procs:
        p.stop()
    assert all(r.ok for r in results), [r.error for r in results]
    # Both picked the head of the group's queue (same deadline: lowest instance id).
    health = {h: instance_health(fleet.autoscaling, h).lower() for h in hosts}
    assert health == {hosts[0]: "unhealthy", hosts[1]: "healthy", hosts[2]: "healthy"}, health
    notes = inbox.read()
    assert {n.context.get("instance") for n in notes if n.action == "replace-instance"} == {hosts[0]}
    assert len([n for n in notes if n.action == "wait-budget"]) == 2

    # The head's own notice finds it done.
    with start(RETIREMENT_POLL_SECONDS="900") as fn:
        assert fn.invoke(ec2_retirement_event([hosts[0]])).ok
    assert only(inbox.read(), "replace-instance").outcome == "already_done"


def test_at_the_latest_safe_start_a_waiting_host_is_replaced_despite_the_budget(make_fleet, run, inbox):
    fleet = make_fleet(instances=3, services=["web"], hooks=False)
    busy, victim = (i.ec2_instance_id for i in fleet.instances[:2])
    fleet.autoscaling.set_instance_health(InstanceId=busy, HealthStatus="Unhealthy")
    result = run(ec2_retirement_event([victim], starts_in=timedelta(hours=1)))
    assert result.ok, result.error
    assert instance_health(fleet.autoscaling, victim).lower() == "unhealthy"
    note = only(inbox.read(), "replace-instance")
    assert note.outcome == "done" and "goes anyway" in note.description


def _finish_deployment(fleet, service):
    """Play the ECS scheduler for a forced deployment: old tasks out, new ones in."""
    old = [t["taskArn"] for t in fl.all_tasks(fleet) if fl.service_of(t) == service]
    fl.stop_tasks(fleet, task_arns=old)
    for arn in old:
        fl.start_service_tasks(fleet, service, fleet.instances[0], 1)


def test_redeploys_in_a_cluster_wait_for_deployments_in_progress(make_fleet, start, inbox, queue):
    fleet = make_fleet(instances=1, services=["web", "api", "jobs"])
    names = ["web", "api", "jobs"]
    before = {s: deployment_ids(fleet.ecs, fleet.cluster_name, s) for s in names}
    event = ecs_retirement_event([f"{fleet.cluster_name} | {s}" for s in names])
    with start(RETIREMENT_POLL_SECONDS="1") as fn:
        fn.send(event)
        assert all(b.ok for b in fn.check(1))
        changed = [s for s in names if deployment_ids(fleet.ecs, fleet.cluster_name, s) != before[s]]
        assert len(changed) == 2, changed  # MAX_REDEPLOYS_PER_CLUSTER defaults to 2
        [waiting] = [s for s in names if s not in changed]
        notes = inbox.read()
        assert len([n for n in notes if n.action == "redeploy-service"]) == 2
        assert waiting in only(notes, "wait-budget").description

        # Both deployments still roll out: the third waits.
        time.sleep(1.5)
        assert all(b.ok for b in fn.check(1, wait=1))
        assert deployment_ids(fleet.ecs, fleet.cluster_name, waiting) == before[waiting]

        _finish_deployment(fleet, changed[0])
        time.sleep(1.5)
        assert all(b.ok for b in fn.check(1, wait=1))
    assert deployment_ids(fleet.ecs, fleet.cluster_name, waiting) != before[waiting]
    assert only(inbox.read(), "redeploy-service").outcome == "done"


# --------------------------------------------------------------------------
# Capacity Rebalancing, deployment controllers, image tags
# --------------------------------------------------------------------------


def test_a_rebalance_recommendation_in_a_group_with_capacity_rebalancing_is_left_to_auto_scaling(
    make_fleet, run, inbox
):
    fleet = make_fleet(instances=2, services=["web"])
    fleet.autoscaling.update_auto_scaling_group(AutoScalingGroupName=fleet.asg_name, CapacityRebalance=True)
    victim = fleet.instances[0].ec2_instance_id
    result = run(rebalance_event(victim), DRAIN_ON_REBALANCE="true")
    assert result.ok, result.error
    assert instance_health(fleet.autoscaling, victim).lower() == "healthy"
    note = only(inbox.read(), "replace-instance")
    assert note.outcome == "skipped" and "Capacity Rebalancing" in note.description

    # A scheduled retirement of a host of the same group is still replaced.
    assert run(ec2_retirement_event([victim])).ok
    assert instance_health(fleet.autoscaling, victim).lower() == "unhealthy"


@pytest.mark.parametrize("controller", ["CODE_DEPLOY", "EXTERNAL"])
def test_a_service_with_another_deployment_controller_is_not_force_deployed_but_warned(
    controller, make_fleet, run, inbox
):
    fleet = make_fleet(instances=1, services=["web"])
    _extra_service(fleet, "bluegreen", deploymentController={"type": controller})
    result = run(ecs_retirement_event([f"{fleet.cluster_name} | bluegreen"]))
    assert result.ok, result.error
    note = only(inbox.read(), "redeploy-service")
    assert note.outcome == "warning"
    assert controller in note.description
    assert note.next_steps and any("minimumHealthyPercent" in s for s in note.next_steps)
    assert HANDLED_TAG not in service_tags(fleet.ecs, fleet.cluster_name, "bluegreen")


@pytest.mark.parametrize("controller", ["CODE_DEPLOY", "EXTERNAL"])
def test_with_stop_tasks_a_service_of_another_controller_is_replaced_in_batches_within_minimum_healthy_percent(
    controller, make_fleet, run, inbox
):
    fleet = make_fleet(instances=2, services=["web"])
    _extra_service(
        fleet,
        "bluegreen",
        desired=2,
        deploymentController={"type": controller},
        deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200},
    )
    for instance in fleet.instances[:2]:
        fl.start_service_tasks(fleet, "bluegreen", instance, 1)
    old = _running_of(fleet, "bluegreen")
    assert len(old) == 2
    time.sleep(1.1)
    result = run(ecs_retirement_event([f"{fleet.cluster_name} | bluegreen"]), RETIREMENT_REPLACE="stop-tasks")
    assert result.ok, result.error
    # One of two stopped: 50 % of 2 keeps one running; the rest after its replacement runs.
    assert len(old & _running_of(fleet, "bluegreen")) == 1
    note = only(inbox.read(), "stop-tasks")
    assert note.outcome == "done" and len(note.details["stopped_tasks"]) == 1


def test_a_redeploy_notice_says_a_mutable_image_tag_may_pull_a_newer_image(make_fleet, run, inbox):
    fleet = make_fleet(instances=1, services=["web"])
    [container] = fleet.ecs.describe_task_definition(taskDefinition=fleet.task_definitions["web"])["taskDefinition"][
        "containerDefinitions"
    ]
    assert run(ecs_retirement_event([f"{fleet.cluster_name}|web"])).ok
    note = only(inbox.read(), "redeploy-service")
    if "@sha256:" in container["image"]:
        assert note.details["mutable_images"] == []
    else:
        assert container["image"] in note.description and "newer image" in note.description
        assert note.details["mutable_images"] == [{"container": container["name"], "image": container["image"]}]


# --------------------------------------------------------------------------
# RETIREMENT_REPLACE=stop-tasks
# --------------------------------------------------------------------------


def _running_of(fleet, service):
    return {t["taskArn"] for t in fl.all_tasks(fleet) if fl.service_of(t) == service}


def test_stop_tasks_replaces_a_service_in_batches_that_keep_its_minimum_healthy_percent(
    make_fleet, start, inbox, queue
):
    fleet = make_fleet(instances=2, services=["web"])  # desired 2
    fleet.ecs.update_service(
        cluster=fleet.cluster_name, service="web", deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200}
    )
    before = deployment_ids(fleet.ecs, fleet.cluster_name, "web")
    old = _running_of(fleet, "web")
    # The notice's lastUpdatedTime has whole seconds: let it fall after the tasks started.
    time.sleep(1.1)
    with start(RETIREMENT_REPLACE="stop-tasks", RETIREMENT_POLL_SECONDS="1") as fn:
        fn.send(ecs_retirement_event([f"{fleet.cluster_name} | web"]))
        assert all(b.ok for b in fn.check(1))
        # One of two stopped: 50 % of 2 keeps one running. No new deployment.
        assert len(old & _running_of(fleet, "web")) == 1
        assert deployment_ids(fleet.ecs, fleet.cluster_name, "web") == before
        note = only(inbox.read(), "stop-tasks")
        assert note.outcome == "done" and len(note.details["stopped_tasks"]) == 1
        assert HANDLED_TAG not in service_tags(fleet.ecs, fleet.cluster_name, "web")

        # Its replacement has not started yet: the next look waits.
        time.sleep(1.5)
        assert all(b.ok for b in fn.check(1, wait=1))
        assert len(old & _running_of(fleet, "web")) == 1
        assert inbox.read() == []

        # The scheduler started the replacement: the last retiring task goes.
        fl.start_service_tasks(fleet, "web", fleet.instances[1], 1)
        time.sleep(1.5)
        assert all(b.ok for b in fn.check(1, wait=1))
    assert not old & _running_of(fleet, "web")
    assert only(inbox.read(), "stop-tasks").outcome == "done"
    assert HANDLED_TAG in service_tags(fleet.ecs, fleet.cluster_name, "web")
    assert deployment_ids(fleet.ecs, fleet.cluster_name, "web") == before
    assert queue.delayed() == 0


def test_stop_tasks_that_would_break_minimum_healthy_percent_warns_with_the_steps(make_fleet, run, inbox):
    fleet = make_fleet(instances=1, services=["web"])  # desired 1, minimumHealthyPercent 100
    old = _running_of(fleet, "web")
    time.sleep(1.1)
    result = run(ecs_retirement_event([f"{fleet.cluster_name}/web"]), RETIREMENT_REPLACE="stop-tasks")
    assert result.ok, result.error
    assert _running_of(fleet, "web") == old
    note = only(inbox.read(), "stop-tasks")
    assert note.outcome == "warning" and "minimumHealthyPercent 100" in note.description
    assert note.next_steps
