"""The simulated terminal's firmware updates: tuf's protections, A/B slots, self-test, power loss.

The store's side is real: an :class:`UpdateRepository` on disk served by a
:class:`RepositoryServer` on loopback. The terminal is a real :class:`TerminalApp` on its own
state directory, asked through :meth:`TerminalApp.handle` as the link would. Attacks are made
on the served files, as a compromised mirror or a man in the middle would make them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shouyin.fleet.updates import (
    DEFAULT_MODEL,
    SELF_TEST_FAIL_MARKER,
    Package,
    RepositoryServer,
    UpdateRepository,
)
from shouyin.link import (
    AdminAction,
    AdminRequest,
    AdminResponse,
    ErrorCondition,
    EventNotification,
    FirmwarePackage,
    MessageBase,
    NotificationKind,
    Result,
)
from shouyin.terminal.app import TerminalApp
from shouyin.terminal.cards import RulesReader
from shouyin.terminal.errors import PowerLoss
from shouyin.terminal.faults import FaultPlan, Faults, Step
from shouyin.terminal.firmware import pin_trusted_root, slot_image
from shouyin.terminal.memory_host import MemoryAcquirer
from shouyin.terminal.records import FirmwareSlots
from shouyin.terminal.state import TerminalState

_IDS = itertools.count(1)


@dataclass
class Store:
    """The store's update repository, served on loopback."""

    directory: Path
    repository: UpdateRepository
    server: RepositoryServer

    def publish(self, version: str, image: bytes | None = None) -> Package:
        """Publish ``image`` (default: a good one) as ``version``."""
        source = self.directory / f"{version}.bin"
        source.write_bytes(image or f"good firmware {version}\n".encode() * 64)
        return self.repository.publish(source, version, model=DEFAULT_MODEL)

    def package_file(self, package: Package) -> Path:
        """Where the served package is."""
        return self.repository.targets_dir / f"{package.sha256}.{package.target}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    repository = UpdateRepository.create(tmp_path / "updates")
    with RepositoryServer(repository.served_dir) as server:
        yield Store(tmp_path, repository, server)


@dataclass
class Terminal:
    """A terminal application on its state directory, and what it sent."""

    directory: Path
    plan: FaultPlan | None = None
    sent: list[MessageBase] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.boot()

    def boot(self) -> None:
        """Start (again) on the state directory, as after a power cycle."""
        self.state = TerminalState(self.directory)
        self.app = TerminalApp(
            self.state,
            MemoryAcquirer(),
            RulesReader(),
            faults=Faults(self.plan),
            outbox=self.sent.append,
        )
        self.app.recover()

    def power_cycle(self) -> None:
        """Lose power and start again, without the fault switch."""
        self.state.close()
        self.plan = None
        self.boot()

    @staticmethod
    def request(store: Store, package: Package) -> AdminRequest:
        """The cashier system's request to install ``package``."""
        firmware = FirmwarePackage(
            version=package.version,
            sha256=package.sha256,
            size=package.length,
            url=package.url(store.server.url),
        )
        return AdminRequest(
            service_id=f"S{next(_IDS)}", action=AdminAction.FIRMWARE_UPDATE, firmware=firmware
        )

    def update(self, store: Store, package: Package) -> AdminResponse:
        """Ask it to install ``package`` (as the link would)."""
        answer = asyncio.run(self.app.handle(self.request(store, package)))
        assert isinstance(answer, AdminResponse)
        return answer

    @property
    def slots(self) -> FirmwareSlots:
        """The slot record on disk."""
        return self.state.firmware()

    def installed_notifications(self) -> list[EventNotification]:
        """The ``firmware_installed`` notifications it sent."""
        return [
            m
            for m in self.sent
            if isinstance(m, EventNotification) and m.event is NotificationKind.FIRMWARE_INSTALLED
        ]


@pytest.fixture
def terminal(tmp_path: Path, store: Store) -> Iterator[Terminal]:
    pin_trusted_root(tmp_path / "terminal", store.repository.root_json())
    terminal = Terminal(tmp_path / "terminal")
    yield terminal
    terminal.state.close()


def assert_untouched(terminal: Terminal, answer: AdminResponse, running: str = "SIM-1.0.0") -> None:
    assert answer.result is Result.FAILURE
    assert answer.firmware_version == running
    assert terminal.slots.running == running
    assert terminal.app.status.health().firmware == running
    assert terminal.slots.installing is None and not terminal.slots.trial


def test_update_goes_to_the_inactive_slot_boots_and_stays(store: Store, terminal: Terminal) -> None:
    package = store.publish("SIM-1.1.0")
    answer = terminal.update(store, package)
    assert answer.result is Result.SUCCESS and answer.firmware_version == "SIM-1.1.0"
    assert terminal.slots == FirmwareSlots(active="B", a="SIM-1.0.0", b="SIM-1.1.0")
    image = slot_image(terminal.directory, "B").read_bytes()
    assert hashlib.sha256(image).hexdigest() == package.sha256
    assert [n.detail for n in terminal.installed_notifications()] == ["SIM-1.1.0 in slot B"]
    assert "B:SIM-1.1.0*" in terminal.app.status.summary()
    assert not list((terminal.directory / "updates" / "downloads").iterdir())  # no third copy


def test_a_second_update_while_one_runs_is_refused_as_busy(
    store: Store, terminal: Terminal
) -> None:
    package = store.publish("SIM-1.1.0")

    async def both() -> list[AdminResponse]:
        first = asyncio.ensure_future(terminal.app.handle(terminal.request(store, package)))
        await asyncio.sleep(0)  # the first one is fetching (in a worker thread) now
        second = await terminal.app.handle(terminal.request(store, package))
        answers = [await first, second]
        assert all(isinstance(a, AdminResponse) for a in answers)
        return [a for a in answers if isinstance(a, AdminResponse)]

    first, second = asyncio.run(both())
    assert first.result is Result.SUCCESS and first.firmware_version == "SIM-1.1.0"
    assert second.error_condition is ErrorCondition.BUSY


def test_a_tampered_package_is_refused(store: Store, terminal: Terminal) -> None:
    package = store.publish("SIM-1.1.0")
    served = store.package_file(package)
    data = bytearray(served.read_bytes())
    data[10] ^= 0x01  # same length, one bit different
    served.write_bytes(bytes(data))
    answer = terminal.update(store, package)
    assert_untouched(terminal, answer)
    assert answer.error_condition is ErrorCondition.REFUSAL
    assert answer.message is not None and "LengthOrHashMismatch" in answer.message
    assert not slot_image(terminal.directory, "B").exists()
    assert terminal.installed_notifications() == []


def test_metadata_rolled_back_to_an_older_version_is_refused(
    store: Store, terminal: Terminal
) -> None:
    store.publish("SIM-1.1.0")
    old_timestamp = (store.repository.metadata_dir / "timestamp.json").read_bytes()
    assert terminal.update(store, store.publish("SIM-1.2.0")).result is Result.SUCCESS
    newest = store.publish("SIM-1.3.0")
    (store.repository.metadata_dir / "timestamp.json").write_bytes(old_timestamp)
    answer = terminal.update(store, newest)
    assert_untouched(terminal, answer, running="SIM-1.2.0")
    assert answer.message is not None and "BadVersionNumber" in answer.message


def test_an_older_package_is_refused(store: Store, terminal: Terminal) -> None:
    older = store.publish("SIM-1.1.0")
    assert terminal.update(store, store.publish("SIM-1.2.0")).result is Result.SUCCESS
    answer = terminal.update(store, older)  # validly signed, but a downgrade
    assert_untouched(terminal, answer, running="SIM-1.2.0")
    assert answer.error_condition is ErrorCondition.REFUSAL


def test_a_request_contradicting_the_signed_metadata_is_refused(
    store: Store, terminal: Terminal
) -> None:
    package = store.publish("SIM-1.1.0")
    # The request says 9.0.0; the targets role signed 1.1.0: the signed one counts.
    lying = dataclasses.replace(package, version="SIM-9.0.0")
    answer = terminal.update(store, lying)
    assert_untouched(terminal, answer)


def test_a_frozen_expired_timestamp_is_refused(store: Store, terminal: Terminal) -> None:
    # The repository's clock is fixed two days back: the timestamp (one day) has expired, as one
    # replayed by an attacker who froze the repository would have.
    frozen = datetime.now(UTC) - timedelta(days=2)
    store.repository.now = lambda: frozen
    package = store.publish("SIM-1.1.0")
    answer = terminal.update(store, package)
    assert_untouched(terminal, answer)
    assert answer.message is not None and "ExpiredMetadata" in answer.message


def test_metadata_signed_with_a_wrong_key_is_refused(
    tmp_path: Path, store: Store, terminal: Terminal
) -> None:
    package = store.publish("SIM-1.1.0")
    other = UpdateRepository.create(tmp_path / "other-store")
    store.repository.signers["timestamp"] = other.signers["timestamp"]
    store.repository.refresh_timestamp()
    answer = terminal.update(store, package)
    assert_untouched(terminal, answer)
    assert answer.message is not None and "UnsignedMetadata" in answer.message


def test_another_stores_root_is_not_trusted(tmp_path: Path, store: Store) -> None:
    other = UpdateRepository.create(tmp_path / "other-store")
    pin_trusted_root(tmp_path / "stranger", other.root_json())
    stranger = Terminal(tmp_path / "stranger")
    try:
        answer = stranger.update(store, store.publish("SIM-1.1.0"))
        assert_untouched(stranger, answer)
    finally:
        stranger.state.close()


def test_without_a_pinned_root_nothing_is_installed(tmp_path: Path, store: Store) -> None:
    bare = Terminal(tmp_path / "bare")
    try:
        answer = bare.update(store, store.publish("SIM-1.1.0"))
        assert_untouched(bare, answer)
        assert answer.error_condition is ErrorCondition.NOT_ALLOWED
    finally:
        bare.state.close()


def test_an_unreachable_repository_changes_nothing(store: Store, terminal: Terminal) -> None:
    package = store.publish("SIM-1.1.0")
    store.server.close()
    answer = terminal.update(store, package)
    assert_untouched(terminal, answer)
    assert answer.error_condition is ErrorCondition.UNREACHABLE_HOST


def test_an_image_failing_its_self_test_is_rolled_back(store: Store, terminal: Terminal) -> None:
    bad = store.publish("SIM-1.1.0", b"broken build " + SELF_TEST_FAIL_MARKER + b"\n" * 100)
    answer = terminal.update(store, bad)
    assert_untouched(terminal, answer)
    assert answer.error_condition is ErrorCondition.INCOMPATIBLE
    assert terminal.slots == FirmwareSlots(active="A", a="SIM-1.0.0", b=None, failed="SIM-1.1.0")
    assert terminal.installed_notifications() == []
    # The next good build goes into the same slot and stays.
    assert terminal.update(store, store.publish("SIM-1.2.0")).result is Result.SUCCESS
    assert terminal.slots == FirmwareSlots(active="B", a="SIM-1.0.0", b="SIM-1.2.0")


def test_the_fault_switch_fails_the_self_test_too(tmp_path: Path, store: Store) -> None:
    pin_trusted_root(tmp_path / "t2", store.repository.root_json())
    faulty = Terminal(tmp_path / "t2", plan=FaultPlan(firmware_self_test_fails=True))
    try:
        answer = faulty.update(store, store.publish("SIM-1.1.0"))
        assert_untouched(faulty, answer)
        assert answer.error_condition is ErrorCondition.INCOMPATIBLE
    finally:
        faulty.state.close()


def test_power_loss_while_writing_the_image_boots_the_old_slot(
    tmp_path: Path, store: Store
) -> None:
    pin_trusted_root(tmp_path / "t3", store.repository.root_json())
    victim = Terminal(tmp_path / "t3", plan=FaultPlan(power_loss_at=Step.FIRMWARE_WRITE))
    package = store.publish("SIM-1.1.0")
    try:
        with pytest.raises(PowerLoss):
            victim.update(store, package)
        assert victim.slots.installing == "SIM-1.1.0"  # what the boot loader finds
        assert slot_image(victim.directory, "B").stat().st_size < package.length
        victim.power_cycle()
        assert victim.slots == FirmwareSlots(active="A", a="SIM-1.0.0", failed="SIM-1.1.0")
        assert victim.app.status.health().firmware == "SIM-1.0.0"
        assert victim.update(store, package).result is Result.SUCCESS  # and it can try again
        assert victim.slots.running == "SIM-1.1.0"
    finally:
        victim.state.close()


def test_power_loss_before_the_self_test_rolls_back_at_restart(
    tmp_path: Path, store: Store
) -> None:
    pin_trusted_root(tmp_path / "t4", store.repository.root_json())
    victim = Terminal(tmp_path / "t4", plan=FaultPlan(power_loss_at=Step.FIRMWARE_BOOT))
    try:
        with pytest.raises(PowerLoss):
            victim.update(store, store.publish("SIM-1.1.0"))
        assert victim.slots.trial and victim.slots.active == "B"
        victim.power_cycle()
        assert victim.slots == FirmwareSlots(active="A", a="SIM-1.0.0", failed="SIM-1.1.0")
    finally:
        victim.state.close()


def test_a_pinned_root_is_never_replaced(tmp_path: Path, store: Store) -> None:
    directory = tmp_path / "t5"
    assert pin_trusted_root(directory, store.repository.root_json())
    assert not pin_trusted_root(directory, b'{"signed": "someone else"}')
    pinned = (directory / "updates" / "metadata" / "root.json").read_bytes()
    assert pinned == store.repository.root_json()


def test_slot_record_transitions() -> None:
    start = FirmwareSlots()
    writing = start.begin_install("2")
    assert (writing.active, writing.b, writing.installing) == ("A", None, "2")
    assert writing.recovered() == FirmwareSlots(failed="2")
    trial = writing.installed("2", "ab" * 32)
    assert (trial.active, trial.running, trial.trial) == ("B", "2", True)
    assert trial.recovered() == FirmwareSlots(failed="2")
    assert trial.confirmed() == FirmwareSlots(active="B", b="2")
    assert trial.confirmed().recovered() == trial.confirmed()
    # From B, the next update goes to A.
    again = trial.confirmed().begin_install("3").installed("3", "cd" * 32).confirmed()
    assert again == FirmwareSlots(active="A", a="3", b="2")
