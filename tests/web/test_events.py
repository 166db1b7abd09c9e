"""The event bus: who sees what, bounded queues, delivery from threads, and the SSE text."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from shouyin.domain.users import Role
from shouyin.web.events import ADMIN_ONLY, EventBus, WebEvent, sse_format, sse_stream


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_a_client_sees_its_lanes_events_and_not_another_lanes() -> None:
    async def main() -> None:
        bus = EventBus()
        with (
            bus.subscribe("L01", Role.CASHIER) as mine,
            bus.subscribe("L02", Role.CASHIER) as other,
        ):
            bus.publish(WebEvent("payment.progress", {"zh": "请刷卡"}, lane_id="L01"))
            assert [e.kind for _, e in mine.pending()] == ["payment.progress"]
            assert other.pending() == []

    run(main())


def test_a_cashier_never_sees_admin_events_but_an_admin_does() -> None:
    async def main() -> None:
        bus = EventBus()
        with (
            bus.subscribe("L01", Role.CASHIER) as cashier,
            bus.subscribe("L01", Role.SUPERVISOR) as supervisor,
            bus.subscribe(None, Role.ADMIN) as admin,
        ):
            bus.publish(WebEvent("terminal.alert", {"paper": "out"}, roles=ADMIN_ONLY))
            bus.publish(WebEvent("sale.completed", {}, lane_id="L02"))
            assert cashier.pending() == [] and supervisor.pending() == []
            assert [e.kind for _, e in admin.pending()] == ["terminal.alert", "sale.completed"]

    run(main())


def test_only_admins_may_watch_every_lane() -> None:
    async def main() -> None:
        with pytest.raises(ValueError), EventBus().subscribe(None, Role.SUPERVISOR):
            pass

    run(main())


def test_a_slow_client_loses_its_oldest_events_not_the_publisher() -> None:
    async def main() -> None:
        bus = EventBus(queue_size=3)
        with bus.subscribe("L01", Role.CASHIER) as slow:
            for n in range(10):
                bus.publish(WebEvent("tick", {"n": n}, lane_id="L01"))
            assert [e.data["n"] for _, e in slow.pending()] == [7, 8, 9]
            assert slow.dropped == 7

    run(main())


def test_events_published_from_a_worker_thread_arrive_on_the_loop() -> None:
    async def main() -> None:
        bus = EventBus()
        with bus.subscribe("L01", Role.CASHIER) as sub:
            worker = threading.Thread(
                target=bus.publish, args=(WebEvent("sale.completed", {}, lane_id="L01"),)
            )
            worker.start()
            worker.join(5)
            items = await sub.wait(5)
            assert [e.kind for _, e in items] == ["sale.completed"]

    run(main())


def test_the_stream_says_hello_then_sends_events_and_ends_when_the_bus_closes() -> None:
    async def main() -> None:
        bus = EventBus()
        chunks: list[str] = []
        with bus.subscribe("L01", Role.CASHIER) as sub:

            async def read() -> None:
                async for chunk in sse_stream(sub, lifetime=30, heartbeat=0.05):
                    chunks.append(chunk)
                    if "payment.outcome" in chunk:
                        bus.close()

            reader = asyncio.ensure_future(read())
            bus.publish(WebEvent("payment.outcome", {"zh": "支付成功"}, lane_id="L01"))
            await asyncio.wait_for(reader, 5)
        assert chunks[0].startswith("id: 0\nevent: hello\n")
        outcome = next(c for c in chunks if "payment.outcome" in c)
        assert json.loads(outcome.split("data: ", 1)[1]) == {"zh": "支付成功"}

    run(main())


def test_sse_format_is_one_message_per_event() -> None:
    assert sse_format(3, "x", {"a": "中"}) == 'id: 3\nevent: x\ndata: {"a":"中"}\n\n'
