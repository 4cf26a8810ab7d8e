"""Faults on every AWS call of every event path, through the recording, fault-injecting
proxy (harness.aws_proxy) in front of the emulator.

For each path (function + kind of event) a clean run is recorded first. Then, for each
AWS operation that run made, on a fresh fleet:

* **transient**: a throttle, a 500 and a 503 in a row (then `timeout` on one read per
  path): the SDK's retries ride them out; final state, notifications and writes are the
  clean run's.
* **persistent** (throttle, 500 or 503, rotating): the event fails every time, is
  redelivered (SQS: maxReceiveCount 2; async: Lambda's two retries) and ends in the DLQ;
  every failed attempt logs one JSON error line naming the operation, the AWS code and
  `retryable`; a `failed` notification says so. Then the dead letter is replayed with
  the fault gone, as an operator would: whatever was done before the failure is
  recognised or redone, and the final state is the clean run's.
* **SNS down** (persistent on `sns:Publish`: a server fault, and the topic's KMS key
  disabled), in every function: the notification is
  logged and counted (metric `notify`/`failed`), and that is all: the event completes
  at once (no retry, no dead letter) with the clean run's writes and final state.
* **lost-response** on each write (applied, answer dropped): the retry or redelivery
  treats it as done; the event completes with the clean run's final state.

Totals (events × faults, lost events, wrong actions) are printed and the zeros asserted.
Trials run concurrently (each has its own fleet, proxy and process): most of their time
is the SDK's backoff.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.fault_paths import CODES, PATHS, TRANSIENT, Fault, Trial, run_trial

WORKERS = 8


# --------------------------------------------------------------------------
# judging a trial against the clean run
# --------------------------------------------------------------------------


def same_notes(got: list[tuple[str, str]], clean: list[tuple[str, str]], loose: bool = False) -> bool:
    """Loose: a step retried after its answer was lost may report already_done, and a
    notification whose answer was lost may be sent twice."""
    if not loose:
        return Counter(got) == Counter(clean)
    norm = {(a, "done" if o == "already_done" else o) for a, o in got}
    return norm == {(a, "done" if o == "already_done" else o) for a, o in clean}


# Calls instance-drain treats as best effort: a heartbeat that fails is logged and the look
# goes on (it completes the action itself), and a notification never aborts the plan.
BEST_EFFORT = {"instance-drain": ("autoscaling:RecordLifecycleActionHeartbeat",)}


def absorbed(t: Trial) -> bool:
    """A persistent fault on a step the function treats as best effort (task-retirement's
    marker tag after the redeploy): the event completes and a warning says what is left."""
    if t.fault.category == "persistent" and t.delivery.completed and t.fault.op in BEST_EFFORT.get(t.path.function, ()):
        return True
    return t.fault.category == "persistent" and t.delivery.completed and any(o == "warning" for _, o in t.notes)


NOTIFY = "sns:Publish"


def notify_down(t: Trial, clean: Trial) -> tuple[list[str], bool, bool]:
    """SNS (or the topic's KMS key) down for good: logged and counted, never the event's
    failure, never a repeat of the work, never a dead letter by itself."""
    problems = ["panicked"] if t.panicked else []
    if not t.delivery.completed or t.delivery.dead_lettered or t.delivery.failed_attempts:
        problems.append(f"a notification that can't be sent failed the event: completed {t.delivery.completed}, "
                        f"failed attempts {t.delivery.failed_attempts}, dead-lettered {t.delivery.dead_lettered}")
    if not any("_aws" in j and (j.get("action"), j.get("outcome")) == ("notify", "failed") for j in t.logs):
        problems.append("the unsent notification is not counted (metric notify/failed)")
    if not any(j.get("level") == "ERROR" and "notification not sent" in str(j.get("message", "")) for j in t.logs):
        problems.append("the unsent notification is not logged as an error")
    extra = _writes(t.applied()) - _writes(clean.applied())
    if extra:
        problems.append(f"extra writes {dict(extra)}")
    wrong = t.state != clean.state
    if wrong:
        problems.append(f"final state {t.state} != clean {clean.state}")
    return problems, t.delivery.lost, wrong


def judge(t: Trial, clean: Trial) -> tuple[list[str], bool, bool]:
    """(problems, lost, wrong action)."""
    problems: list[str] = []
    if t.fault.op == NOTIFY and t.fault.category == "persistent":
        return notify_down(t, clean)
    if absorbed(t):
        return (["panicked"] if t.panicked else []), False, False
    if t.panicked:
        problems.append("panicked")
    lost = t.delivery.lost or (t.replay is not None and t.replay.lost)
    if lost:
        problems.append("event lost: neither completed nor dead-lettered")
    category = t.fault.category
    if category in ("transient", "timeout", "lost-response"):
        if not t.delivery.completed:
            problems.append(f"did not complete (dead letters: {len(t.delivery.dead_letters)})")
        if not same_notes(t.notes, clean.notes, loose=category == "lost-response"):
            problems.append(f"notifications {t.notes} != clean {clean.notes}")
        if category != "lost-response":
            extra = _writes(t.applied()) - _writes(clean.applied())
            if extra:
                problems.append(f"extra writes {dict(extra)}")
    else:  # persistent
        if not t.delivery.dead_lettered:
            problems.append("a persistent fault did not dead-letter the event"
                            + (" (it completed anyway)" if t.delivery.completed else ""))
        failures = t.delivery.failed_attempts
        expected = 2 if t.path.function in ("instance-drain", "task-retirement") else 3
        if t.delivery.dead_lettered and failures < expected:
            problems.append(f"{failures} failed attempts before the DLQ, expected {expected}")
        problems += _failure_logs(t)
        if "failed" not in {o for _, o in t.notes}:
            problems.append(f"no `failed` notification: {t.notes}")
        problems += _unreported(t)
        if t.replay is not None and not t.replay.completed:
            problems.append("the replayed dead letter did not complete")
    wrong = t.state != clean.state
    if wrong:
        problems.append(f"final state {t.state} != clean {clean.state}")
    return problems, lost, wrong


# Writes a later step can fail after, and how the notifications must name them then.
# (Other writes are each reported by their own step's notification before the next.)
REPORTED_AS = {"ec2:CreateLaunchTemplateVersion": "launch template version"}


def _unreported(t: Trial) -> list[str]:
    """A write that took effect before the event failed must be in a notification (when
    SNS itself is what fails, the error log line is all there can be)."""
    if t.fault.op.startswith("sns:"):
        return []
    first = t.notifications[: len(t.notes)]
    text = "\n".join(f"{n.title}\n{n.description}\n{n.context}" for n in first)
    return [f"{op} was done but no notification says so" for op in t.applied()
            if op in REPORTED_AS and op != t.fault.op and REPORTED_AS[op] not in text]


def _writes(c: Counter) -> Counter:
    return Counter({k: v for k, v in c.items() if not k.startswith(("sns:", "sqs:"))})


def _failure_logs(t: Trial) -> list[str]:
    """One JSON error line per failed attempt, naming the operation, the code, retryable."""
    service, operation = t.fault.op.split(":")
    lines = [j for j in t.logs if j.get("level") == "ERROR" and "retryable" in j]
    named = [j for j in lines if operation in str(j.get("error", ""))
             and any(code in str(j.get("error", "")) for code in CODES[t.fault.kind])]
    if len(named) < t.delivery.failed_attempts:
        return [f"{len(named)} error lines name {operation} and its code for {t.delivery.failed_attempts} failures: "
                f"{[j.get('error') for j in lines][:3]}"]
    if any(j.get("retryable") is not True for j in named):
        return [f"a throttle or server fault logged as not retryable: {named[0]}"]
    return []


# --------------------------------------------------------------------------
# the suite
# --------------------------------------------------------------------------


def plan(clean: Trial) -> list[Fault]:
    ops = list(dict.fromkeys(f"{c.service}:{c.operation}" for c in clean.calls))
    writes = [op for op in ops if not op.split(":")[1].startswith(("Describe", "List", "Get", "Receive"))]
    reads = [op for op in ops if op not in writes]
    faults = [Fault("transient", op, "throttle+500+503") for op in ops]
    faults += [Fault("persistent", op, TRANSIENT[n % 3]) for n, op in enumerate(ops)]
    faults += [Fault("lost-response", op, "lost-response") for op in writes]
    if reads:
        faults.append(Fault("timeout", reads[0], "timeout"))
    if NOTIFY in ops:  # the topic's KMS key disabled: not retryable, still only logged and counted
        faults.append(Fault("persistent", NOTIFY, "kms-disabled"))
    return faults


@pytest.fixture(scope="module")
def totals():
    table: Counter = Counter()
    yield table
    print("\n== fault totals ==")
    for key in sorted(table):
        print(f"  {key}: {table[key]}")


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_every_call_of_the_path_survives_transient_faults_and_dead_letters_persistent_ones(
    emulator, function_binary, path, totals
):
    function_binary(path.function)  # skips when not built
    clean = run_trial(emulator, path, Fault("clean"))
    assert clean.delivery.completed, f"the clean run failed: {[r.error for r in clean.delivery.invocations]}"
    assert clean.calls, "the clean run made no AWS call"
    faults = plan(clean)
    with ThreadPoolExecutor(WORKERS) as pool:
        trials = list(pool.map(lambda f: run_trial(emulator, path, f), faults))
    problems, lost, wrong = [], 0, 0
    for t in trials:
        p, is_lost, is_wrong = judge(t, clean)
        lost += is_lost
        wrong += is_wrong
        totals[f"trials {t.fault.category}"] += 1
        totals["persistent faults absorbed with a warning"] += absorbed(t)
        problems += [f"{t.fault}: {x}" for x in p]
    totals["events"] += len(trials) + 1
    totals["lost events"] += lost
    totals["wrong actions"] += wrong
    ops = sorted({f.op for f in faults})
    print(f"\n{path.name}: {len(ops)} operations {ops}; {len(trials)} faulted runs; lost {lost}; wrong {wrong}")
    assert lost == 0 and wrong == 0 and not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# instance-drain: the heartbeat survives faults (issue 12)
# --------------------------------------------------------------------------


def _busy_drain(emulator, proxy):
    from harness import fleet as fl
    from harness.functions import FunctionUnderTest

    fleet = fl.seed_cluster(emulator.url, instances=2, services=["web"], tasks_per_instance=1)
    event = fl.fire_lifecycle(fleet.endpoint, fleet, fleet.instances[0])
    fx = FunctionUnderTest.start(emulator, "instance-drain", endpoint=proxy.url, region=fleet.region)
    return fleet, event, fx


def _heartbeats(proxy) -> list:
    return [c for c in proxy.calls("autoscaling", "RecordLifecycleActionHeartbeat") if c.status == 200]


def test_with_sns_down_a_drain_still_heartbeats_drains_and_checks_again(emulator, function_binary):
    from harness import fleet as fl
    from harness.aws_proxy import AwsProxy

    function_binary("instance-drain")
    with AwsProxy(emulator.url) as proxy:
        fleet, event, fx = _busy_drain(emulator, proxy)
        try:
            proxy.inject("503", service="sns", operation="Publish")
            fx.queue.send(event)
            fx.queue.deliver(fx.fn, max_batches=1)
            assert len(_heartbeats(proxy)) == 1, "the heartbeat went out"
            (action,) = fl.lifecycle_actions(fleet.endpoint, fleet.region, token=event["detail"]["LifecycleActionToken"])
            assert action["status"] == "active" and action["heartbeats"] == 1
            ci = fleet.ecs.describe_container_instances(
                cluster=fleet.cluster_name, containerInstances=[fleet.container_instance_arn(fleet.instances[0])])
            assert ci["containerInstances"][0]["status"] == "DRAINING", "a failed notification aborts nothing"
            assert fx.queue.queued() == 1, "the drain is checked again"
            assert proxy.calls("sns", "Publish"), "the notification was tried"
            failed = [j for j in fx.fn.json_logs() if "_aws" in j and (j.get("action"), j.get("outcome")) == ("notify", "failed")]
            assert failed, "a failed notification is counted"
        finally:
            fx.stop()


def test_with_ecs_down_during_a_recheck_the_heartbeat_still_goes_out_and_the_look_is_retried(emulator, function_binary):
    import json as _json

    from harness import fleet as fl
    from harness.aws_proxy import AwsProxy
    from harness.sqs_pump import drain_queue

    function_binary("instance-drain")
    with AwsProxy(emulator.url) as proxy:
        fleet, event, fx = _busy_drain(emulator, proxy)
        try:
            fx.queue.send(event)
            fx.queue.deliver(fx.fn, max_batches=1)  # the first look: drains, re-queues
            assert len(_heartbeats(proxy)) == 1
            proxy.inject("503", service="ecs", operation="DescribeTasks")
            out = fx.queue.deliver(fx.fn, max_batches=1)  # the re-check
            assert len(_heartbeats(proxy)) == 2, "the re-check's heartbeat went out before ECS failed"
            (action,) = fl.lifecycle_actions(fleet.endpoint, fleet.region, token=event["detail"]["LifecycleActionToken"])
            assert action["status"] == "active" and action["heartbeats"] == 2
            assert out.failed_attempts == 0 and not out.dead_lettered
            (again,) = drain_queue(fx.queue.sqs, fx.queue.url)
            assert _json.loads(again["Body"])["ecs-autopilot"]["failed_looks"] == 1, "re-queued to look again soon"
        finally:
            fx.stop()
