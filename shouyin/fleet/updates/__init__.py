"""shouyin.fleet.updates: signed firmware and software updates (tuf) and staged rollouts.

* :mod:`~shouyin.fleet.updates.package`: what a package is (target path, signed custom metadata
  version/kind/model, versions and their lines, the URL a terminal is given): shared with the
  terminal;
* :mod:`~shouyin.fleet.updates.repository`: the store's TUF repository (keys, offline root,
  signing, publishing; :class:`UpdateRepository`);
* :mod:`~shouyin.fleet.updates.files`: its files (durable writes, key files, the signing lock);
* :mod:`~shouyin.fleet.updates.serve`: serving it over HTTP (:class:`RepositoryServer`, or
  :func:`mount_update_repository` in the web app);
* :mod:`~shouyin.fleet.updates.rollout`: staged rollouts by percentage or name, over the link;
* :mod:`~shouyin.fleet.updates.store`: rollouts and progress in SQL, audited;
  :func:`rollout_progress` is the admin page's data;
* :mod:`~shouyin.fleet.updates.cli`: ``shouyin update init | publish | serve | rollout | status``.

The terminal side is :mod:`shouyin.terminal.firmware`. Errors derive from :class:`UpdateError`.
"""

from shouyin.fleet.updates.errors import (
    BadPackage,
    NoRepository,
    RepositoryBusy,
    RepositoryExists,
    RootKeyNeeded,
    UnknownRollout,
    UpdateError,
    VersionNotNewer,
)
from shouyin.fleet.updates.package import (
    DEFAULT_MODEL,
    SELF_TEST_FAIL_MARKER,
    PackageKind,
    Version,
    compare_versions,
    join_package_url,
    parse_version,
    split_package_url,
    target_path,
)
from shouyin.fleet.updates.repository import EXPIRY, REFRESH_MARGIN, Package, UpdateRepository
from shouyin.fleet.updates.rollout import (
    FINAL,
    Progress,
    Rollout,
    RolloutStatus,
    RolloutStore,
    TerminalLinks,
    TerminalProgress,
    classify_answer,
    new_rollout,
    rollout_bucket,
    rollout_id,
    rollout_status,
    run_rollout,
    select_terminals,
)
from shouyin.fleet.updates.serve import UPDATES_PATH, RepositoryServer, mount_update_repository

__all__ = [
    "DEFAULT_MODEL",
    "EXPIRY",
    "FINAL",
    "REFRESH_MARGIN",
    "SELF_TEST_FAIL_MARKER",
    "UPDATES_PATH",
    "BadPackage",
    "NoRepository",
    "Package",
    "PackageKind",
    "Progress",
    "RepositoryBusy",
    "RepositoryExists",
    "RepositoryServer",
    "Rollout",
    "RolloutStatus",
    "RolloutStore",
    "RootKeyNeeded",
    "TerminalLinks",
    "TerminalProgress",
    "UnknownRollout",
    "UpdateError",
    "UpdateRepository",
    "Version",
    "VersionNotNewer",
    "classify_answer",
    "compare_versions",
    "join_package_url",
    "mount_update_repository",
    "new_rollout",
    "parse_version",
    "rollout_bucket",
    "rollout_id",
    "rollout_status",
    "run_rollout",
    "select_terminals",
    "split_package_url",
    "target_path",
]
