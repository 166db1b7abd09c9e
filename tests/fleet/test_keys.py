"""The key ring: terminal keys sealed at rest under a key-encryption key (and a passphrase)."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from shouyin.fleet.keys import (
    KEK_FILE,
    KEY_DIRECTORY,
    CorruptKeyFile,
    PassphraseMismatch,
    TerminalKeyRing,
    UnsafeKeyFile,
    WrongPassphrase,
    passphrase_from_env,
)
from shouyin.link.security import LongTermKey

from . import FAST_SCRYPT, OTHER_ID, TERMINAL_ID

SECRET = bytes(range(200, 232))
KEY = LongTermKey(SECRET, ecr_id="L01", terminal_id=TERMINAL_ID)
PASSPHRASE = "正确的马 battery staple".encode()


def ring(directory: Path, passphrase: bytes | None = None) -> TerminalKeyRing:
    return TerminalKeyRing(directory, passphrase=passphrase, scrypt_n=FAST_SCRYPT)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def everything_written(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_a_stored_key_comes_back_equal(tmp_path: Path) -> None:
    keys = ring(tmp_path)
    keys.put(KEY)
    again = ring(tmp_path).get(TERMINAL_ID)
    assert again == KEY and again is not None and again.key_id == KEY.key_id
    assert keys(TERMINAL_ID) == KEY  # the LinkServer ``keys`` lookup


def test_an_unknown_terminal_has_no_key_and_looking_creates_nothing(tmp_path: Path) -> None:
    assert ring(tmp_path / "keys").get(OTHER_ID) is None
    assert not (tmp_path / "keys").exists()


def test_the_key_bytes_are_not_on_disk_in_clear(tmp_path: Path) -> None:
    ring(tmp_path).put(KEY)
    written = everything_written(tmp_path)
    assert SECRET not in written
    assert SECRET.hex().encode() not in written


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_files_are_0600_and_directories_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        ring(tmp_path / "keys").put(KEY)
    finally:
        os.umask(old)
    assert mode(tmp_path / "keys") == 0o700
    assert mode(tmp_path / "keys" / KEY_DIRECTORY) == 0o700
    assert mode(tmp_path / "keys" / KEK_FILE) == 0o600
    assert mode(tmp_path / "keys" / KEY_DIRECTORY / f"{TERMINAL_ID}.key") == 0o600


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    keys = ring(tmp_path)
    keys.put(KEY)
    keys.put(LongTermKey(bytes(32), ecr_id="L01", terminal_id=TERMINAL_ID))
    names = sorted(p.name for p in tmp_path.rglob("*"))
    assert names == sorted([KEY_DIRECTORY, f"{TERMINAL_ID}.key", KEK_FILE])


def test_putting_again_replaces_the_key(tmp_path: Path) -> None:
    keys = ring(tmp_path)
    keys.put(KEY)
    newer = LongTermKey(bytes(32), ecr_id="L01", terminal_id=TERMINAL_ID)
    keys.put(newer)
    assert keys.get(TERMINAL_ID) == newer


def test_delete_removes_the_key_once(tmp_path: Path) -> None:
    keys = ring(tmp_path)
    keys.put(KEY)
    keys.put(LongTermKey(SECRET, ecr_id="L01", terminal_id=OTHER_ID))
    assert keys.terminal_ids() == {TERMINAL_ID, OTHER_ID}
    assert keys.delete(TERMINAL_ID)
    assert not keys.delete(TERMINAL_ID)
    assert keys.get(TERMINAL_ID) is None
    assert keys.terminal_ids() == {OTHER_ID}


# -- passphrase ------------------------------------------------------------------------------------


def test_a_passphrase_protected_ring_opens_with_the_same_passphrase(tmp_path: Path) -> None:
    ring(tmp_path, PASSPHRASE).put(KEY)
    assert json.loads((tmp_path / KEK_FILE).read_text())["protection"] == "scrypt"
    assert ring(tmp_path, PASSPHRASE).get(TERMINAL_ID) == KEY


def test_a_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    ring(tmp_path, PASSPHRASE).put(KEY)
    with pytest.raises(WrongPassphrase):
        ring(tmp_path, b"wrong").get(TERMINAL_ID)
    with pytest.raises(WrongPassphrase):
        ring(tmp_path, b"wrong").unlock()


def test_a_missing_passphrase_is_refused(tmp_path: Path) -> None:
    ring(tmp_path, PASSPHRASE).put(KEY)
    with pytest.raises(WrongPassphrase):
        ring(tmp_path).get(TERMINAL_ID)


def test_a_passphrase_for_an_unprotected_ring_is_refused(tmp_path: Path) -> None:
    ring(tmp_path).put(KEY)
    with pytest.raises(PassphraseMismatch):
        ring(tmp_path, PASSPHRASE).get(TERMINAL_ID)


def test_the_passphrase_comes_from_the_environment() -> None:
    assert passphrase_from_env({"SHOUYIN_KEY_PASSPHRASE": "口令"}) == "口令".encode()
    assert passphrase_from_env({"SHOUYIN_KEY_PASSPHRASE": ""}) is None
    assert passphrase_from_env({}) is None


# -- files that cannot be trusted ------------------------------------------------------------------


def key_file(directory: Path, terminal_id: str = TERMINAL_ID) -> Path:
    return directory / KEY_DIRECTORY / f"{terminal_id}.key"


def rewrite(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_an_altered_ciphertext_is_refused(tmp_path: Path) -> None:
    keys = ring(tmp_path)
    keys.put(KEY)
    path = key_file(tmp_path)
    ciphertext = json.loads(path.read_text())["ciphertext"]
    flipped = f"{int(ciphertext[0], 16) ^ 1:x}" + ciphertext[1:]
    rewrite(path, ciphertext=flipped)
    with pytest.raises(CorruptKeyFile):
        keys.get(TERMINAL_ID)


def test_a_key_file_copied_to_another_terminal_is_refused(tmp_path: Path) -> None:
    keys = ring(tmp_path)
    keys.put(KEY)
    stolen = key_file(tmp_path, OTHER_ID)
    stolen.write_bytes(key_file(tmp_path).read_bytes())
    stolen.chmod(0o600)
    with pytest.raises(CorruptKeyFile):
        keys.get(OTHER_ID)
    rewrite(stolen, terminal_id=OTHER_ID)  # relabelled too: the sealed identity still differs
    with pytest.raises(CorruptKeyFile):
        keys.get(OTHER_ID)


def test_a_key_sealed_under_another_kek_is_refused(tmp_path: Path) -> None:
    ring(tmp_path / "a").put(KEY)
    ring(tmp_path / "b").put(LongTermKey(bytes(32), ecr_id="L01", terminal_id=OTHER_ID))
    foreign = key_file(tmp_path / "b")
    foreign.write_bytes(key_file(tmp_path / "a").read_bytes())
    foreign.chmod(0o600)
    with pytest.raises(CorruptKeyFile):
        ring(tmp_path / "b").get(TERMINAL_ID)


def test_a_key_file_without_its_kek_is_refused(tmp_path: Path) -> None:
    ring(tmp_path).put(KEY)
    (tmp_path / KEK_FILE).unlink()
    with pytest.raises(CorruptKeyFile):
        ring(tmp_path).get(TERMINAL_ID)


@pytest.mark.parametrize("content", [b"", b"not json", b"[1]", b'{"version": 9}'])
def test_a_malformed_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    ring(tmp_path).put(KEY)
    key_file(tmp_path).write_bytes(content)
    with pytest.raises(CorruptKeyFile):
        ring(tmp_path).get(TERMINAL_ID)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("name", [KEK_FILE, f"{KEY_DIRECTORY}/{TERMINAL_ID}.key"])
def test_a_file_readable_by_others_is_refused(tmp_path: Path, name: str) -> None:
    ring(tmp_path).put(KEY)
    (tmp_path / name).chmod(0o644)
    with pytest.raises(UnsafeKeyFile):
        ring(tmp_path).get(TERMINAL_ID)


def test_unreasonable_scrypt_parameters_are_refused(tmp_path: Path) -> None:
    ring(tmp_path, PASSPHRASE).unlock()
    rewrite(tmp_path / KEK_FILE, n=1 << 30)
    with pytest.raises(CorruptKeyFile):
        ring(tmp_path, PASSPHRASE).unlock()


# -- hygiene ---------------------------------------------------------------------------------------


def test_no_key_bytes_passphrase_or_kek_in_logs_or_repr(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        plain = ring(tmp_path / "plain")
        plain.put(KEY)
        loaded = plain.get(TERMINAL_ID)
        plain.delete(TERMINAL_ID)
        protected = ring(tmp_path / "protected", PASSPHRASE)
        protected.put(KEY)
        with pytest.raises(WrongPassphrase) as refused:
            ring(tmp_path / "protected", b"wrong guess").get(TERMINAL_ID)
    kek = json.loads((tmp_path / "plain" / KEK_FILE).read_text())["kek"]
    shown = " ".join(
        [caplog.text, repr(plain), str(plain), repr(protected), repr(loaded), str(refused.value)]
    )
    for secret in (SECRET.hex(), repr(SECRET), kek, PASSPHRASE.decode(), "wrong guess"):
        assert secret not in shown
    assert KEY.key_id in caplog.text  # the public key id is what the logs show


def test_scrypt_cost_must_be_a_power_of_two(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="power of two"):
        TerminalKeyRing(tmp_path, scrypt_n=1000)
