"""User-facing text of the lane devices (printer, drawer, display, scanner, ports)."""

from __future__ import annotations

from typing import Final

from shouyin import i18n

__all__ = ["MESSAGES", "t"]

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "devices.printer.config": {
        "zh": "打印机设置有误，请联系管理员",
        "en": "The printer setting is wrong; ask the admin",
    },
    "devices.printer.not_configured": {
        "zh": "未配置小票打印机",
        "en": "No receipt printer is configured",
    },
    "devices.printer.offline": {
        "zh": "小票打印机未连接或无响应，请检查电源和连线",
        "en": "The receipt printer is not connected or not answering; check power and cable",
    },
    "devices.printer.paper_out": {
        "zh": "打印机缺纸，请装纸后重印",
        "en": "The printer is out of paper; load paper and reprint",
    },
    "devices.printer.cover_open": {
        "zh": "打印机纸仓盖未关，请合上后重印",
        "en": "The printer cover is open; close it and reprint",
    },
    "devices.display.failed": {
        "zh": "客显无法使用：{detail}",
        "en": "Customer display unavailable: {detail}",
    },
    "devices.scanner.failed": {
        "zh": "扫码枪无法使用：{detail}",
        "en": "Scanner unavailable: {detail}",
    },
    "devices.sim.listening": {
        "zh": "虚拟小票打印机在 {host}:{port} 监听（控制端口 {control}），小票存入 {out}",
        "en": "Virtual receipt printer on {host}:{port} (control port {control}), jobs in {out}",
    },
    "devices.sim.job": {
        "zh": "收到打印任务 {name}：{lines} 行，{size} 字节",
        "en": "Print job {name}: {lines} lines, {size} bytes",
    },
    "devices.display.listening": {
        "zh": "虚拟客显已就绪，请把客显端口设为 {path}",
        "en": "Virtual customer display ready; set the display port to {path}",
    },
    "devices.ports.none": {"zh": "未发现串口", "en": "No serial ports found"},
    "devices.ports.title": {"zh": "串口与 USB 串口设备", "en": "Serial and USB-serial ports"},
    "devices.ports.unknown": {"zh": "未知型号", "en": "unknown model"},
    "devices.printer.test_sent": {
        "zh": "已发送 {size} 字节到打印机（状态：{state}）",
        "en": "Sent {size} bytes to the printer (status: {state})",
    },
    "devices.printer.status": {"zh": "打印机状态：{state}", "en": "Printer status: {state}"},
}

i18n.register(MESSAGES)


def t(key: str, lang: str | None = None, **fields: object) -> str:
    """Translate one of this module's keys (see :func:`shouyin.i18n.t`)."""
    return i18n.t(key, lang, **fields)
