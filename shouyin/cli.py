"""The ``shouyin`` command line (Typer + Rich).

Library code raises typed errors; :func:`main` is the one place that turns them into a message
and an exit code. Long work shows a Rich progress bar.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from shouyin.config import Settings
from shouyin.domain.errors import DomainError
from shouyin.i18n import t

app = typer.Typer(help="shouyin 收银: supermarket checkout and payment terminals", no_args_is_help=True)
catalog_app = typer.Typer(help="Catalogue: import and demo data", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

console = Console()
err_console = Console(stderr=True)

EXIT_USER_ERROR = 1
EXIT_INTERNAL = 2


def _settings() -> Settings:
    return Settings()


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    from shouyin.store.engine import make_engine
    from shouyin.store.migrate import upgrade

    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    return engine


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
    )


@catalog_app.command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(help="CSV file with a header row", exists=False)],
    show_errors: Annotated[int, typer.Option(help="how many rejected rows to list")] = 50,
) -> None:
    """Import products from CSV; bad rows are reported with line numbers, good rows kept."""
    from shouyin.store.catalog_import import count_data_lines, import_catalogue

    settings = _settings()
    engine = _engine(settings)
    total = count_data_lines(file) if file.exists() else 0
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task(t("import.progress"), total=total or None)
        report = import_catalogue(
            engine, file, on_progress=lambda rows: progress.update(task, completed=rows)
        )
    for error in report.errors[:show_errors]:
        err_console.print(t("import.row_error", line=error.line, message=error.message))
    if report.rejected > show_errors:
        err_console.print(t("import.more_errors", count=report.rejected - show_errors))
    console.print(t("import.summary", imported=report.imported, rejected=report.rejected))
    if report.imported == 0 and report.rejected:
        raise typer.Exit(EXIT_USER_ERROR)


def main() -> None:
    """Entry point: run the app, turning typed errors into a message and an exit code."""
    try:
        app(standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        err_console.print("已取消 / Aborted")
        sys.exit(130)
    except DomainError as error:
        err_console.print(t("error", message=error))
        sys.exit(EXIT_USER_ERROR)
    except Exception as error:  # the click usage errors carry their own exit codes
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        raise


if __name__ == "__main__":
    main()
