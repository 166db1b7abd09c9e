"""``shouyin ports`` (hardware discovery) and the device commands of the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from serial.tools import list_ports_common
from typer.testing import CliRunner

from shouyin.cli import app
from shouyin.devices import ports
from shouyin.devices.printer_sim import VirtualPrinter

runner = CliRunner()


def _port(device: str, vid: int | None, pid: int | None) -> list_ports_common.ListPortInfo:
    info = list_ports_common.ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.description = vid, pid, "USB Serial"
    return info


def test_known_printer_and_adapter_ids_are_named() -> None:
    assert "Xprinter" in (ports.identify(0x0416, 0x5011) or "")
    assert "CH340" in (ports.identify(0x1A86, 0x7523) or "")
    assert "Honeywell" in (ports.identify(0x0C2E, 0x9999) or "")  # by vendor alone
    assert ports.identify(0x1234, 0x5678) is None
    assert ports.identify(None, None) is None


def test_ports_command_lists_vid_pid_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from serial.tools import list_ports

    found = [_port("/dev/ttyUSB0", 0x1A86, 0x7523), _port("/dev/ttyS0", None, None)]
    monkeypatch.setattr(list_ports, "comports", lambda: found)
    result = runner.invoke(app, ["ports"], env={"SHOUYIN_LANGUAGE": "en", "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "1a86:7523" in result.output
    assert "CH340" in result.output
    assert "/dev/ttyS0" in result.output


def test_printer_test_page_and_status_commands_reach_the_printer(
    printer: VirtualPrinter, tmp_path: Path
) -> None:
    url = f"tcp://127.0.0.1:{printer.port}"
    env = {"SHOUYIN_LANGUAGE": "en"}
    result = runner.invoke(app, ["printer", "test", "--url", url], env=env)
    assert result.exit_code == 0, result.output
    [job] = printer.wait_for_jobs(1)
    assert job.lines[0] == "打印测试 TEST"
    printer.set_state(paper="out")
    result = runner.invoke(app, ["printer", "status", "--url", url], env=env)
    assert result.exit_code == 1
    assert "paper_out" in result.output


def test_printer_control_command_changes_the_simulator(printer: VirtualPrinter) -> None:
    assert printer.control_port is not None
    result = runner.invoke(
        app, ["printer", "control", "--port", str(printer.control_port), "cover_open=true"]
    )
    assert result.exit_code == 0, result.output
    assert printer.state.cover_open
