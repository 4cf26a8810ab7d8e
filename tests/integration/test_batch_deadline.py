"""SQS batches against the Lambda deadline, with the real binaries (issue 19, item 6).

The SQS-fed functions get up to 10 records per invocation. A timeout returns the whole
batch, and every return counts towards the queue's maxReceiveCount, so repeated timeouts
dead-letter events that were never tried. The batch loop therefore takes a record only
while the time left (the Runtime API's deadline) can fit one more record's budget (40 s,
the SDK's per-operation timeout) and hands the rest back as batch item failures. The
first record is always taken, so a batch always makes progress.

The fake Runtime API sets the deadline (``invoke(..., timeout=)``), so these run in
seconds, not minutes.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from harness.aws_proxy import AwsProxy
from harness.functions import SQS_FED, FunctionUnderTest
from harness.events import fixture

RECORD_BUDGET = 40  # seconds; shared::runtime::RECORD_BUDGET
BATCH = 10

# An event per function about a resource nobody has: handled quickly and successfully
# (a quiet skip), so every record that is taken succeeds and every handed-back one shows
# up as a batch item failure.
QUIET_EVENT = {
    "instance-drain": "autoscaling-terminate-lifecycle.json",
    "task-retirement": "retirement-ec2-instance-scheduled.json",
}


def sqs_batch(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{n}",
                "receiptHandle": f"r{n}",
                "body": json.dumps(e),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1",
            }
            for n, e in enumerate(events)
        ]
    }


def quiet_events(name: str) -> list[dict[str, Any]]:
    base = fixture(QUIET_EVENT[name])
    events = []
    for n in range(BATCH):
        e = copy.deepcopy(base)
        e["id"] = f"{e['id'][:-4]}{n:04d}"
        events.append(e)
    return events


def failed_ids(result: Any) -> list[str]:
    assert result.ok, result.error
    return [f["itemIdentifier"] for f in (result.body or {}).get("batchItemFailures") or []]


@pytest.fixture(params=sorted(SQS_FED))
def fx(request: pytest.FixtureRequest, emulator: Any) -> Any:
    proxy = AwsProxy(emulator.url).start()
    f = FunctionUnderTest.start(emulator, request.param, endpoint=proxy.url)
    f.proxy = proxy
    yield f
    f.stop()
    proxy.stop()


def test_a_batch_with_ample_time_is_taken_whole(fx: Any) -> None:
    result = fx.fn.invoke(sqs_batch(quiet_events(fx.name)), timeout=RECORD_BUDGET * 3)
    assert failed_ids(result) == [], fx.fn.output()[-3000:]


def test_records_that_cannot_fit_before_the_deadline_are_handed_back_untried(fx: Any) -> None:
    # Less than one record's budget left: the first record is still taken (progress),
    # the other nine go back to the queue without being started.
    result = fx.fn.invoke(sqs_batch(quiet_events(fx.name)), timeout=RECORD_BUDGET - 10)
    assert failed_ids(result) == [f"m{n}" for n in range(1, BATCH)], fx.fn.output()[-3000:]
    handed_back = [j for j in result.json_logs if j.get("message") == "handed back: no time for another record"]
    assert [j["message_id"] for j in handed_back] == [f"m{n}" for n in range(1, BATCH)]
    assert all(0 < j["remaining_ms"] < RECORD_BUDGET * 1000 for j in handed_back)


def test_a_slow_record_leaves_the_rest_for_the_next_batch(fx: Any) -> None:
    # The first AWS call hangs for one SDK attempt timeout (10 s) before the retry
    # succeeds: the first record takes ~10 s of a 45 s deadline, leaving less than a
    # record's budget, so the other nine are handed back instead of racing the timeout.
    fx.proxy.inject("timeout", times=1, delay=12)
    result = fx.fn.invoke(sqs_batch(quiet_events(fx.name)), timeout=RECORD_BUDGET + 5)
    assert failed_ids(result) == [f"m{n}" for n in range(1, BATCH)], fx.fn.output()[-3000:]
    assert result.duration_ms < (RECORD_BUDGET + 5) * 1000
