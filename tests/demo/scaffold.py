"""What every demo story shares: the path to the harness, a printed timeline, the
notifications as a person would read them, and running a story on its own emulator.

    def run_x_demo(emulator, binary=None, out=print):
        t = Timeline(out)
        t.step("cluster ... seeded")          # [+  1.9s] cluster ... seeded
        t.show(fx.inbox.read())               #     -> subject / action / outcome: description
    if __name__ == "__main__":
        sys.exit(standalone(run_x_demo))
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from harness.emulator import EmulatorProcess  # noqa: E402

Out = Callable[[str], None]


class Timeline:
    """A story's steps, each stamped with the seconds since the story began."""

    def __init__(self, out: Out = print) -> None:
        self.out = out
        self.t0 = datetime.now(timezone.utc)

    def step(self, text: str) -> None:
        self.out(f"[+{(datetime.now(timezone.utc) - self.t0).total_seconds():5.1f}s] {text}")

    def show(self, notes: list[Any]) -> None:
        """Each notification's subject, then its action, outcome and description."""
        for n in notes:
            self.out(f"    -> {n.subject}")
            self.out(f"       {n.action} / {n.outcome}: {n.description[:300]}")


class Numbered(Timeline):
    """A story told in numbered steps, each notification with its full description."""

    def __init__(self, out: Out = print) -> None:
        super().__init__(out)
        self.n = 0

    def step(self, text: str) -> None:
        self.n += 1
        self.out(f"\n[{self.n}] {text}")

    def show(self, notes: list[Any]) -> None:
        for note in notes:
            self.out(f"    📣 {note.subject}")
            self.out(f"       {note.description}")


def standalone(story: Callable[[EmulatorProcess], Any]) -> int:
    """Runs one story against an emulator of its own (``python tests/demo/x_demo.py``)."""
    with EmulatorProcess() as emulator:
        story(emulator)
    return 0
