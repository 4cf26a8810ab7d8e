"""The Python baseline: instance-drain's terminate step written the way the AWS samples
for draining ECS container instances are (boto3, clients at module import, one handler).

On an `EC2 Instance-terminate Lifecycle Action` (direct, or in SQS records):

1. find the container instance of the EC2 instance in the group's cluster,
2. set it DRAINING (if it is not already),
3. list and describe the tasks still on it (daemon-service tasks don't block),
4. tasks left: RecordLifecycleActionHeartbeat and send the event back to the queue
   to look again later; none left: CompleteLifecycleAction CONTINUE.

It is the benchmark's yardstick, not a product: no notifications, no dry run, no
standalone-task policy, no timeouts.
"""

import json
import os

import boto3

ecs = boto3.client("ecs")
autoscaling = boto3.client("autoscaling")
sqs = boto3.client("sqs")

QUEUE_URL = os.environ["DRAIN_QUEUE_URL"]
POLL_SECONDS = int(os.environ.get("DRAIN_POLL_SECONDS", "30"))
CLUSTER_TAG = "ecs-autopilot:cluster"


def lambda_handler(event, context):
    if "Records" in event:
        for record in event["Records"]:
            drain(json.loads(record["body"]))
        return {"batchItemFailures": []}
    return drain(event)


def drain(event):
    detail = event["detail"]
    instance_id = detail["EC2InstanceId"]
    cluster = event.get("ecs-autopilot", {}).get("cluster") or cluster_of(detail["AutoScalingGroupName"])
    if cluster is None:
        return {"result": "unmanaged"}

    arns = ecs.list_container_instances(cluster=cluster, filter=f"ec2InstanceId == {instance_id}")[
        "containerInstanceArns"
    ]
    instances = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"] if arns else []
    instance = next((ci for ci in instances if ci["ec2InstanceId"] == instance_id), None)
    if instance is None:
        complete(detail)
        return {"result": "not-a-container-instance"}
    if instance["status"] != "DRAINING":
        ecs.update_container_instances_state(
            cluster=cluster, containerInstances=[instance["containerInstanceArn"]], status="DRAINING"
        )

    task_arns = ecs.list_tasks(cluster=cluster, containerInstance=instance["containerInstanceArn"])["taskArns"]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=task_arns)["tasks"] if task_arns else []
    blocking = [t for t in tasks if t["lastStatus"] != "STOPPED" and not is_daemon(cluster, t)]
    if not blocking:
        complete(detail)
        return {"result": "completed"}

    autoscaling.record_lifecycle_action_heartbeat(
        LifecycleHookName=detail["LifecycleHookName"],
        AutoScalingGroupName=detail["AutoScalingGroupName"],
        LifecycleActionToken=detail["LifecycleActionToken"],
        InstanceId=instance_id,
    )
    event["ecs-autopilot"] = {"cluster": cluster}
    sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps(event), DelaySeconds=POLL_SECONDS)
    return {"result": "draining", "tasks": len(blocking)}


def cluster_of(group_name):
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    tags = {t["Key"]: t["Value"] for g in groups for t in g.get("Tags", [])}
    return tags.get(CLUSTER_TAG)


_daemons = {}


def is_daemon(cluster, task):
    group = task.get("group", "")
    if not group.startswith("service:"):
        return False
    name = group[len("service:"):]
    if (cluster, name) not in _daemons:
        services = ecs.describe_services(cluster=cluster, services=[name])["services"]
        _daemons[(cluster, name)] = bool(services) and services[0].get("schedulingStrategy") == "DAEMON"
    return _daemons[(cluster, name)]


def complete(detail):
    try:
        autoscaling.complete_lifecycle_action(
            LifecycleHookName=detail["LifecycleHookName"],
            AutoScalingGroupName=detail["AutoScalingGroupName"],
            LifecycleActionToken=detail["LifecycleActionToken"],
            LifecycleActionResult="CONTINUE",
            InstanceId=detail["EC2InstanceId"],
        )
    except autoscaling.exceptions.ClientError as e:
        if "No active Lifecycle Action" not in str(e):
            raise
