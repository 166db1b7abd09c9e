"""Reconnection back-off: exponential, capped, jittered from an injected source."""

from __future__ import annotations

import itertools
import random

import pytest

from shouyin.link import Backoff


def test_delays_double_up_to_the_cap_without_jitter() -> None:
    delays = Backoff(initial=0.5, factor=2, maximum=8, jitter=0).delays(lambda: 0.0)
    assert list(itertools.islice(delays, 7)) == [0.5, 1, 2, 4, 8, 8, 8]


def test_jitter_scales_each_delay_within_its_band() -> None:
    policy = Backoff(initial=1, factor=2, maximum=30, jitter=0.5)
    assert policy.delay(3, lambda: 0.0) == 4.0
    assert policy.delay(3, lambda: 0.999) == pytest.approx(7.996)


def test_injected_random_source_makes_the_sequence_reproducible() -> None:
    policy = Backoff()
    first = list(itertools.islice(policy.delays(random.Random(7).random), 10))
    again = list(itertools.islice(policy.delays(random.Random(7).random), 10))
    other = list(itertools.islice(policy.delays(random.Random(8).random), 10))
    assert first == again != other
    assert all(0 < d <= policy.maximum for d in first)


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert Backoff(jitter=0).delay(10_000, lambda: 0.5) == 30.0


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": 0}, {"factor": 0.5}, {"maximum": 0.1}, {"jitter": 1.5}, {"jitter": -0.1}],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)
