"""The demo store: a fresh data directory with the catalogue, the staff accounts, the store CA and
the two registered payment terminals, as ``shouyin init``, ``shouyin catalog demo``, ``shouyin
users add`` and ``shouyin fleet add`` would leave them.

The demo passwords are printed on purpose: this is a throw-away store.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from shouyin.config import Settings
from shouyin.domain.barcodes import Nomenclature
from shouyin.domain.demo_catalogue import demo_products
from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.domain.promotions import MultiBuy, Scope, Threshold
from shouyin.domain.users import PasswordHasher, Role
from shouyin.fleet.registry import register_terminal
from shouyin.lane import services
from shouyin.link.keystore import KeyStore
from shouyin.store.catalog_import import write_products
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import SqlUnitOfWork, make_session_factory

__all__ = [
    "CARD_AMOUNTS",
    "DEMO_PROMOTIONS",
    "DEMO_USERS",
    "READER_RULES",
    "TERMINALS",
    "DemoTerminal",
    "DemoUser",
    "StoreSummary",
    "create_store",
    "reset_directory",
    "sample_codes",
]

PRODUCTS: Final = 400


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A staff account of the demo store (its password is printed)."""

    username: str
    display_name: str
    role: Role
    password: str


@dataclass(frozen=True, slots=True)
class DemoTerminal:
    """A simulated payment terminal of the demo.

    Attributes:
        terminal_id: its 终端号 (8 digits).
        name: display name.
        transport: ``"tls"`` (dials the server's link port) or ``"serial"`` (a pty cable).
        lane_id: the lane (收银台) it serves; each lane has its own server.
    """

    terminal_id: str
    name: str
    transport: str
    lane_id: str


DEMO_USERS: Final = (
    DemoUser("admin", "系统管理员", Role.ADMIN, "demo-admin-2026"),
    DemoUser("zhang", "张店长", Role.SUPERVISOR, "demo-super-2026"),
    DemoUser("li", "李收银", Role.CASHIER, "472913"),
)
TERMINALS: Final = (
    DemoTerminal("10000001", "一号机 (TLS)", "tls", "L01"),
    DemoTerminal("10000002", "二号机 (串口)", "serial", "L02"),
)

DEMO_PROMOTIONS: Final = (
    MultiBuy("饮料第二件半价", every=2, off_bp=5000, scope=Scope(categories=frozenset({"饮料"}))),
    Threshold("满100减20", threshold=Money(10_000), off=Money(2_000)),
)
"""The demo store's promotions (``shouyin serve --demo-promotions``)."""

# The simulated customers present these test cards by amount (fen), so that a person at the
# cashier page can make a card fail by paying that amount by card (e.g. in a split tender);
# every other amount is approved. Test cards: shouyin.acquirer.testcards.
CARD_AMOUNTS: Final[dict[str, int]] = {
    "decline": 5,
    "insufficient": 51,
    "expired": 54,
    "wrong_pin": 55,
    "no_answer": 91,
    "slow_customer": 33,
}
"""Card amounts (fen) at which the simulated customer presents a failing test card (or, for
``slow_customer``, a good card only after a few seconds: time to reload the cashier page)."""
_CARDS: Final[dict[str, dict[str, object]]] = {
    "wrong_pin": {"card": "pin", "pin": "wrong"},
    "slow_customer": {"card": "approve", "delay": 4.0},
}
READER_RULES: Final[tuple[dict[str, object], ...]] = tuple(
    {"amount": fen, **_CARDS.get(name, {"card": name})} for name, fen in CARD_AMOUNTS.items()
)


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """What :func:`create_store` made."""

    products: int
    ca_fingerprint: str
    samples: tuple[str, ...]


def reset_directory(path: Path) -> None:
    """Make ``path`` an empty directory (a fresh demo every run)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def sample_codes(products: list[Product]) -> tuple[str, ...]:
    """A few barcodes to scan: one per category, and a scale label of a weighed item."""
    firsts: dict[str, str] = {}
    for product in products:
        if product.barcodes and not product.weighed:
            firsts.setdefault(product.category, product.barcodes[0])
    weighed = next(p for p in products if p.weighed and p.plu)
    label = Nomenclature.default().formats[0].encode(weighed.plu or "", amount=Money(1_563))
    return (*list(firsts.values())[:6], label)


def create_store(
    settings: Settings, serial_url: str | None, rules_file: Path | None = None
) -> StoreSummary:
    """Create the demo store in ``settings.data_dir`` (which must be empty or missing).

    Args:
        settings: the lane's settings (data directory, lane id, server names).
        serial_url: the ``serial://`` URL of the serial terminal's cable end, as registered.
        rules_file: where to write :data:`READER_RULES` for the simulated terminals.

    Returns:
        What was made.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url()
    engine = make_engine(url)
    try:
        upgrade(engine)
        products = demo_products(PRODUCTS)
        with engine.begin() as connection:
            write_products(connection, products)
        ctx = services.Context(lane_id=settings.lane_id)
        hasher = PasswordHasher()
        for user in DEMO_USERS:
            services.create_user(
                SqlUnitOfWork(make_session_factory(engine)),
                hasher,
                ctx,
                username=user.username,
                display_name=user.display_name,
                role=user.role,
                password=user.password,
            )
    finally:
        engine.dispose()
    now = datetime.now(UTC)
    keystore = KeyStore(settings.keys_dir)
    keystore.init(settings.store_name, settings.server_names, now)
    registry = SqlTerminalUnitOfWork.open(url)
    try:
        for terminal in TERMINALS:
            register_terminal(
                registry,
                terminal.terminal_id,
                lane_id=terminal.lane_id,
                now=now,
                display_name=terminal.name,
                link_url=serial_url if terminal.transport == "serial" else None,
            )
    finally:
        registry.dispose()
    if rules_file is not None:
        rules_file.write_text(json.dumps(list(READER_RULES)), encoding="utf-8")
    return StoreSummary(len(products), keystore.ca_fingerprint(), sample_codes(products))
