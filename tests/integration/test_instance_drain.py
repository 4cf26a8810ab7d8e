"""instance-drain end to end: the real binary under a local Lambda Runtime API,
against the emulator, fed through its SQS queue the way Lambda's event source
mapping would (tests/harness/sqs_pump.py). Tests play ECS's scheduler themselves."""

from __future__ import annotations

import json

import pytest

from harness.functions import FunctionUnderTest
from harness.fleet import (
    fire_lifecycle,
    play_scheduler,
    put_lifecycle_hook,
    register_new_instances,
    stop_tasks,
    tasks_on,
)
from harness.aws_proxy import AwsProxy
from harness.fleet import expire_lifecycle_action
from harness.instance_drain_helpers import (
    action_of,
    advance_clock,
    ci_status,
    set_agent_connected,
    set_status_checks,
)
from harness.events import ago, hook_test_notification, spot_event


@pytest.fixture
def drain(start_function):
    """Starts instance-drain with its queue (and DLQ) and a notification inbox."""
    return lambda **env: start_function("instance-drain", **env)


def by_action(notes):
    return [(n.context["action"], n.context["outcome"]) for n in notes]


def metrics(fn, function="instance-drain"):
    """The (action, outcome) of every CloudWatch metric line the function wrote."""
    return [(j["action"], j["outcome"]) for j in fn.json_logs() if "_aws" in j and j.get("function") == function]


def fired(h, fleet, *args, at=None, **kwargs):
    """Fires a lifecycle action, sends its event (dated `at`, when given) to the function
    and lets it run once."""
    event = fire_lifecycle(fleet.endpoint, fleet, *args, **kwargs)
    if at is not None:
        event["time"] = at
    h.send(event)
    h.check()
    return event


def test_a_terminating_instance_is_drained_then_released_after_its_tasks_move(drain, make_fleet):
    fleet = make_fleet(instances=3, services=["web", "api"], tasks_per_instance=2, daemon=True)
    h = drain()
    victim = fleet.instances[0]
    event = fire_lifecycle(fleet.endpoint, fleet, victim)
    h.send(event)

    h.check()
    assert ci_status(fleet, victim) == "DRAINING"
    action = action_of(fleet, event)
    assert action["status"] == "active" and action["heartbeats"] == 1
    assert h.queued() == 1, "the event is re-queued to look again"
    started = h.inbox.read()
    assert by_action(started) == [("drain-host", "done")]
    assert started[0].context["cluster"] == fleet.cluster_name
    assert json.loads(started[0].context["details"])["tasks"] == 4

    h.check()  # nothing moved yet: wait again, no new notification
    assert action_of(fleet, event)["status"] == "active"
    assert h.inbox.read() == []

    play_scheduler(fleet, stop_daemons=False)  # ECS moves the service tasks; the daemon stays
    h.check()
    action = action_of(fleet, event)
    assert (action["status"], action["result"]) == ("completed", "CONTINUE")
    assert h.queued() == 0, "a finished drain stops re-checking"
    (done,) = h.inbox.read()
    assert (done.context["action"], done.context["outcome"]) == ("complete-lifecycle", "done")
    details = json.loads(done.context["details"])
    assert details["tasks_moved"] == 4 and details["result"] == "CONTINUE"
    assert done.attributes["outcome"] == "done" and done.attributes["cluster"] == fleet.cluster_name


def test_a_second_delivery_of_a_finished_drain_is_already_done(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=0)
    h = drain()
    event = fire_lifecycle(fleet.endpoint, fleet, fleet.instances[0])
    first = h.fn.invoke(event)
    assert first.ok, first.error
    assert action_of(fleet, event)["status"] == "completed"
    again = h.fn.invoke(event)
    assert again.ok, again.error
    notes = by_action(h.inbox.read())
    assert notes[-1] == ("heartbeat", "already_done")


def test_standalone_tasks_are_stopped_after_the_grace_so_the_drain_can_finish(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=0, standalone_tasks=1)
    victim = fleet.instances[0]
    standalone = [t["taskArn"] for t in tasks_on(fleet, victim) if not t.get("group", "").startswith("service:")]
    assert standalone, "the fleet seeds a standalone task on the first instance"
    h = drain(STANDALONE_TASK_GRACE_SECONDS="0")
    event = fired(h, fleet, victim)
    stopped = fleet.ecs.describe_tasks(cluster=fleet.cluster_name, tasks=standalone)["tasks"]
    assert all(t["lastStatus"] == "STOPPED" for t in stopped)
    assert "standalone" in stopped[0]["stoppedReason"]
    h.check()
    assert action_of(fleet, event)["status"] == "completed"
    assert ("stop-task", "warning") in by_action(h.inbox.read())


def test_standalone_tasks_are_waited_for_when_configured(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=0, standalone_tasks=1)
    h = drain(STANDALONE_TASKS="wait", STANDALONE_TASK_GRACE_SECONDS="0")
    event = fire_lifecycle(fleet.endpoint, fleet, fleet.instances[0])
    h.send(event)
    h.check(times=3)
    assert action_of(fleet, event)["status"] == "active"
    assert all(t["lastStatus"] == "RUNNING" for t in tasks_on(fleet, fleet.instances[0]))
    stop_tasks(fleet, fleet.instances[0])  # the job finishes by itself
    h.check()
    assert action_of(fleet, event)["status"] == "completed"


def test_past_the_drain_deadline_the_instance_is_released_with_a_warning(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    h = drain(DRAIN_TIMEOUT_SECONDS="60")
    event = fired(h, fleet, fleet.instances[0], at=ago(hours=1))
    action = action_of(fleet, event)
    assert (action["status"], action["result"]) == ("completed", "CONTINUE")
    notes = h.inbox.read()
    timed_out = [n for n in notes if n.context["action"] == "complete-lifecycle"]
    assert timed_out[0].context["outcome"] == "warning"
    assert "timed out" in timed_out[0].title
    assert len(json.loads(timed_out[0].context["details"])["tasks_left"]) == 1


def test_an_instance_that_is_no_container_instance_is_released_at_once(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=0)
    victim = fleet.instances[0]
    fleet.ecs.deregister_container_instance(
        cluster=fleet.cluster_name, containerInstance=fleet.container_instance_arn(victim), force=True
    )
    h = drain()
    event = fire_lifecycle(fleet.endpoint, fleet, victim)
    assert h.fn.invoke(event).ok
    assert action_of(fleet, event)["result"] == "CONTINUE"
    assert "not a container instance" in h.inbox.read()[0].title


def test_a_launch_is_admitted_only_once_the_instance_joins_its_cluster(drain, make_fleet):
    fleet = make_fleet(instances=1, services=["web"], tasks_per_instance=0)
    h = drain()
    event = fired(h, fleet, transition="launch")
    assert action_of(fleet, event)["status"] == "active", "not registered yet: wait"
    assert h.queued() == 1
    register_new_instances(fleet)
    h.check()
    action = action_of(fleet, event)
    assert (action["status"], action["result"]) == ("completed", "CONTINUE")
    (admitted,) = h.inbox.read()
    assert admitted.title.startswith("Admitted")


def test_a_launch_that_never_joins_is_abandoned(drain, make_fleet):
    fleet = make_fleet(instances=1, services=["web"], tasks_per_instance=0)
    h = drain(LAUNCH_TIMEOUT_SECONDS="60")
    event = fire_lifecycle(fleet.endpoint, fleet, transition="launch")
    event["time"] = ago(minutes=5)
    assert h.fn.invoke(event).ok
    assert action_of(fleet, event)["result"] == "ABANDON"
    (note,) = h.inbox.read()
    assert note.attributes["severity"] == "high" and note.context["outcome"] == "warning"


def test_a_spot_interruption_drains_at_once_and_only_once(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    h = drain()
    victim = fleet.instances[1]
    event = spot_event(victim, fleet.region)
    assert h.fn.invoke(event).ok
    assert ci_status(fleet, victim) == "DRAINING"
    assert h.fn.invoke(event).ok
    assert by_action(h.inbox.read()) == [("drain-host", "done"), ("drain-host", "already_done")]


@pytest.mark.parametrize("opt_out, action, host, notes", [
    # An unmanaged group is never touched. Its own hook on a group that never opted in is a
    # misconfiguration: a warning.
    ({"group_tagged": False}, {"status": "active"}, "ACTIVE", [("lifecycle", "warning")]),
    # A cluster not opted in is not drained, but the group is not held up: released without a
    # drain step (completing the action terminated the host).
    ({"managed": False}, {"result": "CONTINUE"}, None, [("complete-lifecycle", "warning")]),
], ids=["an_unmanaged_group_is_never_touched", "a_cluster_not_opted_in_is_not_drained_but_the_group_is_not_held_up"])
def test_not_opted_in(drain, make_fleet, opt_out, action, host, notes):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1, **opt_out)
    h = drain()
    event = fire_lifecycle(fleet.endpoint, fleet, fleet.instances[0])
    assert h.fn.invoke(event).ok
    assert {k: action_of(fleet, event)[k] for k in action} == action
    if host:
        assert ci_status(fleet, fleet.instances[0]) == host
    assert by_action(h.inbox.read()) == notes


def test_dry_run_decides_and_notifies_changes_nothing_in_ecs_and_never_strands_the_hook(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    # Another tool's hook keeps the host (and its container instance) after ours completes.
    put_lifecycle_hook(fleet.autoscaling, fleet.asg_name, "log-shipper-flush")
    h = drain(DRY_RUN="true")
    event = fire_lifecycle(fleet.endpoint, fleet, fleet.instances[0])
    fire_lifecycle(fleet.endpoint, fleet, fleet.instances[0], hook="log-shipper-flush")
    h.send(event)
    h.check()
    action = action_of(fleet, event)
    # Released at once with CONTINUE, as the group would without ecs-autopilot.
    assert (action["status"], action["result"], action["completed_by"]) == (
        "completed", "CONTINUE", "CompleteLifecycleAction")
    assert action["heartbeats"] == 0
    assert h.queued() == 0
    assert ci_status(fleet, fleet.instances[0]) == "ACTIVE", "no ECS write in a dry run"
    notes = h.inbox.read()
    assert by_action(notes) == [("drain-host", "planned")]
    assert "[dry run]" in notes[0].subject and notes[0].context["dry_run"] == "true"


def test_hook_test_notifications_are_ignored(drain):
    h = drain()
    h.send(hook_test_notification())
    (batch,) = h.check()
    assert batch.failed_ids == []
    assert h.inbox.read() == []


def test_a_malformed_event_fails_clearly_and_ends_in_the_dead_letter_queue(drain):
    h = drain()
    direct = h.fn.invoke({"detail-type": "EC2 Instance-terminate Lifecycle Action", "id": "x"})
    assert not direct.ok and direct.error["errorType"] == "BadEvent"
    h.send("{not json")
    for _ in range(3):
        h.check()
    assert [m["Body"] for m in h.dead_letters()] == ["{not json"]
    errors = [j for j in h.fn.json_logs() if j.get("level") == "ERROR"]
    assert errors and "malformed event" in errors[-1]["error"]
    assert h.fn.alive, "a bad event never crashes the function"


@pytest.mark.parametrize("poll", ["5000", "0"])
def test_a_bad_setting_fails_the_cold_start_naming_the_variable(emulator, function_binary, poll):
    with FunctionUnderTest.start(emulator, "instance-drain", topic="arn:aws:sns:us-east-1:123456789012:t",
                                 DRAIN_QUEUE_URL="http://q", DRAIN_POLL_SECONDS=poll) as fx:
        fn = fx.fn
        result = fn.invoke({"id": "x"}, timeout=10)
        assert not result.ok
        assert "DRAIN_POLL_SECONDS" in fn.output()


# --------------------------------------------------------------------------
# issue 12: a real account (own hooks, warm pools, faults, dead hosts, clocks)
# --------------------------------------------------------------------------


def test_an_action_of_another_hook_on_the_group_is_left_entirely_alone(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    put_lifecycle_hook(fleet.autoscaling, fleet.asg_name, "log-shipper-flush")
    h = drain()
    victim = fleet.instances[0]
    ours = fire_lifecycle(fleet.endpoint, fleet, victim)
    theirs = fired(h, fleet, victim, hook="log-shipper-flush")
    other = action_of(fleet, theirs)
    assert (other["status"], other["heartbeats"]) == ("active", 0)
    assert ci_status(fleet, victim) == "ACTIVE"
    assert h.inbox.read() == [] and h.queued() == 0
    assert ("lifecycle", "foreign-hook") in metrics(h.fn), "a debug log line and a metric only"
    # Our own hook's action is drained; the instance still waits for the other hook.
    h.send(ours)
    h.check()
    assert ci_status(fleet, victim) == "DRAINING"
    assert action_of(fleet, theirs)["heartbeats"] == 0


def test_with_ecs_managed_draining_on_the_group_its_own_hook_is_released_without_a_drain(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    put_lifecycle_hook(fleet.autoscaling, fleet.asg_name, "ecs-managed-draining-termination-hook",
                       heartbeat_timeout=3600)
    h = drain()
    victim = fleet.instances[0]
    ours = fire_lifecycle(fleet.endpoint, fleet, victim)
    ecs_hook = fire_lifecycle(fleet.endpoint, fleet, victim, hook="ecs-managed-draining-termination-hook")
    h.send(ours)
    h.check()
    assert ci_status(fleet, victim) == "ACTIVE", "ECS drains the host, not instance-drain"
    assert (action_of(fleet, ours)["status"], action_of(fleet, ours)["result"]) == ("completed", "CONTINUE")
    assert action_of(fleet, ecs_hook)["status"] == "active", "Auto Scaling still waits for ECS's hook"
    assert by_action(h.inbox.read()) == [("complete-lifecycle", "warning")]


def test_describe_lifecycle_hooks_reports_the_hooks_timeouts(make_fleet):
    fleet = make_fleet(instances=1, services=[], tasks_per_instance=0, heartbeat_timeout=300)
    hooks = fleet.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=fleet.asg_name)["LifecycleHooks"]
    assert {(x["HeartbeatTimeout"], x["GlobalTimeout"]) for x in hooks} == {(300, 30000)}


def test_a_hook_whose_heartbeat_lapses_takes_its_default_result(make_fleet):
    fleet = make_fleet(instances=2, services=[], tasks_per_instance=0, heartbeat_timeout=30)
    event = fire_lifecycle(fleet.endpoint, fleet, fleet.instances[0], "launch")
    advance_clock(fleet.endpoint, 31)
    action = action_of(fleet, event)
    assert (action["status"], action["result"], action["completed_by"]) == ("completed", "ABANDON", "HeartbeatTimeout")


def test_a_long_drain_keeps_its_hook_alive_while_time_passes(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1, heartbeat_timeout=60)
    h = drain()
    event = fire_lifecycle(fleet.endpoint, fleet, fleet.instances[0])
    h.send(event)
    for _ in range(4):
        h.check()
        advance_clock(fleet.endpoint, 25)  # under the 60 s heartbeat timeout per look
    action = action_of(fleet, event)
    assert action["status"] == "active" and action["heartbeats"] == 4


def test_a_drain_ends_at_the_hooks_global_timeout_with_a_warning(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1, heartbeat_timeout=30)
    h = drain()  # DRAIN_TIMEOUT_SECONDS 7200 > the hook's 3000 s global timeout
    event = fired(h, fleet, fleet.instances[0], at=ago(seconds=2995))
    action = action_of(fleet, event)
    assert (action["status"], action["result"]) == ("completed", "CONTINUE")
    (drained, done) = h.inbox.read()
    assert (done.context["action"], done.context["outcome"]) == ("complete-lifecycle", "warning")
    details = json.loads(done.context["details"])
    assert details["deadline"] == "hook_global_timeout" and len(details["tasks_left"]) == 1


def test_a_host_whose_agent_is_disconnected_is_released_at_once_naming_its_tasks(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=2)
    victim = fleet.instances[0]
    set_agent_connected(fleet, victim, False)
    h = drain()
    event = fired(h, fleet, victim)
    assert action_of(fleet, event)["result"] == "CONTINUE"
    assert h.queued() == 0
    notes = h.inbox.read()
    assert by_action(notes) == [("drain-host", "done"), ("complete-lifecycle", "warning")]
    assert len(json.loads(notes[1].context["details"])["tasks_left"]) == 2


def test_an_instance_launched_into_the_warm_pool_is_let_in_without_waiting_for_ecs(drain, make_fleet):
    fleet = make_fleet(instances=1, services=[], tasks_per_instance=0)
    h = drain()
    event = fire_lifecycle(fleet.endpoint, fleet, transition="launch", origin="EC2", destination="WarmPool")
    assert (event["detail"]["Origin"], event["detail"]["Destination"]) == ("EC2", "WarmPool")
    h.send(event)
    h.check()
    action = action_of(fleet, event)
    assert (action["status"], action["result"]) == ("completed", "CONTINUE")
    assert h.queued() == 0


def test_a_quarantined_host_caught_by_a_scale_in_is_held_not_drained(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    victim = fleet.instances[0]
    fleet.ec2.create_tags(Resources=[victim.ec2_instance_id], Tags=[{"Key": "ecs-autopilot:quarantine", "Value": "f-1"}])
    h = drain()
    event = fired(h, fleet, victim)
    assert ci_status(fleet, victim) == "ACTIVE", "a quarantined host is not drained"
    (held,) = h.inbox.read()
    assert (held.context["action"], held.attributes["severity"]) == ("hold", "high")
    assert "evidence" in held.title and "detach" in held.description
    h.check(times=2)
    action = action_of(fleet, event)
    assert action["status"] == "active" and action["heartbeats"] == 3
    assert h.queued() == 1
    # Completed by hand once the evidence is saved: the hold ends.
    fleet.autoscaling.complete_lifecycle_action(
        AutoScalingGroupName=fleet.asg_name, LifecycleHookName=fleet.terminate_hook,
        InstanceId=victim.ec2_instance_id, LifecycleActionResult="CONTINUE")
    h.check()
    assert h.queued() == 0
    assert by_action(h.inbox.read()) == [("hold", "already_done")]


def test_a_test_notification_inside_an_eventbridge_envelope_is_ignored(drain):
    h = drain()
    h.send({"version": "0", "id": "t", "detail-type": "EC2 Instance-launch Lifecycle Action",
            "source": "aws.autoscaling", "account": "123456789012", "time": "2024-06-12T20:30:00Z",
            "region": "us-east-1", "resources": [], "detail": hook_test_notification("g")})
    (batch,) = h.check()
    assert batch.failed_ids == [] and h.dead_letters() == []
    assert h.inbox.read() == []


def test_a_spot_warning_for_a_host_outside_managed_clusters_is_quiet(drain, make_fleet):
    fleet = make_fleet(instances=1, services=["web"], tasks_per_instance=1, managed=False, group_tagged=False)
    h = drain()
    h.send(spot_event(fleet.instances[0]))
    (batch,) = h.check()
    assert batch.failed_ids == []
    assert h.inbox.read() == []
    assert ("drain-host", "skipped") in metrics(h.fn), "a debug log line and a metric only"
    assert ci_status(fleet, fleet.instances[0]) == "ACTIVE"


def test_an_impaired_host_is_released_on_its_first_look_naming_its_tasks(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=2)
    victim = fleet.instances[0]
    held = sorted(t["taskArn"] for t in tasks_on(fleet, victim))
    set_status_checks(fleet, victim, system_status="impaired")
    h = drain()
    event = fired(h, fleet, victim)
    action = action_of(fleet, event)
    assert (action["status"], action["result"]) == ("completed", "CONTINUE")
    assert h.queued() == 0, "no second look is needed"
    notes = h.inbox.read()
    assert by_action(notes) == [("drain-host", "done"), ("complete-lifecycle", "warning")]
    details = notes[1].details
    assert sorted(details["tasks_left"]) == held
    assert "impaired" in details["reason"]


def test_a_stopped_host_is_released_on_its_first_look_naming_its_tasks(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    victim = fleet.instances[0]
    fleet.ec2.stop_instances(InstanceIds=[victim.ec2_instance_id])
    h = drain()
    event = fired(h, fleet, victim)
    assert action_of(fleet, event)["result"] == "CONTINUE"
    (_, released) = h.inbox.read()
    assert (released.action, released.outcome) == ("complete-lifecycle", "warning")
    assert "stopped" in released.details["reason"] and len(released.details["tasks_left"]) == 1


def test_a_service_with_no_room_to_replace_is_named_on_the_first_look(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web", "api"], tasks_per_instance=1)
    fleet.ecs.update_service(cluster=fleet.cluster_name, service="web",
                             deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 100})
    h = drain()
    event = fired(h, fleet, fleet.instances[0])
    assert action_of(fleet, event)["status"] == "active", "the drain goes on, up to its deadline"
    notes = h.inbox.read()
    assert by_action(notes) == [("drain-host", "done"), ("drain-host", "warning")]
    stuck = notes[1]
    assert stuck.details["services"] == ["web"], "api can move: not named"
    assert "maximumPercent 100" in stuck.details["reasons"]["web"]
    h.check()  # a re-check does not warn again
    assert h.inbox.read() == []


def _constrain(fleet, service, *, service_constraints=None, task_constraints=None):
    ecs = fleet.ecs
    if task_constraints:
        td = ecs.register_task_definition(
            family=f"{fleet.cluster_name}-{service}-placed",
            containerDefinitions=[{"name": "app", "image": "public.ecr.aws/nginx/nginx:1", "memory": 64}],
            placementConstraints=task_constraints,
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.update_service(cluster=fleet.cluster_name, service=service, taskDefinition=td)
    if service_constraints:
        ecs.update_service(cluster=fleet.cluster_name, service=service, placementConstraints=service_constraints)


def test_services_whose_placement_constraints_no_other_host_meets_are_named_on_the_first_look(drain, make_fleet):
    fleet = make_fleet(instances=3, services=["web", "api", "db", "cache", "batch"], tasks_per_instance=1)
    victim = fleet.instances[0]
    # Only the victim carries the custom attribute db's task definition asks for.
    fleet.ecs.put_attributes(cluster=fleet.cluster_name, attributes=[
        {"name": "stack", "value": "special", "targetId": fleet.container_instance_arn(victim)}])
    # web: one task per host (3 wanted), and only 2 other hosts remain.
    _constrain(fleet, "web", service_constraints=[{"type": "distinctInstance"}])
    # api: every host is an m5.large, the other two included: it can move.
    _constrain(fleet, "api", service_constraints=[
        {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ m5.* and attribute:ecs.os-type == linux"}])
    # db: its task definition wants stack == special, which no other host has.
    _constrain(fleet, "db", task_constraints=[{"type": "memberOf", "expression": "attribute:stack == special"}])
    # cache: an expression the drain can't judge (task groups) is never a claim.
    _constrain(fleet, "cache", service_constraints=[{"type": "memberOf", "expression": "task:group == service:db"}])
    # batch: in another zone list than every host's: no other host qualifies.
    _constrain(fleet, "batch", service_constraints=[
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone in [eu-west-1a, eu-west-1b]"}])
    h = drain()
    event = fired(h, fleet, victim)
    notes = h.inbox.read()
    assert by_action(notes) == [("drain-host", "done"), ("drain-host", "warning")]
    stuck = notes[1]
    assert stuck.details["services"] == ["batch", "db", "web"]
    reasons = stuck.details["reasons"]
    assert "distinctInstance" in reasons["web"] and "2 other" in reasons["web"]
    assert "stack == special" in reasons["db"]
    assert "eu-west-1a" in reasons["batch"]
    assert "`web`" in stuck.description and "`api`" not in stuck.description
    assert action_of(fleet, event)["status"] == "active" and h.queued() == 1


def test_a_heartbeat_that_finds_the_action_gone_with_tasks_left_warns_naming_them(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=2)
    # A second terminate hook keeps the instance (and its tasks) once ours has lapsed.
    put_lifecycle_hook(fleet.autoscaling, fleet.asg_name, "log-shipper-flush", heartbeat_timeout=3600)
    victim = fleet.instances[0]
    h = drain()
    event = fire_lifecycle(fleet.endpoint, fleet, victim)
    fire_lifecycle(fleet.endpoint, fleet, victim, hook="log-shipper-flush")
    h.send(event)
    h.check()
    h.inbox.read()
    expire_lifecycle_action(fleet.endpoint, event["detail"]["LifecycleActionToken"], fleet.region)
    h.check()  # the re-check's heartbeat finds no active action; two tasks still run
    assert h.queued() == 0
    (gone,) = h.inbox.read()
    assert (gone.action, gone.outcome) == ("heartbeat", "warning")
    assert sorted(gone.details["tasks_left"]) == sorted(t["taskArn"] for t in tasks_on(fleet, victim))
    assert len(gone.details["tasks_left"]) == 2


def test_a_scale_in_into_the_warm_pool_drains_and_the_host_comes_back_active(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    victim = fleet.instances[0]
    h = drain()
    into_pool = fired(h, fleet, victim, origin="AutoScalingGroup", destination="WarmPool")
    assert ci_status(fleet, victim) == "DRAINING", "drained like a terminate"
    assert action_of(fleet, into_pool)["status"] == "active"
    play_scheduler(fleet, stop_daemons=False)
    h.check()
    assert action_of(fleet, into_pool)["result"] == "CONTINUE"
    state = fleet.ec2.describe_instances(InstanceIds=[victim.ec2_instance_id])
    assert state["Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped", "kept, stopped, in the pool"
    h.inbox.read()
    # Out of the pool into the group: the host boots, is set ACTIVE again and admitted.
    out_of_pool = fire_lifecycle(fleet.endpoint, fleet, victim, "launch", origin="WarmPool",
                                 destination="AutoScalingGroup")
    h.send(out_of_pool)
    h.check()
    assert ci_status(fleet, victim) == "ACTIVE"
    assert action_of(fleet, out_of_pool)["result"] == "CONTINUE"
    assert [n.title.split(" ")[0] for n in h.inbox.read()][-1] == "Admitted"


def test_dry_run_admits_a_launch_at_once_without_waiting_for_ecs(drain, make_fleet):
    fleet = make_fleet(instances=1, services=["web"], tasks_per_instance=0)
    h = drain(DRY_RUN="true")
    event = fire_lifecycle(fleet.endpoint, fleet, transition="launch")  # never registers with ECS
    h.send(event)
    h.check()
    action = action_of(fleet, event)
    assert (action["status"], action["result"], action["heartbeats"]) == ("completed", "CONTINUE", 0)
    assert h.queued() == 0


def test_lifecycle_hook_names_chooses_the_hooks_it_owns(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    put_lifecycle_hook(fleet.autoscaling, fleet.asg_name, "team-a-drain")
    h = drain(LIFECYCLE_HOOK_NAMES="team-a-*,other-exact")
    victim = fleet.instances[0]
    default_named = fire_lifecycle(fleet.endpoint, fleet, victim)  # ecs-autopilot-drain: not listed
    ours = fire_lifecycle(fleet.endpoint, fleet, victim, hook="team-a-drain")
    h.send(default_named)
    h.check()
    assert action_of(fleet, default_named)["heartbeats"] == 0 and ci_status(fleet, victim) == "ACTIVE"
    assert h.inbox.read() == []
    h.send(ours)
    h.check()
    assert action_of(fleet, ours)["heartbeats"] == 1 and ci_status(fleet, victim) == "DRAINING"


def test_a_spot_stop_drains_and_says_how_to_reactivate_the_host(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    victim = fleet.instances[0]
    h = drain()
    event = spot_event(victim, fleet.region)
    event["detail"]["instance-action"] = "stop"
    assert h.fn.invoke(event).ok
    assert ci_status(fleet, victim) == "DRAINING"
    (note,) = h.inbox.read()
    assert any("update-container-instance" in s and "--status ACTIVE" in s for s in note.next_steps), note


def test_the_poll_is_kept_under_half_the_hooks_heartbeat_timeout(emulator, function_binary, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1, heartbeat_timeout=60)
    with AwsProxy(emulator.url) as proxy:
        h = FunctionUnderTest.start(emulator, "instance-drain", endpoint=proxy.url, DRAIN_POLL_SECONDS="900")
        try:
            h.send(fire_lifecycle(fleet.endpoint, fleet, fleet.instances[0]))
            h.check()
            (requeue,) = proxy.calls("sqs", "SendMessage")
            # min(900, max(5, 60 / 2 - 20)): the next look heartbeats within 30 s.
            assert int(requeue.params["DelaySeconds"]) == 10
        finally:
            h.fn.stop()


def test_a_drain_recheck_costs_at_most_four_aws_calls(emulator, function_binary, make_fleet):
    """The budget `make bench` measures (calls_per_drain_recheck), counted without timing."""
    fleet = make_fleet(instances=3, services=["web", "api"], tasks_per_instance=1, daemon=True)
    with AwsProxy(emulator.url) as proxy:
        h = FunctionUnderTest.start(emulator, "instance-drain", endpoint=proxy.url)
        try:
            h.send(fire_lifecycle(fleet.endpoint, fleet, fleet.instances[0]))
            h.check()  # the first look reads more (DescribeLifecycleHooks, the services, ...)
            assert "DescribeLifecycleHooks" in [c.operation for c in proxy.calls()]
            proxy.clear_calls()
            h.check()  # the re-check: nothing moved yet
            ops = [f"{c.service}:{c.operation}" for c in proxy.calls()]
            # The group read (its opt-in tag), the heartbeat, the tasks left, the re-queue.
            assert sorted(ops) == ["autoscaling:DescribeAutoScalingGroups", "autoscaling:RecordLifecycleActionHeartbeat",
                                   "ecs:DescribeTasks", "sqs:SendMessage"], ops
            assert len(ops) <= 4
        finally:
            h.fn.stop()


def test_an_instance_terminated_from_the_warm_pool_is_let_go_without_a_drain(drain, make_fleet):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    victim = fleet.instances[0]
    h = drain()
    event = fired(h, fleet, victim, origin="WarmPool", destination="EC2")
    assert action_of(fleet, event)["result"] == "CONTINUE"
    assert h.queued() == 0
    (note,) = h.inbox.read()
    assert (note.action, note.outcome) == ("complete-lifecycle", "done") and "warm pool" in note.title
