#!/usr/bin/env python3
"""`make bench`: cold start, warm per-event cost, AWS calls, artifact size, memory and
fleet scale of the four functions, side by side with a Python (boto3) baseline, in one
run against the emulator test bed.

    .venv/bin/python bench/run.py                       # what `make bench` runs
    .venv/bin/python bench/run.py --smoke               # tiny sizes, ~20 s (tests/integration/test_bench_smoke.py)
    .venv/bin/python bench/run.py --spawns 20 --events 20 --memory-events 1000 --fleet 20x10,200x100 --fanout 20x2,100x4

Prints a markdown report on stdout and writes JSON to bench/results/latest.json (--out).
Sections (--only cold,warm,memory,size,fleet,fanout):

* cold: spawn a release binary under a local Lambda Runtime API; time to its first poll
  for an event (init) and to its first response to a real event (init + first event).
  The limit row is a bare `lambda_runtime` binary (bench/bare-runtime) built in the same
  profile and spawned the same way: every init is also a ratio to it. Extra spawns with
  AUTOPILOT_INIT_TIMING=1 show where init goes (shared/src/coldstart.rs).
* warm: every event kind of every function through a counting proxy: latency, AWS calls
  per event by operation, and the process's own CPU per event (user + system, read from
  /proc around each event, so the proxy's and the emulator's work never counts). The
  limit row is the bare runtime's CPU per event, measured the same way; each kind also
  shows its CPU per AWS call above it.
* memory: peak RSS (VmHWM) after --memory-events cheap, real events.
* size: the zipped arm64 `bootstrap` that `cargo lambda build --release --arm64` makes.
* fleet: ami-rollout's scheduled check over GROUPSxINSTANCES fleets.
* fanout: ami-rollout in hub mode (issue 16) over ACCOUNTSxREGIONS: the scheduled check
  fans out one message per (account, Region), then one warm process takes the fan-out
  queue to the end (each message a scoped check, a drifted group in one member account per
  Region gets its refresh); wall time of both and the AssumeRole count (one per account
  reached through a member role is the target: the members, and the hub's own account
  when a Region is not the hub's).

The baseline (bench/baseline/) is instance-drain's terminate step in Python with boto3,
run by a minimal Runtime API loop, on the same events, emulator and proxy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
import uuid
import zipfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from harness import accounts as ac  # noqa: E402
from harness import fleet as fl  # noqa: E402
from harness.ami_rollout_helpers import (  # noqa: E402
    PARAMETER_TAG, complete_refresh, fresh_region, next_region, refreshes, team_parameter,
)
from harness.aws_proxy import AwsProxy  # noqa: E402
from harness.emulator import EmulatorProcess  # noqa: E402
from harness.events import (  # noqa: E402
    MEDIUM_FINDING, ami, closed_window, ec2_retirement_event, ecs_retirement_event, finding_event,
    parameter_event, refresh_event, scheduled_event, spot_event,
)
from harness.guardduty_responder_helpers import service_task_on  # noqa: E402
from harness.functions import FunctionUnderTest  # noqa: E402
from harness.runtime_api import LambdaProcess  # noqa: E402
from harness.sqs_pump import drain_queue, pump  # noqa: E402

FUNCTIONS = ["instance-drain", "ami-rollout", "guardduty-responder", "task-retirement"]
BASELINE = "python-baseline"
LIMIT = "bare-runtime"
BASELINE_DIR = REPO / "bench" / "baseline"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")

TARGETS = {
    "cold_start_ratio": 20.0,  # baseline init / instance-drain init, at least
    "zip_mb": 4.0,  # zipped arm64 bootstrap, at most
    "peak_rss_mb": 32.0,  # over the memory run, at most
    "calls_per_drain_recheck": 4,  # AWS calls, at most
    "init_vs_limit": 3.0,  # each function's init median / the bare runtime's, at most
    "cpu_ms_per_event": 1.0,  # CPU per event, at most, plus ...
    "cpu_ms_per_call": 0.2,  # ... this much per AWS call of the event
}
INIT_PHASES = ["tracing", "config", "aws_config", "clients"]


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "p90": round(pct(values, 90), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "n": len(values),
    }


# --------------------------------------------------------------------------
# the functions under test
# --------------------------------------------------------------------------


class Subject:
    """A function to run: a Rust binary, or the Python baseline under its bootstrap."""

    def __init__(self, name: str, path: Path, args: list[str] | None = None) -> None:
        self.name, self.path, self.args = name, path, list(args or [])

    def process(self, emulator: EmulatorProcess, env: dict[str, str], start: bool = True) -> LambdaProcess:
        """Its process, started as every test starts a function (harness.functions), on
        the topic and queue ``env`` names."""
        return FunctionUnderTest.start(emulator, self.name, binary=self.path, args=self.args, topic=env.get("NOTIFY_TOPIC_ARN", ""),
                                       start=start, **env).fn


def find_binaries(smoke: bool) -> tuple[dict[str, Subject], Subject, str]:
    """Release binaries (debug ones too in a smoke run when release ones are missing), and
    the bare runtime of the same profile."""
    profiles = ["release", "debug"] if smoke else ["release"]
    for profile in profiles:
        paths = {name: TARGET / profile / name for name in [*FUNCTIONS, LIMIT]}
        if all(p.is_file() for p in paths.values()):
            subjects = {name: Subject(name, paths[name]) for name in FUNCTIONS}
            subjects[BASELINE] = Subject(BASELINE, Path(sys.executable), [str(BASELINE_DIR / "bootstrap.py")])
            return subjects, Subject(LIMIT, paths[LIMIT]), profile
    raise BenchError(
        f"function binaries not found in {TARGET}/{'{release,debug}' if smoke else 'release'}: "
        "run `cargo build --release --workspace --bins` (make bench does)"
    )


class Bed:
    """The emulator, the counting proxy and what every scenario shares."""

    def __init__(self, emulator: EmulatorProcess, proxy: AwsProxy, subjects: dict[str, "Subject"]) -> None:
        self.emulator, self.proxy, self.subjects = emulator, proxy, subjects
        self.url = emulator.url
        self.region = emulator.region
        self.steady: dict[str, tuple[dict[str, str], str, dict[str, Any]]] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        return self.emulator.client(service, region)

    def topic(self, region: str | None = None) -> str:
        return self.client("sns", region).create_topic(Name=f"bench-{uuid.uuid4().hex[:10]}")["TopicArn"]

    def queue(self, region: str | None = None) -> str:
        # The bench reads re-queued checks itself: the emulator hands them over at once
        # (DRAIN_POLL_SECONDS is at least 5; the delay is not what is measured).
        return self.client("sqs", region).create_queue(
            QueueName=f"bench-{uuid.uuid4().hex[:10]}", tags={"emulator:skip-delays": "true"})["QueueUrl"]

    def env(self, proxied: bool, **extra: str) -> dict[str, str]:
        if proxied:
            extra["AWS_ENDPOINT_URL"] = self.proxy.url
        return self.emulator.env(**extra)


# --------------------------------------------------------------------------
# scenarios: per function, the env it runs with and the events it is given
# --------------------------------------------------------------------------


def drain_env(bed: Bed) -> dict[str, str]:
    return {"NOTIFY_TOPIC_ARN": bed.topic(), "DRAIN_QUEUE_URL": bed.queue(), "DRAIN_POLL_SECONDS": "5"}


def drain_fleet(bed: Bed, victims: int) -> fl.Fleet:
    """A busy cluster: two replica services and a daemon, two spare hosts for moved tasks."""
    return fl.seed_cluster(
        bed.url, bed.region, instances=victims + 2, services=["web", "api"], tasks_per_instance=1, daemon=True,
        max_size=victims + 10,
    )


def requeued(bed: Bed, queue_url: str, instance_ids: list[str]) -> list[dict[str, Any]]:
    """The events the function sent back to its queue, in the order of ``instance_ids``."""
    bodies = [json.loads(m["Body"]) for m in drain_queue(bed.client("sqs"), queue_url)]
    by_instance = {b["detail"]["EC2InstanceId"]: b for b in bodies}
    missing = [i for i in instance_ids if i not in by_instance]
    if missing:
        raise BenchError(f"no re-queued check for {missing}")
    return [by_instance[i] for i in instance_ids]


def drain_chain(bed: Bed, n: int, env: dict[str, str]) -> list[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    """Terminate lifecycle: first look → re-check (tasks still there) → completion (after
    ECS moved them). Works for instance-drain and the baseline alike: each re-queues its
    own check to the queue in ``env``."""
    fleet = drain_fleet(bed, n)
    victims = [i.ec2_instance_id for i in fleet.instances[:n]]
    queue = env["DRAIN_QUEUE_URL"]

    def first() -> list[dict[str, Any]]:
        return [fl.fire_lifecycle(bed.url, fleet, v) for v in victims]

    def recheck() -> list[dict[str, Any]]:
        return requeued(bed, queue, victims)

    def complete() -> list[dict[str, Any]]:
        fl.play_scheduler(fleet, stop_daemons=False)
        return requeued(bed, queue, victims)

    return [("terminate: first look", first), ("terminate: re-check", recheck), ("terminate: completion", complete)]


def instance_drain_kinds(bed: Bed, n: int, env: dict[str, str]) -> list[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    kinds = drain_chain(bed, n, env)

    def launch() -> list[dict[str, Any]]:
        fleet = fl.seed_cluster(bed.url, bed.region, instances=1, services=["web"], tasks_per_instance=0, max_size=n + 5)
        events = [fl.fire_lifecycle(bed.url, fleet, transition="launch") for _ in range(n)]
        fl.register_new_instances(fleet)  # the ECS agents joined: each launch is admitted
        return events

    def spot() -> list[dict[str, Any]]:
        fleet = fl.seed_cluster(bed.url, bed.region, instances=n + 1, services=["web"], tasks_per_instance=1)
        return [spot_event(i.ec2_instance_id, bed.region) for i in fleet.instances[:n]]

    return kinds + [("launch: admitted", launch), ("spot interruption", spot)]


def ami_rollout_kinds(bed: Bed, n: int, env: dict[str, str]) -> list[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    region = env["AWS_REGION"]
    fleets: list[fl.Fleet] = []

    def scheduled() -> list[dict[str, Any]]:
        current = ami()
        param = team_parameter(bed.emulator, region, current)
        for _ in range(5):
            fl.seed_cluster(bed.url, region, instances=2, ami=current, services=(), hooks=False,
                            extra_group_tags={PARAMETER_TAG: param}, bulk_register=True)
        return [scheduled_event(region) for _ in range(n)]

    def parameter_change() -> list[dict[str, Any]]:
        events = []
        for _ in range(n):
            old, new = ami(), ami()
            param = team_parameter(bed.emulator, region, new)
            fleets.append(fl.seed_cluster(bed.url, region, instances=2, ami=old, services=(), hooks=False,
                                          extra_group_tags={PARAMETER_TAG: param}, bulk_register=True))
            events.append(parameter_event(region, param))
        return events

    def refresh_outcome() -> list[dict[str, Any]]:
        events = []
        for fleet in fleets:
            refresh = refreshes(bed.emulator, region, fleet.asg_name)[-1]
            complete_refresh(bed.emulator, fleet)
            events.append(refresh_event(region, fleet.asg_name, refresh["InstanceRefreshId"]))
        return events

    return [("scheduled check (5 groups, current)", scheduled), ("parameter change: rollout", parameter_change),
            ("refresh outcome", refresh_outcome)]


def guardduty_kinds(bed: Bed, n: int, env: dict[str, str]) -> list[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    def ec2_finding() -> list[dict[str, Any]]:
        fleet = fl.seed_cluster(bed.url, bed.region, instances=n + 1, services=["web"], tasks_per_instance=1)
        return [finding_event(fleet, service_task_on(fleet, i)) for i in fleet.instances[:n]]

    def below_threshold() -> list[dict[str, Any]]:
        fleet = fl.seed_cluster(bed.url, bed.region, instances=1, services=["web"], tasks_per_instance=1)
        task = service_task_on(fleet, fleet.instances[0])
        return [finding_event(fleet, task, template=MEDIUM_FINDING) for _ in range(n)]

    return [("finding on an EC2 task: contain", ec2_finding), ("finding below threshold: notify", below_threshold)]


def task_retirement_kinds(bed: Bed, n: int, env: dict[str, str]) -> list[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    def task_patching() -> list[dict[str, Any]]:
        services = [f"svc{i}" for i in range(n)]
        fleet = fl.seed_cluster(bed.url, bed.region, instances=1, services=services, tasks_per_instance=1)
        return [ecs_retirement_event([f"{fleet.cluster_name}|{s}"]) for s in services]

    def ec2_retirement() -> list[dict[str, Any]]:
        fleet = fl.seed_cluster(bed.url, bed.region, instances=n + 1, services=["web"], tasks_per_instance=1)
        return [ec2_retirement_event([i.ec2_instance_id]) for i in fleet.instances[:n]]

    return [("ECS task patching: redeploy", task_patching), ("EC2 retirement: replace host", ec2_retirement)]


def function_env(bed: Bed, name: str, region: str | None = None) -> dict[str, str]:
    if name in ("instance-drain", BASELINE):
        return drain_env(bed)
    if name == "ami-rollout":
        region = region or next_region()
        return {"NOTIFY_TOPIC_ARN": bed.topic(region), "AWS_REGION": region, "MAX_CONCURRENT_ROLLOUTS": "1000"}
    if name == "guardduty-responder":
        return {"NOTIFY_TOPIC_ARN": bed.topic(), "MAX_STOPS_PER_SERVICE": "100"}
    if name == "task-retirement":
        return {"NOTIFY_TOPIC_ARN": bed.topic(), "RETIREMENT_QUEUE_URL": bed.queue()}
    raise KeyError(name)


KINDS = {
    "instance-drain": instance_drain_kinds,
    BASELINE: drain_chain,
    "ami-rollout": ami_rollout_kinds,
    "guardduty-responder": guardduty_kinds,
    "task-retirement": task_retirement_kinds,
}


def steady(bed: Bed, name: str) -> tuple[dict[str, str], str, dict[str, Any]]:
    """(env, kind, event): a real event that leaves the world as it found it, so one
    process can take it again and again (cold starts, the memory run). Set up once per
    function: a new emulator region takes seconds to initialise."""
    if name not in bed.steady:
        env = function_env(bed, name)
        kind, event = steady_event(bed, name, env)
        bed.steady[name] = (env, kind, event)
    return bed.steady[name]


def steady_event(bed: Bed, name: str, env: dict[str, str]) -> tuple[str, dict[str, Any]]:
    if name in ("instance-drain", BASELINE):
        fleet = drain_fleet(bed, 1)
        victim = fleet.instances[0].ec2_instance_id
        with bed.subjects[name].process(bed.emulator, bed.env(False, **env)) as fn:
            invoke_ok(fn, fl.fire_lifecycle(bed.url, fleet, victim))  # the first look
        (recheck,) = requeued(bed, env["DRAIN_QUEUE_URL"], [victim])
        return "terminate: re-check, tasks left", recheck
    if name == "ami-rollout":
        region = env["AWS_REGION"]
        current = ami()
        param = team_parameter(bed.emulator, region, current)
        for _ in range(5):
            fl.seed_cluster(bed.url, region, instances=2, ami=current, services=(), hooks=False,
                            extra_group_tags={PARAMETER_TAG: param}, bulk_register=True)
        return "scheduled check (5 groups, current)", scheduled_event(region)
    if name == "guardduty-responder":
        fleet = fl.seed_cluster(bed.url, bed.region, instances=1, services=["web"], tasks_per_instance=1)
        return "finding below threshold", finding_event(fleet, service_task_on(fleet, fleet.instances[0]), template=MEDIUM_FINDING)
    if name == "task-retirement":
        fleet = fl.seed_cluster(bed.url, bed.region, instances=1, services=["web"], tasks_per_instance=1)
        env["MAINTENANCE_WINDOW"] = closed_window(hours_from_now=3)
        return "ECS task patching, window closed: defer", ecs_retirement_event([f"{fleet.cluster_name}|web"])
    raise KeyError(name)


def invoke_ok(fn: LambdaProcess, event: dict[str, Any]) -> Any:
    result = fn.invoke(event)
    if not result.ok:
        raise BenchError(f"{fn.function_name}: {result.error}\n{fn.output()[-3000:]}")
    return result


# --------------------------------------------------------------------------
# 1+2. cold start
# --------------------------------------------------------------------------


def cold_spawn(bed: Bed, subject: Subject, env: dict[str, str], event: dict[str, Any]) -> tuple[float, float, dict[str, int]]:
    """One cold start: (init ms, init + first event ms, init phases in µs when timed)."""
    fn = subject.process(bed.emulator, bed.env(False, **env), start=False)
    try:
        started = time.perf_counter()
        fn.start()
        assert fn.api is not None
        if not fn.api.polling.wait(60):
            raise BenchError(f"{subject.name} never polled for an event:\n{fn.output()}")
        ready = time.perf_counter()
        result = invoke_ok(fn, event)
    finally:
        fn.stop()
    phases = next((json.loads(line["init_phases_us"]) for line in fn.json_logs() if line.get("message") == "init phases"), {})
    init = (ready - started) * 1000
    return init, init + result.duration_ms, phases


def bench_cold(bed: Bed, subjects: dict[str, Subject], limit: Subject, spawns: int) -> dict[str, Any]:
    """Spawns alternate between the functions and the limit, so a busy moment of the
    machine falls on all of them alike. Then spawns with AUTOPILOT_INIT_TIMING=1 say where
    a function's init goes (kept apart: the timed spawns are not in the medians)."""
    out: dict[str, Any] = {}
    runs: dict[str, tuple[Subject, dict[str, str], str, dict[str, Any]]] = {LIMIT: (limit, {}, "any event (answers {})", {"bench": "limit"})}
    for name, subject in subjects.items():
        env, kind, event = steady(bed, name)
        with subject.process(bed.emulator, bed.env(False, **env)) as fn:
            invoke_ok(fn, event)  # the world settles (the host is DRAINING), so every spawn sees the same
        runs[name] = (subject, env, kind, event)
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in runs}
    for _ in range(spawns):
        for name, (subject, env, _, event) in runs.items():
            init, first, _ = cold_spawn(bed, subject, env, event)
            samples[name][0].append(init)
            samples[name][1].append(first)
    for name, (subject, env, kind, event) in runs.items():
        inits, firsts = samples[name]
        out[name] = {"event": kind, "init_ms": summary(inits), "init_plus_first_event_ms": summary(firsts)}
    bare = out[LIMIT]["init_ms"]["median"]
    for name, (subject, env, kind, event) in runs.items():
        out[name]["init_vs_limit"] = round(out[name]["init_ms"]["median"] / max(bare, 0.01), 1)
        if name in FUNCTIONS:
            timed = [cold_spawn(bed, subject, {**env, "AUTOPILOT_INIT_TIMING": "1"}, event) for _ in range(max(3, spawns // 2))]
            phases = {p: statistics.median(t[2].get(p, 0) for t in timed) / 1000 for p in INIT_PHASES}
            init = statistics.median(t[0] for t in timed)
            phases["outside main (exec, runtime, first poll)"] = init - sum(phases.values())
            out[name]["init_phases_ms"] = {p: round(ms, 2) for p, ms in phases.items()}
        log(f"cold start {name}: init {out[name]['init_ms']['median']} ms ({out[name]['init_vs_limit']}× the limit), "
            f"+first event {out[name]['init_plus_first_event_ms']['median']} ms")
    return out


# --------------------------------------------------------------------------
# 3. warm per-event latency and AWS calls
# --------------------------------------------------------------------------


def aws_seconds(calls: list[Any]) -> float:
    """Wall time with at least one AWS call outstanding (calls may overlap: the functions
    run independent reads concurrently), from when the proxy got each request until the
    emulator answered."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted((c.at, c.at + c.upstream_seconds) for c in calls):
        if start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def stat_cpu_seconds(pid: int) -> float:
    """User + system CPU of the whole process (all its threads, exited ones too), from
    /proc/<pid>/stat: fields 14 and 15, in clock ticks (1/100 s here)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def thread_cpu_ns(pid: int) -> dict[str, int]:
    """Each thread's time on a CPU (user + system) in nanoseconds, from
    /proc/<pid>/task/<tid>/schedstat: the same clock as /proc/<pid>/stat, unrounded."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[task.name] = int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread ended while we looked
    return out


class CpuMeter:
    """The CPU one process spends on one event, read around it. Per event the threads'
    nanosecond clocks are compared (a thread born during the event counts from zero); the
    tick-rounded total of /proc/<pid>/stat over all events of a kind checks their sum."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> "CpuMeter":
        self.threads, self.ticks = thread_cpu_ns(self.pid), stat_cpu_seconds(self.pid)
        return self

    def __exit__(self, *exc: Any) -> None:
        after = thread_cpu_ns(self.pid)
        self.ms = sum(ns - self.threads.get(tid, 0) for tid, ns in after.items()) / 1e6
        self.stat_ms = (stat_cpu_seconds(self.pid) - self.ticks) * 1000


def cpu_budget_ms(calls_per_event: float) -> float:
    return TARGETS["cpu_ms_per_event"] + TARGETS["cpu_ms_per_call"] * calls_per_event


LIMIT_EVENT = "any event (answers {})"


def cpu_summary(meters: list[CpuMeter]) -> dict[str, Any]:
    """The CPU fields of a warm row, from the meters of its events (the warm-up left out)."""
    cpu_ms = [m.ms for m in meters]
    return {
        "cpu_ms": summary(cpu_ms),
        "cpu_ms_mean": round(statistics.fmean(cpu_ms), 3),
        "stat_cpu_ms_mean": round(statistics.fmean(m.stat_ms for m in meters), 2),
    }


def bench_limit_event(bed: Bed, limit: Subject, n: int) -> dict[str, Any]:
    """The per-event CPU floor: the bare runtime answering n events, measured like the
    functions' (CpuMeter around each invoke). Its event is two HTTP/1.1 exchanges with the
    Runtime API (the response to one event, the poll for the next) and no AWS call, so
    half of it is what one local HTTP exchange costs this machine in this runtime."""
    with limit.process(bed.emulator, {}) as fn:
        assert fn.proc is not None
        samples = []
        for i in range(n + 1):  # the first is a warm-up
            with CpuMeter(fn.proc.pid) as cpu:
                result = invoke_ok(fn, {"event": i})
            samples.append((result.duration_ms, cpu))
        samples = samples[1:]
    out = {
        "latency_ms": summary([d for d, _ in samples]),
        **cpu_summary([c for _, c in samples]),
        "calls_per_event": 0,
        "calls": {},
    }
    log(f"warm {LIMIT} (limit): CPU {out['cpu_ms']['median']} ms per event")
    return out


def bench_warm(bed: Bed, subjects: dict[str, Subject], n: int, limit: Subject | None = None) -> dict[str, Any]:
    """Every event kind of every function in one warm process each. With the limit, its
    per-event CPU comes first, and each kind also gets its CPU per AWS call above it."""
    out: dict[str, Any] = {}
    floor = None
    if limit is not None:
        out[LIMIT] = {LIMIT_EVENT: bench_limit_event(bed, limit, n)}
        floor = out[LIMIT][LIMIT_EVENT]["cpu_ms"]["median"]
    for name, subject in subjects.items():
        env = function_env(bed, name)
        kinds = KINDS[name](bed, n + 1, env)  # the first event of each kind is a warm-up
        out[name] = {}
        with subject.process(bed.emulator, bed.env(True, **env)) as fn:
            assert fn.proc is not None
            for kind, events_of in kinds:
                events = events_of()
                samples = []
                for event in events:
                    bed.proxy.clear_calls()
                    with CpuMeter(fn.proc.pid) as cpu:
                        result = invoke_ok(fn, event)
                    calls = bed.proxy.calls()
                    aws_ms = aws_seconds(calls) * 1000
                    samples.append((result.duration_ms, aws_ms, Counter(f"{c.service}:{c.operation}" for c in calls), cpu))
                samples = samples[1:]
                per_op: Counter = Counter()
                for _, _, ops, _ in samples:
                    per_op.update(ops)
                calls_per_event = round(sum(per_op.values()) / len(samples), 2)
                out[name][kind] = {
                    "latency_ms": summary([s[0] for s in samples]),
                    "aws_ms": summary([s[1] for s in samples]),
                    "wall_minus_aws_ms": summary([max(0.0, s[0] - s[1]) for s in samples]),
                    **cpu_summary([s[3] for s in samples]),
                    "cpu_budget_ms": round(cpu_budget_ms(calls_per_event), 2),
                    "calls_per_event": calls_per_event,
                    "calls": {op: round(c / len(samples), 2) for op, c in sorted(per_op.items())},
                }
                if floor is not None and calls_per_event:
                    above = (out[name][kind]["cpu_ms"]["median"] - floor) / calls_per_event
                    out[name][kind]["cpu_ms_per_call_above_limit"] = round(above, 2)
                log(f"warm {name} / {kind}: {out[name][kind]['latency_ms']['median']} ms, {calls_per_event} calls, "
                    f"CPU {out[name][kind]['cpu_ms']['median']} ms")
    return out


# --------------------------------------------------------------------------
# 4. artifact size
# --------------------------------------------------------------------------


def bench_size(subjects: dict[str, Subject]) -> dict[str, Any]:
    """The zips `cargo lambda build --release --arm64 --output-format zip` wrote (make
    package, which make bench runs first). Without them the local binaries are zipped
    instead, and the artifact column says so."""
    out: dict[str, Any] = {}
    for name in FUNCTIONS:
        path = TARGET / "lambda" / name / "bootstrap.zip"
        if path.is_file():
            with zipfile.ZipFile(path) as z:
                unzipped = sum(i.file_size for i in z.infolist())
            out[name] = {"artifact": "arm64 bootstrap.zip (cargo lambda)", "zip_bytes": path.stat().st_size,
                         "unzipped_bytes": unzipped, "path": str(path)}
        else:
            binary = subjects[name].path
            zipped = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{name}-{os.getpid()}.zip"
            with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
                z.write(binary, "bootstrap")
            out[name] = {"artifact": f"{binary.parent.name} x86_64 binary, zipped here", "zip_bytes": zipped.stat().st_size,
                         "unzipped_bytes": binary.stat().st_size, "path": str(binary)}
            zipped.unlink()
            log(f"size {name}: {path} is missing (make package), zipped {binary} instead")
    return out


# --------------------------------------------------------------------------
# 5. memory
# --------------------------------------------------------------------------


def proc_status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"no {field} in /proc/{pid}/status")


BASELINE_MEMORY_EVENTS = 200  # Python's RSS is flat after a few events; boto3 is slow to feed 1,000


def bench_memory(bed: Bed, subjects: dict[str, Subject], events: int, max_seconds: float) -> dict[str, Any]:
    """Peak RSS after ``events`` events (or as many as ``max_seconds`` allow: against a busy
    emulator 1,000 events can take a quarter of an hour)."""
    out: dict[str, Any] = {}
    all_events = events
    for name, subject in subjects.items():
        events = min(all_events, BASELINE_MEMORY_EVENTS) if name == BASELINE else all_events
        env, kind, event = steady(bed, name)
        with subject.process(bed.emulator, bed.env(False, **env)) as fn:
            assert fn.proc is not None
            invoke_ok(fn, event)
            after_first = proc_status_kb(fn.proc.pid, "VmHWM")
            started = time.monotonic()
            done = 1
            while done < events and time.monotonic() - started < max_seconds:
                invoke_ok(fn, event)
                done += 1
            seconds = time.monotonic() - started
            out[name] = {
                "event": kind,
                "events": done,
                "peak_rss_kb_after_first_event": after_first,
                "peak_rss_kb": proc_status_kb(fn.proc.pid, "VmHWM"),
                "rss_kb_at_end": proc_status_kb(fn.proc.pid, "VmRSS"),
                "events_per_second": round((done - 1) / seconds, 1) if seconds else None,
            }
        log(f"memory {name}: peak {out[name]['peak_rss_kb'] / 1024:.1f} MB over {out[name]['events']} events")
    return out


# --------------------------------------------------------------------------
# 6. fleet scale
# --------------------------------------------------------------------------


def bench_fleet(bed: Bed, subjects: dict[str, Subject], sizes: list[tuple[int, int]]) -> dict[str, Any]:
    """ami-rollout's scheduled check over GROUPS x INSTANCES, every group drifted, budget 1
    (as tests/integration/test_ami_rollout.py::test_a_fleet_check_uses_batched_calls)."""
    runs = []
    for groups, per_group in sizes:
        region = next_region()
        old, new = ami(), ami()
        param = team_parameter(bed.emulator, region, new)
        seeding = time.monotonic()
        for _ in range(groups):
            fl.seed_cluster(bed.url, region, instances=per_group, ami=old, services=(), hooks=False,
                            max_size=per_group, extra_group_tags={PARAMETER_TAG: param}, bulk_register=True)
        seed_seconds = time.monotonic() - seeding
        env = {"NOTIFY_TOPIC_ARN": bed.topic(region), "AWS_REGION": region}
        with subjects["ami-rollout"].process(bed.emulator, bed.env(True, **env)) as fn:
            fn.wait_ready()
            bed.proxy.clear_calls()
            result = fn.invoke(scheduled_event(region), timeout=900)
            if not result.ok:
                raise BenchError(f"fleet check {groups}x{per_group}: {result.error}")
            calls = bed.proxy.calls()
            assert fn.proc is not None
            rss = proc_status_kb(fn.proc.pid, "VmHWM")
        by_op = Counter(f"{c.service}:{c.operation}" for c in calls)
        runs.append({
            "groups": groups, "instances_per_group": per_group, "instances": groups * per_group,
            "seconds": round(result.duration_ms / 1000, 2),
            "aws_seconds": round(aws_seconds(calls), 2),
            "calls": len(calls), "by_operation": dict(sorted(by_op.items())),
            "peak_rss_kb": rss, "seed_seconds": round(seed_seconds, 1),
        })
        log(f"fleet {groups}x{per_group}: {runs[-1]['seconds']} s, {len(calls)} calls (seeded in {seed_seconds:.0f} s)")
    out: dict[str, Any] = {"runs": runs}
    if len(runs) > 1:
        a, b = min(runs, key=lambda r: r["instances"]), max(runs, key=lambda r: r["instances"])
        out["growth"] = {
            "from": f"{a['groups']}x{a['instances_per_group']}", "to": f"{b['groups']}x{b['instances_per_group']}",
            "instances": round(b["instances"] / a["instances"], 1),
            "calls": round(b["calls"] / a["calls"], 1),
            "seconds": round(b["seconds"] / a["seconds"], 1) if a["seconds"] else None,
        }
    return out


# --------------------------------------------------------------------------
# 7. organization fan-out
# --------------------------------------------------------------------------


def bench_fanout(bed: Bed, subjects: dict[str, Subject], sizes: list[tuple[int, int]]) -> dict[str, Any]:
    """ami-rollout in hub mode over ACCOUNTS x REGIONS (the hub's own account is one of
    them): the scheduled check fans out, then one warm process takes the fan-out queue to
    the end, 10 messages a batch (Lambda would run batches side by side, up to the event
    source's MaximumConcurrency: the scoped checks' sum is the serial cost)."""
    runs = []
    for n_accounts, n_regions in sizes:
        seeding = time.monotonic()
        regions = [fresh_region(bed.url) for _ in range(n_regions)]
        members = [ac.new_account() for _ in range(n_accounts - 1)]
        for account in members:
            ac.create_member_role(bed.url, account, "ami-rollout")
        # The hub's own account outside its Region goes through its member role too.
        ac.ensure_member_role(bed.url, fl.ACCOUNT, "ami-rollout")
        expected = len(members) + any(r != bed.region for r in regions)
        drifted = [ac.drifted_group(bed.url, members[i % len(members)], region)[0]
                   for i, region in enumerate(regions)] if members else []
        sqs = bed.client("sqs")
        queue = sqs.create_queue(QueueName=f"bench-fanout-{uuid.uuid4().hex[:10]}")["QueueUrl"]
        seed_seconds = time.monotonic() - seeding
        env = {"NOTIFY_TOPIC_ARN": bed.topic(), "AWS_REGION": bed.region, "ACCOUNTS": ",".join([fl.ACCOUNT, *members]),
               "REGIONS": ",".join(regions), "FANOUT_QUEUE_URL": queue, "MAX_CONCURRENT_ROLLOUTS": "1"}
        with subjects["ami-rollout"].process(bed.emulator, bed.env(True, **env)) as fn:
            fn.wait_ready()
            bed.proxy.clear_calls()
            before = ac.assume_role_counts(bed.url, caller_account=fl.ACCOUNT)
            started = time.monotonic()
            fanned = fn.invoke(scheduled_event(bed.region), timeout=900)
            if not fanned.ok:
                raise BenchError(f"fan-out {n_accounts}x{n_regions}: {fanned.error}")
            fanout_calls = len(bed.proxy.calls())
            queued = int(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"]["ApproximateNumberOfMessages"])
            batches = pump(sqs, queue, fn, max_batches=n_accounts * n_regions, invoke_timeout=900)
            wall = time.monotonic() - started
        failed = sum(len(b.failed_ids) for b in batches) + sum(not b.invoke.ok for b in batches)
        if queued != n_accounts * n_regions or failed:
            errors = [b.invoke.error for b in batches if not b.invoke.ok][:2] + [
                line.text[:600] for b in batches if b.failed_ids for line in b.invoke.logs
                if '"ERROR"' in line.text or '"WARN"' in line.text][:3]
            raise BenchError(f"fan-out {n_accounts}x{n_regions}: {queued} messages queued, {failed} failed {errors}")
        calls = bed.proxy.calls()
        after = ac.assume_role_counts(bed.url, caller_account=fl.ACCOUNT)
        assumed = sum(after.get(a, 0) - before.get(a, 0) for a in after)
        refreshes = sum(bool(fl.instance_refreshes(bed.url, f.region, f.asg_name, account=f.account)) for f in drifted)
        by_op = Counter(f"{c.service}:{c.operation}" for c in calls)
        runs.append({
            "accounts": n_accounts, "regions": n_regions, "targets": queued, "member_accounts": len(members),
            "assume_role_expected": expected,
            "fanout_seconds": round(fanned.duration_ms / 1000, 2),
            "scoped_checks_seconds": round(sum(b.invoke.duration_ms for b in batches) / 1000, 2),
            "wall_seconds": round(wall, 2), "batches": len(batches),
            "assume_role": assumed, "assume_role_via_proxy": len(bed.proxy.assume_role_calls()),
            "calls": len(calls), "fanout_calls": fanout_calls, "by_operation": dict(sorted(by_op.items())),
            "refreshes_started": refreshes, "drifted_groups": len(drifted), "seed_seconds": round(seed_seconds, 1),
        })
        log(f"fan-out {n_accounts}x{n_regions}: {runs[-1]['wall_seconds']} s, {assumed} AssumeRole, "
            f"{len(calls)} calls (seeded in {seed_seconds:.0f} s)")
    return {"runs": runs}


# --------------------------------------------------------------------------
# targets and the report
# --------------------------------------------------------------------------


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    cold = results.get("cold_start")
    if cold and "instance-drain" in cold and BASELINE in cold:
        ratio = cold[BASELINE]["init_ms"]["median"] / max(cold["instance-drain"]["init_ms"]["median"], 0.01)
        checks.append({"target": "cold start ≥ 20× faster than the Python baseline (instance-drain init, median)",
                       "value": round(ratio, 1), "unit": "×", "pass": ratio >= TARGETS["cold_start_ratio"]})
    for name, size in (results.get("size") or {}).items():
        mb = size["zip_bytes"] / 1e6
        checks.append({"target": f"{name} zipped artifact ≤ 4 MB", "value": round(mb, 2), "unit": "MB",
                       "pass": mb <= TARGETS["zip_mb"]})
    for name, mem in (results.get("memory") or {}).items():
        if name == BASELINE:
            continue
        mb = mem["peak_rss_kb"] / 1024
        checks.append({"target": f"{name} peak RSS ≤ 32 MB over {mem['events']} events", "value": round(mb, 1),
                       "unit": "MB", "pass": mb <= TARGETS["peak_rss_mb"]})
    for name, c in (cold or {}).items():
        if name in FUNCTIONS and "init_vs_limit" in c:
            checks.append({"target": f"{name} init ≤ 3× the bare runtime's (median)", "value": c["init_vs_limit"], "unit": "×",
                           "pass": c["init_vs_limit"] <= TARGETS["init_vs_limit"]})
    for name, kinds in (results.get("warm") or {}).items():
        if name not in FUNCTIONS:
            continue
        for kind, w in kinds.items():
            checks.append({"target": f"{name} / {kind}: CPU ≤ 1 ms + 0.2 ms × {w['calls_per_event']:g} calls (median)",
                           "value": w["cpu_ms"]["median"], "unit": "ms", "pass": w["cpu_ms"]["median"] <= w["cpu_budget_ms"]})
    for r in (results.get("fanout") or {}).get("runs", []):
        checks.append({"target": f"fan-out {r['accounts']} accounts × {r['regions']} Regions: one AssumeRole per account "
                                 f"reached through a member role ({r['assume_role_expected']})",
                       "value": r["assume_role"], "unit": "AssumeRole",
                       "pass": r["assume_role"] == r["assume_role_expected"] and r["targets"] == r["accounts"] * r["regions"]})
    recheck = ((results.get("warm") or {}).get("instance-drain") or {}).get("terminate: re-check")
    if recheck:
        calls = recheck["calls_per_event"]
        checks.append({"target": "≤ 4 AWS calls per drain re-check", "value": calls, "unit": "calls",
                       "pass": calls <= TARGETS["calls_per_drain_recheck"]})
    return checks


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.2f}"


def table(heading: str, columns: list[str], rows: list[list[Any]], note: str = "") -> list[str]:
    lines = [f"## {heading}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + ([""] + [note] if note else []) + [""]


def mid(stats: dict[str, float]) -> str:
    return f"{stats['median']} / {stats['p90']}"


def note_from(template: str, comparison: dict[str, Any] | None) -> str:
    """A table's note filled in from a comparison, or none when there is nothing to compare."""
    return template.format(**comparison) if comparison else ""


def report(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [f"# ecs-autopilot benchmarks ({meta['mode']} run, {meta['binaries']} binaries)", "",
             f"{meta['started_at']} · {meta['host']['cpus']} CPUs · {meta['host']['platform']} · Python {meta['host']['python']}", ""]
    cold = results.get("cold_start")
    if cold:
        cmp_ = results.get("baseline_comparison")
        note = note_from("Python baseline vs instance-drain: init **{init_ratio}×** slower, init + first event "
                         "**{init_plus_first_event_ratio}×** slower ({spawns} spawns each).",
                         cmp_ and {**cmp_, "spawns": cold[BASELINE]["init_ms"]["n"]})
        lines += table("Cold start (spawn → first poll = init; → first response = init + first event)",
                       ["Function", "Event", "Init median / p90 (ms)", "× limit", "Init + first event median / p90 (ms)"],
                       [[f"**{name}** (limit)" if name == LIMIT else name, c["event"], mid(c["init_ms"]), c.get("init_vs_limit", ""),
                         mid(c["init_plus_first_event_ms"])] for name, c in cold.items()],
                       note)
        timed = {name: c["init_phases_ms"] for name, c in cold.items() if "init_phases_ms" in c}
        if timed:
            phases = list(next(iter(timed.values())))
            lines += table("Where init goes (median ms of spawns with AUTOPILOT_INIT_TIMING=1)", ["Function", *phases],
                           [[name, *(p[k] for k in phases)] for name, p in timed.items()])
    warm = results.get("warm")
    if warm:
        floor = (warm.get(LIMIT) or {}).get(LIMIT_EVENT)
        note = ("CPU: user + system time of the function's process around each event (per-thread schedstat clocks; "
                "/proc/<pid>/stat's tick-rounded total agrees, see stat_cpu_ms_mean in the JSON). "
                "Budget: 1 ms + 0.2 ms per AWS call.")
        if floor:
            note += (f" The limit row is the bare runtime answering events: {floor['cpu_ms']['median']} ms per event for its "
                     "two HTTP exchanges with the Runtime API and nothing else. Per call above the limit: "
                     "(CPU per event − the limit's) / AWS calls.")
        lines += table("Warm events (through the counting proxy)",
                       ["Function", "Event kind", "Latency median / p90 (ms)", "AWS round trips (ms)",
                        "CPU / event median / p90 (ms)", "CPU budget (ms)", "CPU per call above the limit (ms)",
                        "AWS calls / event", "Calls"],
                       [[f"**{name}** (limit)" if name == LIMIT else name, kind, mid(w["latency_ms"]),
                         w["aws_ms"]["median"] if "aws_ms" in w else "", mid(w["cpu_ms"]), w.get("cpu_budget_ms", ""),
                         w.get("cpu_ms_per_call_above_limit", ""),
                         f"{w['calls_per_event']:g}", ", ".join(f"{op.split(':')[1]} {n:g}" for op, n in w["calls"].items())]
                        for name, kinds in warm.items() for kind, w in kinds.items()],
                       note)
    size = results.get("size")
    if size:
        lines += table("Artifact size", ["Function", "Artifact", "Zipped (MB)", "Unzipped (MB)"],
                       [[name, s["artifact"], mb(s["zip_bytes"]), mb(s["unzipped_bytes"])] for name, s in size.items()])
    memory = results.get("memory")
    if memory:
        lines += table("Memory", ["Function", "Event", "Events", "Peak RSS after 1st event (MB)", "Peak RSS (MB)", "Events/s"],
                       [[name, m["event"], m["events"], f"{m['peak_rss_kb_after_first_event'] / 1024:.1f}",
                         f"{m['peak_rss_kb'] / 1024:.1f}", m["events_per_second"]] for name, m in memory.items()])
    fleet = results.get("fleet")
    if fleet:
        note = note_from("From {from} to {to}: {instances}× the instances, {calls}× the calls, {seconds}× the time.",
                         fleet.get("growth"))
        lines += table("Fleet scale: ami-rollout scheduled check, every group drifted, budget 1",
                       ["Groups × instances", "Wall time (s)", "of which AWS (s)", "AWS calls", "Peak RSS (MB)", "Calls by operation"],
                       [[f"{r['groups']} × {r['instances_per_group']}", r["seconds"], r["aws_seconds"], r["calls"],
                         f"{r['peak_rss_kb'] / 1024:.1f}", ", ".join(f"{op.split(':')[1]} {n}" for op, n in r["by_operation"].items())]
                        for r in fleet["runs"]], note)
    fanout = results.get("fanout")
    if fanout:
        lines += table("Organization fan-out: ami-rollout scheduled check in hub mode, then every scoped check",
                       ["Accounts × Regions", "Messages", "Fan-out (s)", "Scoped checks, one warm process (s)",
                        "Wall (s)", "AssumeRole", "AWS calls", "Refreshes started"],
                       [[f"{r['accounts']} × {r['regions']}", r["targets"], r["fanout_seconds"], r["scoped_checks_seconds"],
                         r["wall_seconds"], f"{r['assume_role']} (expected {r['assume_role_expected']})", r["calls"],
                         f"{r['refreshes_started']} / {r['drifted_groups']}"] for r in fanout["runs"]],
                       "The hub's own account is one of the accounts: its own role in the hub's Region, its member role "
                       "in the others (the fan-out Regions here). Scoped checks: the sum of the "
                       "batch invocations (10 messages each), which Lambda runs side by side up to MaximumConcurrency.")
    if results.get("targets"):
        lines += table("Targets", ["Target", "Measured", ""],
                       [[t["target"], f"{t['value']} {t['unit']}", "pass" if t["pass"] else "**miss**"] for t in results["targets"]])
    errors = results.get("errors")
    if errors:
        lines += ["## Errors", ""] + [f"- {section}: {e.strip().splitlines()[-1]}" for section, e in errors.items()] + [""]
    return "\n".join(lines)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in filter(None, text.split(",")):
        groups, per_group = part.lower().split("x")
        sizes.append((int(groups), int(per_group)))
    return sizes


SECTIONS = ["cold", "warm", "memory", "size", "fleet", "fanout"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes: 3 spawns, 2 events per kind, 20 memory events, fleet 2x2, fan-out 20x2")
    parser.add_argument("--spawns", type=int, default=20, help="cold starts per function (default 20)")
    parser.add_argument("--events", type=int, default=20, help="warm events per event kind (default 20)")
    parser.add_argument("--memory-events", type=int, default=1000, help="events for the peak-RSS run (default 1000)")
    parser.add_argument("--memory-seconds", type=float, default=600, help="cap per function on the memory run (default 600)")
    parser.add_argument("--fleet", default="20x10,200x100", help="GROUPSxINSTANCES,... (default 20x10,200x100)")
    parser.add_argument("--fanout", default="20x2,100x4", help="ACCOUNTSxREGIONS,... for hub mode (default 20x2,100x4)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run (default {','.join(SECTIONS)})")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "latest.json"))
    args = parser.parse_args(argv)
    if args.smoke:
        args.spawns, args.events, args.memory_events, args.fleet, args.fanout = 3, 2, 20, "2x2", "20x2"
    sections = [s for s in args.only.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")

    subjects, limit, profile = find_binaries(args.smoke)
    results: dict[str, Any] = {
        "meta": {
            "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mode": "smoke" if args.smoke else "full",
            "binaries": profile,
            "host": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "args": {"spawns": args.spawns, "events": args.events, "memory_events": args.memory_events,
                     "memory_seconds": args.memory_seconds, "fleet": args.fleet, "fanout": args.fanout},
            "subjects": {name: " ".join([str(s.path), *s.args]) for name, s in [*subjects.items(), (LIMIT, limit)]},
        },
        "targets_definition": TARGETS,
    }
    errors: dict[str, str] = {}
    started = time.monotonic()
    with EmulatorProcess() as emulator, AwsProxy(emulator.url) as proxy:
        bed = Bed(emulator, proxy, subjects)
        steps: list[tuple[str, str, Callable[[], Any]]] = [
            ("cold", "cold_start", lambda: bench_cold(bed, subjects, limit, args.spawns)),
            ("size", "size", lambda: bench_size(subjects)),
            ("warm", "warm", lambda: bench_warm(bed, subjects, args.events, limit)),
            ("fleet", "fleet", lambda: bench_fleet(bed, subjects, parse_sizes(args.fleet))),
            ("fanout", "fanout", lambda: bench_fanout(bed, subjects, parse_sizes(args.fanout))),
            ("memory", "memory", lambda: bench_memory(bed, subjects, args.memory_events, args.memory_seconds)),
        ]
        for section, key, run in steps:
            if section not in sections:
                continue
            try:
                results[key] = run()
            except Exception:  # one broken section must not hide the others' numbers
                errors[key] = traceback.format_exc()
                log(f"{section} failed:\n{errors[key]}")
            finish(results, errors, started, Path(args.out))  # a long run keeps what it has so far
    finish(results, errors, started, Path(args.out))
    print(report(results))
    log(f"wrote {args.out} in {results['meta']['seconds']} s")
    return 1 if errors else 0


def finish(results: dict[str, Any], errors: dict[str, str], started: float, out: Path) -> None:
    cold = results.get("cold_start")
    if cold and "instance-drain" in cold and BASELINE in cold:
        results["baseline_comparison"] = {
            "init_ratio": round(cold[BASELINE]["init_ms"]["median"] / max(cold["instance-drain"]["init_ms"]["median"], 0.01), 1),
            "init_plus_first_event_ratio": round(
                cold[BASELINE]["init_plus_first_event_ms"]["median"]
                / max(cold["instance-drain"]["init_plus_first_event_ms"]["median"], 0.01), 1),
        }
    results["targets"] = check_targets(results)
    results["errors"] = errors
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
