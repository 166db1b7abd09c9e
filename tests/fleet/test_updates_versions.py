"""Package versions: ``LINE-MAJOR.MINOR.PATCH``, lines compared for equality and never ordered.

A pre-release suffix would rank above its own release and digits in the line would count as
version numbers; neither is accepted. See :mod:`shouyin.fleet.updates.package`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shouyin.fleet.updates import (
    DEFAULT_MODEL,
    BadPackage,
    Package,
    PackageKind,
    Progress,
    UpdateRepository,
    Version,
    classify_answer,
    compare_versions,
    parse_version,
)
from shouyin.fleet.updates.package import valid_version
from shouyin.link import AdminResponse, ErrorCondition, Result

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def test_a_version_is_a_line_and_three_numbers() -> None:
    assert parse_version("SIM-1.10.0") == Version("SIM", (1, 10, 0))
    assert parse_version("SHOUYIN-SIM2-0.0.7") == Version("SHOUYIN-SIM2", (0, 0, 7))
    assert str(parse_version("SIM-1.10.0")) == "SIM-1.10.0"


@pytest.mark.parametrize(
    "version",
    [
        "SIM-1.2.0-rc1",  # a pre-release would outrank SIM-1.2.0
        "SIM-1.2.0rc1",
        "SIM-1.2.0+build5",
        "SIM-1.2",
        "SIM-1.2.0.1",
        "1.2.0",  # no line
        "SIM-01.2.0",  # leading zero: SIM-1.2.0 spelled twice
        "2SIM-1.2.0",
        "SIM--1.2.0",
        "SIM 1.2.0",
        "SIM-" + "9" * 10 + ".0.0",
        "S" * 43 + "-1.0.0",  # 49 characters
        "beta",
        "",
    ],
)
def test_anything_else_is_not_a_version(version: str) -> None:
    assert not valid_version(version)
    with pytest.raises(ValueError, match=r"LINE-MAJOR\.MINOR\.PATCH"):
        parse_version(version)


def test_within_a_line_numbers_compare_numerically() -> None:
    assert compare_versions("SIM-1.10.0", "SIM-1.9.3") == 1
    assert compare_versions("SIM-1.9.3", "SIM-1.10.0") == -1
    assert compare_versions("SIM-1.2.0", "SIM-1.2.0") == 0


@pytest.mark.parametrize(
    ("version", "other"),
    [
        ("SIM2-1.0.0", "SIM-1.10.0"),  # digits in the line are not version numbers
        ("SIM-1.10.0", "SIM2-1.0.0"),
        ("SIM-1.2.0-rc1", "SIM-1.2.0"),  # not a version at all
        ("SIM-1.2.0", "V2.3.1"),  # what an unknown terminal may report
    ],
)
def test_other_lines_and_non_versions_are_not_ordered(version: str, other: str) -> None:
    assert compare_versions(version, other) is None


@given(
    line=st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True),
    a=st.tuples(*[st.integers(0, 10**6)] * 3),
    b=st.tuples(*[st.integers(0, 10**6)] * 3),
)
def test_order_within_a_line_is_the_order_of_the_numbers(
    line: str, a: tuple[int, int, int], b: tuple[int, int, int]
) -> None:
    first, second = (f"{line}-{'.'.join(map(str, r))}" for r in (a, b))
    assert compare_versions(first, second) == (a > b) - (a < b)


def package_file(tmp_path: Path, data: bytes = b"image" * 100) -> Path:
    path = tmp_path / "fw.bin"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("version", ["SIM-1.2.0-rc1", "SIM2-1.0.0", "1.2.0"])
def test_publishing_a_pre_release_or_another_line_is_refused(tmp_path: Path, version: str) -> None:
    repository = UpdateRepository.create(tmp_path / "updates", now=lambda: NOW)
    repository.publish(package_file(tmp_path), "SIM-1.10.0", model=DEFAULT_MODEL)
    before = repository.timestamp().version
    with pytest.raises(BadPackage):
        repository.publish(package_file(tmp_path, b"other"), version, model=DEFAULT_MODEL)
    assert repository.timestamp().version == before
    latest = repository.latest(DEFAULT_MODEL)
    assert latest is not None and latest.version == "SIM-1.10.0"


def test_each_model_and_kind_has_a_line_of_its_own(tmp_path: Path) -> None:
    repository = UpdateRepository.create(tmp_path / "updates", now=lambda: NOW)
    source = package_file(tmp_path)
    repository.publish(source, "SIM-1.0.0", model=DEFAULT_MODEL)
    repository.publish(source, "POS-9.0.0", model="OTHER-POS")
    repository.publish(source, "APP-0.5.0", kind=PackageKind.SOFTWARE, model=DEFAULT_MODEL)
    assert [p.version for p in repository.packages()] == ["POS-9.0.0", "SIM-1.0.0", "APP-0.5.0"]


PACKAGE = Package(
    target="firmware-SHOUYIN-SIM-SIM-1.2.0.bin",
    version="SIM-1.2.0",
    kind=PackageKind.FIRMWARE,
    model=DEFAULT_MODEL,
    length=1,
    sha256="ab" * 32,
)


@pytest.mark.parametrize("running", ["SIM2-1.0.0", "SIM-1.2.0-rc1"])
def test_a_terminal_on_another_line_is_not_counted_as_current(running: str) -> None:
    refused = AdminResponse(
        service_id="S1",
        result=Result.FAILURE,
        error_condition=ErrorCondition.REFUSAL,
        firmware_version=running,
        message="another line",
    )
    assert classify_answer(refused, PACKAGE.version) == (Progress.FAILED, "another line")
