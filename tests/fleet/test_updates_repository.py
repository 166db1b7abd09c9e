"""The store's TUF repository: keys (offline, encrypted root), publishing, expiry, serving, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from shouyin.config import Settings
from shouyin.fleet.pairing import ListenFailed
from shouyin.fleet.updates import (
    DEFAULT_MODEL,
    EXPIRY,
    BadPackage,
    NoRepository,
    PackageKind,
    RepositoryExists,
    RepositoryServer,
    RootKeyNeeded,
    UnknownRollout,
    UpdateRepository,
    VersionNotNewer,
    compare_versions,
    join_package_url,
    mount_update_repository,
    split_package_url,
)
from shouyin.fleet.updates.cli import ROOT_PASSPHRASE_ENV, update_app, updates_dir

from . import make_settings, settings_env

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
runner = CliRunner()


def package_file(tmp_path: Path, name: str = "fw.bin", data: bytes = b"image" * 100) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def repository(tmp_path: Path) -> UpdateRepository:
    return UpdateRepository.create(tmp_path / "updates", now=lambda: NOW)


def test_keys_are_private_and_never_under_the_served_directory(
    repository: UpdateRepository,
) -> None:
    keys = sorted(p.name for p in repository.keys_dir.iterdir())
    assert keys == ["root.pem", "snapshot.pem", "targets.pem", "timestamp.pem"]
    for key in repository.keys_dir.iterdir():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not list(repository.served_dir.rglob("*.pem"))


def test_each_role_expires_after_its_own_lifetime(repository: UpdateRepository) -> None:
    assert repository.root().expires == NOW + EXPIRY["root"]
    assert repository.timestamp().expires == NOW + timedelta(days=1)
    assert repository.snapshot().expires == NOW + timedelta(days=7)
    assert repository.targets().expires == NOW + timedelta(days=90)


def test_an_offline_encrypted_root_key_signs_the_root_and_nothing_else(tmp_path: Path) -> None:
    usb = tmp_path / "usb" / "root.pem"
    repository = UpdateRepository.create(tmp_path / "updates", root_key=usb, passphrase=b"s3cret")
    assert usb.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert not (repository.keys_dir / "root.pem").exists()
    # Day to day the repository works without it...
    loaded = UpdateRepository.load(tmp_path / "updates")
    loaded.publish(package_file(tmp_path), "SIM-1.1.0", model=DEFAULT_MODEL)
    assert "root" not in loaded.signers
    # ...and the root is re-signed only from the file, with its passphrase.
    with pytest.raises(RootKeyNeeded):
        loaded.renew_root(usb, b"wrong")
    with pytest.raises(RootKeyNeeded):
        loaded.renew_root(repository.keys_dir / "targets.pem")  # a key, but not the root's
    assert loaded.renew_root(usb, b"s3cret") == 2
    assert (loaded.metadata_dir / "2.root.json").exists()
    assert "root" not in loaded.signers


def test_a_root_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    usb = tmp_path / "usb" / "root.pem"
    repository = UpdateRepository.create(tmp_path / "updates", root_key=usb)
    usb.chmod(0o644)
    with pytest.raises(RootKeyNeeded, match="600"):
        repository.renew_root(usb)


def test_publish_signs_the_package_with_its_version_kind_and_model(
    tmp_path: Path, repository: UpdateRepository
) -> None:
    package = repository.publish(package_file(tmp_path), "SIM-1.1.0", model=DEFAULT_MODEL)
    assert package.target == "firmware-SHOUYIN-SIM-SIM-1.1.0.bin"
    assert (repository.targets_dir / f"{package.sha256}.{package.target}").read_bytes() == (
        b"image" * 100
    )
    targets = json.loads((repository.metadata_dir / "2.targets.json").read_text())
    custom = targets["signed"]["targets"][package.target]["custom"]
    assert custom == {"version": "SIM-1.1.0", "kind": "firmware", "model": DEFAULT_MODEL}
    timestamp = json.loads((repository.metadata_dir / "timestamp.json").read_text())
    assert timestamp["signed"]["version"] == 2
    assert repository.latest(DEFAULT_MODEL) == package


@pytest.mark.parametrize("version", ["SIM-1.1.0", "SIM-1.0.9", "SIM-0.99.99"])
def test_publishing_a_version_not_newer_than_the_latest_is_refused(
    tmp_path: Path, repository: UpdateRepository, version: str
) -> None:
    repository.publish(package_file(tmp_path), "SIM-1.1.0", model=DEFAULT_MODEL)
    before = repository.timestamp().version
    with pytest.raises(VersionNotNewer):
        repository.publish(package_file(tmp_path, data=b"other"), version, model=DEFAULT_MODEL)
    assert repository.timestamp().version == before  # nothing was signed


def test_versions_are_per_model_and_kind_and_compare_numerically(
    tmp_path: Path, repository: UpdateRepository
) -> None:
    source = package_file(tmp_path)
    repository.publish(source, "SIM-1.9.0", model=DEFAULT_MODEL)
    repository.publish(source, "SIM-1.10.0", model=DEFAULT_MODEL)
    repository.publish(source, "SIM-1.0.0", model="OTHER-POS")
    repository.publish(source, "APP-0.5.0", kind=PackageKind.SOFTWARE, model=DEFAULT_MODEL)
    latest = repository.latest(DEFAULT_MODEL)
    assert latest is not None and latest.version == "SIM-1.10.0"
    assert len(repository.packages()) == 4
    assert compare_versions("SIM-1.10.0", "SIM-1.9.3") == 1


@pytest.mark.parametrize(
    ("version", "model", "data"),
    [
        ("", DEFAULT_MODEL, b"x"),
        ("beta", DEFAULT_MODEL, b"x"),
        ("SIM-1.0.0", "a b", b"x"),
        ("SIM-1.0.0", DEFAULT_MODEL, b""),
    ],
)
def test_bad_packages_are_refused(
    tmp_path: Path, repository: UpdateRepository, version: str, model: str, data: bytes
) -> None:
    with pytest.raises(BadPackage):
        repository.publish(package_file(tmp_path, data=data), version, model=model)


def test_a_missing_file_is_a_bad_package(tmp_path: Path, repository: UpdateRepository) -> None:
    with pytest.raises(BadPackage):
        repository.publish(tmp_path / "nope.bin", "SIM-1.0.0", model=DEFAULT_MODEL)


def test_create_twice_and_load_nothing_are_clear_errors(tmp_path: Path) -> None:
    UpdateRepository.create(tmp_path / "updates")
    with pytest.raises(RepositoryExists):
        UpdateRepository.create(tmp_path / "updates")
    with pytest.raises(NoRepository):
        UpdateRepository.load(tmp_path / "elsewhere")


def test_the_timestamp_is_refreshed_only_when_due(tmp_path: Path) -> None:
    clock = [NOW]
    repository = UpdateRepository.create(tmp_path / "updates", now=lambda: clock[0])
    assert not repository.refresh_timestamp(if_within=timedelta(hours=12))
    clock[0] = NOW + timedelta(hours=13)
    assert repository.refresh_timestamp(if_within=timedelta(hours=12))
    assert repository.timestamp().expires == clock[0] + timedelta(days=1)


def test_package_urls_split_into_metadata_and_targets() -> None:
    url = join_package_url("http://127.0.0.1:8584/updates/", "firmware-X-1.bin")
    assert url == "http://127.0.0.1:8584/updates/targets/firmware-X-1.bin"
    assert split_package_url(url) == (
        "http://127.0.0.1:8584/updates/metadata/",
        "http://127.0.0.1:8584/updates/targets/",
        "firmware-X-1.bin",
    )
    for bad in ("file:///tmp/x.bin", "http://h/x.bin", "http://h/targets/a/b.bin"):
        with pytest.raises(ValueError, match="URL"):
            split_package_url(bad)


def test_the_web_app_serves_metadata_and_packages_but_no_keys(
    tmp_path: Path, repository: UpdateRepository
) -> None:
    package = repository.publish(package_file(tmp_path), "SIM-1.1.0", model=DEFAULT_MODEL)
    app = FastAPI()
    mount_update_repository(app, repository.served_dir)

    async def fetch(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    root = asyncio.run(fetch("/updates/metadata/root.json"))
    assert root.content == repository.root_json()
    served = asyncio.run(fetch(f"/updates/targets/{package.sha256}.{package.target}"))
    assert served.content == b"image" * 100
    assert asyncio.run(fetch("/updates/..%2Fkeys/root.pem")).status_code == 404


# -- the command line ------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = make_settings(tmp_path)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SHOUYIN_DATABASE_URL", raising=False)
    monkeypatch.setenv(ROOT_PASSPHRASE_ENV, "offline root")
    return settings


def test_cli_init_publish_and_refuse_an_older_version(tmp_path: Path, settings: Settings) -> None:
    usb = tmp_path / "usb" / "root.pem"
    result = runner.invoke(update_app, ["init", "--root-key", str(usb), "--encrypt-root"])
    assert result.exit_code == 0, result.output
    assert usb.read_bytes().startswith(b"-----BEGIN ENCRYPTED")
    source = package_file(tmp_path)
    result = runner.invoke(update_app, ["publish", str(source), "--version", "SIM-1.1.0"])
    assert result.exit_code == 0, result.output
    assert "firmware-SHOUYIN-SIM-SIM-1.1.0.bin" in result.output
    result = runner.invoke(update_app, ["publish", str(source), "--version", "SIM-1.0.5"])
    assert isinstance(result.exception, VersionNotNewer)
    assert "SIM-1.1.0" in str(result.exception)
    result = runner.invoke(update_app, ["renew-root", "--root-key", str(usb), "--encrypted"])
    assert result.exit_code == 0, result.output
    assert "Root re-signed: v2" in result.output
    result = runner.invoke(update_app, ["status"])
    assert result.exit_code == 0, result.output


def test_cli_rollout_of_an_unknown_version_is_a_clear_error(settings: Settings) -> None:
    assert runner.invoke(update_app, ["init"]).exit_code == 0
    result = runner.invoke(update_app, ["rollout", "--version", "SIM-9.9.9", "--percent", "100"])
    assert isinstance(result.exception, UnknownRollout)
    assert "SIM-9.9.9" in str(result.exception)


def test_cli_rollout_with_no_paired_terminal_finishes_at_once(
    tmp_path: Path, settings: Settings
) -> None:
    assert runner.invoke(update_app, ["init"]).exit_code == 0
    source = str(package_file(tmp_path))
    assert runner.invoke(update_app, ["publish", source, "--version", "SIM-1.1.0"]).exit_code == 0
    result = runner.invoke(update_app, ["rollout", "--version", "SIM-1.1.0", "--percent", "100"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(update_app, ["status"])
    assert result.exit_code == 0, result.output
    assert "firmware:SHOUYIN-SIM:SIM-1.1.0" in result.output


def test_cli_serve_on_a_taken_port_is_a_clear_error(settings: Settings) -> None:
    assert runner.invoke(update_app, ["init"]).exit_code == 0
    with RepositoryServer(updates_dir(settings) / "repository") as taken:
        port = taken.url.rsplit(":", 1)[1]
        result = runner.invoke(update_app, ["serve", "--port", port])
    assert isinstance(result.exception, ListenFailed)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names descriptors via /proc")
def test_publishing_syncs_the_metadata_directory_after_each_rename(
    tmp_path: Path, repository: UpdateRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    repository.publish(package_file(tmp_path), "SIM-1.1.0", model=DEFAULT_MODEL)
    # The package, then targets and snapshot (twice each: N.role.json, role.json), timestamp.
    assert synced.count(str(repository.metadata_dir)) == 5
    assert str(repository.targets_dir) in synced
