"""Paired terminals' long-term link keys at rest: AES-256-GCM under a key-encryption key.

Pairing gives the cashier system (ECR) each terminal's 32-byte long-term key (the ``Paired``
event); every Login derives that session's keys from it. Whoever reads it can impersonate the
terminal to the ECR, so it is never written in clear. Files, in the key store directory (next to
the store CA, see :class:`~shouyin.link.keystore.KeyStore`)::

    <keys_dir>/                   0700
      terminal-keys.kek           0600  the key-encryption key (KEK), JSON
      terminal-keys/              0700
        <terminal id>.key         0600  one sealed key per paired terminal, JSON

``terminal-keys.kek`` holds a random 32-byte KEK, made on first use, either as is
(``"protection": "none"``: the file's permissions protect it, like the CA key) or, when
``SHOUYIN_KEY_PASSPHRASE`` is set at creation, wrapped with AES-256-GCM under a key derived from
the passphrase with scrypt (``"protection": "scrypt"``, salt and cost in the file). A wrong
passphrase fails the wrapping's tag and is refused (:class:`WrongPassphrase`); a wrapped KEK
without a passphrase, or a passphrase for an unwrapped KEK, is refused too rather than guessed
around.

Each ``<terminal id>.key`` is ``{version, ecr_id, terminal_id, key_id, nonce, ciphertext}``: the
key bytes sealed with AES-256-GCM under the KEK, a fresh 96-bit random nonce per write, and the
identities and ``key_id`` as associated data, so a file copied onto another terminal's name, or
edited, does not decrypt. Writes are atomic (:func:`~shouyin.link.keystore.atomic_write`), files
readable by group or others are refused (as ssh does), nothing here logs key bytes, the KEK or the
passphrase, and ``repr`` shows only the directory.

:class:`TerminalKeyRing` is the ``keys`` lookup :class:`~shouyin.link.server.LinkServer` takes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from shouyin.fleet.registry import FleetError
from shouyin.link.keystore import atomic_write
from shouyin.link.security import LongTermKey, length_prefixed

__all__ = [
    "KEK_FILE",
    "KEY_DIRECTORY",
    "PASSPHRASE_ENV",
    "CorruptKeyFile",
    "KeyRingError",
    "PassphraseMismatch",
    "TerminalKeyRing",
    "UnsafeKeyFile",
    "WrongPassphrase",
    "passphrase_from_env",
]

logger = logging.getLogger(__name__)

PASSPHRASE_ENV: Final = "SHOUYIN_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
"""Environment variable holding the optional passphrase that protects the KEK."""
KEK_FILE: Final = "terminal-keys.kek"
"""The KEK's file name in the key store directory."""
KEY_DIRECTORY: Final = "terminal-keys"
"""The sealed keys' folder in the key store directory."""

_VERSION: Final = 1
_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700
_KEK_SIZE: Final = 32
_NONCE_SIZE: Final = 12
_SALT_SIZE: Final = 16
_SCRYPT_N: Final = 1 << 15  # 32 MiB with r=8: about 0.1 s, once per process
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_MAX_SCRYPT_N: Final = 1 << 20  # refuse files asking for absurd work
_KEK_AAD: Final = b"shouyin/fleet/v1 kek"
_KEY_AAD: Final = b"shouyin/fleet/v1 terminal key"
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9_-]")
_MAX_FILE: Final = 4096


class KeyRingError(FleetError):
    """A key ring file cannot be used.

    Attributes:
        path: the file or directory concerned.
    """

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(f"{message}: {path}")
        self.path = path


class WrongPassphrase(KeyRingError):
    """The passphrase does not unlock the key-encryption key (or none was given and one is
    needed)."""


class PassphraseMismatch(KeyRingError):
    """A passphrase was given but the key-encryption key is not protected by one."""


class UnsafeKeyFile(KeyRingError):
    """A key file is readable or writable by group or others (``chmod 600`` it)."""


class CorruptKeyFile(KeyRingError):
    """A key file is malformed, was altered, or belongs to another terminal or KEK."""


def passphrase_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The KEK passphrase from ``SHOUYIN_KEY_PASSPHRASE`` (UTF-8), or ``None`` if unset or empty."""
    value = (os.environ if environ is None else environ).get(PASSPHRASE_ENV, "")
    return value.encode("utf-8") if value else None


def _file_name(terminal_id: str) -> str:
    # Percent-encode everything but [A-Za-z0-9_-], as the key store does for certificates.
    return "".join(c if _SAFE_NAME.fullmatch(c) else f"%{ord(c):02X}" for c in terminal_id)


def _ensure_directory(directory: Path) -> None:
    directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    if os.name == "posix" and stat.S_IMODE(directory.stat().st_mode) != _DIR_MODE:
        directory.chmod(_DIR_MODE)


def _read_private(path: Path) -> dict[str, Any]:
    """Read a 0600 JSON file; refuse a file others may read, or one that is not what we wrote."""
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise UnsafeKeyFile("key file is accessible by group or others", path)
    raw = path.read_bytes()
    if len(raw) > _MAX_FILE:
        raise CorruptKeyFile("key file too large", path)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptKeyFile("key file is not JSON", path) from None
    if not isinstance(data, dict) or data.get("version") != _VERSION:
        raise CorruptKeyFile("unknown key file version", path)
    return data


def _hex_field(data: Mapping[str, Any], name: str, size: int | None, path: Path) -> bytes:
    value = data.get(name)
    try:
        decoded = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        decoded = None
    if decoded is None or (size is not None and len(decoded) != size):
        raise CorruptKeyFile(f"bad {name!r} in key file", path)
    return decoded


def _str_field(data: Mapping[str, Any], name: str, path: Path) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise CorruptKeyFile(f"bad {name!r} in key file", path)
    return value


def _int_field(data: Mapping[str, Any], name: str, path: Path) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CorruptKeyFile(f"bad {name!r} in key file", path)
    return value


class TerminalKeyRing:
    """Paired terminals' long-term keys, sealed at rest (see the module docstring).

    Usable as the ``keys`` lookup of :class:`~shouyin.link.server.LinkServer` (``keys=ring`` or
    ``keys=ring.get``). Keys are read from disk at each lookup, so a key deleted by
    ``shouyin fleet revoke`` in another process stops working at the next connection; the KEK is
    loaded (and the passphrase stretched) once per key ring.

    One writer at a time: the admin commands and the lane's link server do not pair concurrently.

    Args:
        directory: the key store directory (``Settings.keys_dir``).
        passphrase: protects the KEK (see :func:`passphrase_from_env`).
        scrypt_n: scrypt's cost when a passphrase-protected KEK is *created* (a power of two);
            an existing KEK keeps the cost it was made with.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        passphrase: bytes | None = None,
        scrypt_n: int = _SCRYPT_N,
    ) -> None:
        if scrypt_n < 2 or scrypt_n & (scrypt_n - 1) or scrypt_n > _MAX_SCRYPT_N:
            raise ValueError("scrypt_n must be a power of two, at most 2**20")
        self.directory = Path(directory)
        self._passphrase = passphrase
        self._scrypt_n = scrypt_n
        self._aead: AESGCM | None = None

    def __repr__(self) -> str:
        return f"TerminalKeyRing({str(self.directory)!r})"

    @property
    def kek_path(self) -> Path:
        """The KEK file."""
        return self.directory / KEK_FILE

    def key_path(self, terminal_id: str) -> Path:
        """The sealed key file of a terminal."""
        return self.directory / KEY_DIRECTORY / f"{_file_name(terminal_id)}.key"

    # -- the key-encryption key ------------------------------------------------------------------

    def _scrypt(self, salt: bytes, n: int, r: int, p: int) -> AESGCM:
        assert self._passphrase is not None  # checked by the callers
        derived = Scrypt(salt=salt, length=_KEK_SIZE, n=n, r=r, p=p).derive(self._passphrase)
        return AESGCM(derived)

    def _kek(self, *, create: bool) -> AESGCM | None:
        """The KEK's AEAD, loaded once; made on first use when ``create``."""
        if self._aead is not None:
            return self._aead
        path = self.kek_path
        if path.exists():
            self._aead = self._load_kek(path)
        elif create:
            self._aead = self._create_kek(path)
        return self._aead

    def _create_kek(self, path: Path) -> AESGCM:
        _ensure_directory(self.directory)
        kek = AESGCM.generate_key(bit_length=256)
        record: dict[str, Any] = {"version": _VERSION}
        if self._passphrase is None:
            record |= {"protection": "none", "kek": kek.hex()}
        else:
            salt, nonce = secrets.token_bytes(_SALT_SIZE), secrets.token_bytes(_NONCE_SIZE)
            wrapping = self._scrypt(salt, self._scrypt_n, _SCRYPT_R, _SCRYPT_P)
            record |= {
                "protection": "scrypt",
                "salt": salt.hex(),
                "n": self._scrypt_n,
                "r": _SCRYPT_R,
                "p": _SCRYPT_P,
                "nonce": nonce.hex(),
                "wrapped": wrapping.encrypt(nonce, kek, _KEK_AAD).hex(),
            }
        atomic_write(path, json.dumps(record).encode("ascii"))
        logger.info(
            "created the terminal key-encryption key in %s (passphrase: %s)",
            self.directory,
            "yes" if self._passphrase is not None else "no",
        )
        return AESGCM(kek)

    def _load_kek(self, path: Path) -> AESGCM:
        data = _read_private(path)
        protection = data.get("protection")
        if protection == "none":
            if self._passphrase is not None:
                raise PassphraseMismatch(
                    f"the key-encryption key is not passphrase-protected; unset {PASSPHRASE_ENV}",
                    path,
                )
            return AESGCM(_hex_field(data, "kek", _KEK_SIZE, path))
        if protection != "scrypt":
            raise CorruptKeyFile("unknown key-encryption key protection", path)
        if self._passphrase is None:
            raise WrongPassphrase(f"the key-encryption key needs {PASSPHRASE_ENV}", path)
        n, r, p = (_int_field(data, name, path) for name in ("n", "r", "p"))
        if n > _MAX_SCRYPT_N or n & (n - 1) or r > 64 or p > 16:
            raise CorruptKeyFile("unreasonable scrypt parameters", path)
        wrapping = self._scrypt(_hex_field(data, "salt", _SALT_SIZE, path), n, r, p)
        nonce = _hex_field(data, "nonce", _NONCE_SIZE, path)
        try:
            kek = wrapping.decrypt(nonce, _hex_field(data, "wrapped", None, path), _KEK_AAD)
        except InvalidTag:
            raise WrongPassphrase("wrong passphrase for the key-encryption key", path) from None
        if len(kek) != _KEK_SIZE:
            raise CorruptKeyFile("bad key-encryption key", path)
        return AESGCM(kek)

    def unlock(self) -> None:
        """Load the KEK now, creating it if needed: checks the passphrase before anything else.

        Raises:
            WrongPassphrase: wrong or missing passphrase.
            PassphraseMismatch: a passphrase for an unprotected KEK.
            UnsafeKeyFile, CorruptKeyFile: the KEK file cannot be trusted.
        """
        self._kek(create=True)

    # -- terminal keys ---------------------------------------------------------------------------

    @staticmethod
    def _aad(ecr_id: str, terminal_id: str, key_id: str) -> bytes:
        return length_prefixed(_KEY_AAD, ecr_id, terminal_id, key_id)

    def put(self, key: LongTermKey) -> None:
        """Store (or replace) a terminal's key, sealed.

        Args:
            key: the key from the ``Paired`` event; filed under ``key.terminal_id``.

        Raises:
            KeyRingError: the KEK cannot be loaded (wrong passphrase, unsafe or corrupt file).
            OSError: the file cannot be written.
        """
        aead = self._kek(create=True)
        assert aead is not None  # create=True
        nonce = secrets.token_bytes(_NONCE_SIZE)
        aad = self._aad(key.ecr_id, key.terminal_id, key.key_id)
        record = {
            "version": _VERSION,
            "ecr_id": key.ecr_id,
            "terminal_id": key.terminal_id,
            "key_id": key.key_id,
            "nonce": nonce.hex(),
            "ciphertext": aead.encrypt(nonce, key.secret_bytes(), aad).hex(),
        }
        path = self.key_path(key.terminal_id)
        _ensure_directory(path.parent)
        atomic_write(path, json.dumps(record).encode("utf-8"))
        logger.info("stored the long-term key %s of terminal %r", key.key_id, key.terminal_id)

    def get(self, terminal_id: str) -> LongTermKey | None:
        """A terminal's key, or ``None`` when it has none (never paired, or revoked).

        Raises:
            KeyRingError: the key or the KEK file cannot be trusted (altered, another terminal's,
                unsafe permissions, wrong passphrase).
        """
        path = self.key_path(terminal_id)
        if not path.exists():
            return None
        data = _read_private(path)
        ecr_id = _str_field(data, "ecr_id", path)
        key_id = _str_field(data, "key_id", path)
        if data.get("terminal_id") != terminal_id:
            raise CorruptKeyFile("key file belongs to another terminal", path)
        aead = self._kek(create=False)
        if aead is None:
            raise CorruptKeyFile("the key-encryption key is missing", self.kek_path)
        nonce = _hex_field(data, "nonce", _NONCE_SIZE, path)
        ciphertext = _hex_field(data, "ciphertext", None, path)
        try:
            secret = aead.decrypt(nonce, ciphertext, self._aad(ecr_id, terminal_id, key_id))
            key = LongTermKey(secret, ecr_id=ecr_id, terminal_id=terminal_id)
        except (InvalidTag, ValueError):
            reason = "key file does not decrypt (altered, or sealed under another KEK)"
            raise CorruptKeyFile(reason, path) from None
        if key.key_id != key_id:
            raise CorruptKeyFile("key id does not match the key", path)
        return key

    __call__ = get

    def delete(self, terminal_id: str) -> bool:
        """Delete a terminal's key (revocation).

        Returns:
            Whether there was one.
        """
        path = self.key_path(terminal_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        logger.info("deleted the long-term key of terminal %r", terminal_id)
        return True

    def terminal_ids(self) -> frozenset[str]:
        """The terminals that have a stored key."""
        folder = self.directory / KEY_DIRECTORY
        if not folder.is_dir():
            return frozenset()
        return frozenset(
            re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), path.stem)
            for path in folder.glob("*.key")
            if not path.name.startswith(".")
        )
