"""Firmware updates on the simulated terminal: fetch with TUF, install to the A/B slots, self-test.

The terminal trusts one thing: the store's TUF root metadata, pinned in its state directory when
it is provisioned (:func:`pin_trusted_root`; ``shouyin terminal sim --update-root FILE``). From
then on python-tuf's client (:class:`tuf.ngclient.Updater`, its metadata cache in
``<state dir>/updates/metadata``) decides whether the repository's metadata and a package can be
believed: signatures and thresholds, versions that never go back, expiry (a frozen repository),
length and hashes of the package. The cashier system's request only says where to look
(:func:`~shouyin.fleet.updates.package.split_package_url`); the version, model and digest that
count are the signed ones, and a version not newer than the running one is refused.

Installing (:func:`update_firmware`) follows :class:`~shouyin.terminal.records.FirmwareSlots`:
the slot record is saved (atomically) before the inactive slot is overwritten, after the image
is written (the new slot boots on trial), and after the self-test (confirmed, or rolled back
to the previous slot). The images are files ``<state dir>/slots/A.img`` and ``B.img``. The
power may be cut at :attr:`~shouyin.terminal.faults.Step.FIRMWARE_WRITE` (half an image
written) and :attr:`~shouyin.terminal.faults.Step.FIRMWARE_BOOT` (on trial);
:func:`recover_slots` at start-up then boots the last good slot.

The simulated self-test passes when the slot's image has the digest TUF verified and does not
contain :data:`~shouyin.fleet.updates.package.SELF_TEST_FAIL_MARKER` (and the fault switch
``firmware_self_test_fails`` is off).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from tuf.api.exceptions import DownloadError, RepositoryError
from tuf.api.metadata import Metadata, Root  # type: ignore[attr-defined]
from tuf.api.serialization import DeserializationError
from tuf.ngclient import Updater  # type: ignore[attr-defined]  # re-exported, no __all__

from shouyin.fleet.updates.package import (
    DEFAULT_MODEL,
    SELF_TEST_FAIL_MARKER,
    compare_versions,
    split_package_url,
)
from shouyin.link.keystore import atomic_write
from shouyin.link.messages import EventNotification
from shouyin.link.values import ErrorCondition, FirmwarePackage, NotificationKind
from shouyin.terminal.context import Services
from shouyin.terminal.errors import TerminalError
from shouyin.terminal.faults import Step
from shouyin.terminal.records import FirmwareSlots
from shouyin.terminal.state import TerminalState

__all__ = [
    "UPDATES_DIR",
    "Fetched",
    "UpdateOutcome",
    "UpdateRefused",
    "fetch_package",
    "pin_trusted_root",
    "recover_slots",
    "self_test",
    "slot_image",
    "update_firmware",
]

logger = logging.getLogger(__name__)

UPDATES_DIR = "updates"
"""Under the state directory: ``metadata/`` (TUF's trusted cache) and ``downloads/``."""
_SLOTS_DIR = "slots"


class UpdateRefused(TerminalError):
    """A package was not installed; nothing changed.

    Attributes:
        condition: what the cashier system is told (refusal, unreachable host...).
        reason: why, for the log and the admin.
    """

    def __init__(self, condition: ErrorCondition, reason: str) -> None:
        super().__init__(reason)
        self.condition = condition
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Fetched:
    """A package TUF verified, in the download cache.

    Attributes:
        path: the verified file.
        version: its signed version.
        sha256: its signed SHA-256.
        length: its signed length.
    """

    path: Path
    version: str
    sha256: str
    length: int


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    """What became of an update request.

    Attributes:
        slots: the slot record afterwards.
        condition: ``None`` when the new version runs; otherwise why not (``INCOMPATIBLE``:
            installed, failed its self-test and rolled back).
        message: for the cashier system's admin.
    """

    slots: FirmwareSlots
    condition: ErrorCondition | None
    message: str


def _metadata_dir(state_dir: Path) -> Path:
    return state_dir / UPDATES_DIR / "metadata"


def _pinned_root(state_dir: Path) -> bytes | None:
    """The pinned root metadata, or ``None`` if there is none or it cannot be read as one.

    An unreadable pinned root (empty or cut short by a power loss mid-write, in an older
    version or by TUF's own cache update) trusts nothing: it counts as absent, so that the
    terminal can be provisioned again instead of refusing every update forever.
    """
    path = _metadata_dir(state_dir) / "root.json"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        if isinstance(Metadata.from_bytes(data).signed, Root):
            return data
    except DeserializationError:  # empty, cut short, not TUF metadata at all
        pass
    logger.warning("the pinned update root %s is unreadable: treated as absent", path)
    return None


def pin_trusted_root(state_dir: Path, root: bytes) -> bool:
    """Provision the store's TUF root (its first trusted metadata), unless one is pinned already.

    A pinned root is never replaced this way: newer roots arrive through TUF itself, signed by
    the old one. An unreadable one is (see :func:`_pinned_root`). The file is written
    atomically and durably (:func:`~shouyin.link.keystore.atomic_write`).

    Returns:
        Whether ``root`` was pinned now.
    """
    path = _metadata_dir(state_dir) / "root.json"
    pinned = _pinned_root(state_dir)
    if pinned is not None:
        if pinned != root:
            logger.warning("a trusted update root is pinned already: the offered one is ignored")
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, root, 0o644)
    logger.info("trusted update root pinned")
    return True


def fetch_package(state_dir: Path, url: str, *, running: str, model: str) -> Fetched:
    """Refresh the TUF metadata and download the package at ``url``, verified (blocking I/O).

    Raises:
        UpdateRefused: no trusted root; metadata or package refused by TUF; unknown package;
            another model; a version not newer than ``running``; repository unreachable.
    """
    metadata = _metadata_dir(state_dir)
    if _pinned_root(state_dir) is None:
        raise UpdateRefused(ErrorCondition.NOT_ALLOWED, "未配置可信更新根 / no trusted update root")
    try:
        metadata_url, targets_url, target = split_package_url(url)
    except ValueError as error:
        raise UpdateRefused(ErrorCondition.MESSAGE_FORMAT, str(error)) from error
    downloads = state_dir / UPDATES_DIR / "downloads"
    downloads.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        updater = Updater(str(metadata), metadata_url, str(downloads), targets_url, bootstrap=None)
        updater.refresh()
        info = updater.get_targetinfo(target)
        if info is None:
            raise UpdateRefused(ErrorCondition.NOT_FOUND, f"无此更新包 / no package {target}")
        custom = info.custom
        version, for_model = str(custom.get("version", "")), str(custom.get("model", ""))
        if custom.get("kind") != "firmware":
            raise UpdateRefused(ErrorCondition.REFUSAL, f"不是固件 / not firmware: {target}")
        if for_model != model:
            raise UpdateRefused(ErrorCondition.REFUSAL, f"型号不符 / for model {for_model}")
        order = compare_versions(version, running)
        if order is None:  # another line, or a version either side cannot be compared
            raise UpdateRefused(
                ErrorCondition.REFUSAL, f"版本 {version} 与 {running} 不可比较 / another line"
            )
        if order <= 0:
            raise UpdateRefused(
                ErrorCondition.REFUSAL, f"版本 {version} 不比 {running} 新 / not newer"
            )
        path = updater.find_cached_target(info) or updater.download_target(info)
    except RepositoryError as error:  # signatures, versions, expiry, length and hashes
        raise UpdateRefused(
            ErrorCondition.REFUSAL, f"更新校验失败 / refused: {type(error).__name__}: {error}"
        ) from error
    except DownloadError as error:
        raise UpdateRefused(
            ErrorCondition.UNREACHABLE_HOST, f"更新服务器无法访问 / unreachable: {error}"
        ) from error
    except OSError as error:  # the metadata cache or the download directory
        raise UpdateRefused(
            ErrorCondition.UNAVAILABLE_SERVICE, f"终端存储错误 / storage: {error}"
        ) from error
    return Fetched(Path(path), version, info.hashes["sha256"], info.length)


def slot_image(state_dir: Path, slot: str) -> Path:
    """The file holding ``slot``'s image."""
    return state_dir / _SLOTS_DIR / f"{slot}.img"


def self_test(image: Path, digest: str, *, forced_failure: bool = False) -> str | None:
    """Run the simulated self-test of a booted image; ``None`` if it passes, else why not."""
    try:
        data = image.read_bytes()
    except OSError:
        return "image missing"
    if hashlib.sha256(data).hexdigest() != digest:
        return "image corrupt"
    if forced_failure or SELF_TEST_FAIL_MARKER in data:
        return "self-test failed"
    return None


def recover_slots(state: TerminalState) -> FirmwareSlots:
    """At start-up: boot the last good slot if an install or a trial was interrupted."""
    slots = state.firmware()
    recovered = slots.recovered()
    if recovered != slots:
        logger.warning(
            "firmware update interrupted (%s): booting slot %s (%s)",
            slots.installing or slots.running,
            recovered.active,
            recovered.running,
        )
        state.save_firmware(recovered)
    return recovered


def _write_image(services: Services, path: Path, data: bytes) -> None:
    """Write the image in two halves, durably; the power may go in between."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    half = len(data) // 2
    with path.open("wb") as handle:
        handle.write(data[:half])
        handle.flush()
        os.fsync(handle.fileno())
        services.step(Step.FIRMWARE_WRITE)
        handle.write(data[half:])
        handle.flush()
        os.fsync(handle.fileno())


async def update_firmware(
    services: Services, package: FirmwarePackage, *, model: str = DEFAULT_MODEL
) -> UpdateOutcome:
    """Fetch, verify, install, boot and self-test ``package``; roll back if the test fails.

    Returns:
        The outcome (the slot record is saved at every step).

    Raises:
        PowerLoss: a fault switch cut the power mid-update.
    """
    state = services.state
    slots = state.firmware()
    running = slots.running
    try:
        if package.url is None:
            raise UpdateRefused(ErrorCondition.MESSAGE_FORMAT, "no package URL")
        fetched = await asyncio.to_thread(
            fetch_package, state.directory, package.url, running=running, model=model
        )
        if (fetched.version, fetched.sha256, fetched.length) != (
            package.version,
            package.sha256,
            package.size,
        ):
            raise UpdateRefused(ErrorCondition.REFUSAL, "请求与签名元数据不符 / request mismatch")
    except UpdateRefused as refused:
        logger.warning("firmware %s refused: %s", package.version, refused.reason)
        return UpdateOutcome(slots, refused.condition, refused.reason[:200])
    slots = slots.begin_install(fetched.version)
    state.save_firmware(slots)
    try:
        _write_image(
            services, slot_image(state.directory, slots.inactive), fetched.path.read_bytes()
        )
        fetched.path.unlink()  # the slot holds it now; the download cache is not a third slot
    except OSError as error:  # e.g. flash full: the old slot still runs
        slots = slots.recovered()
        state.save_firmware(slots)
        logger.error("firmware %s not written: %s", fetched.version, error)
        return UpdateOutcome(slots, ErrorCondition.UNAVAILABLE_SERVICE, f"固件写入失败 / {error}")
    slots = slots.installed(fetched.version, fetched.sha256)
    state.save_firmware(slots)  # the boot loader now starts the new slot, on trial
    services.status.firmware = slots
    services.step(Step.FIRMWARE_BOOT)
    problem = self_test(
        slot_image(state.directory, slots.active),
        fetched.sha256,
        forced_failure=services.faults.plan.firmware_self_test_fails,
    )
    if problem is not None:
        slots = slots.rolled_back()
        state.save_firmware(slots)
        services.status.firmware = slots
        logger.warning("firmware %s %s: back to %s", fetched.version, problem, slots.running)
        return UpdateOutcome(
            slots, ErrorCondition.INCOMPATIBLE, f"新固件自检失败，已回退到 {slots.running}"
        )
    slots = slots.confirmed()
    state.save_firmware(slots)
    services.status.firmware = slots
    detail = f"{slots.running} in slot {slots.active}"
    services.send(EventNotification(event=NotificationKind.FIRMWARE_INSTALLED, detail=detail))
    logger.info("firmware %s installed", detail)
    return UpdateOutcome(slots, None, detail)
