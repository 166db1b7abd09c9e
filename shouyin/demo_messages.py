"""What ``make demo`` says, in Simplified Chinese (default) and English (registered with
:func:`shouyin.i18n.register` on import: a module is imported once, even when
:mod:`shouyin.demo` itself runs as ``__main__``)."""

from __future__ import annotations

from typing import Final

from shouyin.i18n import register

__all__ = ["MESSAGES"]

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "demo.starting": {
        "zh": "正在创建示范门店并启动收单模拟器、两台模拟终端和收银服务（目录 {path}）……",
        "en": "Creating the demo store and starting the acquirer simulator, two simulated "
        "terminals and the lane server (in {path})...",
    },
    "demo.ready": {"zh": "shouyin 示范门店已就绪", "en": "The shouyin demo store is ready"},
    "demo.url.lane": {
        "zh": "收银台 {lane} 收银页面：{url}",
        "en": "Lane {lane} cashier page: {url}",
    },
    "demo.url.admin": {"zh": "管理页面：{url}", "en": "Admin pages: {url}"},
    "demo.col.user": {"zh": "账号", "en": "account"},
    "demo.col.role": {"zh": "角色", "en": "role"},
    "demo.col.password": {"zh": "示范密码", "en": "demo password"},
    "demo.col.terminal": {"zh": "终端", "en": "terminal"},
    "demo.col.lane": {"zh": "收银台", "en": "lane"},
    "demo.col.link": {"zh": "连接", "en": "link"},
    "demo.col.log": {"zh": "日志", "en": "log"},
    "demo.try": {
        "zh": "可以试试：\n"
        "  · 扫码（在条码框输入后回车）：{samples}\n"
        "  · 刷卡支付：模拟顾客刷测试卡，默认批准；刷卡金额为 ￥{decline} 时拒绝（05），"
        "￥{insufficient} 余额不足（51），￥{wrong_pin} 密码错误（55），"
        "￥{no_answer} 收单无应答后自动冲正（可在组合支付里输入刷卡金额）\n"
        "  · 扫付款码：微信 {wechat}（成功），支付宝 {alipay_wait}（顾客输密码后成功），"
        "{poor}（余额不足）\n"
        "  · 退货：需要主管 {supervisor}（密码 {supervisor_password}）授权\n"
        "  · 交班：清点现金，然后在管理页面查看 Z 报表",
        "en": "Things to try:\n"
        "  · scan (type a barcode into the barcode field, Enter): {samples}\n"
        "  · pay by card: the simulated customer's test card is approved, except for card "
        "amounts ￥{decline} (declined, 05), ￥{insufficient} (insufficient funds, 51), "
        "￥{wrong_pin} (wrong PIN, 55), ￥{no_answer} (no acquirer answer: reversed) — "
        "enter the card amount in a split tender\n"
        "  · scan a payment code: WeChat {wechat} (success), Alipay {alipay_wait} (customer "
        "enters a password, then success), {poor} (insufficient balance)\n"
        "  · a return: needs supervisor {supervisor}'s approval (password "
        "{supervisor_password})\n"
        "  · close the shift with a cash count, then read the Z report in the admin pages",
    },
    "demo.receipts": {
        "zh": "虚拟小票打印机的小票（文本和图片）：{path}",
        "en": "Receipts from the virtual printers (text and image): {path}",
    },
    "demo.logs": {"zh": "各进程日志：{path}", "en": "Logs of every process: {path}"},
    "demo.stop_hint": {"zh": "按 Ctrl-C 停止全部", "en": "Press Ctrl-C to stop everything"},
    "demo.check_ok": {
        "zh": "检查通过：整个系统工作正常",
        "en": "Check passed: the whole system works",
    },
    "demo.child_died": {
        "zh": "进程 {name} 意外退出，日志：{log}。正在停止其他进程。",
        "en": "{name} exited unexpectedly; its log: {log}. Stopping the rest.",
    },
    "demo.failed": {
        "zh": "示范启动失败：{error}（日志在 {path}）",
        "en": "The demo failed: {error} (logs in {path})",
    },
    "demo.already_running": {
        "zh": "示范已在运行（进程 {pid}，目录 {path}）：先在那里按 Ctrl-C，或用 --dir 换个目录",
        "en": "A demo is already running (process {pid}, in {path}): press Ctrl-C there first, "
        "or use another --dir",
    },
    "demo.stopping": {"zh": "正在按顺序停止各进程……", "en": "Stopping every process in order..."},
    "demo.stopped": {"zh": "已全部停止。", "en": "Everything stopped."},
}
register(MESSAGES)
