"""The update repository's files: durable writes, key files and the signing lock (I/O only).

* :func:`write_durably`: every metadata, package and key file goes through
  :func:`shouyin.link.keystore.atomic_write` (temporary file, fsync, rename, fsync of the
  directory), so that a reader or a power cut sees the old file or the new one, whole;
* :func:`write_key` / :func:`read_key`: Ed25519 keys in PEM, 0600, optionally encrypted;
* :func:`exclusive_lock`: an exclusive ``flock`` with a deadline, which serialises signing between
  processes (``update publish`` while ``update serve`` re-signs the timestamp): two writers
  would otherwise both sign version N+1 of a role, and one of the two would be lost.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# This package re-exports its public names without __all__, hence the ignore.
from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

from shouyin.fleet.updates.errors import RepositoryBusy, RootKeyNeeded
from shouyin.link.keystore import atomic_write

__all__ = [
    "DIR_MODE",
    "KEY_MODE",
    "LOCK_TIMEOUT",
    "exclusive_lock",
    "read_key",
    "write_durably",
    "write_key",
]

KEY_MODE = 0o600
"""Key files (and the lock file beside them)."""
DIR_MODE = 0o700
"""The keys directory."""
LOCK_TIMEOUT = 30.0
"""Seconds to wait for another process's signing to finish."""
_LOCK_POLL = 0.05


def write_durably(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that a reader (or a power cut) sees old or new, whole.

    Creates the missing parent directories.

    Raises:
        OSError: the write failed (nothing was replaced).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, mode)


def write_key(path: Path, passphrase: bytes | None = None) -> CryptoSigner:
    """Make a new Ed25519 key, keep it at ``path`` (0600, encrypted if ``passphrase``).

    Returns:
        Its signer.
    """
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    write_durably(path, pem, KEY_MODE)
    return CryptoSigner(key)


def read_key(path: Path, passphrase: bytes | None) -> CryptoSigner:
    """The signer kept at ``path``.

    Raises:
        RootKeyNeeded: missing, unreadable, readable by others, or the passphrase is wrong.
    """
    try:
        data = path.read_bytes()
        if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise RootKeyNeeded(path, "file readable by others (chmod 600)")
        key = serialization.load_pem_private_key(data, passphrase or None)
    except OSError as error:
        raise RootKeyNeeded(path, error.strerror or str(error)) from error
    except (TypeError, ValueError) as error:  # wrong or missing passphrase, not a key
        raise RootKeyNeeded(path, str(error)) from error
    if not isinstance(key, Ed25519PrivateKey):
        raise RootKeyNeeded(path, "not an Ed25519 key")
    return CryptoSigner(key)


@contextmanager
def exclusive_lock(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created 0600) while in the ``with`` block.

    Not re-entrant: a second lock on the same file, even in the same process, waits.

    Raises:
        RepositoryBusy: another holder kept it for ``timeout`` seconds.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, KEY_MODE)
    try:
        deadline = time.monotonic() + timeout
        while True:  # bounded by the deadline: flock itself cannot time out
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in {errno.EWOULDBLOCK, errno.EACCES}:
                    raise
                if time.monotonic() >= deadline:
                    raise RepositoryBusy(path) from error
                time.sleep(_LOCK_POLL)
        yield
    finally:
        os.close(descriptor)  # releases the lock
