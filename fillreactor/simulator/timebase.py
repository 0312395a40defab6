"""Simulated time: one scale factor between simulated seconds and real seconds.

Rules this module keeps:

* Every duration in the simulator (ring, talk, Originate ``Timeout``, load pacing) is in simulated
  seconds; ``sleep`` turns it into real seconds with ``scale`` (0.01 = a hundred times faster).
* The simulated wall clock starts at ``start_epoch``. Servers of one cluster share a time base, so
  their Uniqueids start from the same epoch and collide as the captured ones do.
* Nothing here is used for synchronisation in tests: tests await the simulator's hooks instead.
"""

from __future__ import annotations

import asyncio
import time


class TimeBase:
    def __init__(self, scale: float = 1.0, start_epoch: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self.scale = scale
        self.start_epoch = time.time() if start_epoch is None else start_epoch
        self._real_start = time.monotonic()

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self.start_epoch + (time.monotonic() - self._real_start) / self.scale

    def real_seconds(self, simulated: float) -> float:
        return max(0.0, simulated) * self.scale

    async def sleep(self, simulated: float) -> None:
        await asyncio.sleep(self.real_seconds(simulated))
