"""Reconnection back-off as a pure policy: the adapters sleep, this only says how long.

Delays grow exponentially from ``initial`` by ``factor`` up to ``maximum``; each is then scaled by
a random factor in ``[1 - jitter, 1)`` drawn from an *injected* source, so that a shop full of
lanes that lost the store server at the same moment does not reconnect in lockstep, and so that
tests are deterministic (pass ``random.Random(seed).random``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off with jitter.

    Attributes:
        initial: the first delay before jitter (seconds).
        factor: growth per attempt.
        maximum: cap before jitter.
        jitter: fraction of each delay that is random (0 = none, 1 = "full jitter").
    """

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.maximum < self.initial:
            raise ValueError("need 0 < initial <= maximum and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction in [0, 1]")

    def delay(self, attempt: int, random: Callable[[], float]) -> float:
        """The delay before reconnection attempt ``attempt`` (0-based).

        Args:
            attempt: how many attempts already failed.
            random: returns a float in ``[0, 1)`` (e.g. ``random.Random(seed).random``).
        """
        base = self.maximum
        if attempt < 64:  # beyond that the power only overflows towards the cap
            base = min(self.maximum, self.initial * self.factor**attempt)
        return base * (1 - self.jitter + self.jitter * random())

    def delays(self, random: Callable[[], float]) -> Iterator[float]:
        """The endless sequence of delays for attempts 0, 1, 2..."""
        attempt = 0
        while True:
            yield self.delay(attempt, random)
            attempt += 1
