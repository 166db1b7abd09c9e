"""The audit chain: hashing, and verification that finds each kind of tampering and says where."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shouyin.domain.audit import (
    GENESIS_HASH,
    AuditAction,
    AuditEntry,
    AuditEvent,
    AuditOutcome,
    Checkpoint,
    InvalidAuditEvent,
    ProblemKind,
    canonical_event,
    chain_entry,
    hash_entry,
    verify_chain,
)

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
PAN = "6222021234567890128"  # Luhn-valid test card number


def event(n: int, action: str = AuditAction.SALE_COMPLETED) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome=AuditOutcome.SUCCESS,
        actor=f"cashier{n % 3}",
        source="lane:L01",
        target=f"sale:{n:04d}",
        at=T0 + timedelta(seconds=n),
        details={"total_fen": 100 * n},
    )


def build(count: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    seq, head = 0, GENESIS_HASH
    for n in range(1, count + 1):
        entry = chain_entry(seq, head, event(n))
        entries.append(entry)
        seq, head = entry.seq, entry.entry_hash
    return entries


def kinds(entries: list[AuditEntry], checkpoint: Checkpoint | None = None) -> list[tuple[int, str]]:
    return [(p.seq, p.kind.value) for p in verify_chain(entries, checkpoint).problems]


def test_canonical_encoding_is_sorted_compact_utf8_json() -> None:
    e = AuditEvent(
        "user.login", AuditOutcome.FAILURE, "张三", "lane:L01", "user:张三", T0, {"b": 1}
    )
    assert (
        canonical_event(e)
        == (
            '{"action":"user.login","actor":"张三","at":"2026-11-29T08:00:00.000000Z",'
            '"details":{"b":1},"outcome":"failure","source":"lane:L01","target":"user:张三"}'
        ).encode()
    )


def test_each_entry_hashes_its_predecessor_and_its_content() -> None:
    first, second = build(2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.entry_hash
    assert second.entry_hash == hash_entry(first.entry_hash, second.event)
    assert len(second.entry_hash) == 64


def test_card_data_in_free_text_is_masked_before_hashing() -> None:
    e = AuditEvent(
        "sale.voided",
        AuditOutcome.SUCCESS,
        actor="sup",
        source="lane:L01",
        target=f"sale:{PAN}",
        at=T0,
        details={"reason": f"customer card {PAN}=25121010000"},
    )
    encoded = canonical_event(e).decode()
    assert PAN not in encoded
    assert "2512101" not in encoded
    assert encoded.count("622202*********0128") == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"action": "Sale Completed"},
        {"at": datetime(2026, 1, 1)},  # naive on purpose
        {"details": {"Bad Key": 1}},
        {"details": {"amount": 1.5}},
    ],
)
def test_malformed_events_are_refused(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "action": "sale.completed",
        "outcome": AuditOutcome.SUCCESS,
        "actor": "a",
        "source": "s",
        "target": "t",
        "at": T0,
    }
    fields.update(bad)
    with pytest.raises(InvalidAuditEvent):
        AuditEvent(**fields)  # type: ignore[arg-type]


def test_an_intact_chain_verifies() -> None:
    entries = build(50)
    report = verify_chain(entries, Checkpoint(50, entries[-1].entry_hash, T0))
    assert report.ok
    assert (report.entries, report.head_seq) == (50, 50)


def test_an_empty_log_verifies() -> None:
    assert verify_chain([]).ok


def test_an_edited_entry_is_found_at_its_number() -> None:
    entries = build(10)
    e = entries[4]
    forged = dataclasses.replace(e.event, details={"total_fen": 1})
    entries[4] = dataclasses.replace(e, event=forged)
    assert kinds(entries) == [(5, "edited")]


def test_a_deleted_entry_is_found_where_the_gap_is() -> None:
    entries = build(10)
    del entries[6]
    report = verify_chain(entries)
    assert [(p.seq, p.kind) for p in report.problems] == [(8, ProblemKind.DELETED)]
    assert "entry 7 missing" in report.problems[0].detail


def test_a_deleted_entry_with_renumbering_breaks_the_link_there() -> None:
    entries = build(10)
    del entries[6]
    entries[6:] = [dataclasses.replace(e, seq=e.seq - 1) for e in entries[6:]]
    assert kinds(entries) == [(7, "broken_link")]


def test_swapped_entries_are_reported_as_reordered() -> None:
    entries = build(10)
    a, b = entries[2], entries[3]
    entries[2], entries[3] = dataclasses.replace(b, seq=3), dataclasses.replace(a, seq=4)
    found = kinds(entries)
    assert {kind for _, kind in found} == {"reordered"}
    assert found[0][0] == 3


def test_an_inserted_entry_is_named() -> None:
    entries = build(10)
    forged = chain_entry(4, entries[3].entry_hash, event(99))  # a well-formed forgery
    entries = entries[:4] + [forged] + [dataclasses.replace(e, seq=e.seq + 1) for e in entries[4:]]
    assert kinds(entries) == [(5, "inserted")]


def test_a_cut_off_tail_is_found_by_the_checkpoint() -> None:
    entries = build(10)
    checkpoint = Checkpoint(10, entries[-1].entry_hash, T0)
    report = verify_chain(entries[:7], checkpoint)
    assert [(p.seq, p.kind) for p in report.problems] == [(8, ProblemKind.TRUNCATED)]
    assert "8..10" in report.problems[0].detail


def test_without_a_checkpoint_a_cut_off_tail_goes_unseen() -> None:
    # Why the checkpoint exists: a bare chain's prefix is itself a valid chain.
    assert verify_chain(build(10)[:7]).ok


def test_rewriting_history_and_rehashing_is_found_by_the_checkpoint() -> None:
    entries = build(10)
    checkpoint = Checkpoint(10, entries[-1].entry_hash, T0)
    rebuilt: list[AuditEntry] = []
    seq, head = 0, GENESIS_HASH
    for e in entries:
        ev = dataclasses.replace(e.event, actor="mallory") if e.seq == 3 else e.event
        new = chain_entry(seq, head, ev)
        rebuilt.append(new)
        seq, head = new.seq, new.entry_hash
    assert verify_chain(rebuilt).ok  # the chain alone cannot tell
    assert kinds(rebuilt, checkpoint) == [(10, "checkpoint_mismatch")]


def test_entries_appended_after_the_checkpoint_are_fine() -> None:
    entries = build(10)
    assert verify_chain(entries, Checkpoint(6, entries[5].entry_hash, T0)).ok


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(min_value=3, max_value=40),
    data=st.data(),
    attack=st.sampled_from(["edit", "delete", "swap"]),
)
def test_any_single_edit_delete_or_swap_is_detected(
    count: int, data: st.DataObject, attack: str
) -> None:
    entries = build(count)
    checkpoint = Checkpoint(count, entries[-1].entry_hash, T0)
    i = data.draw(st.integers(min_value=0, max_value=count - 2))
    if attack == "edit":
        e = entries[i]
        entries[i] = dataclasses.replace(e, event=dataclasses.replace(e.event, actor="x"))
        expected = i + 1
    elif attack == "delete":
        del entries[i]
        expected = i + 2
    else:
        a, b = entries[i], entries[i + 1]
        entries[i], entries[i + 1] = (
            dataclasses.replace(b, seq=a.seq),
            dataclasses.replace(a, seq=b.seq),
        )
        expected = i + 1
    report = verify_chain(entries, checkpoint)
    assert not report.ok
    assert report.problems[0].seq == expected
