"""The bounded-frequency runner on a fake clock: minimum interval, coalescing, periodic runs,
retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from kubesvc.proxy.runner import BoundedFrequencyRunner


class FakeClock:
    """Time only moves when the test says so; `wait` wakes on the event or on `advance`."""

    def __init__(self) -> None:
        self.t = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        timer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.t + timeout, timer))
        woken = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({timer, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            self._sleepers = [(d, f) for d, f in self._sleepers if f is not timer]
        return event.is_set()

    async def advance(self, seconds: float) -> None:
        self.t += seconds
        for deadline, timer in self._sleepers:
            if deadline <= self.t and not timer.done():
                timer.set_result(None)
        await settle()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class Harness:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.runs: list[float] = []
        self.fail = False
        self.runner = BoundedFrequencyRunner("test", self.work, min_interval=1.0,
                                             max_interval=10.0, retry_interval=3.0,
                                             clock=self.clock)

    async def work(self) -> None:
        self.runs.append(self.clock.now())
        if self.fail:
            raise RuntimeError("boom")


@pytest_asyncio.fixture
async def h() -> AsyncIterator[Harness]:
    harness = Harness()
    task = asyncio.create_task(harness.runner.loop())
    await settle()
    try:
        yield harness
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_first_run_is_immediate_then_bursts_coalesce(h: Harness) -> None:
    assert h.runs == [0.0]
    await h.clock.advance(0.2)
    for _ in range(5):
        h.runner.run()
    await settle()
    assert h.runs == [0.0]  # not before the minimum interval
    await h.clock.advance(0.8)
    assert h.runs == [0.0, 1.0]  # five requests, one run
    await h.clock.advance(5.0)
    h.runner.run()
    await settle()
    assert h.runs == [0.0, 1.0, 6.0]  # long enough since the last run: at once


async def test_runs_periodically_without_requests(h: Harness) -> None:
    for _ in range(3):
        await h.clock.advance(5.0)
    assert h.runs == [0.0, 10.0]
    await h.clock.advance(5.0)
    assert h.runs == [0.0, 10.0, 20.0]


async def test_failures_are_retried(h: Harness) -> None:
    h.fail = True
    h.runner.run()
    await h.clock.advance(1.0)
    assert h.runs == [0.0, 1.0]
    h.fail = False
    await h.clock.advance(2.9)
    assert h.runs == [0.0, 1.0]
    await h.clock.advance(0.1)
    assert h.runs == [0.0, 1.0, 4.0]
    await h.clock.advance(9.0)
    assert h.runs == [0.0, 1.0, 4.0]  # the retry is not repeated
    await h.clock.advance(1.0)
    assert h.runs == [0.0, 1.0, 4.0, 14.0]


async def test_retry_respects_the_minimum_interval(h: Harness) -> None:
    h.runner.retry_after(0.1)
    await h.clock.advance(0.5)
    assert h.runs == [0.0]
    await h.clock.advance(0.5)
    assert h.runs == [0.0, 1.0]


def test_min_interval_must_not_exceed_max() -> None:
    async def nothing() -> None:
        return None

    with pytest.raises(ValueError):
        BoundedFrequencyRunner("bad", nothing, min_interval=2.0, max_interval=1.0,
                               retry_interval=1.0)
