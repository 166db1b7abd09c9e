"""Network fault switches of the acquirer simulator (sans-I/O, deterministic with a seed).

Two different failures, because they leave the terminal in different states:

* **drop** (``drop_every=N``): every N-th received message is lost *before* the host sees it:
  nothing happened, but the terminal cannot know that;
* **lost answer** (``no_answer_rate=R``): the host processes the message (a sale is approved and
  recorded) but its answer is lost, with probability ``R`` drawn from a ``random.Random(seed)``:
  "approved at the host, never heard by the terminal", the case reversals exist for;
* **delay** (``delay_ms``): every answer is sent that much later.

:class:`FaultPlan` numbers the messages and decides for each one; the server applies the
decision. Changing the faults (control channel) restarts the numbering and the random sequence.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FaultDecision", "FaultPlan", "Faults"]


@dataclass(frozen=True, slots=True)
class Faults:
    """The fault switches.

    Attributes:
        drop_every: lose every N-th received message (0: never).
        delay_ms: delay every answer by this many milliseconds.
        no_answer_rate: probability (0..1) that a processed message's answer is lost.
        seed: seed of the random draws.
    """

    drop_every: int = 0
    delay_ms: int = 0
    no_answer_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.drop_every < 0 or self.delay_ms < 0 or not 0.0 <= self.no_answer_rate <= 1.0:
            raise ValueError("faults: drop_every and delay_ms >= 0, no_answer_rate in 0..1")

    def as_dict(self) -> dict[str, Any]:
        """The switches as a JSON-friendly dictionary."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What happens to one received message.

    Attributes:
        drop: lose the message before the host sees it.
        lose_answer: process it but do not send the answer.
        delay_s: extra delay before the answer.
    """

    drop: bool = False
    lose_answer: bool = False
    delay_s: float = 0.0


class FaultPlan:
    """Numbers received messages and decides their fate by the current :class:`Faults`.

    Args:
        faults: the initial switches.
    """

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self._count = 0
        self._random = random.Random(self.faults.seed)  # noqa: S311 - fault injection only

    def set(self, faults: Faults) -> None:
        """Use new switches; numbering and random draws start again."""
        self.faults = faults
        self._count = 0
        self._random = random.Random(faults.seed)  # noqa: S311 - fault injection only

    def next(self) -> FaultDecision:
        """The decision for the next received message."""
        self._count += 1
        faults = self.faults
        drop = faults.drop_every > 0 and self._count % faults.drop_every == 0
        lose = faults.no_answer_rate > 0 and self._random.random() < faults.no_answer_rate
        return FaultDecision(drop=drop, lose_answer=lose, delay_s=faults.delay_ms / 1000)
