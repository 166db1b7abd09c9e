"""The demo store as :func:`shouyin.demo_store.create_store` leaves it, without any process:
the printed passwords sign in, the terminals are registered on their lanes, the reader rules
are ones the terminal simulator accepts, and the sample barcodes scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from shouyin.config import Settings
from shouyin.demo import parse_args
from shouyin.demo_store import (
    CARD_AMOUNTS,
    DEMO_USERS,
    READER_RULES,
    TERMINALS,
    create_store,
    sample_codes,
)
from shouyin.domain.demo_catalogue import demo_products
from shouyin.domain.errors import AuthError
from shouyin.domain.money import Money
from shouyin.domain.users import PasswordHasher
from shouyin.fleet.registry import TerminalState, list_terminals
from shouyin.lane import services
from shouyin.link.keystore import KeyStore
from shouyin.store.engine import make_engine
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import SqlUnitOfWork, make_session_factory
from shouyin.terminal.cards import PinBehaviour, rule_from_dict

SERIAL = "serial:///dev/pts/99?baud=115200"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("store"), database_url=None)
    create_store(settings, SERIAL, settings.data_dir / "rules.json")
    return settings


def test_every_printed_password_signs_in_with_its_role(store: Settings) -> None:
    engine = make_engine(store.resolved_database_url())
    ctx = services.Context(lane_id="L01")
    try:
        for user in DEMO_USERS:
            uow = SqlUnitOfWork(make_session_factory(engine))
            signed_in = services.login(uow, PasswordHasher(), ctx, user.username, user.password)
            assert signed_in.role is user.role
        with pytest.raises(AuthError):
            uow = SqlUnitOfWork(make_session_factory(engine))
            services.login(uow, PasswordHasher(), ctx, "li", "000000")
    finally:
        engine.dispose()


def test_both_terminals_are_registered_on_their_own_lane_and_wait_for_pairing(
    store: Settings,
) -> None:
    uow = SqlTerminalUnitOfWork.open(store.resolved_database_url())
    try:
        terminals = {t.terminal_id: t for t in list_terminals(uow)}
    finally:
        uow.dispose()
    assert set(terminals) == {spec.terminal_id for spec in TERMINALS}
    for spec in TERMINALS:
        terminal = terminals[spec.terminal_id]
        assert terminal.lane_id == spec.lane_id
        assert terminal.state is TerminalState.REGISTERED
        assert terminal.link_url == (SERIAL if spec.transport == "serial" else None)
    assert len({spec.lane_id for spec in TERMINALS}) == len(TERMINALS)  # one per lane
    assert KeyStore(store.keys_dir).is_initialised()


def test_the_reader_rules_are_valid_and_decline_only_their_amounts(store: Settings) -> None:
    rules = [rule_from_dict(dict(rule)) for rule in READER_RULES]
    by_amount = {rule.amount: rule for rule in rules}
    assert set(by_amount) == set(CARD_AMOUNTS.values())
    assert by_amount[CARD_AMOUNTS["decline"]].card == "decline"
    assert by_amount[CARD_AMOUNTS["wrong_pin"]].pin is PinBehaviour.WRONG
    assert (store.data_dir / "rules.json").read_text().startswith("[{")


def test_the_sample_barcodes_scan_into_a_sale(store: Settings) -> None:
    engine = make_engine(store.resolved_database_url())
    ctx = services.Context(lane_id="L01")
    try:
        factory = make_session_factory(engine)
        cashier = services.login(SqlUnitOfWork(factory), PasswordHasher(), ctx, "li", "472913")
        services.open_shift(SqlUnitOfWork(factory), ctx, cashier, Money(0))
        sale = services.start_sale(SqlUnitOfWork(factory), ctx, cashier)
        for code in sample_codes(demo_products(400)):
            services.scan(SqlUnitOfWork(factory), ctx, sale.sale_id, code)
    finally:
        engine.dispose()


def test_check_mode_comes_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHOUYIN_DEMO_NONINTERACTIVE", raising=False)
    assert not parse_args([]).check
    assert parse_args(["--check"]).check
    monkeypatch.setenv("SHOUYIN_DEMO_NONINTERACTIVE", "1")
    options = parse_args(["--dir", "x", "--language", "en"])
    assert options.check
    assert options.directory == Path("x")
    assert options.language == "en"
