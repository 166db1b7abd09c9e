"""Run the benchmarks and print one table: ``python -m bench [--skus N] [--only SECTION]``."""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import catalogue, durable, link, payments, reconcile, web
from bench.common import Figure

SECTIONS: dict[str, Callable[[Path, argparse.Namespace], list[Figure]]] = {
    "catalogue": catalogue.run,
    "durable": durable.run,
    "link": link.run,
    "payments": payments.run,
    "reconcile": reconcile.run,
    "web": web.run,
}


def main() -> None:
    """Parse arguments, run the chosen sections in a scratch directory, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skus", type=int, default=1_000_000, help="catalogue size")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--workdir", type=Path, help="keep files here instead of a temp dir")
    parser.add_argument("--link-round-trips", type=int, default=3000, help="TLS round trips")
    parser.add_argument("--payments", type=int, default=1000, help="card payments to time")
    parser.add_argument(
        "--reconcile-transactions", type=int, default=1_000_000, help="reconciliation size"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="shouyin-bench-") as scratch:
        base = args.workdir or Path(scratch)
        for name in args.only or list(SECTIONS):
            console.print(f"[bold]running {name}…[/bold]")
            section_dir = base / name
            section_dir.mkdir(parents=True, exist_ok=True)
            figures.extend(SECTIONS[name](section_dir, args))
    table = Table(title="shouyin benchmarks")
    for column in ("section", "metric", "value", "unit", "target", "ok"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for f in figures:
        verdict = "" if f.ok is None else ("[green]yes[/green]" if f.ok else "[red]NO[/red]")
        table.add_row(f.section, f.metric, f"{f.value:,.3f}", f.unit, f.target, verdict)
    console.print(table)


if __name__ == "__main__":
    main()
