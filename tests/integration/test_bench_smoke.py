"""`make bench` at tiny sizes (bench/run.py --smoke), so the benchmark cannot rot: every
section runs against the emulator and the JSON it writes holds sane numbers (the
organization fan-out at its smoke size, 20 accounts x 2 Regions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = ["instance-drain", "ami-rollout", "guardduty-responder", "task-retirement"]
BASELINE = "python-baseline"
LIMIT = "bare-runtime"
PHASES = {"tracing", "config", "aws_config", "clients", "outside main (exec, runtime, first poll)"}


def test_the_bench_smoke_run_fills_every_section(tmp_path, function_binary):
    for name in FUNCTIONS:
        function_binary(name)  # skips when the binaries aren't built
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads(out.read_text())
    assert results["errors"] == {}
    assert "## Cold start" in run.stdout and "## Targets" in run.stdout

    cold = results["cold_start"]
    assert set(cold) == {*FUNCTIONS, BASELINE, LIMIT}
    for c in cold.values():
        assert c["init_ms"]["n"] == 3
        assert 0 < c["init_ms"]["median"] <= c["init_plus_first_event_ms"]["median"] < 60_000
        assert c["init_vs_limit"] == round(c["init_ms"]["median"] / cold[LIMIT]["init_ms"]["median"], 1)
    for name in FUNCTIONS:
        phases = cold[name]["init_phases_ms"]  # the functions report their phases when asked
        assert set(phases) == PHASES, phases
        assert phases["aws_config"] > 0 and phases["clients"] > 0
    assert "init_phases_ms" not in cold[LIMIT]
    assert "| **bare-runtime** (limit) |" in run.stdout and "## Where init goes" in run.stdout
    assert results["baseline_comparison"]["init_ratio"] > 1, "a Rust binary starts faster than Python importing boto3"

    warm = results["warm"]
    assert set(warm) == {*FUNCTIONS, BASELINE, LIMIT}
    assert len(warm["instance-drain"]) == 5 and len(warm["ami-rollout"]) == 3
    (floor,) = warm[LIMIT].values()  # the per-event CPU floor: the bare runtime answering events
    assert floor["calls_per_event"] == 0 and 0 < floor["cpu_ms"]["min"] <= floor["cpu_ms"]["median"]
    assert "| **bare-runtime** (limit) | any event (answers {}) |" in run.stdout
    for kinds in (warm[name] for name in [*FUNCTIONS, BASELINE]):
        for w in kinds.values():
            assert w["latency_ms"]["median"] > 0 and w["calls_per_event"] >= 1
            above = (w["cpu_ms"]["median"] - floor["cpu_ms"]["median"]) / w["calls_per_event"]
            assert w["cpu_ms_per_call_above_limit"] == round(above, 2)
            assert 0 < w["cpu_ms"]["min"] <= w["cpu_ms"]["median"], "the process's own CPU, read around each event"
            assert w["cpu_ms"]["median"] <= w["latency_ms"]["median"] * 4  # at most the threads' parallel time
            assert w["cpu_budget_ms"] == round(1 + 0.2 * w["calls_per_event"], 2)
            assert abs(sum(w["calls"].values()) - w["calls_per_event"]) < 0.05
    recheck = warm["instance-drain"]["terminate: re-check"]["calls"]
    assert recheck.get("autoscaling:RecordLifecycleActionHeartbeat") == 1
    assert warm["instance-drain"]["terminate: re-check"]["calls_per_event"] <= 4, recheck
    assert "autoscaling:DescribeLifecycleHooks" in warm["instance-drain"]["terminate: first look"]["calls"]
    assert "autoscaling:DescribeLifecycleHooks" not in recheck, "it belongs to the first look"
    assert "autoscaling:CompleteLifecycleAction" in warm["instance-drain"]["terminate: completion"]["calls"]

    for name in FUNCTIONS:
        assert results["size"][name]["zip_bytes"] > 100_000
        assert results["memory"][name]["events"] == 20
        assert 1_000 < results["memory"][name]["peak_rss_kb"] < 1_000_000

    (run_2x2,) = results["fleet"]["runs"]
    assert (run_2x2["groups"], run_2x2["instances"]) == (2, 4)
    assert run_2x2["by_operation"]["autoscaling:StartInstanceRefresh"] == 1

    (fan,) = results["fanout"]["runs"]  # hub mode, 20 accounts (the hub's own one of them) x 2 Regions
    assert (fan["accounts"], fan["regions"], fan["targets"], fan["member_accounts"]) == (20, 2, 40, 19)
    # One per member account, and the hub's own: both Regions are outside the hub's.
    assert fan["assume_role"] == fan["assume_role_via_proxy"] == fan["assume_role_expected"] == 20
    assert 0 < fan["fanout_seconds"] <= fan["wall_seconds"] and fan["scoped_checks_seconds"] > 0
    assert fan["by_operation"]["sqs:SendMessageBatch"] == 4 and fan["refreshes_started"] == fan["drifted_groups"] == 2
    assert "## Organization fan-out" in run.stdout

    names = {t["target"] for t in results["targets"]}
    assert any("cold start" in n for n in names) and any("re-check" in n for n in names)
    assert any("one AssumeRole per account reached through a member role" in n for n in names)
    assert sum("the bare runtime's" in n for n in names) == len(FUNCTIONS)
    assert sum("CPU ≤ 1 ms + 0.2 ms" in n for n in names) == sum(len(warm[f]) for f in FUNCTIONS)
    assert all(isinstance(t["pass"], bool) for t in results["targets"])
