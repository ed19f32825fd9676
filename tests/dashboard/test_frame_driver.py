"""The benchmark's driver: frames rendered and flushed as for a terminal, keys fed as one would."""

from __future__ import annotations

import time

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Static

from dashboard.frame_driver import FrameDriver, frame_driver


class Counter(App[None]):
    BINDINGS = [("s", "step", "step")]

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def compose(self) -> ComposeResult:
        yield Static("0", id="count")

    def action_step(self) -> None:
        self.steps += 1
        self.query_one("#count", Static).update(str(self.steps))


async def test_a_key_press_is_handled_and_the_next_frame_is_flushed_after_it() -> None:
    app = Counter()
    app.driver_class = FrameDriver
    async with app.run_test(headless=False, size=(40, 5)) as pilot:
        await pilot.pause()
        driver = frame_driver(app)
        assert driver.frames > 0 and driver.bytes_written > 0  # the first screen was rendered
        frames = driver.frames
        sent = time.perf_counter()
        driver.press("s")
        shown_at = await driver.next_frame(lambda: app.steps == 1)
        assert app.steps == 1 and driver.frames > frames
        assert sent < shown_at <= driver.last_frame_s


async def test_frame_driver_refuses_an_app_on_another_driver() -> None:
    app = Counter()
    async with app.run_test():
        with pytest.raises(TypeError, match="HeadlessDriver"):
            frame_driver(app)
