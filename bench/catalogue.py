"""Catalogue at supermarket scale: import of N SKUs, barcode lookup and scan-to-total latency."""

from __future__ import annotations

import argparse
import csv
import random
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Figure, percentile, time_each
from shouyin.domain.barcodes import Nomenclature
from shouyin.domain.catalogue import lookup
from shouyin.domain.demo_catalogue import synthetic_products
from shouyin.domain.money import Money
from shouyin.domain.promotions import MultiBuy, Threshold
from shouyin.domain.sale import Sale
from shouyin.store.catalog_import import import_catalogue
from shouyin.store.catalogue_repo import SqlCatalogue
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade

SECTION = "catalogue"
LOOKUPS = 20_000
CART_SIZE = 30  # a big basket; the cart starts over after this many lines
# Promotions in force make pricing do real work on every scan.
BENCH_PROMOTIONS = (
    MultiBuy("第二件半价", every=2, off_bp=5000),
    Threshold("满100减20", threshold=Money(10_000), off=Money(2_000)),
)


def write_catalogue_csv(path: Path, count: int) -> list[str]:
    """Write ``count`` synthetic products as an import CSV; return every barcode written."""
    barcodes: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "name", "price", "barcodes", "category", "tax_rate", "mnemonic"])
        for p in synthetic_products(count):
            writer.writerow(
                [
                    p.sku,
                    p.name,
                    p.price.plain(),
                    "|".join(p.barcodes),
                    p.category,
                    "13",
                    p.mnemonic,
                ]
            )
            barcodes.extend(p.barcodes)
    return barcodes


def run(workdir: Path, args: argparse.Namespace) -> list[Figure]:
    """Import ``args.skus`` products, then time lookups and scans against them."""
    count: int = args.skus
    csv_path = workdir / "catalogue.csv"
    barcodes = write_catalogue_csv(csv_path, count)
    engine = make_engine(f"sqlite:///{workdir / 'bench.db'}")
    upgrade(engine)

    start = time.perf_counter()
    report = import_catalogue(engine, csv_path)
    import_s = time.perf_counter() - start
    if report.imported != count:
        raise RuntimeError(f"import kept {report.imported} of {count}: {report.errors[:3]}")

    catalogue = SqlCatalogue(engine)
    rng = random.Random(7)
    sample = [rng.choice(barcodes) for _ in range(LOOKUPS)]
    codes = iter(sample)
    lookup_s = time_each(lambda: catalogue.by_barcode(next(codes)), LOOKUPS)

    nomenclature = Nomenclature.default()
    codes = iter(sample)
    now = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)

    def new_sale() -> Sale:
        return Sale.open(
            sale_id="bench",
            receipt_no="L01-000001",
            lane_id="L01",
            shift_id="bench",
            cashier_id="bench",
            now=now,
            promotions=BENCH_PROMOTIONS,
        )

    sale = new_sale()

    def scan() -> Money:
        nonlocal sale
        if len(sale.lines) >= CART_SIZE:
            sale = new_sale()
        found = lookup(next(codes), catalogue, nomenclature)
        sale.add_product(found.product)
        return sale.total_due

    scan_s = time_each(scan, LOOKUPS)
    engine.dispose()
    ms = 1000.0
    return [
        Figure(SECTION, f"import {count:,} SKUs", import_s, "s", "< 30 s", import_s < 30),
        Figure(SECTION, "import rate", count / import_s, "SKU/s"),
        Figure(SECTION, "barcode lookup p50", percentile(lookup_s, 50) * ms, "ms"),
        Figure(SECTION, "barcode lookup p99", percentile(lookup_s, 99) * ms, "ms"),
        Figure(SECTION, "scan-to-total p50", percentile(scan_s, 50) * ms, "ms"),
        Figure(
            SECTION,
            "scan-to-total p99",
            percentile(scan_s, 99) * ms,
            "ms",
            "< 1 ms",
            percentile(scan_s, 99) * ms < 1.0,
        ),
    ]
