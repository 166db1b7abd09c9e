"""Fixtures: a virtual printer on a real TCP port, run in its own thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shouyin.devices.printer_sim import ThreadedPrinter, VirtualPrinter


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[VirtualPrinter]:
    """A virtual 58 mm GB18030 printer writing jobs to ``tmp_path / "jobs"`` (no PNG: fast)."""
    with ThreadedPrinter(VirtualPrinter(tmp_path / "jobs", png=False, control_port=0)) as sim:
        yield sim
