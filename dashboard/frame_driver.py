"""A terminal driver that renders every frame and notes when it was flushed: for benchmarks.

``interlock bench --only dashboard`` runs the dashboard in a process of its own, with no terminal,
and asks how soon a key press shows on the screen. Textual's headless driver cannot say: the app
skips rendering for it altogether (no escape sequences are built), and ``Pilot.press`` waits until
the *process* looks idle, which a dashboard folding a burst of events seldom is (it read three
times the latency the screen showed; docs/benchmarks.md). This driver instead says it is not
headless, so the app renders every frame exactly as for a terminal (the CPU a real terminal
costs, less the terminal), throws the bytes away, and calls the listeners each time a frame is
flushed. A key is fed the way a terminal's input thread feeds it (:meth:`press`).

::

    app.driver_class = FrameDriver
    async with app.run_test(headless=False, size=(200, 60)):
        driver = frame_driver(app)
        sent = time.perf_counter()
        driver.press("s")
        shown_at = await driver.next_frame(lambda: app.state_filter != before)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from textual import events
from textual.app import App
from textual.drivers.headless_driver import HeadlessDriver


class FrameDriver(HeadlessDriver):
    """Renders like a terminal, writes nowhere; counts frames and bytes, wakes frame waiters."""

    def __init__(self, app: App[Any], **options: Any) -> None:
        super().__init__(app, **options)
        self.frames = 0  #: frames flushed so far
        self.bytes_written = 0  #: what a terminal would have received
        self.last_frame_s = 0.0  #: ``time.perf_counter()`` of the last flush
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[float]]] = []

    @property
    def is_headless(self) -> bool:
        return False  # so the app renders each frame's escape sequences, as for a terminal

    def write(self, data: str) -> None:
        self.bytes_written += len(data)

    def flush(self) -> None:
        """The app flushes once per frame, after writing it: the moment the screen changed."""
        self.frames += 1
        self.last_frame_s = now = time.perf_counter()
        waiting, self._waiters = self._waiters, []
        for ready, future in waiting:
            if future.done():
                continue
            if ready():
                future.set_result(now)
            else:
                self._waiters.append((ready, future))

    def press(self, key: str) -> None:
        """Send one key press to the app, as a terminal's input would (``s``, ``tab``...)."""
        self.send_message(events.Key(key, key if len(key) == 1 else None))

    def next_frame(self, ready: Callable[[], bool]) -> asyncio.Future[float]:
        """The ``perf_counter`` time of the first frame flushed while ``ready()`` holds (checked
        at each flush): after a key press, ``ready`` says that the key was handled."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.append((ready, future))
        return future


def frame_driver(app: App[Any]) -> FrameDriver:
    """The running app's :class:`FrameDriver` (set as ``app.driver_class`` before it started)."""
    driver = app._driver  # Textual keeps it private; a driver class is its public extension point
    if not isinstance(driver, FrameDriver):
        raise TypeError(f"the app runs on {type(driver).__name__}, not FrameDriver")
    return driver
