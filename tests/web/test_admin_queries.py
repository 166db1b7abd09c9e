"""The admin read models on plain SQL data, on SQLite and PostgreSQL: sales by hour (summed in
SQL, by local hour of completion), the sales journal (masked card numbers only), shifts, lanes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert

from shouyin.domain.sale_states import SaleState
from shouyin.store.tables import SaleRow, SaleTenderRow, ShiftRow, TerminalRow, UserRow, table
from shouyin.web.admin_queries import (
    hour_boundaries,
    lane_summaries,
    safe_masked_pan,
    sales_by_hour,
    sales_journal,
    shift_summaries,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 20)
_counter = iter(range(1, 10_000))


def local(hour: int, minute: int = 0, second: int = 0, day: date = DAY) -> datetime:
    """A Shanghai wall-clock time on ``day``, as aware UTC."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SHANGHAI).astimezone(
        UTC
    )


def add_sale(
    engine: Engine,
    *,
    opened: datetime,
    completed: datetime | None,
    total: int,
    state: SaleState = SaleState.COMPLETED,
    lane: str = "L01",
    tenders: list[dict[str, Any]] | None = None,
) -> str:
    number = next(_counter)
    sale_id = f"s{number:04d}"
    with engine.begin() as conn:
        conn.execute(
            insert(table(SaleRow)).values(
                sale_id=sale_id,
                receipt_no=f"{lane}-{number:06d}",
                lane_id=lane,
                shift_id="sh1",
                cashier_id="u1",
                opened_at=opened,
                state=state.value,
                promotions="[]",
                total_due=total,
                completed_at=completed,
            )
        )
        for no, tender in enumerate(tenders or [], start=1):
            conn.execute(
                insert(table(SaleTenderRow)).values(
                    sale_id=sale_id, tender_no=no, voided=False, **tender
                )
            )
    return sale_id


def by_hour(engine: Engine, lane: str | None = None) -> dict[int, tuple[int, int]]:
    with engine.connect() as conn:
        buckets = sales_by_hour(conn, DAY, SHANGHAI, lane_id=lane)
    assert [b.start.hour for b in buckets] == list(range(24))
    return {b.start.hour: (b.sales_count, b.amount) for b in buckets if b.sales_count}


# -- sales by hour ---------------------------------------------------------------------------------


def test_sales_are_summed_per_local_hour_of_completion(engine: Engine) -> None:
    add_sale(engine, opened=local(9, 5), completed=local(9, 10), total=1250)
    add_sale(engine, opened=local(9, 40), completed=local(9, 59, 59), total=399)
    add_sale(engine, opened=local(10, 0), completed=local(10, 0), total=10_000)
    assert by_hour(engine) == {9: (2, 1649), 10: (1, 10_000)}


def test_a_sale_at_23_59_counts_in_the_last_hour_of_its_day(engine: Engine) -> None:
    add_sale(engine, opened=local(23, 58), completed=local(23, 59, 59), total=777)
    assert by_hour(engine) == {23: (1, 777)}


def test_a_sale_across_midnight_counts_on_the_day_it_was_completed(engine: Engine) -> None:
    next_day = DAY + timedelta(days=1)
    # Opened on DAY at 23:58, completed at 00:01 the next day: the next day's 0 o'clock.
    add_sale(engine, opened=local(23, 58), completed=local(0, 1, day=next_day), total=500)
    # Opened the evening before DAY, completed just after DAY's midnight: DAY's 0 o'clock.
    add_sale(
        engine,
        opened=local(23, 59, day=DAY - timedelta(days=1)),
        completed=local(0, 0, 30),
        total=321,
    )
    assert by_hour(engine) == {0: (1, 321)}
    with engine.connect() as conn:
        tomorrow = sales_by_hour(conn, next_day, SHANGHAI)
    assert [(b.start.hour, b.amount) for b in tomorrow if b.amount] == [(0, 500)]


def test_the_store_day_is_not_the_utc_day(engine: Engine) -> None:
    # 16:30 UTC on DAY-1 is 00:30 in Shanghai on DAY; 15:59 UTC on DAY is 23:59 on DAY.
    add_sale(
        engine, opened=local(0, 20), completed=datetime(2026, 11, 19, 16, 30, tzinfo=UTC), total=100
    )
    add_sale(
        engine, opened=local(23, 0), completed=datetime(2026, 11, 20, 15, 59, tzinfo=UTC), total=200
    )
    add_sale(
        engine, opened=local(23, 0), completed=datetime(2026, 11, 20, 16, 0, tzinfo=UTC), total=400
    )  # 00:00 on the next day: not DAY's
    assert by_hour(engine) == {0: (1, 100), 23: (1, 200)}


def test_only_completed_sales_of_the_lane_count(engine: Engine) -> None:
    add_sale(engine, opened=local(12), completed=local(12, 5), total=1000)
    add_sale(engine, opened=local(12), completed=local(12, 6), total=2000, lane="L02")
    add_sale(engine, opened=local(12), completed=None, total=4000, state=SaleState.VOIDED)
    add_sale(engine, opened=local(12), completed=None, total=8000, state=SaleState.OPEN)
    assert by_hour(engine) == {12: (2, 3000)}
    assert by_hour(engine, "L02") == {12: (1, 2000)}


def test_amounts_stay_exact_integers_beyond_float_precision(engine: Engine) -> None:
    big = 2**53 + 1  # a float would round this
    add_sale(engine, opened=local(8), completed=local(8, 1), total=big)
    add_sale(engine, opened=local(8), completed=local(8, 2), total=1)
    assert by_hour(engine) == {8: (2, big + 1)}


def test_a_day_with_a_clock_change_has_23_or_25_hours() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert len(hour_boundaries(date(2026, 3, 29), berlin)) - 1 == 23
    assert len(hour_boundaries(date(2026, 10, 25), berlin)) - 1 == 25
    assert len(hour_boundaries(DAY, SHANGHAI)) - 1 == 24


# -- journal ---------------------------------------------------------------------------------------


def test_journal_lists_the_days_sales_newest_first_with_masked_cards(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(table(UserRow)).values(
                user_id="u1",
                username="li",
                display_name="李",
                role="cashier",
                password_hash="x",
                failed_logins=0,
                active=True,
            )
        )
    card = {"kind": "card", "amount": 1250, "masked_pan": "622848*********0018", "rrn": "1"}
    first = add_sale(engine, opened=local(9), completed=local(9, 1), total=1250, tenders=[card])
    second = add_sale(
        engine,
        opened=local(10),
        completed=None,
        total=300,
        state=SaleState.VOIDED,
        tenders=[{"kind": "cash", "amount": 300}],
    )
    add_sale(engine, opened=local(10, day=DAY + timedelta(days=1)), completed=None, total=1)
    with engine.connect() as conn:
        rows = sales_journal(conn, DAY, SHANGHAI)
        voided = sales_journal(conn, DAY, SHANGHAI, state=SaleState.VOIDED)
    assert [s.sale_id for s in rows] == [second, first]
    assert rows[1].cashier_name == "李"
    assert rows[1].tenders[0].masked_pan == "622848*********0018"
    assert [s.sale_id for s in voided] == [second]


def test_a_stored_full_card_number_is_masked_on_the_way_out() -> None:
    assert safe_masked_pan("6228480402564890018") == "622848*********0018"
    assert safe_masked_pan("622848*********0018") == "622848*********0018"
    # Odd lengths (not a 13-19 digit PAN) are masked too, never an error.
    assert safe_masked_pan("62284804025") == "622848*4025"
    assert safe_masked_pan("1" * 23) == "111111" + "*" * 13 + "1111"
    assert safe_masked_pan(None) is None


# -- shifts and lanes ------------------------------------------------------------------------------


def test_shifts_of_the_day_and_lanes_with_their_open_shift(engine: Engine) -> None:
    with engine.begin() as conn:
        for shift_id, lane, opened, state in (
            ("a", "L01", local(8), "closed"),
            ("b", "L01", local(14), "open"),
            ("c", "L02", local(9, day=DAY - timedelta(days=1)), "closed"),
        ):
            conn.execute(
                insert(table(ShiftRow)).values(
                    shift_id=shift_id,
                    lane_id=lane,
                    cashier_id="u1",
                    opened_at=opened,
                    opening_float=50_000,
                    state=state,
                )
            )
        conn.execute(
            insert(table(TerminalRow)).values(
                terminal_id="10000003",
                lane_id="L03",
                display_name="T3",
                state="registered",
                registered_at=local(7),
            )
        )
        shifts = shift_summaries(conn, DAY, SHANGHAI)
        lanes = lane_summaries(conn, ["L09"])
    assert [s.shift_id for s in shifts] == ["a", "b"]
    assert shifts[0].opening_float == 50_000
    assert [(lane.lane_id, lane.terminals) for lane in lanes] == [
        ("L01", 0),
        ("L02", 0),
        ("L03", 1),
        ("L09", 0),
    ]
    assert lanes[0].open_shift is not None and lanes[0].open_shift.shift_id == "b"
