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
    # -- shouyin fleet: payment terminals ---------------------------------------------------------
    "fleet.added": {
        "zh": "已登记终端 {terminal_id}（{name}，收银台 {lane}，{link}）",
        "en": "Terminal {terminal_id} registered ({name}, lane {lane}, {link})",
    },
    "fleet.exists": {
        "zh": "终端 {terminal_id} 已登记",
        "en": "Terminal {terminal_id} is already registered",
    },
    "fleet.unknown": {
        "zh": "没有登记终端 {terminal_id}（先运行 shouyin fleet add）",
        "en": "No terminal {terminal_id} is registered (run shouyin fleet add first)",
    },
    "fleet.invalid": {"zh": "{field} 无效：{reason}", "en": "Invalid {field}: {reason}"},
    "fleet.invalid_transition": {"zh": "不允许的操作：{message}", "en": "Not allowed: {message}"},
    "fleet.wrong_lane": {
        "zh": "终端 {terminal_id} 属于收银台 {lane}，本机是收银台 {here}：请在 {lane} 上操作",
        "en": "Terminal {terminal_id} belongs to lane {lane} and this is lane {here}: "
        "do this on lane {lane}",
    },
    "fleet.no_ca": {
        "zh": "门店 CA 尚未创建（{path}）：请先运行 shouyin init",
        "en": "The store CA does not exist yet ({path}): run shouyin init first",
    },
    "fleet.listen_failed": {
        "zh": "无法打开 {where}：{reason}（收银服务是否正在占用该端口？）",
        "en": "Cannot open {where}: {reason} (is the lane service using it?)",
    },
    "fleet.link_error": {"zh": "终端链路：{message}", "en": "Terminal link: {message}"},
    "fleet.keys.wrong_passphrase": {
        "zh": "终端密钥口令错误或未提供（{env}）",
        "en": "Wrong or missing terminal key passphrase ({env})",
    },
    "fleet.keys.passphrase_mismatch": {
        "zh": "终端密钥未用口令保护：请取消设置 {env}",
        "en": "The terminal keys are not passphrase-protected: unset {env}",
    },
    "fleet.keys.unsafe": {
        "zh": "密钥文件权限过宽（请 chmod 600）：{path}",
        "en": "Key file is accessible by others (chmod 600 it): {path}",
    },
    "fleet.keys.corrupt": {
        "zh": "终端密钥文件不可用：{message}",
        "en": "Terminal key file unusable: {message}",
    },
    "fleet.none": {"zh": "尚未登记任何终端", "en": "No terminals registered"},
    "fleet.list.title": {"zh": "支付终端", "en": "Payment terminals"},
    "fleet.col.terminal": {"zh": "终端号", "en": "Terminal"},
    "fleet.col.lane": {"zh": "收银台", "en": "Lane"},
    "fleet.col.name": {"zh": "名称", "en": "Name"},
    "fleet.col.link": {"zh": "连接", "en": "Link"},
    "fleet.col.state": {"zh": "状态", "en": "State"},
    "fleet.col.paired_at": {"zh": "配对时间", "en": "Paired"},
    "fleet.col.key": {"zh": "密钥", "en": "Key"},
    "fleet.col.certificate": {"zh": "证书序列号", "en": "Certificate"},
    "fleet.col.expires": {"zh": "证书到期", "en": "Expires"},
    "fleet.col.firmware": {"zh": "固件", "en": "Firmware"},
    "fleet.col.last_seen": {"zh": "最近在线", "en": "Last seen"},
    "fleet.state.registered": {"zh": "已登记", "en": "registered"},
    "fleet.state.paired": {"zh": "已配对", "en": "paired"},
    "fleet.state.revoked": {"zh": "已吊销", "en": "revoked"},
    "fleet.link.network": {"zh": "网络 TLS", "en": "network TLS"},
    "fleet.pair.title": {
        "zh": "配对终端 {terminal_id}（{name}，收银台 {lane}）",
        "en": "Pairing terminal {terminal_id} ({name}, lane {lane})",
    },
    "fleet.pair.code": {
        "zh": "配对码：{code}（{minutes} 分钟内有效，仅可使用一次，输错 {tries} 次作废）",
        "en": "Pairing code: {code} (valid {minutes} minutes, single use, "
        "burnt after {tries} wrong tries)",
    },
    "fleet.pair.network": {
        "zh": "在终端上输入收银系统地址 {address}、端口 {port} 和配对码，或扫描二维码：",
        "en": "On the terminal, enter the cashier system's address {address}, port {port} "
        "and the code, or scan the QR code:",
    },
    "fleet.pair.serial": {
        "zh": "终端经串口 {where} 连接：在终端上输入配对码",
        "en": "The terminal is on the serial port {where}: enter the code on the terminal",
    },
    "fleet.pair.fingerprint": {
        "zh": "门店 CA 指纹：{fingerprint}",
        "en": "Store CA fingerprint: {fingerprint}",
    },
    "fleet.pair.qr_saved": {
        "zh": "二维码已保存到 {path}（含配对码，用后请删除）",
        "en": "QR code saved to {path} (it holds the code: delete it afterwards)",
    },
    "fleet.pair.no_qr": {
        "zh": "串口终端没有二维码：只需输入配对码",
        "en": "A serial terminal has no QR code: just enter the code",
    },
    "fleet.pair.waiting": {
        "zh": "等待终端 {terminal_id} 配对……（Ctrl-C 取消）",
        "en": "Waiting for terminal {terminal_id} to pair... (Ctrl-C to cancel)",
    },
    "fleet.pair.done": {
        "zh": "终端 {terminal_id} 配对成功：密钥 {key_id}，证书 {serial}，有效期至 {expires}",
        "en": "Terminal {terminal_id} paired: key {key_id}, certificate {serial}, "
        "valid until {expires}",
    },
    "fleet.pair.replaced": {
        "zh": "已替换旧密钥 {key_id}；旧证书 {serial} 已吊销",
        "en": "Replaced the old key {key_id}; the old certificate {serial} is revoked",
    },
    "fleet.pair.failed.timed_out": {
        "zh": "终端 {terminal_id} 未在规定时间内配对",
        "en": "Terminal {terminal_id} did not pair in time",
    },
    "fleet.pair.failed.expired": {
        "zh": "配对码已过期，终端 {terminal_id} 未配对",
        "en": "The pairing code expired; terminal {terminal_id} is not paired",
    },
    "fleet.pair.failed.burnt": {
        "zh": "配对码输错 3 次已作废，终端 {terminal_id} 未配对：请重新运行 pair",
        "en": "Three wrong codes burnt the pairing code; terminal {terminal_id} is not paired: "
        "run pair again",
    },
    "fleet.pair.failed.wrong_terminal": {
        "zh": "输入配对码的终端不是 {terminal_id}：未保存任何密钥或证书",
        "en": "The terminal that used the code is not {terminal_id}: nothing was kept",
    },
    "fleet.pair.failed.no_certificate": {
        "zh": "终端 {terminal_id} 未申请证书，无法经网络登录：未配对",
        "en": "Terminal {terminal_id} asked for no certificate and could never log in: not paired",
    },
    "fleet.pair.failed.incomplete": {
        "zh": "终端 {terminal_id} 的配对未完成（连接中断）：请重新运行 pair",
        "en": "Pairing of terminal {terminal_id} did not complete (link lost): run pair again",
    },
    "fleet.revoked": {
        "zh": "终端 {terminal_id} 已吊销：证书{certificate}，密钥{key_state}",
        "en": "Terminal {terminal_id} revoked: certificate {certificate}, key {key_state}",
    },
    "fleet.revoked.already": {
        "zh": "终端 {terminal_id} 早已吊销（已确认证书与密钥均已清除）",
        "en": "Terminal {terminal_id} was already revoked (certificate and key checked gone)",
    },
    "fleet.revoked.done": {"zh": "已吊销", "en": "revoked"},
    "fleet.revoked.deleted": {"zh": "已删除", "en": "deleted"},
    "fleet.revoked.none": {"zh": "无", "en": "none"},
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


def register(messages: dict[str, dict[str, str]]) -> None:
    """Add a part's own messages (each part keeps its table beside its code and registers it at
    import, so parallel work never edits one shared table). A key already taken is a bug.

    Raises:
        ValueError: a key is already registered, or an entry lacks the default language.
    """
    for key, entry in messages.items():
        if key in MESSAGES:
            raise ValueError(f"message key {key!r} registered twice")
        if DEFAULT_LANGUAGE not in entry:
            raise ValueError(f"message {key!r} has no {DEFAULT_LANGUAGE} text")
    MESSAGES.update(messages)
