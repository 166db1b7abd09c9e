"""``make demo``: build a demo store and walk through a day at a checkout lane.

Creates ``demo-data/`` (a fresh SQLite lane database each run), loads the demo catalogue, creates
the staff accounts and prints their demo passwords, opens a shift, rings up two sales (scanning
barcodes and a scale label, with 第二件半价 and 满100减20 promotions applied), prints the receipts
and the X report, closes the shift with a cash count and prints the Z report. When run from a
terminal it then opens the interactive lane console (``shouyin sell``) on the same database.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from shouyin.devices.receipt import ReceiptHeader, render_sale
from shouyin.devices.report_layout import render_report
from shouyin.domain.barcodes import Nomenclature
from shouyin.domain.demo_catalogue import demo_products
from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.domain.promotions import MultiBuy, Scope, Threshold
from shouyin.domain.users import PasswordHasher, Role, User
from shouyin.lane import services
from shouyin.store.catalog_import import write_products
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.uow import SqlUnitOfWork, make_session_factory

DEMO_DIR = Path("demo-data")
STORE = ReceiptHeader(
    store_name="shouyin 示范超市", address="上海市浦东新区示范路 1 号", phone="021-5555 0000"
)
# Demo passwords are printed on purpose: this is a throw-away demo store.
DEMO_USERS = (
    ("admin", "系统管理员", Role.ADMIN, "demo-admin-2026"),
    ("zhang", "张店长", Role.SUPERVISOR, "demo-super-2026"),
    ("li", "李收银", Role.CASHIER, "472913"),
)
DEMO_PROMOTIONS = (
    MultiBuy("饮料第二件半价", every=2, off_bp=5000, scope=Scope(categories=frozenset({"饮料"}))),
    Threshold("满100减20", threshold=Money(10_000), off=Money(2_000)),
)

NewUow = Callable[[], SqlUnitOfWork]


def demo_baskets(products: list[Product]) -> tuple[list[list[str]], list[str]]:
    """Two shopping baskets of barcodes (one with a scale label) and a few codes to try."""
    by_category: dict[str, list[str]] = {}
    for p in products:
        if p.barcodes:
            by_category.setdefault(p.category, []).append(p.barcodes[0])
    apple = next(p for p in products if p.weighed and p.plu)
    scale_label = Nomenclature.default().formats[0].encode(apple.plu or "", amount=Money(1_563))
    drink = by_category["饮料"][0]
    baskets = [
        [drink, drink, by_category["零食"][0], scale_label, by_category["乳品"][0]],
        [*by_category["粮油调味"][:3], by_category["酒水"][0], by_category["个人护理"][0]] * 2,
    ]
    samples = [*(codes[0] for codes in by_category.values()), scale_label]
    return baskets, samples[:8]


def ring_up(
    console: Console, uow: NewUow, ctx: services.Context, cashier: User, codes: list[str]
) -> None:
    """Scan a basket, pay cash with the next ￥100 note up, and print the receipt."""
    sale = services.start_sale(uow(), ctx, cashier)
    for code in codes:
        line = services.scan(uow(), ctx, sale.sale_id, code)
        console.print(f"  扫码 {code} → {line.name}")
    with uow() as u:
        due = services.get_sale(u, sale.sale_id).total_due
    done = services.pay_cash(uow(), ctx, sale.sale_id, Money((due.fen // 10_000 + 1) * 10_000))
    receipt = render_sale(done, STORE, cashier_name=cashier.display_name)
    console.print(Panel("\n".join(receipt), title=f"小票 {done.receipt_no}", expand=False))


def walkthrough(
    console: Console, uow: NewUow, ctx: services.Context, products: list[Product]
) -> list[str]:
    """Create accounts, sell two baskets, print X, close the shift, print Z; return sample codes."""
    hasher = PasswordHasher()
    for username, name, role, password in DEMO_USERS:
        services.create_user(
            uow(), hasher, ctx, username=username, display_name=name, role=role, password=password
        )
    console.print(
        Panel(
            "\n".join(f"{r.value:<10} {u:<6} 密码 {p}" for u, _, r, p in DEMO_USERS),
            title="示范账号 / demo accounts",
        )
    )
    cashier = services.login(uow(), hasher, ctx, "li", "472913")
    services.open_shift(uow(), ctx, cashier, Money(50_000))
    console.print("[bold]李收银 开班，备用金 ￥500.00[/]")
    baskets, samples = demo_baskets(products)
    for basket in baskets:
        ring_up(console, uow, ctx, cashier, basket)
    names = {cashier.user_id: cashier.display_name}
    x = services.build_x_report(uow(), ctx)
    console.print(Panel("\n".join(render_report(x, STORE.store_name, cashier_names=names))))
    with uow() as u:
        expected = services.current_shift(u, ctx).expected_cash
    closed = services.close_shift(uow(), ctx, expected - Money(50))  # ￥0.50 short
    console.print(f"[bold]交班：应有 {expected}，实点 {closed.counted_cash}[/]")
    z = services.close_day(uow(), ctx)
    console.print(Panel("\n".join(render_report(z, STORE.store_name, cashier_names=names))))
    return samples


def main() -> None:
    """Run the walkthrough; then the interactive console when attached to a terminal."""
    console = Console()
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir()
    url = f"sqlite:///{DEMO_DIR.resolve() / 'shouyin.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    products = demo_products(400)
    with engine.begin() as conn:
        write_products(conn, products)
    console.print(f"[bold green]示范商品 {len(products)} 种已载入[/] ({url})")
    ctx = services.Context(lane_id="L01", promotions=DEMO_PROMOTIONS)
    samples = walkthrough(console, lambda: SqlUnitOfWork(factory), ctx, products)
    engine.dispose()
    console.print(
        f"[bold]下一步 / next:[/] SHOUYIN_DATA_DIR={DEMO_DIR} .venv/bin/shouyin report x"
        "   ·   .venv/bin/shouyin --help"
    )
    if sys.stdin.isatty() and os.environ.get("SHOUYIN_DEMO_NONINTERACTIVE") != "1":
        from shouyin.cli import run_console
        from shouyin.config import Settings

        console.print(
            Panel(
                "现在轮到你：以李收银登录，开新班次。扫码或输入条码，pay 100 收现金，"
                "help 看命令，quit 退出。\n示范条码：" + "  ".join(samples),
                title="收银台 / lane console",
            )
        )
        settings = Settings(data_dir=DEMO_DIR.resolve(), store_name=STORE.store_name)
        run_console(settings, "li", "472913", DEMO_PROMOTIONS)


if __name__ == "__main__":
    main()
