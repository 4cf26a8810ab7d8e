"""Logs and notifications never contain credentials, end to end.

Each function runs with a secret key and a session token that are unique markers, on a
clean run and on runs where its first AWS call keeps failing in the ways whose errors
are rendered with their debug form (a connection reset: a dispatch failure; an answer
lost: a response error; a server fault). No log line and no notification may contain a
marker, nor the signature or security-token headers that carry them.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.fault_paths import PATHS, Fault, Path, run_trial

# One path per function: together they make every kind of AWS call the suite makes.
FIRST_PATH = {p.function: p for p in reversed(PATHS)}
LEAKS = ("signature=", "credential=", "x-amz-security-token", "authorization")


BEST_EFFORT_WRITES = {
    "autoscaling:RecordLifecycleActionHeartbeat",
    "ec2:CreateSnapshots",
    "ec2:ModifyNetworkInterfaceAttribute",
}


def faults_for(path: Path, emulator) -> list[Fault]:
    clean = run_trial(emulator, path, Fault("clean"))
    first = next(f"{c.service}:{c.operation}" for c in clean.calls
                 if f"{c.service}:{c.operation}" not in BEST_EFFORT_WRITES)
    # The first write whose failure fails the event: best-effort writes (instance-drain's
    # heartbeat, guardduty-responder's evidence and isolation) end in a warning instead,
    # so their faults never reach the error path whose rendering this checks.
    write = next(f"{c.service}:{c.operation}" for c in clean.calls
                 if c.mutating and f"{c.service}:{c.operation}" not in BEST_EFFORT_WRITES)
    return [
        Fault("clean"),
        Fault("persistent", first, "reset"),
        Fault("persistent", first, "500"),
        Fault("persistent", write, "lost-response"),
    ]


@pytest.mark.parametrize("function", sorted(FIRST_PATH))
def test_no_secret_reaches_a_log_line_or_a_notification(emulator, function_binary, function):
    function_binary(function)
    path = FIRST_PATH[function]
    secret, token = f"SECRETKEY{uuid.uuid4().hex}", f"SESSIONTOKEN{uuid.uuid4().hex}"
    faults = faults_for(path, emulator)
    with ThreadPoolExecutor(len(faults)) as pool:
        trials = list(pool.map(
            lambda f: run_trial(emulator, path, f, AWS_SECRET_ACCESS_KEY=secret, AWS_SESSION_TOKEN=token), faults))
    problems = []
    for t in trials:
        assert t.calls, f"{t.fault}: no AWS call was made"
        texts = {"logs": t.output, "notifications": "\n".join(repr(n) for n in t.notifications)}
        for where, text in texts.items():
            for marker in (secret, token):
                if marker in text:
                    line = next(line for line in text.splitlines() if marker in line)
                    problems.append(f"{t.fault}: {where} contain a credential: {line[:400]}")
            lowered = text.lower()
            for header in LEAKS:
                if header in lowered:
                    line = next(line for line in lowered.splitlines() if header in line)
                    problems.append(f"{t.fault}: {where} mention {header!r}: {line[:400]}")
        # instance-drain re-queues a look that failed after its heartbeat, with the error
        # logged: that log line is where the fault is rendered.
        if t.fault.category == "persistent" and not t.delivery.failed_attempts and "re-queued" not in t.output:
            problems.append(f"{t.fault}: the fault never surfaced, so its rendering went untested")
        if t.fault.kind == "reset" and "DispatchFailure" not in t.output:
            problems.append(f"{t.fault}: no DispatchFailure (the SDK error's debug form) was logged")
    print(f"\n{function}: {len(trials)} runs checked for credentials")
    assert not problems, "\n".join(problems)
