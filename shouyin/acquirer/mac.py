"""Keys, MACs and PIN blocks of the acquirer link (AES everywhere, from ``cryptography``).

Key hierarchy (as on a real POS network, with AES instead of 3DES):

* **Master key** of the host (stands for the HSM's BDK/ZMK): :data:`TEST_MASTER_KEY`, a published
  test value, unless the simulator is given another one.
* **TMK**, the terminal master key, injected into each terminal at the factory: derived from
  the master key and the terminal id by :func:`derive_tmk` (NIST SP 800-108 counter-mode KDF with
  AES-CMAC), so that the host needs no key table.
* **Working keys**, fresh at every sign-in (0800 -> 0810): the **MAK** (MAC key) and the **PIK**
  (PIN key), each 16 random bytes, sent in field 62 wrapped under the TMK with AES key wrap
  (RFC 3394) and followed by a check value (:func:`check_value`, the first 3 bytes of
  AES-CMAC over a zero block, as ANSI X9.24-1 does for AES keys).

MAC (field 64): AES-CMAC under the MAK over the packed message (MTI, bitmap with bit 64 set, all
fields) up to but excluding the 8 MAC bytes, which are the first 8 bytes of the CMAC. Field 64
is always the last field (no secondary bitmap), so it is the last 8 bytes of the message.

PIN block (field 52): ISO 9564-1 format 4 (the AES format, 16 bytes), enciphered under the PIK:
``C = E(E(PIN field) XOR PAN field)``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from shouyin.acquirer.errors import LocalAcquirerError, RemoteAcquirerError
from shouyin.acquirer.iso import MAC_FIELD, pack

__all__ = [
    "MAC_LENGTH",
    "TEST_MASTER_KEY",
    "WorkingKeys",
    "check_value",
    "cmac_aes",
    "decrypt_pin_block",
    "derive_key",
    "derive_tmk",
    "encrypt_pin_block",
    "has_mac",
    "sign",
    "unwrap_key",
    "verify",
    "wrap_key",
]

MAC_LENGTH: Final = 8
TEST_MASTER_KEY: Final = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
"""The simulator's default master key: a well-known test value, never for production."""
_BLOCK: Final = 16
_BITMAP_LAST_BYTE: Final = 11  # MTI (4 bytes) + primary bitmap bytes 0..7; bit 64 is its LSB


def cmac_aes(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B) of ``data``.

    Args:
        key: a 16, 24 or 32-byte AES key.
        data: the message.

    Returns:
        The 16-byte CMAC.
    """
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def derive_key(master: bytes, label: str, context: str) -> bytes:
    """Derive a 16-byte key with the NIST SP 800-108 counter-mode KDF using AES-CMAC.

    Args:
        master: the key-derivation key.
        label: what the key is for (``"shouyin-tmk"``).
        context: whom it is for (the terminal id).

    Returns:
        16 key bytes.
    """
    data = b"\x01" + label.encode() + b"\x00" + context.encode() + (128).to_bytes(2, "big")
    return cmac_aes(master, data)


def derive_tmk(terminal_id: str, master: bytes = TEST_MASTER_KEY) -> bytes:
    """The terminal master key (TMK) of ``terminal_id``, as injected into it at the factory.

    Args:
        terminal_id: the 8-character terminal id (field 41).
        master: the host's master key.

    Returns:
        The 16-byte TMK.
    """
    return derive_key(master, "shouyin-tmk", terminal_id)


def check_value(key: bytes) -> str:
    """The key check value: first 3 bytes of AES-CMAC over a zero block, as upper-case hex.

    Args:
        key: an AES key.

    Returns:
        6 hex digits.
    """
    return cmac_aes(key, bytes(_BLOCK))[:3].hex().upper()


def wrap_key(kek: bytes, key: bytes) -> bytes:
    """Wrap ``key`` under ``kek`` (AES key wrap, RFC 3394).

    Args:
        kek: the key-encryption key (the TMK for working keys).
        key: the key to wrap (16 or 32 bytes).

    Returns:
        The wrapped key (8 bytes longer).
    """
    return aes_key_wrap(kek, key)


def unwrap_key(kek: bytes, wrapped: bytes) -> bytes:
    """Unwrap a key wrapped by :func:`wrap_key`.

    Args:
        kek: the key-encryption key.
        wrapped: the wrapped key.

    Returns:
        The key.

    Raises:
        RemoteAcquirerError: the integrity check failed (wrong TMK or tampered).
    """
    try:
        return aes_key_unwrap(kek, wrapped)
    except (InvalidUnwrap, ValueError):
        raise RemoteAcquirerError("working key does not unwrap under our TMK") from None


@dataclass(frozen=True, slots=True)
class WorkingKeys:
    """A terminal's session keys, fresh at each sign-in (``repr`` shows check values only)."""

    mak: bytes = field(repr=False)
    pik: bytes = field(repr=False)

    @classmethod
    def generate(cls, random: bytes | None = None) -> WorkingKeys:
        """Fresh random keys.

        Args:
            random: 32 bytes to use instead of the OS generator (deterministic tests).

        Returns:
            New working keys.
        """
        material = random if random is not None else os.urandom(2 * _BLOCK)
        return cls(mak=material[:_BLOCK], pik=material[_BLOCK : 2 * _BLOCK])

    def __repr__(self) -> str:
        return f"WorkingKeys(mak kcv {check_value(self.mak)}, pik kcv {check_value(self.pik)})"


def has_mac(message: bytes) -> bool:
    """Whether the packed ``message`` has field 64 in its bitmap.

    Args:
        message: a packed message.

    Returns:
        ``True`` if bit 64 of the primary bitmap is set.
    """
    return len(message) > _BITMAP_LAST_BYTE and bool(message[_BITMAP_LAST_BYTE] & 0x01)


def sign(fields: Mapping[str, str], mak: bytes) -> bytes:
    """Pack ``fields`` with a MAC in field 64.

    Args:
        fields: the message fields (without field 64).
        mak: the MAC key.

    Returns:
        The packed message, whose last 8 bytes are the MAC.

    Raises:
        LocalAcquirerError: a field that cannot be encoded.
    """
    packed = pack({**fields, MAC_FIELD: "00" * MAC_LENGTH})
    body = packed[:-MAC_LENGTH]
    return body + cmac_aes(mak, body)[:MAC_LENGTH]


def verify(message: bytes, mak: bytes) -> bool:
    """Check the MAC of a packed message (constant-time comparison).

    Args:
        message: the packed message as received.
        mak: the MAC key.

    Returns:
        ``True`` if field 64 is present and correct.
    """
    if not has_mac(message) or len(message) < _BITMAP_LAST_BYTE + 1 + MAC_LENGTH:
        return False
    body, mac = message[:-MAC_LENGTH], message[-MAC_LENGTH:]
    return hmac.compare_digest(cmac_aes(mak, body)[:MAC_LENGTH], mac)


def _aes_block(key: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    # One 16-byte block at a time, as ISO 9564 format 4 prescribes: ECB is the primitive here.
    cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305
    worker = cipher.decryptor() if decrypt else cipher.encryptor()
    return worker.update(block) + worker.finalize()


def _pan_field(pan: str) -> bytes:
    digits = pan if len(pan) >= 12 else pan.rjust(12, "0")
    nibbles = str(max(len(pan) - 12, 0)) + digits
    return bytes.fromhex(nibbles.ljust(32, "0"))


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def encrypt_pin_block(pin: str, pan: str, pik: bytes, fill: bytes | None = None) -> bytes:
    """Build and encipher an ISO 9564 format-4 PIN block.

    Args:
        pin: 4-12 digits.
        pan: the card number (12-19 digits).
        pik: the PIN key from sign-in.
        fill: 8 random bytes for the block's random half (default: from the OS).

    Returns:
        The 16-byte enciphered PIN block for field 52.

    Raises:
        LocalAcquirerError: a PIN or card number of the wrong shape.
    """
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise LocalAcquirerError("a PIN is 4 to 12 digits")
    if not (pan.isdigit() and 12 <= len(pan) <= 19):
        raise LocalAcquirerError("a card number is 12 to 19 digits")
    random_half = fill if fill is not None else os.urandom(8)
    pin_field = bytes.fromhex(("4" + format(len(pin), "X") + pin).ljust(16, "A")) + random_half
    intermediate = _aes_block(pik, pin_field)
    return _aes_block(pik, _xor(intermediate, _pan_field(pan)))


def decrypt_pin_block(block: bytes, pan: str, pik: bytes) -> str | None:
    """Decipher a format-4 PIN block.

    Args:
        block: the 16 bytes of field 52.
        pan: the card number of the transaction.
        pik: the PIN key.

    Returns:
        The PIN, or ``None`` if the block is not a well-formed format-4 block for this card
        (wrong key, wrong card, tampered).
    """
    if len(block) != _BLOCK or not pan.isdigit():
        return None
    intermediate = _xor(_aes_block(pik, block, decrypt=True), _pan_field(pan))
    text = _aes_block(pik, intermediate, decrypt=True)[:8].hex().upper()
    length = int(text[1], 16)
    pin, padding = text[2 : 2 + length], text[2 + length :]
    if text[0] != "4" or not 4 <= length <= 12 or not pin.isdigit() or set(padding) - {"A"}:
        return None
    return pin
