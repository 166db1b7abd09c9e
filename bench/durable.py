"""Durable sale commits per second, against bare SQLite insert+commit loops on the same settings.

Every loop writes to a SQLite file with the lane's durability pragmas (WAL, ``synchronous=FULL``),
so each commit waits for the disk, and all run in the same process minutes apart. The shouyin
side saves a realistic completed sale (8 lines, a promotion, cash + card tenders) through the
repository and unit of work, one sale per commit, as a lane does at every checkout. Two ceilings:

* **bare, same rows**: the ``sqlite3`` module inserting exactly the rows shouyin writes for such a
  sale (header, 8 lines, 2 tenders, in shouyin's own migrated schema with its indexes) in one
  transaction per sale. This is the ceiling for committing a sale; the ratio against it is the
  cost of shouyin's own code, and is the figure held to the 70% target.
* **bare, one row**: one small row per commit, the cheapest durable commit there is. A sale
  touches ~10 pages across three tables and their indexes, so no normalised schema gets near it;
  the ratio is printed for honesty.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Figure
from shouyin.domain.demo_catalogue import demo_products
from shouyin.domain.money import Money
from shouyin.domain.promotions import MultiBuy, Scope
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import PaymentRef, TenderKind
from shouyin.store.engine import SQLITE_PRAGMAS, make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.uow import SqlUnitOfWork, make_session_factory

SECTION = "durable commits"
ROUNDS = 5  # the loops run interleaved, round after round; each figure is the median round
DURATION_S = 1.0
MAX_COMMITS = 20_000


def bare_sqlite_commits(path: Path, duration: float = DURATION_S) -> float:
    """Commits per second of a one-row insert+commit loop on a WAL/FULL SQLite file."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(pragma)
    conn.execute("CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, payload TEXT, amount INT)")
    done, start = 0, time.perf_counter()
    while done < MAX_COMMITS and time.perf_counter() - start < duration:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", (uuid.uuid4().hex, "x" * 200, done))
        conn.execute("COMMIT")
        done += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return done / elapsed


def bare_sale_row_commits(path: Path, template: Path, duration: float = DURATION_S) -> float:
    """Commits per second of raw ``sqlite3`` inserting the same rows as one shouyin sale."""
    tables = ("sales", "sale_lines", "sale_tenders")
    source = sqlite3.connect(template)
    (first,) = source.execute("SELECT sale_id FROM sales LIMIT 1").fetchone()
    rows = {
        t: source.execute(f"SELECT * FROM {t} WHERE sale_id = ?", (first,)).fetchall()
        for t in tables
    }
    source.close()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)  # shouyin's schema, indexes included: the same pages get written
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(pragma)
    inserts = {t: f"INSERT INTO {t} VALUES ({', '.join('?' * len(rows[t][0]))})" for t in tables}
    # Column 0 is sale_id everywhere; receipt_no must stay unique per lane too.
    receipt_col = [d[1] for d in conn.execute("PRAGMA table_info(sales)")].index("receipt_no")
    done, start = 0, time.perf_counter()
    while done < MAX_COMMITS and time.perf_counter() - start < duration:
        sale_id = uuid.uuid4().hex
        header = list(rows["sales"][0])
        header[0], header[receipt_col] = sale_id, sale_id[:12]
        conn.execute("BEGIN")
        conn.execute(inserts["sales"], header)
        for t in ("sale_lines", "sale_tenders"):
            conn.executemany(inserts[t], [(sale_id, *r[1:]) for r in rows[t]])
        conn.execute("COMMIT")
        done += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return done / elapsed


def _sample_sale(sale_id: str, now: datetime) -> Sale:
    products = [p for p in demo_products(60) if not p.weighed][:8]
    sale = Sale.open(
        sale_id=sale_id,
        receipt_no=sale_id[:12],
        lane_id="L01",
        shift_id="bench-shift",
        cashier_id="bench",
        now=now,
        promotions=(MultiBuy("第二件半价", every=2, off_bp=5000, scope=Scope()),),
    )
    for product in products:
        sale.add_product(product, 2)
    card = min(sale.total_due, Money(5000))
    sale.add_tender(
        TenderKind.CARD,
        card,
        PaymentRef(ecr_ref=f"E{sale_id[:20]}", rrn="123456789012", masked_pan="622848******1234"),
    )
    sale.add_tender(TenderKind.CASH, sale.remaining + Money(100))
    sale.complete(now)
    return sale


def shouyin_sale_commits(path: Path, duration: float = DURATION_S) -> float:
    """Completed sales saved and committed per second through the unit of work."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    sales = [_sample_sale(uuid.uuid4().hex, now) for _ in range(3000)]
    done, start = 0, time.perf_counter()
    while done < len(sales) and time.perf_counter() - start < duration:
        with SqlUnitOfWork(factory) as uow:
            uow.sales.save(sales[done])
            uow.commit()
        done += 1
    elapsed = time.perf_counter() - start
    engine.dispose()
    return done / elapsed


def run(workdir: Path, args: argparse.Namespace) -> list[Figure]:
    """Measure the three loops, interleaved over several rounds, and report median ratios.

    Interleaving matters on a shared machine: a neighbour's burst of I/O then slows every loop
    in that round alike instead of skewing one of them.
    """
    rounds: list[tuple[float, float, float]] = []
    for _ in range(ROUNDS):
        ours = shouyin_sale_commits(workdir / "lane.db")
        same = bare_sale_row_commits(workdir / "bare-sale-rows.db", workdir / "lane.db")
        rounds.append((bare_sqlite_commits(workdir / "bare-one-row.db"), same, ours))
    one_row, same_rows, ours = (statistics.median(r[i] for r in rounds) for i in range(3))
    ratio = statistics.median(r[2] / r[1] for r in rounds)
    return [
        Figure(SECTION, "bare sqlite3, one row/commit", one_row, "commit/s"),
        Figure(SECTION, "bare sqlite3, a sale's rows/commit", same_rows, "commit/s"),
        Figure(SECTION, "shouyin sale save+commit", ours, "sale/s"),
        Figure(SECTION, "shouyin / bare same rows", ratio * 100, "%", ">= 70 %", ratio >= 0.70),
        Figure(SECTION, "shouyin / bare one row", ours / one_row * 100, "%"),
        Figure(SECTION, "rounds (median reported)", ROUNDS, ""),
    ]
