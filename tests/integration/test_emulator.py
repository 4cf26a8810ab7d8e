"""The emulator (tests/emulator/launcher.py) and the harness behave as the
integration tests assume. Runs without any Rust binary."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from harness import fleet as fl
from harness.runtime_api import LambdaProcess
from harness.sqs_pump import drain_queue, pump

FAKE_CLIENT = Path(__file__).resolve().parent / "fake_runtime_client.py"
NEW_AMI = "ami-0fedcba9876543210"


def client_error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    resp = excinfo.value.response
    return resp["Error"]["Code"], resp["Error"]["Message"], resp["ResponseMetadata"]["HTTPStatusCode"]


def complete(asg, fleet, result="CONTINUE", hook=None, **target):
    """CompleteLifecycleAction on the fleet's group (its terminate hook unless told) for
    `target` (InstanceId and/or LifecycleActionToken)."""
    return asg.complete_lifecycle_action(AutoScalingGroupName=fleet.asg_name,
                                         LifecycleHookName=hook or fleet.terminate_hook,
                                         LifecycleActionResult=result, **target)


# --------------------------------------------------------------------------
# lifecycle actions
# --------------------------------------------------------------------------


def test_terminate_lifecycle_action_complete_once(emulator, make_fleet):
    fleet = make_fleet(instances=3, services=["web"])
    asg = emulator.client("autoscaling")
    ec2 = emulator.client("ec2")
    victim = fleet.instances[0].ec2_instance_id

    event = fl.fire_lifecycle(emulator.url, fleet, victim)
    assert event["detail-type"] == "EC2 Instance-terminate Lifecycle Action"
    assert event["source"] == "aws.autoscaling"
    assert event["time"].endswith("Z")
    detail = event["detail"]
    assert detail["EC2InstanceId"] == victim
    assert detail["AutoScalingGroupName"] == fleet.asg_name
    assert detail["LifecycleHookName"] == fleet.terminate_hook
    assert detail["LifecycleTransition"] == fl.TERMINATING
    assert (detail["Origin"], detail["Destination"]) == ("AutoScalingGroup", "EC2")
    assert event["resources"] == [fleet.asg_arn]

    states = {i["InstanceId"]: i["LifecycleState"] for i in fleet.group()["Instances"]}
    assert states[victim] == "Terminating:Wait"
    assert fleet.group()["DesiredCapacity"] == 2

    complete(asg, fleet, LifecycleActionToken=detail["LifecycleActionToken"])
    group = fleet.group()
    assert victim not in [i["InstanceId"] for i in group["Instances"]]
    assert len(group["Instances"]) == 2  # no replacement
    state = ec2.describe_instances(InstanceIds=[victim])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "terminated"
    assert asg.describe_auto_scaling_instances(InstanceIds=[victim])["AutoScalingInstances"] == []
    # ECS side: the container instance is gone and its tasks stopped
    ci = fleet.instances[0].container_instance_arn
    assert ci not in [c["containerInstanceArn"] for c in fleet.container_instances()]
    stopped = fleet.ecs.describe_tasks(cluster=fleet.cluster_name, tasks=fleet.tasks[ci])["tasks"]
    assert {t["lastStatus"] for t in stopped} == {"STOPPED"}
    assert stopped[0]["stoppedReason"] == f"Host EC2 (instance {victim}) terminated."

    with pytest.raises(ClientError) as e:
        complete(asg, fleet, InstanceId=victim)
    assert client_error(e) == ("ValidationError", f"No active Lifecycle Action found with instance ID {victim}", 400)

    with pytest.raises(ClientError) as e:
        complete(asg, fleet, LifecycleActionToken=detail["LifecycleActionToken"])
    assert client_error(e) == (
        "ValidationError",
        f"No active Lifecycle Action found with token {detail['LifecycleActionToken']}",
        400,
    )

    [action] = fl.lifecycle_actions(emulator.url, group=fleet.asg_name)
    assert action["status"] == "completed"
    assert action["result"] == "CONTINUE"
    assert action["completed_at"] and action["created_at"]


def test_heartbeat_then_complete_then_heartbeat_fails(emulator, make_fleet):
    fleet = make_fleet(instances=2, services=[])
    asg = emulator.client("autoscaling")
    victim = fleet.instances[1].ec2_instance_id
    token = fl.fire_lifecycle(emulator.url, fleet, victim)["detail"]["LifecycleActionToken"]
    common = {"AutoScalingGroupName": fleet.asg_name, "LifecycleHookName": fleet.terminate_hook}

    asg.record_lifecycle_action_heartbeat(**common, InstanceId=victim)
    asg.record_lifecycle_action_heartbeat(**common, LifecycleActionToken=token)
    [action] = fl.lifecycle_actions(emulator.url, token=token)
    assert (action["status"], action["heartbeats"]) == ("active", 2)
    assert action["last_heartbeat_at"]

    asg.complete_lifecycle_action(**common, InstanceId=victim, LifecycleActionResult="ABANDON")
    [action] = fl.lifecycle_actions(emulator.url, token=token)
    assert (action["status"], action["result"]) == ("completed", "ABANDON")

    with pytest.raises(ClientError) as e:
        asg.record_lifecycle_action_heartbeat(**common, InstanceId=victim)
    assert client_error(e) == ("ValidationError", f"No active Lifecycle Action found with instance ID {victim}", 400)
    with pytest.raises(ClientError) as e:
        asg.record_lifecycle_action_heartbeat(**common, LifecycleActionToken=token)
    assert client_error(e) == ("ValidationError", f"No active Lifecycle Action found with token {token}", 400)


def test_complete_without_any_action(emulator, make_fleet):
    fleet = make_fleet(instances=1, services=[])
    asg = emulator.client("autoscaling")
    iid = fleet.instances[0].ec2_instance_id
    with pytest.raises(ClientError) as e:
        complete(asg, fleet, InstanceId=iid)
    assert client_error(e) == ("ValidationError", f"No active Lifecycle Action found with instance ID {iid}", 400)
    # the action must match group + hook too
    fl.fire_lifecycle(emulator.url, fleet, iid)
    with pytest.raises(ClientError):
        complete(asg, fleet, hook=fleet.launch_hook, InstanceId=iid)


def test_launch_lifecycle_continue_and_abandon(emulator, make_fleet):
    fleet = make_fleet(instances=2, services=[])
    asg = emulator.client("autoscaling")

    event = fl.fire_lifecycle(emulator.url, fleet, transition="launch")
    assert event["detail-type"] == "EC2 Instance-launch Lifecycle Action"
    assert (event["detail"]["Origin"], event["detail"]["Destination"]) == ("EC2", "AutoScalingGroup")
    new_id = event["detail"]["EC2InstanceId"]
    states = {i["InstanceId"]: i["LifecycleState"] for i in fleet.group()["Instances"]}
    assert states[new_id] == "Pending:Wait"
    complete(asg, fleet, hook=fleet.launch_hook, LifecycleActionToken=event["detail"]["LifecycleActionToken"])
    states = {i["InstanceId"]: i["LifecycleState"] for i in fleet.group()["Instances"]}
    assert states[new_id] == "InService"
    assert fleet.group()["DesiredCapacity"] == 3

    event = fl.fire_lifecycle(emulator.url, fleet, transition="launch")
    other = event["detail"]["EC2InstanceId"]
    complete(asg, fleet, "ABANDON", hook=fleet.launch_hook, InstanceId=other)
    assert other not in fleet.group_instance_ids()
    assert fleet.group()["DesiredCapacity"] == 3


def test_control_endpoint_rejects_bad_requests(emulator, make_fleet):
    fleet = make_fleet(instances=1, services=[])
    with pytest.raises(fl.ControlError) as e:
        fl.fire_lifecycle(emulator.url, fleet, "i-00000000000000000")
    assert e.value.status == 404
    with pytest.raises(fl.ControlError) as e:
        fl.create_lifecycle_action(
            emulator.url, group=fleet.asg_name, hook=fleet.launch_hook,
            transition="terminate", instance_id=fleet.instances[0].ec2_instance_id,
        )
    assert e.value.status == 400


def test_heartbeat_timeout_applies_default_result(emulator, make_fleet):
    fleet = make_fleet(instances=2, services=[])
    event = fl.fire_lifecycle(emulator.url, fleet, transition="launch")
    action = fl.expire_lifecycle_action(emulator.url, event["detail"]["LifecycleActionToken"])
    assert (action["result"], action["completed_by"]) == ("ABANDON", "HeartbeatTimeout")
    assert event["detail"]["EC2InstanceId"] not in fleet.group_instance_ids()


# --------------------------------------------------------------------------
# instance refresh
# --------------------------------------------------------------------------


def test_instance_refresh_lifecycle(emulator, make_fleet):
    fleet = make_fleet(instances=2, services=["web"])
    asg = emulator.client("autoscaling")
    version = fl.new_ami_version(fleet, NEW_AMI)
    desired = {"LaunchTemplate": {"LaunchTemplateId": fleet.launch_template_id, "Version": version}}
    prefs = {"MinHealthyPercentage": 90, "InstanceWarmup": 60, "SkipMatching": True, "CheckpointPercentages": [50, 100]}

    rid = asg.start_instance_refresh(
        AutoScalingGroupName=fleet.asg_name, Strategy="Rolling", DesiredConfiguration=desired, Preferences=prefs
    )["InstanceRefreshId"]
    uuid.UUID(rid)

    with pytest.raises(ClientError) as e:
        asg.start_instance_refresh(AutoScalingGroupName=fleet.asg_name)
    assert client_error(e) == (
        "InstanceRefreshInProgress",
        "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
        400,
    )

    [r] = asg.describe_instance_refreshes(AutoScalingGroupName=fleet.asg_name)["InstanceRefreshes"]
    assert r["InstanceRefreshId"] == rid
    assert r["Status"] == "Pending"
    assert r["PercentageComplete"] == 0
    assert r["InstancesToUpdate"] == 2
    assert r["Preferences"] == prefs
    assert r["DesiredConfiguration"] == desired
    assert "EndTime" not in r and "StartTime" in r

    fl.set_refresh_status(emulator.url, fleet.asg_name, "InProgress", percentage=50, status_reason="Waiting for warm up")
    [r] = asg.describe_instance_refreshes(AutoScalingGroupName=fleet.asg_name)["InstanceRefreshes"]
    assert (r["Status"], r["PercentageComplete"], r["StatusReason"]) == ("InProgress", 50, "Waiting for warm up")
    assert r["InstancesToUpdate"] == 1

    old_ids = set(fleet.group_instance_ids())
    result = fl.set_refresh_status(emulator.url, fleet.asg_name, "Successful", status_reason=None)
    assert {x["old"] for x in result["replaced_instances"]} == old_ids
    [r] = asg.describe_instance_refreshes(AutoScalingGroupName=fleet.asg_name)["InstanceRefreshes"]
    assert (r["Status"], r["PercentageComplete"], r["InstancesToUpdate"]) == ("Successful", 100, 0)
    assert "StatusReason" not in r
    assert "EndTime" in r

    group = fleet.group()
    assert group["LaunchTemplate"]["Version"] == version
    new_ids = [i["InstanceId"] for i in group["Instances"]]
    assert len(new_ids) == 2 and not (set(new_ids) & old_ids)
    assert {i["LaunchTemplate"]["Version"] for i in group["Instances"]} == {version}
    images = {
        i["ImageId"]
        for res in fleet.ec2.describe_instances(InstanceIds=new_ids)["Reservations"]
        for i in res["Instances"]
    }
    assert images == {NEW_AMI}
    # the agent on the new instances registers them; the AMI attribute follows
    new = fl.register_new_instances(fleet)
    assert len(new) == 2
    attrs = {
        a["name"]: a.get("value")
        for a in fleet.ecs.describe_container_instances(
            cluster=fleet.cluster_name, containerInstances=[new[0].container_instance_arn]
        )["containerInstances"][0]["attributes"]
    }
    assert attrs["ecs.ami-id"] == NEW_AMI

    # a terminal refresh no longer blocks a new one; newest is listed first
    rid2 = asg.start_instance_refresh(AutoScalingGroupName=fleet.asg_name)["InstanceRefreshId"]
    listed = asg.describe_instance_refreshes(AutoScalingGroupName=fleet.asg_name)["InstanceRefreshes"]
    assert [x["InstanceRefreshId"] for x in listed] == [rid2, rid]
    page = asg.describe_instance_refreshes(AutoScalingGroupName=fleet.asg_name, MaxRecords=1)
    assert [x["InstanceRefreshId"] for x in page["InstanceRefreshes"]] == [rid2]
    page2 = asg.describe_instance_refreshes(AutoScalingGroupName=fleet.asg_name, MaxRecords=1, NextToken=page["NextToken"])
    assert [x["InstanceRefreshId"] for x in page2["InstanceRefreshes"]] == [rid]
    only = asg.describe_instance_refreshes(AutoScalingGroupName=fleet.asg_name, InstanceRefreshIds=[rid])
    assert [x["InstanceRefreshId"] for x in only["InstanceRefreshes"]] == [rid]


def test_cancel_instance_refresh(emulator, make_fleet):
    fleet = make_fleet(instances=1, services=[])
    asg = emulator.client("autoscaling")

    with pytest.raises(ClientError) as e:
        asg.cancel_instance_refresh(AutoScalingGroupName=fleet.asg_name)
    message = f"No in progress or pending Instance Refresh found for Auto Scaling group {fleet.asg_name}"
    assert client_error(e) == ("ActiveInstanceRefreshNotFound", message, 400)

    rid = asg.start_instance_refresh(AutoScalingGroupName=fleet.asg_name)["InstanceRefreshId"]
    assert asg.cancel_instance_refresh(AutoScalingGroupName=fleet.asg_name)["InstanceRefreshId"] == rid
    [r] = asg.describe_instance_refreshes(AutoScalingGroupName=fleet.asg_name)["InstanceRefreshes"]
    assert r["Status"] == "Cancelling"
    # still blocks a new refresh while cancelling
    with pytest.raises(ClientError) as e:
        asg.start_instance_refresh(AutoScalingGroupName=fleet.asg_name)
    assert client_error(e)[0] == "InstanceRefreshInProgress"
    with pytest.raises(ClientError) as e:
        asg.cancel_instance_refresh(AutoScalingGroupName=fleet.asg_name)
    assert client_error(e) == ("ActiveInstanceRefreshNotFound", message, 400)

    fl.set_refresh_status(emulator.url, fleet.asg_name, "Cancelled")
    [r] = asg.describe_instance_refreshes(AutoScalingGroupName=fleet.asg_name)["InstanceRefreshes"]
    assert r["Status"] == "Cancelled" and "EndTime" in r
    asg.start_instance_refresh(AutoScalingGroupName=fleet.asg_name)


def test_skip_matching_leaves_instances_launched_from_the_desired_version(emulator, make_fleet):
    """AWS compares launch template versions: a refresh half done (two instances
    replaced from version 2) and resumed with skip matching replaces only the rest."""
    fleet = make_fleet(instances=4, services=[])
    asg = emulator.client("autoscaling")
    version = fl.new_ami_version(fleet, NEW_AMI)
    desired = {"LaunchTemplate": {"LaunchTemplateId": fleet.launch_template_id, "Version": version}}
    asg.start_instance_refresh(AutoScalingGroupName=fleet.asg_name, DesiredConfiguration=desired,
                               Preferences={"SkipMatching": True})
    before = set(fleet.group_instance_ids("InService"))
    view = fl.set_refresh_status(emulator.url, fleet.asg_name, "InProgress", replace=2)
    assert len(view["replaced_instances"]) == 2
    replaced = set(fleet.group_instance_ids("InService")) - before
    group = fleet.group()
    assert {i["LaunchTemplate"]["Version"] for i in group["Instances"] if i["InstanceId"] in replaced} == {version}
    assert group["LaunchTemplate"]["Version"] == "$Latest"  # the group keeps its own until success
    asg.cancel_instance_refresh(AutoScalingGroupName=fleet.asg_name)
    fl.set_refresh_status(emulator.url, fleet.asg_name, "Cancelled")
    asg.start_instance_refresh(AutoScalingGroupName=fleet.asg_name, DesiredConfiguration=desired,
                               Preferences={"SkipMatching": True})
    resumed = asg.describe_instance_refreshes(AutoScalingGroupName=fleet.asg_name)["InstanceRefreshes"][0]
    assert resumed["InstancesToUpdate"] == 2
    fl.set_refresh_status(emulator.url, fleet.asg_name, "Successful")
    assert replaced <= set(fleet.group_instance_ids("InService"))
    # Without skip matching every instance is replaced.
    asg.start_instance_refresh(AutoScalingGroupName=fleet.asg_name, DesiredConfiguration=desired)
    assert asg.describe_instance_refreshes(AutoScalingGroupName=fleet.asg_name)["InstanceRefreshes"][0][
        "InstancesToUpdate"] == 4


def test_resolve_ssm_images_and_mixed_overrides_are_launched_as_aws_does(emulator, make_fleet):
    ssm, ec2 = emulator.client("ssm"), emulator.client("ec2")
    arm = "ami-0000000000000a641"
    arm_param = f"/emu/{uuid.uuid4().hex[:8]}/arm"
    ssm.put_parameter(Name=arm_param, Value=arm, Type="String")
    fleet = make_fleet(instances=0, services=[], max_size=4)
    arm_lt = ec2.create_launch_template(LaunchTemplateName=f"{fleet.cluster_name}-arm", LaunchTemplateData={
        "ImageId": f"resolve:ssm:{arm_param}", "InstanceType": "m7g.large"})["LaunchTemplate"]
    fleet.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=fleet.asg_name, DesiredCapacity=2, MinSize=2,
        MixedInstancesPolicy={"LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": fleet.launch_template_id, "Version": "$Latest"},
            "Overrides": [{"InstanceType": "m5.large"}, {"InstanceType": "m7g.large", "LaunchTemplateSpecification": {
                "LaunchTemplateId": arm_lt["LaunchTemplateId"], "Version": "$Latest"}}]}})
    ids = fleet.group_instance_ids()
    described = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    got = sorted((i["InstanceType"], i["ImageId"]) for r in described for i in r["Instances"])
    assert got == sorted([("m5.large", fleet.ami), ("m7g.large", arm)])


def test_start_instance_refresh_unknown_group(emulator, unique_name):
    asg = emulator.client("autoscaling")
    name = unique_name("nogroup")
    with pytest.raises(ClientError) as e:
        asg.start_instance_refresh(AutoScalingGroupName=name)
    code, message, status = client_error(e)
    assert (code, status) == ("ValidationError", 400)
    assert name in message
    assert asg.describe_instance_refreshes(AutoScalingGroupName=name)["InstanceRefreshes"] == []


def test_error_body_is_query_protocol_xml(emulator, make_fleet):
    """What the Rust SDK parses: <ErrorResponse><Error><Type/><Code/><Message/>."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fleet = make_fleet(instances=1, services=[])
    body = urllib.parse.urlencode({
        "Action": "CancelInstanceRefresh", "Version": "2011-01-01", "AutoScalingGroupName": fleet.asg_name,
    })
    req = AWSRequest(method="POST", url=emulator.url + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials("testing", "testing"), "autoscaling", "us-east-1").add_auth(req)
    http = urllib.request.Request(emulator.url + "/", data=body.encode(), headers=dict(req.headers), method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(http)
    assert e.value.code == 400
    xml = e.value.read().decode()
    assert xml.startswith("<ErrorResponse")
    assert "<Error><Type>Sender</Type><Code>ActiveInstanceRefreshNotFound</Code><Message>" in xml
    assert "<RequestId>" in xml


# --------------------------------------------------------------------------
# ECS
# --------------------------------------------------------------------------


def test_a_launch_template_version_retried_with_its_client_token_is_made_once(emulator, make_fleet):
    fleet = make_fleet(instances=1, services=())
    ec2 = fleet.ec2

    def create(token, image):
        return ec2.create_launch_template_version(
            LaunchTemplateId=fleet.launch_template_id, SourceVersion="1", ClientToken=token,
            LaunchTemplateData={"ImageId": image})["LaunchTemplateVersion"]["VersionNumber"]

    first = create("token-a", "ami-0aaaaaaaaaaaaaaaa")
    assert create("token-a", "ami-0aaaaaaaaaaaaaaaa") == first, "a retry returns the version already made"
    assert create("token-b", "ami-0bbbbbbbbbbbbbbbb") == first + 1
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=fleet.launch_template_id)["LaunchTemplateVersions"]
    assert len(versions) == first + 1


def test_tasks_stay_running_until_stopped(emulator, make_fleet):
    fleet = make_fleet(instances=1, services=["web"], tasks_per_instance=2)
    ecs = emulator.client("ecs")
    arns = fleet.tasks[fleet.instances[0].container_instance_arn]
    for _ in range(5):
        tasks = ecs.describe_tasks(cluster=fleet.cluster_name, tasks=arns)["tasks"]
        assert {t["lastStatus"] for t in tasks} == {"RUNNING"}
    ecs.stop_task(cluster=fleet.cluster_name, task=arns[0], reason="bye")
    ecs.stop_task(cluster=fleet.cluster_name, task=arns[0], reason="bye again")  # no-op
    t = ecs.describe_tasks(cluster=fleet.cluster_name, tasks=[arns[0]])["tasks"][0]
    assert (t["lastStatus"], t["desiredStatus"], t["stoppedReason"]) == ("STOPPED", "STOPPED", "bye")
    assert "stoppedAt" in t and t["stopCode"] == "UserInitiated"
    t2 = ecs.describe_tasks(cluster=fleet.cluster_name, tasks=[arns[1]])["tasks"][0]
    assert t2["lastStatus"] == "RUNNING" and t2["launchType"] == "EC2"
    ci = ecs.describe_container_instances(
        cluster=fleet.cluster_name, containerInstances=[fleet.instances[0].container_instance_arn]
    )["containerInstances"][0]
    assert ci["runningTasksCount"] == 1
    # ListTasks defaults to desiredStatus RUNNING, like AWS
    assert ecs.list_tasks(cluster=fleet.cluster_name)["taskArns"] == [arns[1]]
    assert ecs.list_tasks(cluster=fleet.cluster_name, desiredStatus="STOPPED")["taskArns"] == [arns[0]]
    svc = ecs.describe_services(cluster=fleet.cluster_name, services=["web"])["services"][0]
    assert (svc["desiredCount"], svc["runningCount"], svc["pendingCount"]) == (2, 1, 1)


def test_seeded_fleet_shape(emulator, make_fleet, unique_name):
    name = unique_name("shape")
    fleet = make_fleet(name=name, instances=3, services=["web", "worker"], tasks_per_instance=2,
                       daemon=True, standalone_tasks=2)
    ecs, asg = emulator.client("ecs"), emulator.client("autoscaling")

    cluster = ecs.describe_clusters(clusters=[name], include=["TAGS"])["clusters"][0]
    assert {"key": fl.MANAGED_TAG, "value": "true"} in cluster["tags"]
    assert cluster["registeredContainerInstancesCount"] == 3
    assert cluster["runningTasksCount"] == 3 * (2 * 2 + 1) + 2
    assert cluster["activeServicesCount"] == 3

    for filters in ([{"Name": "tag-key", "Values": [fl.CLUSTER_TAG]}],
                    [{"Name": f"tag:{fl.CLUSTER_TAG}", "Values": [name]}]):
        # Paged: an emulator shared by several test files holds more than a page of groups.
        pages = asg.get_paginator("describe_auto_scaling_groups").paginate(Filters=filters)
        groups = [g for page in pages for g in page["AutoScalingGroups"]]
        assert fleet.asg_name in [g["AutoScalingGroupName"] for g in groups]
    assert asg.describe_auto_scaling_groups(
        Filters=[{"Name": f"tag:{fl.CLUSTER_TAG}", "Values": [name + "-x"]}]
    )["AutoScalingGroups"] == []

    cis = fleet.container_instances()
    assert {c["ec2InstanceId"] for c in cis} == {i.ec2_instance_id for i in fleet.instances}
    for c in cis:
        attrs = {a["name"]: a.get("value") for a in c["attributes"]}
        assert attrs["ecs.ami-id"] == fleet.ami
        assert (c["status"], c["agentConnected"]) == ("ACTIVE", True)

    first = fleet.instances[0]
    on_first = fl.tasks_on(fleet, first)
    by_service = {}
    for t in on_first:
        by_service.setdefault(fl.service_of(t), []).append(t)
    assert len(by_service["web"]) == 2 and len(by_service["worker"]) == 2
    assert len(by_service["daemon"]) == 1
    assert len(by_service[None]) == 1  # standalone
    assert all(t["startedBy"].startswith("ecs-svc/") for t in by_service["web"])
    assert ecs.list_tasks(cluster=name, serviceName="web")["taskArns"].__len__() == 6
    daemon = ecs.describe_services(cluster=name, services=["daemon"])["services"][0]
    assert (daemon["schedulingStrategy"], daemon["desiredCount"], daemon["runningCount"]) == ("DAEMON", 3, 3)

    # drain the first instance and let "ECS" move the service tasks
    fl.set_draining(fleet, first)
    moves = fl.play_scheduler(fleet)
    assert len(moves["stopped"]) == 2 * 2  # replica tasks; standalone stays, so the daemon stays too
    assert len(moves["started"]) == 2 * 2
    remaining = fl.tasks_on(fleet, first)
    assert sorted(str(fl.service_of(t)) for t in remaining) == ["None", "daemon"]
    standalone = [t["taskArn"] for t in remaining if fl.service_of(t) is None]
    assert fl.stop_tasks(fleet, first, service=None, task_arns=standalone) == standalone
    moves = fl.play_scheduler(fleet)  # only the daemon task is left: ECS stops it last
    assert len(moves["stopped"]) == 1 and moves["started"] == []
    assert fl.tasks_on(fleet, first) == []
    web = ecs.describe_services(cluster=name, services=["web"])["services"][0]
    assert web["runningCount"] == web["desiredCount"] == 6


def test_list_tasks_does_not_mix_clusters_with_overlapping_names(emulator, unique_name):
    """moto matches ListTasks' cluster by substring; the emulator matches exactly."""
    base = unique_name("ovl")
    a = fl.seed_cluster(emulator.url, name=base, instances=1, services=["web"])
    b = fl.seed_cluster(emulator.url, name=base + "-2", instances=1, services=["web"])
    ecs = emulator.client("ecs")
    assert set(ecs.list_tasks(cluster=base)["taskArns"]) == set(a.tasks[a.instances[0].container_instance_arn])
    assert set(ecs.list_tasks(cluster=base + "-2")["taskArns"]) == set(b.tasks[b.instances[0].container_instance_arn])


def test_describe_tasks_answers_for_the_named_cluster_only(emulator, unique_name):
    """moto returned any cluster's task whose id was in a requested ARN; AWS (and the
    emulator) answer for the named cluster, and accept the old task/<id> ARN."""
    a = fl.seed_cluster(emulator.url, name=unique_name("dta"), instances=1, services=["web"])
    b = fl.seed_cluster(emulator.url, name=unique_name("dtb"), instances=1, services=["web"])
    arn = a.tasks[a.instances[0].container_instance_arn][0]
    prefix, _, rest = arn.partition(":task/")
    old_format = f"{prefix}:task/{rest.split('/')[-1]}"
    ecs = emulator.client("ecs")
    for named in (arn, old_format):
        assert [t["taskArn"] for t in ecs.describe_tasks(cluster=a.cluster_name, tasks=[named])["tasks"]] == [arn]
        assert ecs.describe_tasks(cluster=b.cluster_name, tasks=[named])["tasks"] == []


def test_list_container_instances_applies_the_ec2_instance_id_filter(emulator, unique_name):
    """moto ignored the filter and listed every container instance of the cluster."""
    fleet = fl.seed_cluster(emulator.url, name=unique_name("lcf"), instances=3, services=[])
    ecs = emulator.client("ecs")
    target = fleet.instances[1]
    found = ecs.list_container_instances(cluster=fleet.cluster_name, filter=f"ec2InstanceId == {target.ec2_instance_id}")
    assert found["containerInstanceArns"] == [target.container_instance_arn]
    none = ecs.list_container_instances(cluster=fleet.cluster_name, filter="ec2InstanceId == i-0000000000000000")
    assert none["containerInstanceArns"] == []
    assert len(ecs.list_container_instances(cluster=fleet.cluster_name)["containerInstanceArns"]) == 3


def test_a_forced_deployment_rolls_out_until_the_old_tasks_are_replaced(emulator, unique_name):
    """moto left every deployment IN_PROGRESS forever."""
    fleet = fl.seed_cluster(emulator.url, name=unique_name("ro"), instances=2, services=["web"])
    ecs = emulator.client("ecs")

    def state():
        [d] = ecs.describe_services(cluster=fleet.cluster_name, services=["web"])["services"][0]["deployments"]
        return d["rolloutState"]

    assert state() == "COMPLETED"
    ecs.update_service(cluster=fleet.cluster_name, service="web", forceNewDeployment=True)
    assert state() == "IN_PROGRESS"
    old = [t["taskArn"] for t in fl.all_tasks(fleet) if fl.service_of(t) == "web"]
    fl.stop_tasks(fleet, task_arns=old)
    assert state() == "IN_PROGRESS"  # fewer than desired run
    for inst in fleet.instances:
        fl.start_service_tasks(fleet, "web", inst, 1)
    assert state() == "COMPLETED"


def test_code_deploy_services_reject_a_forced_deployment_and_report_their_configuration(emulator, unique_name):
    fleet = fl.seed_cluster(emulator.url, name=unique_name("cd"), instances=1, services=["web"])
    ecs = emulator.client("ecs")
    ecs.create_service(cluster=fleet.cluster_name, serviceName="bg", taskDefinition=fleet.task_definitions["web"],
                       desiredCount=1, deploymentController={"type": "CODE_DEPLOY"},
                       deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 150})
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster=fleet.cluster_name, service="bg", forceNewDeployment=True)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    [bg, web] = ecs.describe_services(cluster=fleet.cluster_name, services=["bg", "web"])["services"]
    assert bg["deploymentConfiguration"] == {"minimumHealthyPercent": 50, "maximumPercent": 150}
    assert web["deploymentConfiguration"] == {"minimumHealthyPercent": 100, "maximumPercent": 200}


def test_update_auto_scaling_group_applies_capacity_rebalance(emulator, unique_name):
    """moto read CapacityRebalance only on CreateAutoScalingGroup."""
    fleet = fl.seed_cluster(emulator.url, name=unique_name("cr"), instances=1, services=[])
    asg = emulator.client("autoscaling")
    asg.update_auto_scaling_group(AutoScalingGroupName=fleet.asg_name, CapacityRebalance=True)
    [g] = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[fleet.asg_name])["AutoScalingGroups"]
    assert g["CapacityRebalance"] is True


# --------------------------------------------------------------------------
# harness: LambdaProcess and the SQS pump
# --------------------------------------------------------------------------


def fake_lambda(env: dict[str, str] | None = None, **kwargs) -> LambdaProcess:
    return LambdaProcess(sys.executable, env or {}, function_name="fake", args=[str(FAKE_CLIENT)], **kwargs)


def test_lambda_process_invoke_error_crash(emulator):
    with fake_lambda(emulator.env()) as fn:
        assert fn.wait_ready()
        r = fn.invoke({"echo": 42})
        assert r.ok and r.body == {"echo": 42, "env_region": "us-east-1"}
        assert any(j.get("message") == "event" and j["request_id"] == r.request_id for j in r.json_logs)
        assert any(j.get("message") == "cold start" for j in fn.json_logs())
        assert "plain text line on stderr" in fn.stderr_lines

        r = fn.invoke({"fail": "nope"})
        assert not r.ok
        assert r.error == {"errorType": "Handler.Failed", "errorMessage": "nope"}
        assert fn.invoke({"echo": 1}).ok  # the process survives a function error

        r = fn.invoke({"sleep": 2}, timeout=0.5)
        assert not r.ok and r.error["errorType"] == "Sandbox.Timedout"
        assert not fn.alive
        fn.restart()
        r = fn.invoke({"crash": 7})
        assert not r.ok and r.error["errorType"] == "Runtime.ExitError" and r.error["exitCode"] == 7
        assert fn.invoke({"echo": 1}).error["errorType"] == "Runtime.ExitError"


def test_lambda_process_auto_restart(emulator):
    with fake_lambda(emulator.env(), auto_restart=True) as fn:
        assert not fn.invoke({"crash": 1}).ok
        assert fn.invoke({"echo": "again"}).body["echo"] == "again"
        assert fn.starts == 2


def test_lambda_process_init_error(emulator):
    with fake_lambda({**emulator.env(), "FAKE_INIT_ERROR": "1"}) as fn:
        assert fn.wait_ready() is False
        fn.wait_exit()
        assert fn.exit_code == 3
        assert fn.init_error == {"errorType": "Config.Missing", "errorMessage": "CLUSTER_TAG is not set"}
        r = fn.invoke({"echo": 1})
        assert not r.ok
        assert r.error["errorType"] == "Runtime.InitError"
        assert r.error["initError"]["errorMessage"] == "CLUSTER_TAG is not set"


def _queue_with_dlq(sqs, unique_name, max_receive=2):
    dlq = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    q = sqs.create_queue(
        QueueName=unique_name("q"),
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}),
            "VisibilityTimeout": "30",
        },
    )["QueueUrl"]
    return q, dlq


def test_sqs_pump_partial_failures_and_dlq(emulator, unique_name):
    sqs = emulator.client("sqs")
    q, dlq = _queue_with_dlq(sqs, unique_name)
    for body in ("good-1", "bad", "good-2"):
        sqs.send_message(QueueUrl=q, MessageBody=body, MessageAttributes={"kind": {"DataType": "String", "StringValue": body}})

    with fake_lambda({**emulator.env(), "FAKE_FAIL_BODIES": json.dumps(["bad"])}) as fn:
        batches = pump(sqs, q, fn, max_batches=1)
        [b] = batches
        assert len(b.message_ids) == 3
        record = b.event["Records"][0]
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"].endswith(":" + q.rsplit("/", 1)[1])
        assert record["awsRegion"] == "us-east-1"
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert record["messageAttributes"]["kind"]["dataType"] == "String"
        assert record["md5OfBody"]
        bad_id = next(r["messageId"] for r in b.event["Records"] if r["body"] == "bad")
        assert b.failed_ids == [bad_id]
        assert sorted(b.deleted_ids) == sorted(set(b.message_ids) - {bad_id})

        [b2] = pump(sqs, q, fn)  # visible again at once, second receive
        assert b2.message_ids == [bad_id] and b2.failed_ids == [bad_id]
        assert b2.receive_counts[bad_id] == 2
        assert pump(sqs, q, fn) == []  # third receive moves it to the DLQ (maxReceiveCount 2)
    dead = drain_queue(sqs, dlq)
    assert [m["Body"] for m in dead] == ["bad"]


def test_sqs_pump_whole_batch_fails_on_invoke_error(emulator, unique_name):
    sqs = emulator.client("sqs")
    q, _ = _queue_with_dlq(sqs, unique_name, max_receive=5)
    sqs.send_message(QueueUrl=q, MessageBody="x")

    class Failing:
        def invoke(self, payload, timeout=None):
            from harness.runtime_api import InvokeResult

            return InvokeResult(ok=False, error={"errorType": "Boom", "errorMessage": "boom"})

    [b] = pump(sqs, q, Failing(), max_batches=1)
    assert b.failed_ids == b.message_ids and b.deleted_ids == []
    assert "Boom" in b.reason

    class BadIdentifier:
        def invoke(self, payload, timeout=None):
            from harness.runtime_api import InvokeResult

            return InvokeResult(ok=True, body={"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]})

    [b] = pump(sqs, q, BadIdentifier(), max_batches=1)
    assert b.failed_ids == b.message_ids and "itemIdentifier" in b.reason


def test_sqs_delay_seconds(emulator, unique_name):
    sqs = emulator.client("sqs")
    q = sqs.create_queue(QueueName=unique_name("delay"))["QueueUrl"]
    sqs.send_message(QueueUrl=q, MessageBody="later", DelaySeconds=1)
    assert sqs.receive_message(QueueUrl=q).get("Messages") is None
    started = time.monotonic()
    got = sqs.receive_message(QueueUrl=q, WaitTimeSeconds=3).get("Messages")
    assert got and got[0]["Body"] == "later"
    assert time.monotonic() - started < 3


def test_publish_recommended_ecs_ami(emulator):
    ssm = emulator.client("ssm")
    name = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended"
    before = ssm.get_parameter(Name=f"{name}/image_id")["Parameter"]
    assert before["Value"].startswith("ami-")  # moto ships a value
    fl.publish_ecs_ami(emulator.url, NEW_AMI)
    after = ssm.get_parameter(Name=f"{name}/image_id")["Parameter"]
    assert after["Value"] == NEW_AMI and after["Version"] == before["Version"] + 1
    blob = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    assert blob["image_id"] == NEW_AMI and "ecs_agent_version" in blob
    by_path = ssm.get_parameters_by_path(Path=name)["Parameters"]
    assert {p["Name"]: p["Value"] for p in by_path}[f"{name}/image_id"] == NEW_AMI


# --------------------------------------------------------------------------
# the README documents the emulator's control endpoints, and the test bed's facts
# --------------------------------------------------------------------------


def test_every_control_endpoint_is_documented_in_the_readme():
    import re

    emulator_dir = Path(__file__).resolve().parents[1] / "emulator"
    source = "\n".join(p.read_text() for p in sorted(emulator_dir.glob("*.py")))
    readme = (emulator_dir / "README.md").read_text()
    routes = {(r, m) for m, r in re.findall(r'\("(GET|POST)", "([a-z/-]+)"\): ', source)}
    assert {r for r, _ in routes} >= {"health", "lifecycle-actions", "clock", "container-instance", "instance-status"}
    undocumented = sorted(f"{m} /_autopilot/{r}" for r, m in routes
                          if not re.search(rf"### `{m} /_autopilot/{re.escape(r)}[`?]", readme))
    assert not undocumented, f"document these in tests/emulator/README.md: {undocumented}"


def test_status_checks_and_placement_facts_are_what_a_drain_reads(emulator, make_fleet):
    fleet = make_fleet(instances=1, services=["web"], tasks_per_instance=0)
    host = fleet.instances[0].ec2_instance_id
    fl.control(emulator.url, "POST", "/_autopilot/instance-status",
               {"region": fleet.region, "instance_id": host, "instance_status": "impaired"})
    (status,) = fleet.ec2.describe_instance_status(InstanceIds=[host], IncludeAllInstances=True)["InstanceStatuses"]
    assert (status["InstanceStatus"]["Status"], status["SystemStatus"]["Status"]) == ("impaired", "ok")
    with pytest.raises(fl.ControlError):
        fl.control(emulator.url, "POST", "/_autopilot/instance-status",
                   {"region": fleet.region, "instance_id": host, "system_status": "broken"})
    constraint = [{"type": "memberOf", "expression": "attribute:ecs.cpu-architecture == x86_64"}]
    fleet.ecs.create_service(cluster=fleet.cluster_name, serviceName="placed", desiredCount=0,
                             taskDefinition=fleet.task_definitions["web"], placementConstraints=constraint)
    (svc,) = fleet.ecs.describe_services(cluster=fleet.cluster_name, services=["placed"])["services"]
    assert svc["placementConstraints"] == constraint
    (ci,) = fleet.container_instances()
    assert {"name": "ecs.cpu-architecture", "value": "x86_64"} in ci["attributes"]


# --------------------------------------------------------------------------
# several accounts: STS AssumeRole as AWS answers it
# --------------------------------------------------------------------------


def test_assume_role_needs_the_role_and_its_trust_and_gives_credentials_of_the_roles_account(emulator):
    import boto3

    from harness import accounts as ac

    b = ac.new_account()
    arn = ac.role_arn(b, "ecs-autopilot-guardduty-responder")
    sts = emulator.client("sts")
    with pytest.raises(ClientError) as missing:
        sts.assume_role(RoleArn=arn, RoleSessionName="ecs-autopilot-guardduty-responder")
    code, message, status = client_error(missing)
    # AWS never says whether the role exists: the same AccessDenied as a trust refusal.
    assert (code, status) == ("AccessDenied", 403)
    assert message.endswith(f"is not authorized to perform: sts:AssumeRole on resource: {arn}")

    ac.create_member_role(emulator.url, b, "guardduty-responder", external_id="ext-1234")
    with pytest.raises(ClientError) as no_external_id:
        sts.assume_role(RoleArn=arn, RoleSessionName="hub")
    assert client_error(no_external_id)[0] == "AccessDenied"
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="hub", ExternalId="ext-1234")["Credentials"]
    as_b = boto3.client("ecs", endpoint_url=emulator.url, region_name=emulator.region,
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])
    cluster = as_b.create_cluster(clusterName=fl.unique("acct"))["cluster"]
    assert cluster["clusterArn"].split(":")[4] == b
    seen_by_b = ac.account_client(emulator.url, "ecs", emulator.region, b).list_clusters()["clusterArns"]
    assert cluster["clusterArn"] in seen_by_b
    assert cluster["clusterArn"] not in emulator.client("ecs").list_clusters()["clusterArns"]

    other = ac.new_account()
    ac.create_member_role(emulator.url, other, "guardduty-responder", trusted_account=ac.new_account())
    with pytest.raises(ClientError) as untrusted:
        sts.assume_role(RoleArn=ac.role_arn(other, "ecs-autopilot-guardduty-responder"), RoleSessionName="hub")
    assert client_error(untrusted)[0] == "AccessDenied"

    calls = ac.assume_role_calls(emulator.url, account=b)
    assert [(c["outcome"], c["reason"]) for c in calls] == [
        ("denied", "no such role"), ("denied", "trust policy"), ("allowed", None)]
    assert calls[-1]["external_id"] == "ext-1234" and calls[-1]["caller_account"] == fl.ACCOUNT
    assert ac.assume_role_calls(emulator.url, account=other)[0]["reason"] == "trust policy"
    counts = ac.assume_role_counts(emulator.url)
    assert counts[b] == 3 and counts[other] == 1


def test_a_fleet_seeded_in_another_account_lives_there_only(emulator):
    from harness import accounts as ac
    from harness.aws_proxy import AwsProxy

    b = ac.new_account()
    fleet = fl.seed_cluster(emulator.url, emulator.region, instances=1, services=["web"], account=b)
    assert fleet.cluster_arn.split(":")[4] == b and fleet.asg_arn.split(":")[4] == b
    assert fleet.cluster_arn not in emulator.client("ecs").list_clusters()["clusterArns"]
    event = fl.fire_lifecycle(emulator.url, fleet, fleet.instances[0])
    assert event["account"] == b
    assert fl.lifecycle_actions(emulator.url, fleet.region, account=b, token=event["detail"]["LifecycleActionToken"])
    assert fl.lifecycle_actions(emulator.url, fleet.region, token=event["detail"]["LifecycleActionToken"]) == []

    # The proxy tells which account a call's credentials act in.
    ac.create_member_role(emulator.url, b, name="probe")
    with AwsProxy(emulator.url) as proxy:
        session = ac.assumed_session(proxy.url, ac.role_arn(b, "probe"), emulator.region)
        session.client("ecs", endpoint_url=proxy.url).list_clusters()
        emulator_via_proxy = fl.client(proxy.url, "ecs", emulator.region)
        emulator_via_proxy.list_clusters()
        assert [(c.operation, c.account) for c in proxy.calls()] == [
            ("AssumeRole", fl.ACCOUNT), ("ListClusters", b), ("ListClusters", fl.ACCOUNT)]
        assert [c.params["RoleArn"] for c in proxy.assume_role_calls(b)] == [ac.role_arn(b, "probe")]


def test_an_organization_lists_its_accounts_each_with_an_access_role(emulator):
    from harness import accounts as ac

    org = ac.organization(emulator.url)
    assert org.management_account == fl.ACCOUNT
    assert ac.organization(emulator.url).id == org.id, "made once per emulator"
    (member,) = ac.add_org_accounts(emulator.url, org, 1, roles=["ami-rollout"])
    assert {member, fl.ACCOUNT} <= set(org.active_accounts(emulator.url))
    session = ac.assumed_session(emulator.url, ac.role_arn(member, "OrganizationAccountAccessRole"))
    ident = session.client("sts", endpoint_url=emulator.url).get_caller_identity()
    assert ident["Account"] == member
    roles = ac.account_client(emulator.url, "iam", "us-east-1", member).list_roles()["Roles"]
    assert "ecs-autopilot-ami-rollout" in {r["RoleName"] for r in roles}
