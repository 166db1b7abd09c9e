"""What an update package is, as the publisher and the terminal both understand it. Pure.

A package is one TUF target. Its target path is flat (``firmware-SHOUYIN-SIM-1.2.0.bin``), and its
signed custom metadata says what it is: ``{"version": "1.2.0", "kind": "firmware", "model":
"SHOUYIN-SIM"}``. The terminal trusts these fields only as the targets role signed them, never
as the cashier system's request states them.

A terminal is told where to look with one URL, ``<repository>/targets/<target path>``: the
repository's metadata is then at ``<repository>/metadata/`` (:func:`split_package_url`). The link
message (:class:`~shouyin.link.values.FirmwarePackage`) needs no new field for it.

Versions compare by their numeric parts (:func:`version_key`): ``SIM-1.10.0`` is newer than
``SIM-1.9.3``; a version without any digit is refused.

The simulated image's self-test fails when the image contains :data:`SELF_TEST_FAIL_MARKER`:
a deterministic way to publish a "bad build" that only the device itself can find out about.
"""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = [
    "DEFAULT_MODEL",
    "SELF_TEST_FAIL_MARKER",
    "PackageKind",
    "join_package_url",
    "split_package_url",
    "target_path",
    "valid_model",
    "valid_version",
    "version_key",
]

DEFAULT_MODEL = "SHOUYIN-SIM"
"""The simulator's model name (what it announces at Login)."""
SELF_TEST_FAIL_MARKER = b"SHOUYIN-SELFTEST:FAIL"
"""An image containing these bytes fails the simulated terminal's self-test."""

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,47}$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_DIGITS = re.compile(r"[0-9]+")
_TARGETS = "/targets/"


class PackageKind(StrEnum):
    """What a package updates."""

    FIRMWARE = "firmware"
    SOFTWARE = "software"


def valid_version(version: str) -> bool:
    """Whether ``version`` is usable: short, plain characters, and at least one number in it."""
    return bool(_VERSION.fullmatch(version)) and _DIGITS.search(version) is not None


def valid_model(model: str) -> bool:
    """Whether ``model`` is a plain model name."""
    return bool(_MODEL.fullmatch(model))


def version_key(version: str) -> tuple[int, ...]:
    """The numeric parts of ``version``, for ordering (``"SIM-1.10.0"`` -> ``(1, 10, 0)``)."""
    return tuple(int(part) for part in _DIGITS.findall(version))


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
