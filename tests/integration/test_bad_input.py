"""Bad input against each real binary: malformed JSON, wrong detail-type, missing fields,
wrong types, huge strings, unknown enum values, events for other accounts or regions,
and well-formed events about instances, tasks and clusters nobody has.

Each must get a clear error (BadEvent: not retryable; for SQS-fed functions a batch item
failure, so the record ends in the DLQ) or an explicit, logged skip. Never a panic, never
a crash, never an ECS / Auto Scaling / EC2 write (a notification is fine).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from harness.ami_rollout_helpers import next_region
from harness.aws_proxy import AwsProxy
from harness.functions import ALL, FunctionUnderTest
from harness.events import fixture
from harness.runtime_api import DEFAULT_ACCOUNT

HUGE = "x" * 200_000  # under SQS's 256 KiB, far over anything AWS puts in a field
MAX_LINE = 8_000  # an error echoing a huge field must not flood the logs with it
UNKNOWN = "UNKNOWN_VALUE_FROM_THE_FUTURE"

# Per function: fixtures to start from (about resources nobody has), and for each the
# detail field that is required, one to retype, one to blow up and one enum.
BASES: dict[str, list[tuple[str, dict[str, list[str]]]]] = {
    "instance-drain": [
        ("autoscaling-terminate-lifecycle.json", {"required": ["LifecycleHookName"], "retype": ["EC2InstanceId"],
                                                  "huge": ["EC2InstanceId"], "enum": ["LifecycleTransition"]}),
        ("ec2-spot-interruption.json", {"required": ["instance-id"], "retype": ["instance-id"],
                                        "huge": ["instance-id"], "enum": ["instance-action"]}),
    ],
    "task-retirement": [
        ("retirement-ecs-task-patching.json", {"required": ["eventArn"], "retype": ["startTime"],
                                               "huge": ["affectedEntities", 0, "entityValue"], "enum": ["eventTypeCategory"]}),
        ("retirement-ec2-instance-scheduled.json", {"required": ["startTime"], "retype": ["affectedEntities"],
                                                    "huge": ["eventTypeCode"], "enum": ["statusCode"]}),
    ],
    "ami-rollout": [
        ("ami-parameter-store-change.json", {"required": ["name"], "retype": ["operation"],
                                             "huge": ["name"], "enum": ["operation"]}),
        ("ami-instance-refresh-failed.json", {"required": ["InstanceRefreshId"], "retype": ["AutoScalingGroupName"],
                                              "huge": ["AutoScalingGroupName"], "enum": ["Status"]}),
    ],
    "guardduty-responder": [
        ("guardduty-reverse-shell-ec2.json", {"required": ["severity"], "retype": ["severity"],
                                              "huge": ["resource", "ecsClusterDetails", "name"],
                                              "enum": ["resource", "resourceType"]}),
    ],
}


@dataclass
class Case:
    name: str
    payload: Any  # a JSON value, or raw text (an SQS body that is not JSON)
    expect: str  # "bad": a BadEvent; "skip": a logged skip; "either": one or the other
    raw: bool = False  # payload is text to send as is, not JSON

    @property
    def body(self) -> str:
        return self.payload if self.raw else json.dumps(self.payload)


def _set(d: Any, path: list[Any], value: Any) -> None:
    for key in path[:-1]:
        d = d[key]
    d[path[-1]] = value


def _drop(d: Any, path: list[Any]) -> None:
    for key in path[:-1]:
        d = d[key]
    del d[path[-1]]


def cases(function: str, region: str) -> list[Case]:
    out = [
        Case("not json", "{not json", "bad", raw=True),
        Case("truncated json", '{"id": "1", "detail-type": "Scheduled Ev', "bad", raw=True),
        Case("a list", [1, 2, 3], "bad"),
        Case("a string", "just text", "bad"),
        Case("null", None, "bad"),
        Case("empty object", {}, "bad"),
    ]
    for name, fields in BASES[function]:
        base = fixture(name)
        base["region"], base["account"] = region, DEFAULT_ACCOUNT

        def variant(label: str, expect: str, change: Callable[[dict[str, Any]], None]) -> None:
            event = copy.deepcopy(base)
            change(event)
            out.append(Case(f"{name}: {label}", event, expect))

        variant("unknown resources", "skip", lambda e: None)
        variant("wrong detail-type", "bad", lambda e: e.update({"detail-type": "EC2 Instance State-change Notification"}))
        variant("no detail", "bad", lambda e: e.pop("detail"))
        variant("detail not an object", "bad", lambda e: e.update({"detail": "detail"}))
        variant("time not a time", "bad", lambda e: e.update({"time": 12}))
        variant("id not a string", "bad", lambda e: e.update({"id": {"n": 1}}))
        variant(f"missing {fields['required'][-1]}", "bad", lambda e: _drop(e["detail"], fields["required"]))
        variant(f"{fields['retype'][-1]} of the wrong type", "bad", lambda e: _set(e["detail"], fields["retype"], 42))
        variant(f"huge {fields['huge'][-1]}", "either", lambda e: _set(e["detail"], fields["huge"], HUGE))
        variant(f"unknown {fields['enum'][-1]}", "either", lambda e: _set(e["detail"], fields["enum"], UNKNOWN))
        variant("another account", "skip", lambda e: e.update({"account": "999999999999"}))
        variant("another region", "skip", lambda e: e.update({"region": "ap-northeast-1" if region != "ap-northeast-1" else "eu-west-1"}))
    return out


# What the functions log when an event is fine but there is nothing to act on.
EXPLAINED = ("ignored", "skipped", "checked", "no managed group", "no longer exists")
WRITES = ("ecs", "autoscaling", "ec2", "ssm")


def writes(proxy: AwsProxy) -> list[str]:
    return [f"{c.service}:{c.operation}" for c in proxy.mutations() if c.service in WRITES]


def verdict(result: Any, published: bool) -> str:
    """"bad" (a clear, non-retryable BadEvent), "skip" (succeeded and said why), or what
    went wrong."""
    logs = result.json_logs
    if not result.ok:
        if (result.error or {}).get("errorType") != "BadEvent":
            return f"error {result.error}"
        errors = [j for j in logs if j.get("level") == "ERROR" and "retryable" in j]
        if not errors or errors[-1]["retryable"] is not False or "malformed event" not in errors[-1].get("error", ""):
            return f"BadEvent without a clear error log line: {[str(j)[:300] for j in logs]}"
        if any(len(line.text) > MAX_LINE for line in result.logs):
            return f"a log line of {max(len(line.text) for line in result.logs)} characters"
        return "bad"
    said = [j for j in logs if any(w in str(j.get("message", "")).lower() for w in EXPLAINED)]
    # An event about resources that never opted in stays quiet: a debug line (dropped at
    # the default level) and a `skipped` metric, which is what says why here.
    quiet = [j for j in logs if "_aws" in j and j.get("outcome") == "skipped"]
    if said or quiet or published:
        return "skip"
    return f"succeeded silently: {[j.get('message') for j in logs]}"


@pytest.mark.parametrize("function", ALL)
def test_bad_input_gets_a_clear_error_or_a_logged_skip_and_never_an_action(emulator, function):
    region = next_region() if function == "ami-rollout" else emulator.region
    problems: list[str] = []
    table: list[tuple[str, str]] = []
    with AwsProxy(emulator.url) as proxy:
        fx = FunctionUnderTest.start(emulator, function, endpoint=proxy.url, region=region)
        try:
            all_cases = cases(function, region)
            for case in all_cases:
                proxy.clear_calls()
                result = fx.fn.invoke(case.body.encode())
                if case.raw:
                    # Lambda itself never hands a function invalid JSON; only the process
                    # surviving it matters here (the SQS body case below is the real one).
                    got = "bad" if not result.ok else "accepted invalid JSON"
                else:
                    got = verdict(result, bool(proxy.calls("sns", "Publish")))
                table.append((case.name, got))
                if got not in ("bad", "skip") or (case.expect != "either" and got != case.expect):
                    problems.append(f"{case.name}: expected {case.expect}, got {got}")
                if writes(proxy):
                    problems.append(f"{case.name}: wrote {writes(proxy)}")
                if not fx.fn.alive:
                    problems.append(f"{case.name}: the process died")
                    fx.fn.restart()
            if fx.queue is not None:
                problems += _through_the_queue(fx, proxy, all_cases, dict(table))
            if fx.panicked():
                problems.append("a panic in the output:\n" + fx.fn.output()[-3000:])
            assert fx.fn.alive, "a bad event never crashes the function"
        finally:
            fx.stop()
    print(f"\n{function}: {len(table)} bad inputs")
    for name, got in table:
        print(f"  {got:5} {name}")
    assert not problems, "\n".join(problems)


def _through_the_queue(fx: FunctionUnderTest, proxy: AwsProxy, all_cases: list[Case], direct: dict[str, str]) -> list[str]:
    """The same bodies as SQS records: each BadEvent is a batch item failure and ends in
    the DLQ after maxReceiveCount; each skip is deleted; nothing else stays behind."""
    assert fx.queue is not None
    proxy.clear_calls()
    bodies = {}
    for case in all_cases:
        bodies[case.body] = case.name
        fx.queue.send(case.body)
    outcome = fx.queue.deliver(fx.fn, max_batches=20)
    problems = []
    dead = {bodies.get(b, b[:60]) for b in outcome.dead_letters}
    expected_dead = {name for name in bodies.values() if direct[name] == "bad"}
    if dead != expected_dead:
        problems.append(f"via SQS: dead-lettered {sorted(dead)}, expected {sorted(expected_dead)}")
    if fx.queue.queued():
        problems.append(f"via SQS: {fx.queue.queued()} records left in the queue")
    if writes(proxy):
        problems.append(f"via SQS: wrote {writes(proxy)}")
    return problems
