"""The drain metrics the dashboard graphs and the drain-age alarm watches: instance-drain
writes one EMF line per look at a drain in progress (DrainsInProgress 1, DrainAgeSeconds
since the lifecycle action began), namespace ecs-autopilot, dimension function."""

from __future__ import annotations

import json

from harness.functions import FunctionUnderTest
from harness.events import ago
from harness.fleet import fire_lifecycle, play_scheduler


def drain_lines(fn) -> list[dict]:
    found = []
    for text in fn.stdout_lines:
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict) and "DrainAgeSeconds" in line:
            found.append(line)
    return found


def test_every_look_at_a_drain_reports_it_in_progress_with_its_age(emulator, make_fleet, function_binary):
    fleet = make_fleet(instances=2, services=["web"])
    h = FunctionUnderTest.start(emulator, "instance-drain")
    try:
        event = fire_lifecycle(fleet.endpoint, fleet, fleet.instances[0])
        # The action began ten minutes ago (a late delivery): its age says so from the first look.
        event["time"] = ago(minutes=10)
        h.send(event)
        h.check()
        h.check()  # still draining: a second look
        play_scheduler(fleet)
        h.check()  # the tasks moved: the last look lets the host go
        lines = drain_lines(h.fn)
        assert len(lines) == 3, lines
        for line in lines:
            metrics = line["_aws"]["CloudWatchMetrics"][0]
            assert metrics["Namespace"] == "ecs-autopilot" and metrics["Dimensions"] == [["function"]]
            assert [m["Name"] for m in metrics["Metrics"]] == ["DrainsInProgress", "DrainAgeSeconds"]
            assert (line["function"], line["DrainsInProgress"]) == ("instance-drain", 1)
        ages = [line["DrainAgeSeconds"] for line in lines]
        assert 600 <= ages[0] <= ages[1] <= ages[2] < 900, ages
        h.check()
        assert len(drain_lines(h.fn)) == 3, "a finished drain is no longer reported"
    finally:
        h.fn.stop()
