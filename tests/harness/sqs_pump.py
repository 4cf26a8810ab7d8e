"""Lambda's SQS event source mapping, done by hand with boto3.

    batches = pump(sqs, queue_url, fn, max_batches=5)
    assert [b.failed_ids for b in batches] == [[]]

Per batch: ReceiveMessage (up to ``batch_size`` <= 10), build the
``aws:sqs`` event, invoke the function, then

* invoke succeeded: delete every message not named in the response's
  ``batchItemFailures`` (``itemIdentifier`` = messageId), following Lambda's
  ReportBatchItemFailures rules: a missing/null/empty list or an empty
  response means all succeeded; an ``itemIdentifier`` that is null, empty,
  or not a messageId of the batch, or a response that is not a JSON object,
  fails the whole batch;
* invoke failed (function error, crash, timeout): delete nothing.

Messages that failed are made visible again at once (visibility 0) unless
``reset_visibility=False``, so tests don't wait for the visibility timeout.
A queue's RedrivePolicy then moves them to the DLQ on the receive after
``maxReceiveCount`` (moto does this on ReceiveMessage, like SQS).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from .runtime_api import InvokeResult


@dataclass
class BatchResult:
    message_ids: list[str]
    failed_ids: list[str]
    deleted_ids: list[str]
    invoke: InvokeResult
    event: dict[str, Any]
    receive_counts: dict[str, int] = field(default_factory=dict)
    reason: str = ""  # why failures were decided ("function error", "invalid itemIdentifier", ...)

    @property
    def ok(self) -> bool:
        return self.invoke.ok and not self.failed_ids


def _queue_arn(sqs: Any, queue_url: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 - deliberate cache
    key = f"{sqs.meta.endpoint_url}|{queue_url}"
    if key not in cache:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        cache[key] = attrs["Attributes"]["QueueArn"]
    return cache[key]


def _message_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in (attrs or {}).items():
        entry: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType"),
        }
        if "StringValue" in value:
            entry["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            entry["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        out[name] = entry
    return out


def build_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS poller sends for ``messages`` (from ReceiveMessage)."""
    records = []
    for m in messages:
        record = {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": dict(m.get("Attributes") or {}),
            "messageAttributes": _message_attributes(m.get("MessageAttributes") or {}),
            "md5OfBody": m.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
        if m.get("MD5OfMessageAttributes"):
            record["md5OfMessageAttributes"] = m["MD5OfMessageAttributes"]
        records.append(record)
    return {"Records": records}


def decide_failures(result: InvokeResult, message_ids: list[str], report_batch_item_failures: bool = True) -> tuple[list[str], str]:
    """Which messages of the batch count as failed, and why."""
    if not result.ok:
        return list(message_ids), f"invoke failed: {(result.error or {}).get('errorType')}"
    if not report_batch_item_failures:
        return [], ""
    body = result.body
    if body is None or body == {}:
        return [], ""
    if not isinstance(body, dict):
        return list(message_ids), "response is not a JSON object"
    items = body.get("batchItemFailures")
    if not items:
        return [], ""
    if not isinstance(items, list):
        return list(message_ids), "batchItemFailures is not a list"
    failed = []
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or ident not in message_ids:
            return list(message_ids), f"invalid itemIdentifier {ident!r}"
        if ident not in failed:
            failed.append(ident)
    return failed, "batchItemFailures"


def pump_once(
    sqs: Any,
    queue_url: str,
    lambda_process: Any,
    *,
    batch_size: int = 10,
    wait: int = 0,
    invoke_timeout: float | None = None,
    report_batch_item_failures: bool = True,
    reset_visibility: bool = True,
) -> BatchResult | None:
    """One receive/invoke/delete round; None if the queue gave nothing."""
    resp = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max(1, min(batch_size, 10)),
        WaitTimeSeconds=wait,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages = resp.get("Messages") or []
    if not messages:
        return None
    region = sqs.meta.region_name
    event = build_event(messages, _queue_arn(sqs, queue_url), region)
    result = lambda_process.invoke(event, timeout=invoke_timeout)
    ids = [m["MessageId"] for m in messages]
    failed, reason = decide_failures(result, ids, report_batch_item_failures)
    handles = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
    succeeded = [i for i in ids if i not in failed]
    deleted: list[str] = []
    for chunk in _chunks(succeeded, 10):
        r = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": handles[i]} for n, i in enumerate(chunk)],
        )
        ok = {int(e["Id"]) for e in r.get("Successful", [])}
        deleted.extend(i for n, i in enumerate(chunk) if n in ok)
    if failed and reset_visibility:
        for chunk in _chunks(failed, 10):
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": handles[i], "VisibilityTimeout": 0}
                    for n, i in enumerate(chunk)
                ],
            )
    counts = {
        m["MessageId"]: int((m.get("Attributes") or {}).get("ApproximateReceiveCount", 0)) for m in messages
    }
    return BatchResult(
        message_ids=ids,
        failed_ids=failed,
        deleted_ids=deleted,
        invoke=result,
        event=event,
        receive_counts=counts,
        reason=reason,
    )


def pump(
    sqs: Any,
    queue_url: str,
    lambda_process: Any,
    max_batches: int = 10,
    wait: int = 0,
    *,
    stop_when_empty: bool = True,
    **options: Any,
) -> list[BatchResult]:
    """Run up to ``max_batches`` rounds of ``pump_once`` (``options``: its batch_size,
    invoke_timeout, report_batch_item_failures, reset_visibility); stops at the first empty
    receive (``stop_when_empty``). ``wait`` is ReceiveMessage's WaitTimeSeconds, so a
    delayed message (DelaySeconds) can be waited for with ``wait`` > delay."""
    batches: list[BatchResult] = []
    for _ in range(max_batches):
        batch = pump_once(sqs, queue_url, lambda_process, wait=wait, **options)
        if batch is None:
            if stop_when_empty:
                break
            continue
        batches.append(batch)
    return batches


def drain_queue(sqs: Any, queue_url: str, wait: int = 0) -> list[dict[str, Any]]:
    """Receive and delete everything currently visible (e.g. to inspect a DLQ)."""
    out = []
    while True:
        resp = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages") or []
        if not messages:
            return out
        out.extend(messages)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
