"""The ``shouyin`` command line, run in-process against a temporary data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shouyin.cli import app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHOUYIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SHOUYIN_DATABASE_URL", raising=False)
    monkeypatch.setenv("SHOUYIN_LANGUAGE", "en")
    return tmp_path


def test_init_creates_the_database_and_an_admin_once(env: Path) -> None:
    first = runner.invoke(app, ["init", "--password", "correct-horse-1"])
    assert first.exit_code == 0, first.output
    assert "Admin account admin created" in first.output
    assert (env / "data" / "shouyin.db").exists()
    again = runner.invoke(app, ["init", "--password", "another-pass-2"])
    assert again.exit_code == 0
    assert "already exists" in again.output


def test_users_add_refuses_a_weak_admin_password(env: Path) -> None:
    result = runner.invoke(app, ["users", "add", "boss", "--role", "admin", "--password", "123"])
    assert result.exit_code != 0
    listed = runner.invoke(app, ["users", "list"])
    assert "boss" not in listed.output


def test_users_add_and_list(env: Path) -> None:
    result = runner.invoke(
        app, ["users", "add", "li", "--role", "cashier", "--name", "李收银", "--password", "472913"]
    )
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["users", "list"])
    assert "李收银" in listed.output
    assert "cashier" in listed.output


def test_catalog_import_reports_bad_rows_by_line_and_keeps_good_ones(env: Path) -> None:
    csv_path = env / "goods.csv"
    csv_path.write_text(
        "sku,name,price,barcodes\nA1,可乐,3.50,6901234567892\nA2,坏,abc,\nA3,雪碧,3.00,\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["catalog", "import", str(csv_path)])
    assert result.exit_code == 0, result.output
    assert "line 3" in result.output
    assert "2 rows imported, 1 rejected" in result.output


def test_catalog_import_of_a_missing_file_is_a_clear_error(env: Path) -> None:
    result = runner.invoke(app, ["catalog", "import", str(env / "nope.csv")])
    assert result.exit_code != 0
    assert "cannot open" in str(result.exception) + result.output


def test_catalog_demo_loads_products(env: Path) -> None:
    result = runner.invoke(app, ["catalog", "demo", "--count", "50"])
    assert result.exit_code == 0, result.output
    assert "Loaded 50 demo products" in result.output


def test_report_x_on_an_empty_day_prints_zero_totals(env: Path) -> None:
    result = runner.invoke(app, ["report", "x"])
    assert result.exit_code == 0, result.output
    assert "中间报表" in result.output


def test_entry_point_turns_typed_errors_into_a_message_and_exit_code(env: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "shouyin.cli", "catalog", "import", str(env / "nope.csv")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Error: cannot open" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["users", "unlock"], 2),  # a usage error: missing argument
        (["--no-such-option"], 2),
        (["users", "unlock", "nobody-here"], 1),  # a command that exits 1 itself
    ],
)
def test_entry_point_exits_with_the_commands_code(env: Path, args: list[str], code: int) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "shouyin.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr


def test_init_creates_the_store_ca_once(env: Path) -> None:
    first = runner.invoke(app, ["init", "--password", "correct-horse-1"])
    assert "Store CA ready" in first.output
    ca = (env / "data" / "keys").iterdir()
    before = {p.name: p.read_bytes() for p in ca if p.is_file()}
    runner.invoke(app, ["init", "--password", "correct-horse-1"])
    after = {p.name: p.read_bytes() for p in (env / "data" / "keys").iterdir() if p.is_file()}
    assert before == after  # re-running init never replaces the CA (that would unpair terminals)


def test_firewall_prints_rules_for_the_configured_ports(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOUYIN_ALLOWED_NETWORKS", '["192.168.10.0/24"]')
    result = runner.invoke(app, ["firewall", "--format", "nftables"])
    assert result.exit_code == 0, result.output
    assert "192.168.10.0/24" in result.output
    assert "8583" in result.output
