"""Keeping the repository's metadata fresh without publishing, and one signer at a time.

A store may go months without publishing. The snapshot (a week) and targets (90 days) expire
all the same, so ``update serve`` and ``update rollout`` re-sign whatever is due
(:meth:`UpdateRepository.refresh_metadata`). The terminal side here is the real one:
:func:`shouyin.terminal.firmware.fetch_package` (tuf's ``Updater``) against a served repository,
with the real clock; the repository's clock is set back to when the package was published.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shouyin.config import Settings
from shouyin.fleet.pairing import ListenFailed
from shouyin.fleet.updates import (
    DEFAULT_MODEL,
    EXPIRY,
    Package,
    RepositoryBusy,
    RepositoryServer,
    UpdateRepository,
)
from shouyin.fleet.updates.cli import ROOT_PASSPHRASE_ENV, update_app, updates_dir
from shouyin.terminal.firmware import UpdateRefused, fetch_package, pin_trusted_root

from . import make_settings, settings_env

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
runner = CliRunner()


def publish_days_ago(directory: Path, days: int) -> tuple[UpdateRepository, Package]:
    """A repository whose only publish was ``days`` ago (real clock), loaded again today."""
    then = datetime.now(UTC) - timedelta(days=days)
    old = UpdateRepository.create(directory, now=lambda: then)
    image = directory.parent / "fw.bin"
    image.write_bytes(b"firmware image 1.1\n" * 32)
    package = old.publish(image, "SIM-1.1.0", model=DEFAULT_MODEL)
    return UpdateRepository.load(directory), package


def fetch(tmp_path: Path, repository: UpdateRepository, package: Package) -> str:
    """Have a freshly provisioned terminal fetch ``package``; the version it verified."""
    state = tmp_path / "terminal"
    pin_trusted_root(state, repository.root_json())
    with RepositoryServer(repository.served_dir) as server:
        url = package.url(server.url)
        fetched = fetch_package(state, url, running="SIM-1.0.0", model=DEFAULT_MODEL)
    return fetched.version


def expiry(repository: UpdateRepository, role: str) -> datetime:
    document = json.loads((repository.metadata_dir / f"{role}.json").read_bytes())
    return datetime.fromisoformat(document["signed"]["expires"])


def test_fresh_metadata_is_left_alone(tmp_path: Path) -> None:
    repository = UpdateRepository.create(tmp_path / "updates", now=lambda: NOW)
    before = repository.timestamp().version
    assert repository.refresh_metadata() == []
    assert repository.timestamp().version == before


def test_eight_days_on_the_snapshot_and_timestamp_are_re_signed(tmp_path: Path) -> None:
    clock = [NOW]
    repository = UpdateRepository.create(tmp_path / "updates", now=lambda: clock[0])
    targets = repository.targets().version
    clock[0] = NOW + timedelta(days=8)
    assert repository.refresh_metadata() == ["snapshot", "timestamp"]
    assert repository.targets().version == targets  # 82 days left: not due
    assert repository.snapshot().expires == clock[0] + EXPIRY["snapshot"]
    assert repository.timestamp().snapshot_meta.version == repository.snapshot().version


def test_eighty_five_days_on_the_targets_are_re_signed_too(tmp_path: Path) -> None:
    clock = [NOW]
    repository = UpdateRepository.create(tmp_path / "updates", now=lambda: clock[0])
    clock[0] = NOW + timedelta(days=85)
    assert repository.refresh_metadata() == ["targets", "snapshot", "timestamp"]
    assert repository.targets().expires == clock[0] + EXPIRY["targets"]
    assert repository.snapshot().meta["targets.json"].version == repository.targets().version


@pytest.mark.parametrize("days", [8, 85])
def test_a_terminal_still_updates_long_after_the_last_publish(tmp_path: Path, days: int) -> None:
    repository, package = publish_days_ago(tmp_path / "updates", days)
    with pytest.raises(UpdateRefused, match="ExpiredMetadata"):  # what the reviewer saw
        repository.refresh_timestamp(if_within=timedelta(hours=12))
        fetch(tmp_path / "before", repository, package)
    repository.refresh_metadata()
    assert fetch(tmp_path / "after", repository, package) == "SIM-1.1.0"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = make_settings(tmp_path)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SHOUYIN_DATABASE_URL", raising=False)
    monkeypatch.setenv(ROOT_PASSPHRASE_ENV, "offline root")
    return settings


def test_cli_rollout_refreshes_every_expired_role(tmp_path: Path, settings: Settings) -> None:
    repository, _ = publish_days_ago(updates_dir(settings), 85)
    result = runner.invoke(update_app, ["rollout", "--version", "SIM-1.1.0", "--percent", "100"])
    assert result.exit_code == 0, result.output
    today = datetime.now(UTC)
    for role in ("targets", "snapshot", "timestamp"):
        assert expiry(repository, role) > today, role


def test_cli_serve_refreshes_every_expired_role_before_listening(settings: Settings) -> None:
    repository, _ = publish_days_ago(updates_dir(settings), 8)
    with RepositoryServer(repository.served_dir) as taken:  # serve stops at listening
        result = runner.invoke(update_app, ["serve", "--port", taken.url.rsplit(":", 1)[1]])
    assert isinstance(result.exception, ListenFailed)
    assert expiry(repository, "snapshot") > datetime.now(UTC)


def test_signing_waits_for_another_process_and_says_so(tmp_path: Path) -> None:
    repository = UpdateRepository.create(tmp_path / "updates", now=lambda: NOW)
    before = repository.timestamp().version
    # Another process (an open file description of its own) holds the lock.
    other = os.open(repository.keys_dir / ".signing.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        repository.lock_timeout = 0.2
        with pytest.raises(RepositoryBusy):
            repository.refresh_timestamp()  # what `update serve` does
        image = tmp_path / "fw.bin"
        image.write_bytes(b"image")
        with pytest.raises(RepositoryBusy):
            repository.publish(image, "SIM-1.1.0", model=DEFAULT_MODEL)
        with pytest.raises(RepositoryBusy):
            repository.refresh_metadata()
    finally:
        os.close(other)
    assert repository.timestamp().version == before  # nothing signed while it was held
    assert repository.packages() == []
    assert repository.refresh_timestamp()  # and free again once released
