"""The errors of :mod:`shouyin.fleet.updates` and the admin's messages for them (zh, en).

Every error derives from :class:`UpdateError`, itself a :class:`~shouyin.fleet.registry.FleetError`,
so that the command line shows ``str(error)``: the message in the admin's language.
"""

from __future__ import annotations

from shouyin.fleet.registry import FleetError
from shouyin.i18n import register, t

__all__ = [
    "MESSAGES",
    "BadPackage",
    "NoRepository",
    "RepositoryBusy",
    "RepositoryExists",
    "RootKeyNeeded",
    "UnknownRollout",
    "UpdateError",
    "VersionNotNewer",
]

MESSAGES: dict[str, dict[str, str]] = {
    "update.exists": {
        "zh": "更新仓库已存在：{path}",
        "en": "The update repository already exists: {path}",
    },
    "update.missing": {
        "zh": "更新仓库不存在：{path}（请先运行 shouyin update init）",
        "en": "No update repository at {path} (run `shouyin update init` first)",
    },
    "update.busy": {
        "zh": "更新仓库正被另一个进程签名，请稍后再试：{path}",
        "en": "Another process is signing the update repository; try again later: {path}",
    },
    "update.root_key": {
        "zh": "需要根密钥（{path}）：{reason}",
        "en": "The root key is needed ({path}): {reason}",
    },
    "update.bad_package": {"zh": "更新包无效：{reason}", "en": "Invalid update package: {reason}"},
    "update.not_newer": {
        "zh": "版本 {version} 不比型号 {model} 的最新版本 {latest} 新",
        "en": "Version {version} is not newer than {latest}, the latest for model {model}",
    },
    "update.unknown_rollout": {
        "zh": "没有版本 {version} 的更新包或推送",
        "en": "No package or rollout for version {version}",
    },
    "update.cli.initialised": {
        "zh": "更新仓库已创建：{path}（根密钥：{root_key}）",
        "en": "Update repository created: {path} (root key: {root_key})",
    },
    "update.cli.published": {
        "zh": "已发布 {target}（{size} 字节，sha256 {digest}）",
        "en": "Published {target} ({size} bytes, sha256 {digest})",
    },
    "update.cli.serving": {
        "zh": "更新仓库服务地址：{url}（Ctrl+C 停止）",
        "en": "Serving the update repository at {url} (Ctrl+C to stop)",
    },
    "update.cli.rollout": {"zh": "推送 {version}", "en": "Rolling out {version}"},
    "update.cli.rollout_done": {
        "zh": "推送 {version}：{current} 台已更新，{failed} 台失败，{waiting} 台待处理",
        "en": "Rollout {version}: {current} updated, {failed} failed, {waiting} waiting",
    },
    "update.cli.no_rollouts": {"zh": "还没有推送", "en": "No rollouts yet"},
    "update.cli.root_renewed": {
        "zh": "根元数据已重新签名：第 {version} 版",
        "en": "Root re-signed: v{version}",
    },
    "update.cli.audit_failed": {
        "zh": "已发布，但审计日志未记录：{reason}",
        "en": "Published, but the audit log was not written: {reason}",
    },
    "update.cli.columns": {
        "zh": "终端|进度|固件|说明|更新时间",
        "en": "terminal|progress|firmware|message|updated",
    },
    "update.cli.passphrase": {"zh": "根密钥口令", "en": "Root key passphrase"},
    "update.progress.pending": {"zh": "待更新", "en": "pending"},
    "update.progress.downloading": {"zh": "下载中", "en": "downloading"},
    "update.progress.installed": {"zh": "已安装", "en": "installed"},
    "update.progress.current": {"zh": "已是最新", "en": "current"},
    "update.progress.failed": {"zh": "失败", "en": "failed"},
    "update.progress.rolled_back": {"zh": "自检失败已回退", "en": "rolled back"},
}
register(MESSAGES)


class UpdateError(FleetError):
    """Root of the errors of :mod:`shouyin.fleet.updates`; ``str()`` is the admin's message."""


class RepositoryExists(UpdateError):
    """``update init`` on a directory that already holds a repository."""

    def __init__(self, path: object) -> None:
        super().__init__(t("update.exists", path=path))
        self.path = path


class NoRepository(UpdateError):
    """The store has no update repository yet."""

    def __init__(self, path: object) -> None:
        super().__init__(t("update.missing", path=path))
        self.path = path


class RepositoryBusy(UpdateError):
    """Another process held the repository's signing lock for too long."""

    def __init__(self, path: object) -> None:
        super().__init__(t("update.busy", path=path))
        self.path = path


class RootKeyNeeded(UpdateError):
    """The root key file is missing, unreadable, or its passphrase is wrong."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(t("update.root_key", path=path, reason=reason))
        self.path = path
        self.reason = reason


class BadPackage(UpdateError, ValueError):
    """The package file, version, kind or model is not acceptable."""

    def __init__(self, reason: str) -> None:
        super().__init__(t("update.bad_package", reason=reason))
        self.reason = reason


class VersionNotNewer(UpdateError, ValueError):
    """Publishing a version not greater than the latest one for the model (a rollback)."""

    def __init__(self, version: str, latest: str, model: str) -> None:
        super().__init__(t("update.not_newer", version=version, latest=latest, model=model))
        self.version = version
        self.latest = latest
        self.model = model


class UnknownRollout(UpdateError, LookupError):
    """No package (or rollout) with this version."""

    def __init__(self, version: str) -> None:
        super().__init__(t("update.unknown_rollout", version=version))
        self.version = version
