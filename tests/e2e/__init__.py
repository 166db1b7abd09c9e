"""End-to-end tests (real processes, real sockets, real ptys): the helpers they share with
``tests/link`` (from :mod:`tests.link.aio_helpers`) and the peer as a separate process."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.helpers.process import JsonLinesProcess
from tests.link.aio_helpers import (
    ECR_ID,
    FAST,
    QUICK_BACKOFF,
    TERMINAL_ID,
    TIMEOUT,
    Trust,
    ecr_capabilities,
    exchange_every_category,
    fresh_code,
    make_trust,
    now,
    wait_for_notification,
    wrong_digits,
)

__all__ = [
    "ECR_ID",
    "FAST",
    "QUICK_BACKOFF",
    "TERMINAL_ID",
    "TIMEOUT",
    "PeerProcess",
    "Trust",
    "ecr_capabilities",
    "exchange_every_category",
    "fresh_code",
    "make_trust",
    "now",
    "wait_for_notification",
    "wrong_digits",
]


class PeerProcess(JsonLinesProcess):
    """``python -m shouyin.link.peer ...`` in its own process, followed through its JSON lines."""

    def __init__(self, args: Sequence[str], log: Path) -> None:
        module = ["shouyin.link.peer", *args, "--log-level", "INFO"]
        super().__init__("peer", module, log, wait=TIMEOUT, grace=2.0, tail_chars=2000)
