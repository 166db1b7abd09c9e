"""What an update package is, as the publisher and the terminal both understand it. Pure.

A package is one TUF target. Its target path is flat (``firmware-SHOUYIN-SIM-1.2.0.bin``), and its
signed custom metadata says what it is: ``{"version": "1.2.0", "kind": "firmware", "model":
"SHOUYIN-SIM"}``. The terminal trusts these fields only as the targets role signed them, never
as the cashier system's request states them.

A terminal is told where to look with one URL, ``<repository>/targets/<target path>``: the
repository's metadata is then at ``<repository>/metadata/`` (:func:`split_package_url`). The link
message (:class:`~shouyin.link.values.FirmwarePackage`) needs no new field for it.

Versions are ``LINE-MAJOR.MINOR.PATCH`` (:func:`parse_version`), e.g. ``SIM-1.10.0``: nothing
before or after (no ``-rc1``, no ``+build``: a pre-release must never rank above its release, so
there are none), no leading zeros. The line (``SIM``) names a firmware line and is compared for
equality only, never ordered: ``SIM2-1.0.0`` is neither newer nor older than ``SIM-1.10.0``, it
is another line (:func:`compare_versions` says ``None``). Within a line the numbers compare
numerically: ``SIM-1.10.0`` is newer than ``SIM-1.9.3``. The publisher keeps one line per model
and kind (a version of another line is refused), and a terminal installs only a newer version
of the line it runs.

The simulated image's self-test fails when the image contains :data:`SELF_TEST_FAIL_MARKER`:
a deterministic way to publish a "bad build" that only the device itself can find out about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_MODEL",
    "SELF_TEST_FAIL_MARKER",
    "PackageKind",
    "Version",
    "compare_versions",
    "join_package_url",
    "parse_version",
    "split_package_url",
    "target_path",
    "valid_model",
    "valid_version",
]

DEFAULT_MODEL = "SHOUYIN-SIM"
"""The simulator's model name (what it announces at Login)."""
SELF_TEST_FAIL_MARKER = b"SHOUYIN-SELFTEST:FAIL"
"""An image containing these bytes fails the simulated terminal's self-test."""

_NUMBER = r"(0|[1-9][0-9]{0,8})"
_VERSION = re.compile(
    rf"(?P<line>[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*)-{_NUMBER}\.{_NUMBER}\.{_NUMBER}"
)
_MAX_VERSION_LENGTH = 48
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_TARGETS = "/targets/"


class PackageKind(StrEnum):
    """What a package updates."""

    FIRMWARE = "firmware"
    SOFTWARE = "software"


@dataclass(frozen=True, slots=True)
class Version:
    """A parsed version: its line and its release numbers.

    Attributes:
        line: the firmware line (``"SIM"``): compared for equality only.
        release: ``(major, minor, patch)``.
    """

    line: str
    release: tuple[int, int, int]

    def __str__(self) -> str:
        return f"{self.line}-{'.'.join(str(number) for number in self.release)}"


def parse_version(version: str) -> Version:
    """Parse ``LINE-MAJOR.MINOR.PATCH`` (see the module docstring).

    Raises:
        ValueError: anything else (a pre-release suffix, no line, leading zeros, too long).
    """
    found = _VERSION.fullmatch(version) if len(version) <= _MAX_VERSION_LENGTH else None
    if found is None:
        raise ValueError(f"not a LINE-MAJOR.MINOR.PATCH version: {version!r}")
    major, minor, patch = (int(found.group(n)) for n in (2, 3, 4))
    return Version(found.group("line"), (major, minor, patch))


def valid_version(version: str) -> bool:
    """Whether ``version`` is a ``LINE-MAJOR.MINOR.PATCH`` version."""
    try:
        parse_version(version)
    except ValueError:
        return False
    return True


def compare_versions(version: str, other: str) -> int | None:
    """How ``version`` compares with ``other``: -1 older, 0 same, 1 newer.

    Returns:
        ``None`` when they cannot be compared: either is not a valid version, or they belong
        to different lines (which are never ordered).
    """
    try:
        mine, theirs = parse_version(version), parse_version(other)
    except ValueError:
        return None
    if mine.line != theirs.line:
        return None
    return (mine.release > theirs.release) - (mine.release < theirs.release)


def valid_model(model: str) -> bool:
    """Whether ``model`` is a plain model name."""
    return bool(_MODEL.fullmatch(model))


def target_path(kind: PackageKind, model: str, version: str, suffix: str = ".bin") -> str:
    """The TUF target path of a package: flat, so that every mirror can serve it as one file."""
    return f"{kind.value}-{model}-{version}{suffix}"


def join_package_url(repository_url: str, target: str) -> str:
    """The URL a terminal is given for ``target`` in the repository at ``repository_url``."""
    return repository_url.rstrip("/") + _TARGETS + target


def split_package_url(url: str) -> tuple[str, str, str]:
    """``(metadata base URL, targets base URL, target path)`` of a package URL.

    Raises:
        ValueError: not an ``http(s)://.../targets/<path>`` URL.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) package URL: {url!r}")
    base, found, target = url.rpartition(_TARGETS)
    if not found or not target or "/" in target or not base:
        raise ValueError(f"not a package URL (<repository>/targets/<file>): {url!r}")
    return base + "/metadata/", base + _TARGETS, target
