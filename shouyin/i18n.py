"""User-facing text in Simplified Chinese (default) with English available.

Messages live in one table keyed by a stable id; ``t(key, **fields)`` formats the message in the
current language. The language comes from ``SHOUYIN_LANGUAGE`` (``zh``/``en``) and can be switched
per call (the web app passes the user's choice).
"""

from __future__ import annotations

import os
from typing import Final

DEFAULT_LANGUAGE: Final = "zh"
LANGUAGES: Final = ("zh", "en")

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "error": {"zh": "错误：{message}", "en": "Error: {message}"},
    "db.ready": {"zh": "数据库已就绪：{url}", "en": "Database ready: {url}"},
    "init.ca": {
        "zh": "门店 CA 已就绪（指纹 {fingerprint}），密钥目录 {path}",
        "en": "Store CA ready (fingerprint {fingerprint}), keys in {path}",
    },
    "init.admin_created": {
        "zh": "已创建管理员账号 {username}",
        "en": "Admin account {username} created",
    },
    "init.admin_exists": {
        "zh": "管理员账号 {username} 已存在，未更改",
        "en": "Admin account {username} already exists; unchanged",
    },
    "import.progress": {"zh": "导入商品", "en": "Importing products"},
    "import.summary": {
        "zh": "导入完成：成功 {imported} 行，拒绝 {rejected} 行",
        "en": "Import finished: {imported} rows imported, {rejected} rejected",
    },
    "import.row_error": {"zh": "第 {line} 行：{message}", "en": "line {line}: {message}"},
    "import.more_errors": {
        "zh": "……另有 {count} 行错误未显示",
        "en": "... and {count} more rejected rows",
    },
    "demo.catalogue_loaded": {
        "zh": "已载入示范商品 {count} 种",
        "en": "Loaded {count} demo products",
    },
    "users.added": {
        "zh": "已添加用户 {username}（{role}）",
        "en": "User {username} ({role}) added",
    },
    "users.exists": {"zh": "用户 {username} 已存在", "en": "User {username} already exists"},
    "users.unlocked": {"zh": "用户 {username} 已解锁", "en": "User {username} unlocked"},
    "users.not_found": {"zh": "没有用户 {username}", "en": "No user {username}"},
    "report.none": {"zh": "没有数据", "en": "No data"},
}


def current_language() -> str:
    """The language from ``SHOUYIN_LANGUAGE``, defaulting to Simplified Chinese."""
    lang = os.environ.get("SHOUYIN_LANGUAGE", DEFAULT_LANGUAGE).lower()[:2]
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def t(key: str, lang: str | None = None, **fields: object) -> str:
    """Translate message ``key`` into ``lang`` (default: current language) and fill its fields.

    Unknown keys come back as the key itself, so a missing translation is visible, not fatal.
    """
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    text = entry.get(lang or current_language()) or entry[DEFAULT_LANGUAGE]
    return text.format(**fields)
