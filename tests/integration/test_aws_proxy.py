"""The recording, fault-injecting proxy (tests/harness/aws_proxy.py), driven with boto3.

The fault and replay suites count on it: these tests pin that it names calls correctly,
forwards what it does not fault, and answers faults the way the SDKs classify them."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from harness.fleet import unique


def through(proxy, service, retries=0, read_timeout=60):
    return boto3.client(
        service,
        endpoint_url=proxy.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": retries + 1, "mode": "standard"}, read_timeout=read_timeout),
    )


def test_calls_are_named_by_service_and_operation_for_json_and_query_protocols(proxy, emulator):
    name = unique("px")
    through(proxy, "ecs").create_cluster(clusterName=name)
    through(proxy, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    through(proxy, "ec2").describe_instances(InstanceIds=[])
    assert [(c.service, c.operation) for c in proxy.calls()] == [
        ("ecs", "CreateCluster"),
        ("autoscaling", "DescribeAutoScalingGroups"),
        ("ec2", "DescribeInstances"),
    ]
    create, describe, _ = proxy.calls()
    assert create.params == {"clusterName": name} and create.mutating and create.status == 200
    assert describe.params["AutoScalingGroupNames.member.1"] == name and not describe.mutating
    assert [c.operation for c in proxy.mutations()] == ["CreateCluster"]
    assert emulator.client("ecs").describe_clusters(clusters=[name])["clusters"][0]["clusterName"] == name


@pytest.mark.parametrize(
    ("service", "kind", "code"),
    [
        ("ecs", "throttle", "ThrottlingException"),
        ("autoscaling", "throttle", "Throttling"),
        ("ec2", "throttle", "RequestLimitExceeded"),
        ("sns", "500", "InternalFailure"),
        ("ssm", "503", "ServiceUnavailable"),
    ],
)
def test_faults_answer_with_the_error_code_the_sdk_retries(proxy, service, kind, code):
    proxy.inject(kind, service=service, times=1)
    calls = {
        "ecs": lambda c: c.list_clusters(),
        "autoscaling": lambda c: c.describe_auto_scaling_groups(),
        "ec2": lambda c: c.describe_instances(),
        "sns": lambda c: c.list_topics(),
        "ssm": lambda c: c.describe_parameters(),
    }
    with pytest.raises(ClientError) as err:
        calls[service](through(proxy, service))
    assert err.value.response["Error"]["Code"] == code
    calls[service](through(proxy, service))  # a transient fault is spent after `times`
    assert [c.fault for c in proxy.calls()] == [kind, None]


def test_a_transient_fault_is_ridden_out_by_retries_and_a_persistent_one_is_not(proxy):
    proxy.inject("throttle", service="ecs", operation="ListClusters", times=2)
    through(proxy, "ecs", retries=3).list_clusters()
    assert [c.fault for c in proxy.calls()] == ["throttle", "throttle", None]
    proxy.clear_calls()
    proxy.inject("503", service="ecs", operation="ListClusters")
    with pytest.raises(ClientError):
        through(proxy, "ecs", retries=2).list_clusters()
    assert [c.fault for c in proxy.calls()] == ["503"] * 3


def test_a_lost_response_still_applies_the_call_and_a_reset_does_not(proxy, emulator):
    applied, dropped = unique("lost"), unique("reset")
    proxy.inject("lost-response", service="ecs", operation="CreateCluster", times=1)
    with pytest.raises(ConnectionClosedError):
        through(proxy, "ecs").create_cluster(clusterName=applied)
    proxy.inject("reset", service="ecs", operation="CreateCluster", times=1)
    with pytest.raises(ConnectionClosedError):
        through(proxy, "ecs").create_cluster(clusterName=dropped)
    found = emulator.client("ecs").describe_clusters(clusters=[applied, dropped])["clusters"]
    assert [c["clusterName"] for c in found if c.get("status") == "ACTIVE"] == [applied]


def test_a_timeout_holds_the_call_past_the_callers_deadline(proxy):
    proxy.inject("timeout", service="ecs", times=1, delay=2.0)
    with pytest.raises((ReadTimeoutError, ConnectionClosedError)):
        through(proxy, "ecs", read_timeout=0.5).list_clusters()
    assert proxy.calls()[0].fault == "timeout"


def test_unsigned_requests_pass_through_unrecorded(proxy):
    import urllib.request

    urllib.request.urlopen(f"{proxy.url}/_autopilot/health", timeout=5).read()
    assert proxy.calls() == []
