"""The terminal's health: power, paper, temperature, firmware, link counters, and their events.

:class:`TerminalStatus` is the live status (settable from the control channel for tests and
demos). :meth:`TerminalStatus.health` is the snapshot reported in heartbeat and diagnosis
answers; :meth:`TerminalStatus.update` applies changes and returns the
:class:`~shouyin.link.messages.EventNotification` each transition deserves (paper out, paper
low, back on mains, low battery, overheating...), which the application sends to the cashier
system.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shouyin.link.messages import EventNotification
from shouyin.link.values import (
    LinkCounters,
    NotificationKind,
    PaperState,
    PowerSource,
    TerminalHealth,
)
from shouyin.terminal.records import FirmwareSlots

__all__ = ["HOT_C", "LOW_BATTERY_PERCENT", "TerminalStatus"]

logger = logging.getLogger(__name__)

LOW_BATTERY_PERCENT = 20
"""At or below this charge, on battery, the terminal reports ``low_battery``."""
HOT_C = 70
"""Above this temperature the terminal asks for maintenance."""

_PAPER_EVENTS = {
    PaperState.OUT: NotificationKind.PAPER_OUT,
    PaperState.LOW: NotificationKind.PAPER_LOW,
    PaperState.OK: NotificationKind.PAPER_OK,
}


class TerminalStatus:
    """Live status of the simulated terminal.

    Args:
        firmware: the firmware slots (from the state directory).
        link_counters: returns the link's error counters (from the connection's framer).
    """

    def __init__(
        self,
        firmware: FirmwareSlots | None = None,
        link_counters: Callable[[], LinkCounters] | None = None,
    ) -> None:
        self.power = PowerSource.MAINS
        self.battery_percent = 100
        self.paper = PaperState.OK
        self.temperature_c = 38
        self.firmware = firmware or FirmwareSlots()
        self.reconnects = 0
        self.screen: tuple[str, ...] = ("欢迎使用",)
        self.link_counters = link_counters
        # Line noise injected from the control channel (a loose cable, for health tests and
        # demos): added to the framer's own counters, which a TCP link never moves.
        self.injected = LinkCounters()
        # Set by shouyin.terminal.test_mode; reported in every health snapshot.
        self.test_mode = False
        self.test_mode_until: datetime | None = None

    def health(self) -> TerminalHealth:
        """The snapshot for heartbeat and diagnosis answers."""
        return TerminalHealth(
            power=self.power,
            battery_percent=self.battery_percent,
            paper=self.paper,
            temperature_c=self.temperature_c,
            firmware=self.firmware.running,
            link=self._counters(),
            test_mode=True if self.test_mode else None,
        )

    def _counters(self) -> LinkCounters | None:
        real = self.link_counters() if self.link_counters is not None else None
        extra = self.injected
        if real is None:  # no framer counters (TCP/TLS): report the injected noise, zeros at rest
            return extra
        return real.model_copy(
            update={
                "crc_errors": real.crc_errors + extra.crc_errors,
                "retransmissions": real.retransmissions + extra.retransmissions,
            }
        )

    def summary(self) -> str:
        """One line for diagnosis answers: firmware slots and reconnections."""
        slots = self.firmware
        marks = {s: "*" if slots.active == s else "" for s in ("A", "B")}
        return (
            f"firmware A:{slots.a or '-'}{marks['A']} B:{slots.b or '-'}{marks['B']}; "
            f"reconnects {self.reconnects}"
        )

    def as_dict(self) -> dict[str, Any]:
        """The status as JSON-ready data (control channel)."""
        return {
            "power": self.power.value,
            "battery_percent": self.battery_percent,
            "paper": self.paper.value,
            "temperature_c": self.temperature_c,
            "firmware": self.firmware.model_dump(),
            "reconnects": self.reconnects,
            "screen": list(self.screen),
            "injected": self.injected.model_dump(),
            "test_mode": self.test_mode,
            "test_mode_until": (
                self.test_mode_until.isoformat() if self.test_mode_until is not None else None
            ),
        }

    def update(
        self,
        *,
        power: PowerSource | str | None = None,
        battery_percent: int | None = None,
        paper: PaperState | str | None = None,
        temperature_c: int | None = None,
        crc_errors: int | None = None,
        retransmissions: int | None = None,
    ) -> list[EventNotification]:
        """Apply changes; return the notifications the transitions call for.

        ``crc_errors`` and ``retransmissions`` set the injected line-noise counters (cumulative,
        like a real terminal's), which the health snapshot adds to the link's own.

        Raises:
            ValueError: an unknown power source or paper state, or a value out of range.
        """
        events: list[EventNotification] = []
        if power is not None:
            source = PowerSource(power)
            if source is not self.power:
                self.power = source
                kind = (
                    NotificationKind.ON_MAINS
                    if source is PowerSource.MAINS
                    else NotificationKind.ON_BATTERY
                )
                events.append(EventNotification(event=kind))
        if battery_percent is not None:
            if not 0 <= battery_percent <= 100:
                raise ValueError("battery_percent is 0..100")
            was_low = self.battery_percent <= LOW_BATTERY_PERCENT
            self.battery_percent = battery_percent
            if battery_percent <= LOW_BATTERY_PERCENT and not was_low:
                detail = f"battery {battery_percent}%"
                events.append(EventNotification(event=NotificationKind.LOW_BATTERY, detail=detail))
        if paper is not None:
            state = PaperState(paper)
            if state is not self.paper:
                self.paper = state
                events.append(EventNotification(event=_PAPER_EVENTS[state]))
        if temperature_c is not None:
            if not -60 <= temperature_c <= 150:
                raise ValueError("temperature_c is -60..150")
            was_hot = self.temperature_c > HOT_C
            self.temperature_c = temperature_c
            if temperature_c > HOT_C and not was_hot:
                events.append(
                    EventNotification(
                        event=NotificationKind.MAINTENANCE_REQUIRED,
                        detail=f"temperature {temperature_c} C",
                    )
                )
        if crc_errors is not None or retransmissions is not None:
            # Validated as the wire model validates counters (non-negative integers).
            self.injected = LinkCounters(
                crc_errors=self.injected.crc_errors if crc_errors is None else crc_errors,
                retransmissions=(
                    self.injected.retransmissions if retransmissions is None else retransmissions
                ),
            )
        for event in events:
            logger.info("status event: %s %s", event.event.value, event.detail or "")
        return events
