"""Helpers for the web tests: a lane server on a temporary database, with staff and products.

:func:`make_runtime` builds a :class:`~shouyin.web.runtime.LaneRuntime` on a migrated database
(SQLite file or the ``db_url`` fixture's PostgreSQL) with three accounts, a few products and,
optionally, terminal ports. Two ways to talk to it:

* ``TestClient(create_app(runtime))`` (real time; the app's lifespan starts and closes the
  runtime) for everything without a terminal;
* :class:`AsyncLane`: an ``httpx.AsyncClient`` on the ASGI app inside the test's own event loop,
  so that card and QR payments run against the real terminal simulator
  (:class:`tests.payments.TerminalRig`) on the virtual-time loop of :mod:`tests.terminal`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from shouyin.config import Settings
from shouyin.domain.money import Money
from shouyin.domain.product import Product, Unit
from shouyin.domain.promotions import MultiBuy, Scope
from shouyin.domain.users import PasswordHasher, Role
from shouyin.lane import services
from shouyin.payments.policy import PaymentPolicy
from shouyin.payments.port import TerminalPort
from shouyin.store.catalog_import import write_products
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.web.app import create_app
from shouyin.web.runtime import LaneRuntime

HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
LANE = "L01"
OTHER_LANE = "L02"

CASHIER = ("li", "472913")
OTHER_CASHIER = ("zhao", "583024")
SUPERVISOR = ("wang", "longer-secret-1")
ADMIN = ("admin", "admin-secret-22")

COLA = Product(
    sku="C1",
    name="可口可乐 500ml",
    price=Money(350),
    category="饮料",
    barcodes=("6901234567892",),
)
RICE = Product(sku="R1", name="大米 5kg", price=Money(5990), barcodes=("6909876543212",))
APPLE = Product(
    sku="A1", name="红富士苹果", price=Money(1298), unit=Unit.KG, plu="10001", category="水果"
)
PRODUCTS = (COLA, RICE, APPLE)
PROMOTIONS = (
    MultiBuy("饮料第二件半价", every=2, off_bp=5000, scope=Scope(categories=frozenset({"饮料"}))),
)


def _scratch_data_dir(database_url: str) -> Path:
    """A data directory of the test's own: beside its SQLite file, or a new temporary one."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return Path(url.database).parent / "data"
    return Path(tempfile.mkdtemp(prefix="shouyin-web-"))


def make_runtime(
    database_url: str,
    *,
    terminals: Mapping[str, TerminalPort] | None = {},
    offload: bool = True,
    policy: PaymentPolicy | None = None,
    clock: Any = None,
    migrate: bool = False,
    settings: Settings | None = None,
) -> LaneRuntime:
    """A lane runtime on a fresh, migrated database with staff and products (see the module
    docstring), serving lanes L01 and L02 (for the other-lane tests).

    Without ``terminals`` the lanes have none; with ``settings`` and ``terminals=None`` the
    runtime uses the fleet registry's terminals. The database must be migrated already (the
    ``lane_url``/``db_url`` fixtures are), unless ``migrate``."""
    engine = make_engine(database_url)
    if migrate:
        upgrade(engine)
    with engine.begin() as connection:
        write_products(connection, list(PRODUCTS))
    # The runtime signs the audit checkpoint in settings.keys_dir: never the user's real one.
    settings = settings or Settings(
        database_url=database_url, lane_id=LANE, data_dir=_scratch_data_dir(database_url)
    )
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    runtime = LaneRuntime(
        settings,
        engine=engine,
        hasher=HASHER,
        lanes=(LANE, OTHER_LANE),
        terminals=terminals,
        promotions=PROMOTIONS,
        policy=policy,
        migrate=False,
        offload=offload,
        **extra,
    )
    ctx = runtime.context(LANE)
    for (username, password), role in (
        (CASHIER, Role.CASHIER),
        (OTHER_CASHIER, Role.CASHIER),
        (SUPERVISOR, Role.SUPERVISOR),
        (ADMIN, Role.ADMIN),
    ):
        services.create_user(
            runtime.uow(),
            HASHER,
            ctx,
            username=username,
            display_name=username.upper(),
            role=role,
            password=password,
        )
    return runtime


def login(client: TestClient, who: tuple[str, str], lane_id: str | None = None) -> dict[str, Any]:
    """Sign in with the cookie; return the session info (with ``csrf_token``)."""
    body: dict[str, Any] = {"username": who[0], "password": who[1]}
    if lane_id is not None:
        body["lane_id"] = lane_id
    response = client.post("/api/session", json=body)
    assert response.status_code == 200, response.text
    info: dict[str, Any] = response.json()
    client.headers["X-CSRF-Token"] = info["csrf_token"]
    return info


def open_sale(client: TestClient, float_fen: int = 50_000) -> str:
    """Open the shift (if needed) and start a sale; return its id."""
    if client.get("/api/lane").json()["shift"] is None:
        assert client.post("/api/shift", json={"opening_float_fen": float_fen}).status_code == 201
    response = client.post("/api/sales")
    assert response.status_code == 201, response.text
    sale_id: str = response.json()["sale_id"]
    return sale_id


@dataclass
class AsyncLane:
    """An ASGI client on the test's own loop; ``async with`` starts and closes the runtime."""

    runtime: LaneRuntime
    app: FastAPI | None = None
    client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> httpx.AsyncClient:
        self.app = create_app(self.runtime)
        await self.runtime.start()
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        if self.client is not None:
            await self.client.aclose()
        await self.runtime.close()
