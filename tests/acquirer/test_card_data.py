"""Card-data canary: full card numbers, track 2 and PINs pushed through the acquirer never show
up in its logs, its errors or its ledger file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shouyin.acquirer import (
    AcquirerClient,
    EntryMode,
    IsoFormatError,
    PanScrubber,
    card_by_name,
    derive_tmk,
    scrub,
)
from shouyin.acquirer.messages import CardSaleRequest
from shouyin.acquirer.pan import get_logger

from . import MID, TID, make_server, run_async

PAN = card_by_name("approve").pan  # 6228480000000000018
VISA = card_by_name("visa")
TRACK2 = VISA.track2()
LOOKALIKE = "6228480000000000019"  # fails the Luhn check: not a card number


def test_scrub_masks_luhn_valid_numbers_and_track_2() -> None:
    text = f"pan={PAN} t2 {TRACK2} x{VISA.pan}y"
    cleaned = scrub(text)
    assert PAN not in cleaned
    assert VISA.pan not in cleaned
    assert TRACK2 not in cleaned
    assert "622848*********0018" in cleaned
    assert "411111******1111=****" in cleaned


def test_scrub_leaves_other_numbers_alone() -> None:
    text = f"rrn 251129000001 order 420020251129000000000001 other {LOOKALIKE}"
    assert scrub(text) == text


def test_the_filter_rewrites_message_arguments_and_exceptions() -> None:
    record = logging.LogRecord(
        "shouyin.acquirer.x", logging.ERROR, __file__, 1, "card %s", (PAN,), None
    )
    try:
        raise ValueError(f"bad card {PAN}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert PanScrubber().filter(record)
    assert record.getMessage() == "card 622848*********0018"
    assert record.exc_text is not None
    assert PAN not in record.exc_text


def test_every_module_logger_carries_the_scrubber_once() -> None:
    logger = get_logger("shouyin.acquirer.test_canary")
    get_logger("shouyin.acquirer.test_canary")
    assert sum(isinstance(item, PanScrubber) for item in logger.filters) == 1
    for name in ("host", "financial", "aftercare", "server", "client", "session", "ledger"):
        module_logger = logging.getLogger(f"shouyin.acquirer.{name}")
        assert any(isinstance(item, PanScrubber) for item in module_logger.filters), name


def test_a_bad_card_field_error_does_not_echo_the_value() -> None:
    fields = {
        **CardSaleRequest(
            pan=PAN, amount=1, trace=1, local_time="103000", local_date="1129",
            entry_mode="051", terminal_id=TID, merchant_id=MID, batch=1,
        ).to_fields(),
        "35": TRACK2 + "X",
    }  # fmt: skip
    with pytest.raises(IsoFormatError) as caught:
        CardSaleRequest.from_fields(fields)
    assert VISA.pan not in str(caught.value)
    assert TRACK2[len(VISA.pan) :] not in str(caught.value)


def test_card_data_through_the_whole_simulator_leaves_no_trace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="shouyin.acquirer")

    async def scenario() -> None:
        async with make_server(state=tmp_path) as server:
            terminal = AcquirerClient(
                "127.0.0.1", server.port, TID, MID, derive_tmk(TID), timeout=0.5
            )
            await terminal.sign_in(trace=1, batch=1)
            await terminal.sale(trace=2, batch=1, amount=100, pan=PAN, expiry="3012")
            await terminal.sale(
                trace=3, batch=1, amount=200, entry=EntryMode.SWIPE, track2=TRACK2,
                pin_block=terminal.pin_block("123456", VISA.pan),
            )  # fmt: skip
            pin_card = card_by_name("pin")
            await terminal.sale(
                trace=4, batch=1, amount=300, pan=pin_card.pan,
                pin_block=terminal.pin_block("999999", pin_card.pan),
            )  # fmt: skip
            logging.getLogger("shouyin.acquirer.host").warning("operator typed %s", PAN)
            get_logger("shouyin.acquirer.host").warning(f"track {TRACK2}")
            await terminal.close()
        server.host.ledger.close()

    run_async(scenario)
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir() if path.is_file())
    for secret in (PAN, VISA.pan, card_by_name("pin").pan, TRACK2, "999999", "123456"):
        assert secret not in logged
        assert secret.encode() not in stored
    assert "622848*********0018" in logged
    assert b"622848*********0018" in stored
