"""The store's TUF repository: its keys, its signed metadata and its packages, on disk.

Built on :class:`tuf.repository.Repository` (python-tuf): this module only says where metadata
and keys live, how long each role's signature lasts, and what a package is. Layout of the
repository directory (``<data dir>/updates`` by default)::

    repository/metadata/   root.json, N.root.json, N.targets.json, N.snapshot.json,
                           timestamp.json (+ unversioned copies): what terminals fetch
    repository/targets/    <sha256>.<target path>: the packages (consistent snapshots)
    keys/                  targets.pem, snapshot.pem, timestamp.pem (0600, online: they sign
                           unattended) and, unless kept elsewhere, root.pem

Only ``repository/`` is ever served. The root key may be kept offline: ``create`` writes it to
any path (a USB stick), encrypted with a passphrase if one is given, and the root is signed
from that file again only when it changes (:meth:`UpdateRepository.renew_root`). Lifetimes:
root a year, targets 90 days, snapshot a week, timestamp a day (:data:`EXPIRY`). Publishing
re-signs the three online roles, but a store may go months without publishing: the server that
serves the repository (``update serve``, every ten minutes) and ``update rollout`` therefore call
:meth:`~UpdateRepository.refresh_metadata`, which re-signs each online role once it is within
:data:`REFRESH_MARGIN` of expiring (targets two weeks, snapshot two days, timestamp twelve
hours), and the roles after it. A terminal thus never accepts metadata frozen for longer than a
day, and never finds the repository expired while it is being served.

Every file is written atomically and durably (:func:`~shouyin.fleet.updates.files.write_durably`:
temporary file, fsync, rename, fsync of the directory) and the roles are written in the order
terminals read them backwards (targets, snapshot, then timestamp), so a terminal that fetches
mid-publish sees the old or the new repository, never a mix. Signing is serialised between
processes (``update publish`` while ``update serve`` runs) by an exclusive ``flock`` on
``keys/.signing.lock``: two writers would otherwise both sign version N+1 of a role.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# These packages re-export their public names without __all__, hence the ignores.
from securesystemslib.signer import Signer  # type: ignore[attr-defined]
from tuf.api.metadata import (  # type: ignore[attr-defined]
    Metadata,
    MetaFile,
    Root,
    Signed,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.repository import Repository  # type: ignore[attr-defined]

from shouyin.fleet.updates.errors import (
    BadPackage,
    NoRepository,
    RepositoryExists,
    RootKeyNeeded,
    VersionNotNewer,
)
from shouyin.fleet.updates.files import (
    DIR_MODE,
    LOCK_TIMEOUT,
    exclusive_lock,
    read_key,
    write_durably,
    write_key,
)
from shouyin.fleet.updates.package import (
    PackageKind,
    compare_versions,
    join_package_url,
    parse_version,
    target_path,
    valid_model,
    valid_version,
)

__all__ = [
    "EXPIRY",
    "MAX_PACKAGE_SIZE",
    "REFRESH_MARGIN",
    "Package",
    "UpdateRepository",
    "write_key",
]

logger = logging.getLogger(__name__)

EXPIRY = {
    Root.type: timedelta(days=365),
    Targets.type: timedelta(days=90),
    Snapshot.type: timedelta(days=7),
    Timestamp.type: timedelta(days=1),
}
"""How long each role's metadata is valid after signing."""
REFRESH_MARGIN = {
    Targets.type: timedelta(days=14),
    Snapshot.type: timedelta(days=2),
    Timestamp.type: timedelta(hours=12),
}
""":meth:`UpdateRepository.refresh_metadata` re-signs a role once it expires within this."""
MAX_PACKAGE_SIZE = 1 << 31
"""The link's limit on a package (:class:`~shouyin.link.values.FirmwarePackage`)."""
ONLINE_ROLES = (Targets.type, Snapshot.type, Timestamp.type)
_ROLES: dict[str, Callable[[], Signed]] = {
    Root.type: Root,
    Targets.type: Targets,
    Snapshot.type: Snapshot,
    Timestamp.type: Timestamp,
}

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Package:
    """One published package, as the targets role signed it.

    Attributes:
        target: its TUF target path.
        version: its version (custom metadata).
        kind: firmware or software.
        model: the terminal model it is for.
        length: its size in bytes.
        sha256: its SHA-256, hex.
    """

    target: str
    version: str
    kind: PackageKind
    model: str
    length: int
    sha256: str

    def url(self, repository_url: str) -> str:
        """The URL a terminal is given for it (see :func:`~.package.split_package_url`)."""
        return join_package_url(repository_url, self.target)


def _package(info: TargetFile) -> Package | None:
    custom = info.custom
    try:
        package = Package(
            target=info.path,
            version=str(custom["version"]),
            kind=PackageKind(custom["kind"]),
            model=str(custom["model"]),
            length=info.length,
            sha256=info.hashes["sha256"],
        )
        parse_version(package.version)
    except (KeyError, TypeError, ValueError):
        logger.warning("target %s has no usable package metadata: ignored", info.path)
        return None
    return package


class UpdateRepository(Repository):
    """The store's TUF repository in ``directory`` (see the module docstring for the layout).

    Use :meth:`create` once, then :meth:`load`.

    Args:
        directory: the repository directory.
        signers: role -> the signers it signs with (the root's only when it is re-signed).
        now: the clock for expiry dates.

    Attributes:
        lock_timeout: seconds to wait for another process's signing (:meth:`signing_lock`).
    """

    def __init__(
        self, directory: Path, signers: dict[str, list[Signer]], now: Clock = _utcnow
    ) -> None:
        self.directory = Path(directory)
        self.signers = signers
        self.now = now
        self.lock_timeout = LOCK_TIMEOUT

    # -- places ---------------------------------------------------------------------------------

    @property
    def served_dir(self) -> Path:
        """The directory to serve to terminals (metadata and targets, never keys)."""
        return self.directory / "repository"

    @property
    def metadata_dir(self) -> Path:
        """Where the signed metadata is."""
        return self.served_dir / "metadata"

    @property
    def targets_dir(self) -> Path:
        """Where the packages are."""
        return self.served_dir / "targets"

    @property
    def keys_dir(self) -> Path:
        """Where the online keys are."""
        return self.directory / "keys"

    def root_json(self) -> bytes:
        """The current root metadata: what a terminal is provisioned with (its trust anchor)."""
        return (self.metadata_dir / "root.json").read_bytes()

    @contextmanager
    def signing_lock(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the repository's signing lock (between processes; not re-entrant).

        Args:
            timeout: seconds to wait for it (default :attr:`lock_timeout`).

        Raises:
            RepositoryBusy: another process held it all that time.
        """
        wait = self.lock_timeout if timeout is None else timeout
        with exclusive_lock(self.keys_dir / ".signing.lock", wait):
            yield

    # -- creating and loading -------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        root_key: Path | None = None,
        passphrase: bytes | None = None,
        now: Clock = _utcnow,
    ) -> UpdateRepository:
        """Make the keys and the first signed metadata of a new, empty repository.

        Args:
            directory: the repository directory (must not hold one already).
            root_key: where the root key goes (default: ``keys/root.pem``); keep it offline.
            passphrase: encrypts the root key file.
            now: the clock for expiry dates.

        Raises:
            RepositoryExists: ``directory`` already holds a repository.
        """
        directory = Path(directory)
        if (directory / "repository" / "metadata" / "root.json").exists():
            raise RepositoryExists(directory)
        keys = directory / "keys"
        keys.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        root_path = root_key or keys / "root.pem"
        signers: dict[str, list[Signer]] = {
            Root.type: [write_key(root_path, passphrase)],
            **{role: [write_key(keys / f"{role}.pem")] for role in ONLINE_ROLES},
        }
        repository = cls(directory, signers, now)
        with repository.edit_root() as root:
            root.consistent_snapshot = True
            for role, role_signers in signers.items():
                for signer in role_signers:
                    root.add_key(signer.public_key, role)
        with repository.edit_targets():
            pass
        repository.do_snapshot(force=True)
        repository.do_timestamp(force=True)
        logger.info("update repository created in %s (root key %s)", directory, root_path)
        return repository

    @classmethod
    def load(cls, directory: Path, *, now: Clock = _utcnow) -> UpdateRepository:
        """Open the repository in ``directory`` with its online keys.

        Raises:
            NoRepository: there is none.
        """
        directory = Path(directory)
        if not (directory / "repository" / "metadata" / "root.json").exists():
            raise NoRepository(directory)
        signers: dict[str, list[Signer]] = {
            role: [read_key(directory / "keys" / f"{role}.pem", None)] for role in ONLINE_ROLES
        }
        return cls(directory, signers, now)

    # -- tuf.repository.Repository --------------------------------------------------------------

    def open(self, role: str) -> Metadata[Any]:
        """The role's current metadata (a new, unsigned version 0 if there is none yet)."""
        path = self.metadata_dir / f"{role}.json"
        if not path.exists():
            md: Metadata[Any] = Metadata(_ROLES[role]())
            md.signed.version = 0  # close() bumps it to 1
            return md
        return Metadata.from_bytes(path.read_bytes())

    def close(self, role: str, md: Metadata[Any]) -> None:
        """Bump the version, set the expiry, sign with the role's keys and write it out.

        Raises:
            RootKeyNeeded: the role's key is not loaded (the offline root).
        """
        signers = self.signers.get(role)
        if not signers:
            raise RootKeyNeeded(self.keys_dir / f"{role}.pem", "key not loaded")
        md.signed.version += 1
        md.signed.expires = (self.now() + EXPIRY[role]).replace(microsecond=0)
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        data = md.to_bytes()
        if role != Timestamp.type:  # clients fetch N.role.json (consistent snapshots)
            write_durably(self.metadata_dir / f"{md.signed.version}.{role}.json", data)
        write_durably(self.metadata_dir / f"{role}.json", data)
        logger.info("signed %s v%d", role, md.signed.version)

    @property
    def targets_infos(self) -> dict[str, MetaFile]:
        """The current targets metadata version (for the snapshot)."""
        return {"targets.json": MetaFile(self.targets().version)}

    @property
    def snapshot_info(self) -> MetaFile:
        """The current snapshot version (for the timestamp)."""
        return MetaFile(self.snapshot().version)

    # -- packages -------------------------------------------------------------------------------

    def packages(self) -> list[Package]:
        """Every published package by model, kind and version line, oldest version first."""
        found = [_package(info) for info in self.targets().targets.values()]
        packages = [package for package in found if package is not None]

        def order(package: Package) -> tuple[str, str, str, tuple[int, int, int]]:
            version = parse_version(package.version)
            return package.model, package.kind.value, version.line, version.release

        return sorted(packages, key=order)

    def latest(self, model: str, kind: PackageKind = PackageKind.FIRMWARE) -> Package | None:
        """The newest package for ``model`` and ``kind``, if any.

        There is one version line per model and kind (:meth:`publish` refuses another one).
        """
        mine = [p for p in self.packages() if p.model == model and p.kind is kind]
        return mine[-1] if mine else None

    def find(self, version: str, model: str, kind: PackageKind) -> Package | None:
        """The package with exactly this version, model and kind."""
        for package in self.packages():
            if (package.version, package.model, package.kind) == (version, model, kind):
                return package
        return None

    def publish(
        self,
        source: Path,
        version: str,
        *,
        kind: PackageKind = PackageKind.FIRMWARE,
        model: str,
    ) -> Package:
        """Add the package file ``source``; re-sign targets, snapshot and timestamp.

        Raises:
            BadPackage: unreadable, empty or too large file; unusable version or model; a
                version of another line than the model's and kind's packages so far.
            VersionNotNewer: ``version`` is not greater than the latest for the model and kind.
            RepositoryBusy: another process kept signing for too long.
        """
        if not valid_version(version):
            raise BadPackage(f"version {version!r}")
        if not valid_model(model):
            raise BadPackage(f"model {model!r}")
        try:
            data = Path(source).read_bytes()
        except OSError as error:
            raise BadPackage(f"{source}: {error.strerror or error}") from error
        if not data or len(data) > MAX_PACKAGE_SIZE:
            raise BadPackage(f"{source}: {len(data)} bytes")
        target = target_path(kind, model, version)
        digest = hashlib.sha256(data).hexdigest()
        package = Package(target, version, kind, model, len(data), digest)
        with self.signing_lock():  # the latest version must not change until this one is in
            self._check_newer(package)
            write_durably(self.targets_dir / f"{digest}.{target}", data)
            info = TargetFile(
                length=len(data),
                hashes={"sha256": digest},
                path=target,
                unrecognized_fields={
                    "custom": {"version": version, "kind": kind.value, "model": model}
                },
            )
            with self.edit_targets() as targets:
                targets.targets[target] = info
            self.do_snapshot()
            self.do_timestamp()
        logger.info("published %s (%d bytes, sha256 %s)", target, len(data), digest)
        return package

    def _check_newer(self, package: Package) -> None:
        """Refuse ``package`` unless it is newer than the latest of its line, model and kind."""
        latest = self.latest(package.model, package.kind)
        if latest is None:
            return
        order = compare_versions(package.version, latest.version)
        if order is None:  # another line: a different product, never "newer" or "older"
            line = parse_version(latest.version).line
            raise BadPackage(
                f"version {package.version!r}: not of the line {line!r} of {package.model}"
            )
        if order <= 0:
            raise VersionNotNewer(package.version, latest.version, package.model)

    # -- freshness ------------------------------------------------------------------------------

    def refresh_metadata(self) -> list[str]:
        """Re-sign every online role that expires within its :data:`REFRESH_MARGIN`.

        A re-signed targets role is followed by a new snapshot, and a new snapshot by a new
        timestamp (each lists the version of the one before), in that order.

        Returns:
            The roles re-signed (none when all are fresh enough).

        Raises:
            RepositoryBusy: another process kept signing for too long.
        """
        with self.signing_lock():
            now = self.now()
            signed: list[str] = []
            if self.targets().expires - now <= REFRESH_MARGIN[Targets.type]:
                with self.edit_targets():
                    pass
                signed.append(Targets.type)
            if signed or self.snapshot().expires - now <= REFRESH_MARGIN[Snapshot.type]:
                self.do_snapshot(force=True)
                signed.append(Snapshot.type)
            if signed or self.timestamp().expires - now <= REFRESH_MARGIN[Timestamp.type]:
                self.do_timestamp(force=True)
                signed.append(Timestamp.type)
        if signed:
            logger.info("metadata refreshed: %s", ", ".join(signed))
        return signed

    def refresh_timestamp(self, *, if_within: timedelta | None = None) -> bool:
        """Re-sign the timestamp (a new version, a new expiry).

        Args:
            if_within: only if it expires within this time (``None``: always).

        Returns:
            Whether it was re-signed.

        Raises:
            RepositoryBusy: another process kept signing for too long.
        """
        with self.signing_lock():
            if if_within is not None and self.timestamp().expires - self.now() > if_within:
                return False
            with self.edit_timestamp():
                pass
        return True

    def renew_root(self, root_key: Path, passphrase: bytes | None = None) -> int:
        """Re-sign the root (new version and expiry) with the key file ``root_key``.

        Returns:
            The new root version.

        Raises:
            RootKeyNeeded: the key file cannot be read or decrypted, or is not the root key.
        """
        signer = read_key(root_key, passphrase)
        trusted = self.root().roles[Root.type].keyids
        if signer.public_key.keyid not in trusted:
            raise RootKeyNeeded(root_key, "not this repository's root key")
        self.signers[Root.type] = [signer]
        try:
            with self.signing_lock(), self.edit_root() as root:
                version = root.version + 1
        finally:
            del self.signers[Root.type]  # offline again
        return version
