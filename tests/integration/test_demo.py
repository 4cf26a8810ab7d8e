"""`make demo` must keep working: run every story against the test emulator."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "demo"))

from run_demo import STORIES  # noqa: E402


def test_every_demo_story_runs_and_the_drain_story_releases_the_host(emulator, function_binary):
    for name in ("instance-drain", "ami-rollout", "guardduty-responder", "task-retirement", "ecs-autopilot"):
        function_binary(name)  # skips when a binary is not built
    emulator.reset()  # `make demo` starts from an empty emulator; other tests leave groups behind
    lines: list[str] = []
    results = [story(emulator, out=lines.append) for _, story in STORIES]
    drain = results[0]
    assert (drain["action"]["status"], drain["action"]["result"]) == ("completed", "CONTINUE")
    assert any("Drained" in line for line in lines)
    order = results[2]["order"]
    assert order.index("isolate-network") < order.index("snapshot-host") < order.index("stop-task") < order.index(
        "drain-host"), order
    assert results[2]["sequence"] == ("done", "critical", "already_done"), "an attack sequence alarms once"
    # `make demo` ends with the operator's status table of the simulated fleet.
    assert STORIES[-1][0].startswith("ecs-autopilot status")
    tables = results[-1]
    for region, (code, text) in tables.items():
        assert code == 0, (region, text)
        assert text.splitlines()[2].split()[:3] == ["CLUSTER", "GROUP", "IN"], text
    assert results[0]["fleet"].asg_name in tables["us-east-1"][1]
    assert results[1]["fleet"].asg_name in tables["eu-west-1"][1]
