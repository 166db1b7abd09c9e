"""The terminal's pinned TUF root: written durably, and an unreadable one does not block updates.

A power cut right after provisioning could leave ``root.json`` empty or cut short. Such a file
trusts nothing: it counts as absent (updates are refused as "no trusted root") and the terminal
can be provisioned again, instead of refusing every update forever.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shouyin.fleet.updates import DEFAULT_MODEL, Package, RepositoryServer, UpdateRepository
from shouyin.link import ErrorCondition
from shouyin.terminal.firmware import UpdateRefused, fetch_package, pin_trusted_root

ROOT = Path("updates") / "metadata" / "root.json"


@pytest.fixture
def repository(tmp_path: Path) -> UpdateRepository:
    return UpdateRepository.create(tmp_path / "updates")


@pytest.fixture
def served(tmp_path: Path, repository: UpdateRepository) -> Iterator[tuple[str, Package]]:
    image = tmp_path / "fw.bin"
    image.write_bytes(b"firmware 1.1\n" * 64)
    package = repository.publish(image, "SIM-1.1.0", model=DEFAULT_MODEL)
    with RepositoryServer(repository.served_dir) as server:
        yield server.url, package


def fetch(state: Path, served: tuple[str, Package]) -> str:
    url, package = served
    return fetch_package(state, package.url(url), running="SIM-1.0.0", model=DEFAULT_MODEL).version


@pytest.mark.parametrize("damage", [b"", b'{"signed": {"_type": "ro', b'{"signed": "x"}'])
def test_an_unreadable_pinned_root_counts_as_absent_and_can_be_pinned_again(
    tmp_path: Path, repository: UpdateRepository, served: tuple[str, Package], damage: bytes
) -> None:
    state = tmp_path / "terminal"
    (state / ROOT).parent.mkdir(parents=True)
    (state / ROOT).write_bytes(damage)  # what a power cut mid-provisioning can leave
    with pytest.raises(UpdateRefused) as refused:
        fetch(state, served)
    assert refused.value.condition is ErrorCondition.NOT_ALLOWED  # "no trusted root"
    assert pin_trusted_root(state, repository.root_json())
    assert (state / ROOT).read_bytes() == repository.root_json()
    assert fetch(state, served) == "SIM-1.1.0"


def test_a_readable_pinned_root_is_kept(tmp_path: Path, repository: UpdateRepository) -> None:
    state = tmp_path / "terminal"
    assert pin_trusted_root(state, repository.root_json())
    other = UpdateRepository.create(tmp_path / "other")
    assert not pin_trusted_root(state, other.root_json())
    assert (state / ROOT).read_bytes() == repository.root_json()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names descriptors via /proc")
def test_pinning_syncs_the_file_and_its_directory(
    tmp_path: Path, repository: UpdateRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    state = tmp_path / "terminal"
    assert pin_trusted_root(state, repository.root_json())
    directory = str((state / ROOT).parent)
    assert synced[-1] == directory  # the rename is durable
    assert any(Path(name).parent == Path(directory) for name in synced[:-1])  # the data too
    assert [p.name for p in (state / ROOT).parent.iterdir()] == ["root.json"]  # no leftovers
