"""Rate limits: token buckets per client, thread-safe, in bounded memory. Knows no web framework.

A :class:`Rate` of ``30/minute`` lets a client make 30 requests at once and then one more every
two seconds (a token bucket: capacity 30, refilled at 30 per minute). :class:`RateLimiter` keeps
one bucket per key (a client IP, an API key) and forgets buckets that are full again, so an idle
client costs nothing; at most ``max_clients`` buckets are kept, the least recently used going
first when a flood of new keys arrives.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gridmap.errors import InvalidInput

#: Seconds per period name of a rate ("30/minute").
PERIODS: dict[str, float] = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_ALIASES = {"s": "second", "sec": "second", "min": "minute", "h": "hour", "d": "day"}
#: Rate settings that switch a limit off.
OFF = ("", "off", "none", "0")
#: Most buckets one limiter keeps.
MAX_CLIENTS = 10_000

_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    """``count`` requests per ``period`` seconds."""

    count: int
    period: float

    @classmethod
    def parse(cls, text: str | None) -> Rate | None:
        """``30/minute`` (also second, hour, day; plural, or s, sec, min, h, d); None for off, 0 or empty."""
        if text is None or str(text).strip().lower() in OFF:
            return None
        match = _RATE.match(str(text).lower())
        name = match and _ALIASES.get(match.group(2), match.group(2))
        if name and name not in PERIODS and name.endswith("s"):
            name = name[:-1]  # minutes, hours
        if not match or name not in PERIODS or int(match.group(1)) < 1:
            raise InvalidInput(
                f"bad rate limit {text!r}: write COUNT/PERIOD with PERIOD second, minute, hour or day "
                "(e.g. 30/minute), or off"
            )
        return cls(int(match.group(1)), PERIODS[name])

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        name = next((n for n, s in PERIODS.items() if s == self.period), f"{self.period:g}s")
        return f"{self.count}/{name}"


class RateLimiter:
    """Token buckets of one :class:`Rate`, one per key."""

    def __init__(self, rate: Rate, *, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_clients < 1:
            raise ValueError(f"max_clients must be at least 1, got {max_clients}")
        self.rate = rate
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at), oldest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def hit(self, key: str) -> float:
        """Take one request for ``key``: 0.0 when allowed, else the seconds until it would be."""
        with self._lock:
            now = self.clock()
            tokens = self._tokens(key, now)
            if tokens >= 1.0:
                self._store(key, tokens - 1.0, now)
                return 0.0
            self._store(key, tokens, now)
            return (1.0 - tokens) / self.rate.per_second

    def refund(self, key: str) -> None:
        """Give back the request just taken for ``key`` (another limit refused it)."""
        with self._lock:
            if key in self._buckets:
                tokens, at = self._buckets[key]
                self._buckets[key] = (min(tokens + 1.0, float(self.rate.count)), at)

    def _tokens(self, key: str, now: float) -> float:
        stored = self._buckets.get(key)
        if stored is None:
            return float(self.rate.count)
        tokens, at = stored
        return min(float(self.rate.count), tokens + max(0.0, now - at) * self.rate.per_second)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        # Forget the oldest buckets once they are full again (amortised: a few per call), and the
        # least recently used ones beyond the bound.
        for _ in range(2):
            oldest = next(iter(self._buckets))
            if oldest == key or self._tokens(oldest, now) < self.rate.count:
                break
            del self._buckets[oldest]
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)


def retry_after_seconds(wait: float) -> int:
    """A wait as the whole seconds of an HTTP Retry-After header (at least 1)."""
    return max(1, math.ceil(wait))
