"""Helpers for the ami-rollout tests and demo: events AWS would send, a notification
inbox, AMI parameters, and an API-call counting proxy for the fleet-scale check.

Each ami-rollout test runs in its own region of the emulator: a scheduled check looks
at every managed group of the account and region, so groups other tests seeded in
us-east-1 must not be in view.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness import fleet as fl
from harness.notifications import Inbox, Notification as Note  # noqa: F401

PARAMETER_TAG = "ecs-autopilot:ami-parameter"
ROLLOUT_TAG = "ecs-autopilot:rollout"
RECOMMENDED = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended"

# us-east-1 is left to the other functions' tests.
_REGIONS = itertools.cycle(
    # Regions where moto has default subnets in zones a, b and c (the fleet uses them).
    [
        "us-west-2", "us-east-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1",
        "eu-north-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-2", "ap-south-1",
        "sa-east-1", "ap-northeast-3", "eu-south-1", "af-south-1", "me-south-1", "ap-east-1",
        "eu-central-2", "il-central-1", "ca-west-1", "ap-south-2", "eu-south-2",
        "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "me-central-1", "mx-central-1",
    ]
)


def next_region() -> str:
    return next(_REGIONS)


def fresh_region(endpoint: str) -> str:
    """The next region, with whatever earlier tests of this emulator left there opted out:
    the cycle wraps once a worker has run more tests than there are regions, and a
    leftover managed group (or its refresh in progress, which counts against the rollout
    budget) must not show in a test that reads the whole region."""
    region = next_region()
    asg = fl.client(endpoint, "autoscaling", region)
    for page in asg.get_paginator("describe_auto_scaling_groups").paginate():
        for group in page["AutoScalingGroups"]:
            tags = [t for t in group.get("Tags", []) if t["Key"] == "ecs-autopilot:cluster"]
            if tags:
                asg.delete_tags(Tags=[{"ResourceId": group["AutoScalingGroupName"], "ResourceType": "auto-scaling-group",
                                       "Key": t["Key"]} for t in tags])
    ecs = fl.client(endpoint, "ecs", region)
    arns = [a for page in ecs.get_paginator("list_clusters").paginate() for a in page["clusterArns"]]
    for i in range(0, len(arns), 100):
        for cluster in ecs.describe_clusters(clusters=arns[i:i + 100], include=["TAGS"])["clusters"]:
            if any(t["key"] == "ecs-autopilot:managed" for t in cluster.get("tags", [])):
                ecs.untag_resource(resourceArn=cluster["clusterArn"], tagKeys=["ecs-autopilot:managed"])
    return region


def ami(tag: str) -> str:
    """A well-formed, unique AMI id (`tag` is for people reading the test)."""
    return "ami-" + uuid.uuid4().hex[:17]


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------


def scheduled_event(region: str) -> dict[str, Any]:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": fl.ACCOUNT, "time": now_iso(), "region": region,
        "resources": [f"arn:aws:events:{region}:{fl.ACCOUNT}:rule/ami-rollout-schedule"], "detail": {},
    }


def window_guard_event(region: str) -> dict[str, Any]:
    """What AmiRolloutWindowGuardRule's input transformer delivers: a Scheduled Event
    whose detail is {"check": "window"}."""
    event = scheduled_event(region)
    event["resources"] = [f"arn:aws:events:{region}:{fl.ACCOUNT}:rule/ami-rollout-window-guard"]
    event["detail"] = {"check": "window"}
    return event


def window_around_now(opened_minutes_ago: int, closes_in_minutes: int) -> str:
    """A MAINTENANCE_WINDOW that opened `opened_minutes_ago` and closes in
    `closes_in_minutes` (UTC; a span past midnight belongs to the day it starts)."""
    now = time.time()
    start = time.gmtime(now - opened_minutes_ago * 60)
    end = time.gmtime(now + closes_in_minutes * 60)
    day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][start.tm_wday]
    end_text = f"{end.tm_hour:02d}:{end.tm_min:02d}"
    return f"{day} {start.tm_hour:02d}:{start.tm_min:02d}-{end_text}"


def parameter_event(region: str, name: str, operation: str = "Update") -> dict[str, Any]:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Parameter Store Change",
        "source": "aws.ssm", "account": fl.ACCOUNT, "time": now_iso(), "region": region,
        "resources": [f"arn:aws:ssm:{region}:{fl.ACCOUNT}:parameter{name if name.startswith('/') else '/' + name}"],
        "detail": {"operation": operation, "name": name, "type": "String", "description": ""},
    }


REFRESH_PHASES = {
    "succeeded": "EC2 Auto Scaling Instance Refresh Succeeded",
    "failed": "EC2 Auto Scaling Instance Refresh Failed",
    "cancelled": "EC2 Auto Scaling Instance Refresh Cancelled",
    "rollback-succeeded": "EC2 Auto Scaling Instance Refresh Rollback Succeeded",
}


def refresh_event(region: str, group: str, refresh_id: str, phase: str = "succeeded") -> dict[str, Any]:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": REFRESH_PHASES[phase],
        "source": "aws.autoscaling", "account": fl.ACCOUNT, "time": now_iso(), "region": region,
        "resources": [f"arn:aws:autoscaling:{region}:{fl.ACCOUNT}:autoScalingGroup:x:autoScalingGroupName/{group}"],
        "detail": {"InstanceRefreshId": refresh_id, "AutoScalingGroupName": group},
    }


def ami_release_sns_event(release: str = "2023.0.20240702") -> dict[str, Any]:
    """What the `ecs-optimized-amazon-ami-update` topic delivers to a subscribed function."""
    message = {"ECSAgent": {"ReleaseVersion": "1.84.0"},
               "ECSAmis": [{"ReleaseVersion": release, "OsType": "linux", "Regions": {}}]}
    topic = "arn:aws:sns:us-east-1:177427601217:ecs-optimized-amazon-ami-update"
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": f"{topic}:{uuid.uuid4()}",
        "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic,
                "Subject": "New ECS-optimized AMIs", "Message": json.dumps(message),
                "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "MessageAttributes": {}}}]}


# --------------------------------------------------------------------------
# notifications
# --------------------------------------------------------------------------


def rollout_env(emulator: Any, region: str, inbox: Inbox, **extra: str) -> dict[str, str]:
    env = {"NOTIFY_TOPIC_ARN": inbox.topic_arn, "AWS_REGION": region, "RUST_LOG": "info"}
    env.update(extra)
    return emulator.env(**env)


# --------------------------------------------------------------------------
# parameters, groups, refreshes
# --------------------------------------------------------------------------


def team_parameter(emulator: Any, region: str, value: str, name: str | None = None) -> str:
    """Create (or overwrite) a team AMI parameter; returns its name."""
    name = name or f"/team/{uuid.uuid4().hex[:12]}/ami"
    if (image := fl._image_in(value)) is not None:
        fl.register_image(emulator.url, image, region)  # a published AMI exists
    emulator.client("ssm", region).put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    return name


def publish_recommended(emulator: Any, region: str, image_id: str) -> None:
    """A new ECS-optimized AMI in the public parameters (JSON and image_id forms)."""
    value = {"image_id": image_id, "image_name": f"al2023-ami-ecs-hvm-{image_id}", "ecs_agent_version": "1.84.0"}
    fl.put_ssm_parameter(emulator.url, RECOMMENDED, json.dumps(value), region)
    fl.put_ssm_parameter(emulator.url, f"{RECOMMENDED}/image_id", image_id, region)


def refreshes(emulator: Any, region: str, group: str) -> list[dict[str, Any]]:
    return fl.instance_refreshes(emulator.url, region, group)


def template_versions(fleet: fl.Fleet) -> list[dict[str, Any]]:
    return fleet.ec2.describe_launch_template_versions(LaunchTemplateId=fleet.launch_template_id)[
        "LaunchTemplateVersions"
    ]


def set_template_image(fleet: fl.Fleet, image_id: str) -> str:
    """A new launch template version with another ImageId (the group follows $Latest)."""
    return str(fleet.ec2.create_launch_template_version(
        LaunchTemplateId=fleet.launch_template_id, SourceVersion="$Latest", LaunchTemplateData={"ImageId": image_id},
    )["LaunchTemplateVersion"]["VersionNumber"])


def set_group_tag(fleet: fl.Fleet, key: str, value: str) -> None:
    fleet.autoscaling.create_or_update_tags(Tags=[{
        "ResourceId": fleet.asg_name, "ResourceType": "auto-scaling-group", "Key": key, "Value": value,
        "PropagateAtLaunch": False}])


def complete_refresh(emulator: Any, fleet: fl.Fleet, status: str = "Successful", reason: str | None = None) -> dict[str, Any]:
    """Move the group's latest refresh to `status`; on success the emulator replaces the
    instances, and the new ones register in the cluster like ECS agents at boot."""
    view = fl.set_refresh_status(emulator.url, fleet.asg_name, status, region=fleet.region,
                                 **({"status_reason": reason} if reason is not None else {}))
    if status == "Successful":
        fl.register_new_instances(fleet)
    return view


def running_amis(fleet: fl.Fleet) -> Counter:
    return Counter(
        next((a["value"] for a in ci.get("attributes", []) if a["name"] == "ecs.ami-id"), None)
        for ci in fleet.container_instances()
    )


# --------------------------------------------------------------------------
# counting the API calls a check makes
# --------------------------------------------------------------------------


class CountingProxy:
    """An HTTP proxy in front of the emulator that counts AWS operations
    (`service:Operation`) on their way through. Point AWS_ENDPOINT_URL at `.url`."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.calls: Counter = Counter()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy._count(self.headers, body, self.path)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(proxy.target + self.path, data=body or None, method=self.command, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        status, data, rh = resp.status, resp.read(), resp.headers
                except urllib.error.HTTPError as e:
                    status, data, rh = e.code, e.read(), e.headers
                self.send_response(status)
                for k, v in rh.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _count(self, headers: Any, body: bytes, path: str) -> None:
        target = headers.get("X-Amz-Target")
        auth = headers.get("Authorization", "")
        service = auth.split("Credential=")[1].split("/")[3] if "Credential=" in auth else "?"
        if target:
            op = target.split(".")[-1]
        else:
            op = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", [path])[0]
        with self._lock:
            self.calls[f"{service}:{op}"] += 1

    def total(self) -> int:
        return sum(self.calls.values())

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
