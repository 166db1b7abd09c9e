"""Test cards and the rules-driven card reader used by tests and demos.

The test cards are the acquirer simulator's table (:mod:`shouyin.acquirer.testcards`, shared
by both simulators so that they agree on what each card does). :class:`RulesReader` decides
which card the "customer" presents for a given amount or ``ecr_ref`` pattern, and how they
behave at the PIN pad and the signature pad::

    reader = RulesReader([
        ReaderRule(card="insufficient", amount=5100),
        ReaderRule(card="pin", ecr_ref=r"PIN-.*", pin=PinBehaviour.WRONG),
    ])  # anything else: the "approve" card, inserted
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from shouyin.acquirer.testcards import TEST_CARDS, TestCard, card_by_name, card_by_pan
from shouyin.domain.carddata import luhn_valid
from shouyin.link.values import CardEntry
from shouyin.terminal.ports import CardData, CardPrompt, Cvm, PinEntry, Signature

__all__ = [
    "TEST_CARDS",
    "PinBehaviour",
    "ReaderRule",
    "RulesReader",
    "TestCard",
    "card_by_pan",
    "luhn_valid",
    "read_test_card",
    "rule_from_dict",
    "scribble",
]

logger = logging.getLogger(__name__)

_CARD_NAMES = frozenset(card.name for card in TEST_CARDS)


def read_test_card(name: str, entry: CardEntry = CardEntry.CHIP) -> CardData:
    """The test card ``name`` as the reader sees it.

    Raises:
        KeyError: no such test card.
    """
    card = card_by_name(name)
    return CardData(
        card.pan, card.expiry, entry, Cvm(card.cvm.value), card.scheme, card.service_code
    )


def scribble(seed: str, width: int = 240, height: int = 80) -> Signature:
    """A deterministic "signature": a few strokes derived from ``seed`` (for rules mode)."""
    value = sum((index + 1) * ord(char) for index, char in enumerate(seed)) or 1
    strokes: list[tuple[tuple[int, int], ...]] = []
    for stroke in range(3):
        points = []
        for step in range(12):
            value = (value * 1103515245 + 12345) % (1 << 31)
            x = 10 + stroke * 70 + step * 5
            y = 15 + value % (height - 30)
            points.append((min(x, width - 1), y))
        strokes.append(tuple(points))
    return Signature(tuple(strokes), width, height)


class PinBehaviour(StrEnum):
    """What the customer does at the PIN pad."""

    CORRECT = "correct"
    WRONG = "wrong"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class ReaderRule:
    """One rule of :class:`RulesReader`; the first matching rule wins.

    Attributes:
        card: a test card name (``approve``, ``decline``, ``pin``...).
        amount: match this amount (fen) only.
        ecr_ref: match ``ecr_ref`` against this regular expression (full match) only.
        entry: how the card is read.
        pin: what the customer does at the PIN pad.
        sign: whether the customer signs when asked.
        delay: seconds before the card is presented.
        present: ``False``: no card comes at all.
    """

    card: str = "approve"
    amount: int | None = None
    ecr_ref: str | None = None
    entry: CardEntry = CardEntry.CHIP
    pin: PinBehaviour = PinBehaviour.CORRECT
    sign: bool = True
    delay: float = 0.0
    present: bool = True

    def __post_init__(self) -> None:
        if self.card not in _CARD_NAMES:
            raise ValueError(f"unknown test card {self.card!r}")

    def matches(self, prompt: CardPrompt) -> bool:
        """Whether this rule applies to ``prompt``."""
        if self.amount is not None and self.amount != prompt.amount:
            return False
        return self.ecr_ref is None or re.fullmatch(self.ecr_ref, prompt.ecr_ref) is not None


def rule_from_dict(data: dict[str, object]) -> ReaderRule:
    """A rule from JSON (control channel, ``--rules`` file).

    Raises:
        ValueError: an unknown card, field or value.
        TypeError: a field of the wrong type.
    """
    fields = dict(data)
    if "entry" in fields:
        fields["entry"] = CardEntry(str(fields["entry"]))
    if "pin" in fields:
        fields["pin"] = PinBehaviour(str(fields["pin"]))
    return ReaderRule(**fields)  # type: ignore[arg-type]


@dataclass
class RulesReader:
    """A card reader that follows rules instead of a person (implements ``CardReader``).

    Args:
        rules: checked in order; the first match decides.
        default: used when no rule matches.
        no_card_wait: seconds a rule with ``present=False`` keeps the terminal waiting.
    """

    rules: Sequence[ReaderRule] = ()
    default: ReaderRule = field(default_factory=ReaderRule)
    no_card_wait: float = 30.0

    def replace_rules(self, rules: Iterable[ReaderRule]) -> None:
        """Use ``rules`` from now on (the control channel's ``reader`` command)."""
        self.rules = tuple(rules)

    def rule_for(self, prompt: CardPrompt) -> ReaderRule:
        """The rule that applies to ``prompt``."""
        return next((rule for rule in self.rules if rule.matches(prompt)), self.default)

    async def read_card(self, prompt: CardPrompt) -> CardData | None:
        """Present the rule's card after its delay (or nothing)."""
        rule = self.rule_for(prompt)
        if not rule.present:
            await asyncio.sleep(self.no_card_wait)
            return None
        if rule.delay:
            await asyncio.sleep(rule.delay)
        card = read_test_card(rule.card, rule.entry)
        logger.info("card presented: %s", card)
        return card

    async def enter_pin(self, card: CardData, prompt: CardPrompt) -> PinEntry:
        """Type the right PIN, a wrong one, or cancel, as the rule says."""
        rule = self.rule_for(prompt)
        if rule.pin is PinBehaviour.CANCEL:
            return PinEntry(None)
        test_card = card_by_pan(card.pan)
        right = test_card.pin if test_card is not None else "123456"
        return PinEntry(right if rule.pin is PinBehaviour.CORRECT else "000000")

    async def capture_signature(self, card: CardData, prompt: CardPrompt) -> Signature | None:
        """Sign with a deterministic scribble, or refuse, as the rule says."""
        if not self.rule_for(prompt).sign:
            return None
        return scribble(prompt.ecr_ref)
