"""The bounded-frequency runner every sync goes through (kube-proxy's
pkg/proxy/runner/bounded_frequency_runner.go, on asyncio).

Contract:
- `run()` asks for a run and never blocks. Requests that arrive while a run is pending or in
  progress are coalesced into one run.
- Two runs start at least `min_interval` apart, so a burst of events costs one sync.
- A run happens at least every `max_interval` even without requests (the periodic resync).
- A run that raises is retried after `retry_interval`, unless a run happens sooner anyway.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> float: ...

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait until `event` is set (True) or `timeout` seconds pass (False)."""


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), max(timeout, 0.0))
        except TimeoutError:
            return False
        return True


class BoundedFrequencyRunner:
    def __init__(
        self,
        name: str,
        fn: Callable[[], Awaitable[None]],
        *,
        min_interval: float,
        max_interval: float,
        retry_interval: float,
        clock: Clock | None = None,
    ) -> None:
        if min_interval > max_interval:
            raise ValueError("min_interval must not exceed max_interval")
        self.name = name
        self._fn = fn
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.retry_interval = retry_interval
        self._clock = clock or MonotonicClock()
        self._wakeup = asyncio.Event()
        self._requested = False
        self._retry_at = math.inf
        self._last_start = -math.inf

    def run(self) -> None:
        """Request a run as soon as the minimum interval allows."""
        self._requested = True
        self._wakeup.set()

    def retry_after(self, delay: float) -> None:
        """Request a run in `delay` seconds (or sooner if one happens anyway)."""
        self._retry_at = min(self._retry_at, self._clock.now() + delay)
        self._wakeup.set()

    def next_run(self) -> float:
        """When the next run is due, on the runner's clock."""
        due = self._last_start + self.max_interval
        if self._requested:
            due = self._last_start + self.min_interval
        due = min(due, max(self._retry_at, self._last_start + self.min_interval))
        return due

    async def loop(self) -> None:
        """Run `fn` on schedule, forever."""
        while True:
            self._wakeup.clear()
            now = self._clock.now()
            due = self.next_run()
            if due > now:
                await self._clock.wait(self._wakeup, due - now)
                continue
            self._requested = False
            self._retry_at = math.inf
            self._last_start = now
            try:
                await self._fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; retrying in %.1fs", self.name, self.retry_interval)
                self.retry_after(self.retry_interval)
