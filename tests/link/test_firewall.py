"""The link firewall: allowlist, rate limit, lockout, identities, and the host rules it prints."""

from __future__ import annotations

import ipaddress
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shouyin.link.firewall import (
    Decision,
    FailureKind,
    Firewall,
    FirewallPolicy,
    RefusalReason,
    render_iptables,
    render_nftables,
)

LAN = FirewallPolicy(
    allowed_networks=[  # pydantic parses the strings
        "127.0.0.0/8",
        "::1/128",
        "192.168.1.0/24",
        "fd00:1::/48",
    ],
    max_attempts=3,
    attempt_window=60.0,
    max_failures=3,
    failure_window=600.0,
    lockout_duration=900.0,
    max_lockout_duration=3600.0,
)
T0 = 1_000.0


def firewall(policy: FirewallPolicy = LAN) -> Firewall:
    return Firewall(policy)


# -- allowlist ---------------------------------------------------------------------------------


def test_default_policy_admits_only_loopback() -> None:
    fw = Firewall(FirewallPolicy())
    assert fw.check_connection("127.0.0.1", T0).allowed
    assert fw.check_connection("::1", T0).allowed
    refused = fw.check_connection("192.168.1.20", T0)
    assert refused == Decision(False, RefusalReason.NOT_IN_ALLOWLIST)


def test_default_policy_listens_on_loopback_only() -> None:
    policy = FirewallPolicy()
    assert policy.link_endpoints() == (("127.0.0.1", 8583), ("::1", 8583))
    assert policy.ports == (8080, 8583)


def test_lan_sources_in_the_allowlist_are_admitted() -> None:
    fw = firewall()
    assert fw.check_connection("192.168.1.20", T0).allowed
    assert fw.check_connection(ipaddress.ip_address("fd00:1:0:5::9"), T0).allowed
    assert not fw.check_connection("192.168.2.20", T0).allowed
    assert not fw.check_connection("fd00:2::1", T0).allowed


def test_ipv4_mapped_ipv6_sources_are_judged_as_ipv4() -> None:
    fw = firewall()
    assert fw.check_connection("::ffff:192.168.1.20", T0).allowed
    assert fw.check_connection("::ffff:8.8.8.8", T0).reason is RefusalReason.NOT_IN_ALLOWLIST


def test_ipv6_zone_ids_are_ignored_for_matching() -> None:
    policy = LAN.model_copy(update={"allowed_networks": (ipaddress.ip_network("fe80::/10"),)})
    assert Firewall(policy).check_connection("fe80::1%eth0", T0).allowed


@pytest.mark.parametrize("source", ["", "not an address", "999.1.1.1", "1.2.3.4/24"])
def test_invalid_sources_are_refused(source: str) -> None:
    assert firewall().check_connection(source, T0).reason is RefusalReason.INVALID_SOURCE


def test_sources_outside_the_allowlist_are_not_tracked() -> None:
    fw = firewall()
    for i in range(100):
        fw.check_connection(f"8.8.{i}.1", T0)
        fw.record_failure(f"8.8.{i}.1", FailureKind.BAD_FRAME, T0)
    assert fw.tracked_sources == 0


# -- rate limit --------------------------------------------------------------------------------


def test_a_burst_beyond_max_attempts_is_rate_limited() -> None:
    fw = firewall()
    assert all(fw.check_connection("192.168.1.20", T0).allowed for _ in range(3))
    refused = fw.check_connection("192.168.1.20", T0)
    assert refused.reason is RefusalReason.RATE_LIMITED
    assert refused.retry_after == pytest.approx(20.0)


def test_the_rate_limit_refills_over_time() -> None:
    fw = firewall()
    for _ in range(3):
        fw.check_connection("192.168.1.20", T0)
    assert not fw.check_connection("192.168.1.20", T0 + 19.9).allowed
    assert fw.check_connection("192.168.1.20", T0 + 20.0).allowed


def test_rate_limits_are_per_source() -> None:
    fw = firewall()
    for _ in range(3):
        fw.check_connection("192.168.1.20", T0)
    assert fw.check_connection("192.168.1.21", T0).allowed


def test_a_clock_going_backwards_grants_nothing() -> None:
    fw = firewall()
    for _ in range(3):
        fw.check_connection("192.168.1.20", T0)
    assert not fw.check_connection("192.168.1.20", T0 - 500).allowed


def test_ipv6_sources_share_a_budget_per_64() -> None:
    fw = firewall()
    for host in range(3):
        assert fw.check_connection(f"fd00:1:0:5::{host + 1}", T0).allowed
    assert not fw.check_connection("fd00:1:0:5::ffff", T0).allowed
    assert fw.check_connection("fd00:1:0:6::1", T0).allowed


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 600, allow_nan=False), min_size=1, max_size=80))
def test_no_window_ever_admits_more_than_burst_plus_refill(offsets: list[float]) -> None:
    fw = firewall()
    times = sorted(T0 + offset for offset in offsets)
    admitted = [t for t in times if fw.check_connection("192.168.1.20", t).allowed]
    for start in admitted:
        in_window = [t for t in admitted if start <= t < start + LAN.attempt_window]
        assert len(in_window) <= 2 * LAN.max_attempts


# -- failures and lockout ----------------------------------------------------------------------


def test_max_failures_lock_the_source_out() -> None:
    fw = firewall()
    assert fw.record_failure("192.168.1.20", FailureKind.AUTHENTICATION, T0).allowed
    assert fw.record_failure("192.168.1.20", FailureKind.BAD_FRAME, T0 + 1).allowed
    locked = fw.record_failure("192.168.1.20", FailureKind.PAIRING_CODE, T0 + 2)
    assert locked == Decision(False, RefusalReason.LOCKED_OUT, 900.0)
    refused = fw.check_connection("192.168.1.20", T0 + 3)
    assert refused.reason is RefusalReason.LOCKED_OUT
    assert refused.retry_after == pytest.approx(899.0)
    assert fw.check_connection("192.168.1.21", T0 + 3).allowed


def test_a_lockout_ends_after_its_duration() -> None:
    fw = firewall()
    for i in range(3):
        fw.record_failure("192.168.1.20", FailureKind.PAIRING_CODE, T0 + i)
    assert not fw.check_connection("192.168.1.20", T0 + 2 + 899.9).allowed
    assert fw.check_connection("192.168.1.20", T0 + 2 + 900).allowed


def test_failures_spread_beyond_the_window_do_not_lock() -> None:
    fw = firewall()
    for i in range(10):
        decision = fw.record_failure("192.168.1.20", FailureKind.BAD_FRAME, T0 + i * 301)
        assert decision.allowed


def test_repeated_lockouts_double_up_to_the_maximum() -> None:
    fw = firewall()
    now = T0
    durations = []
    for _ in range(4):
        decision = Decision(True)
        while decision.allowed:
            decision = fw.record_failure("192.168.1.20", FailureKind.PAIRING_CODE, now)
        assert decision.retry_after is not None
        durations.append(decision.retry_after)
        now += decision.retry_after
    assert durations == [900.0, 1800.0, 3600.0, 3600.0]


def test_failures_while_locked_out_do_not_extend_or_count() -> None:
    fw = firewall()
    for i in range(3):
        fw.record_failure("192.168.1.20", FailureKind.PAIRING_CODE, T0 + i)
    again = fw.record_failure("192.168.1.20", FailureKind.PAIRING_CODE, T0 + 10)
    assert again.reason is RefusalReason.LOCKED_OUT
    assert fw.check_connection("192.168.1.20", T0 + 2 + 900).allowed


def test_success_forgets_failures_and_escalation() -> None:
    fw = firewall()
    fw.record_failure("192.168.1.20", FailureKind.AUTHENTICATION, T0)
    fw.record_failure("192.168.1.20", FailureKind.AUTHENTICATION, T0 + 1)
    fw.record_success("192.168.1.20", T0 + 2)
    assert fw.record_failure("192.168.1.20", FailureKind.AUTHENTICATION, T0 + 3).allowed
    assert fw.record_failure("192.168.1.20", FailureKind.AUTHENTICATION, T0 + 4).allowed


def test_success_does_not_lift_an_active_lockout() -> None:
    fw = firewall()
    for i in range(3):
        fw.record_failure("192.168.1.20", FailureKind.AUTHENTICATION, T0 + i)
    fw.record_success("192.168.1.20", T0 + 5)
    assert fw.check_connection("192.168.1.20", T0 + 6).reason is RefusalReason.LOCKED_OUT


def test_one_source_gets_at_most_max_failures_pairing_guesses_per_lockout() -> None:
    """The firewall's share of "brute force is hopeless": guesses are throttled per source."""
    policy = FirewallPolicy(allowed_networks=[ipaddress.ip_network("192.168.1.0/24")])
    fw = Firewall(policy)
    now, guesses = T0, 0
    day_end = T0 + 86_400
    while now < day_end:
        if fw.check_connection("192.168.1.66", now).allowed:
            guesses += 1
            fw.record_failure("192.168.1.66", FailureKind.PAIRING_CODE, now)
        now += 5.0
    # 15 min + 30 min + 1 h + 2 h + 4 h + 8 h + 16 h > 24 h: 7 lockouts of 5 guesses each.
    assert guesses <= 7 * policy.max_failures


# -- bounded memory ------------------------------------------------------------------------------


def test_tracked_sources_are_bounded_and_the_oldest_is_evicted() -> None:
    policy = LAN.model_copy(update={"max_tracked_sources": 3})
    fw = Firewall(policy)
    for i in range(3):
        fw.record_failure("192.168.1.9", FailureKind.BAD_FRAME, T0 + i)  # 9 becomes locked out
    fw.check_connection("192.168.1.10", T0 + 5)
    fw.check_connection("192.168.1.9", T0 + 6)  # refused, but seen: stays fresh
    for i in range(11, 20):
        fw.check_connection(f"192.168.1.{i}", T0 + i)
        assert fw.tracked_sources <= 3
    assert fw.tracked_sources == 3


def test_an_active_attacker_stays_tracked_while_others_come_and_go() -> None:
    policy = LAN.model_copy(update={"max_tracked_sources": 2})
    fw = Firewall(policy)
    for i in range(3):
        fw.record_failure("192.168.1.9", FailureKind.BAD_FRAME, T0 + i)
    for i in range(10, 30):
        fw.check_connection(f"192.168.1.{i}", T0 + i)
        assert fw.check_connection("192.168.1.9", T0 + i).reason is RefusalReason.LOCKED_OUT


def test_a_locked_out_source_cannot_flush_its_lockout_by_cycling_addresses() -> None:
    fw = Firewall(LAN.model_copy(update={"max_tracked_sources": 2}))
    for i in range(3):
        fw.record_failure("192.168.1.9", FailureKind.BAD_FRAME, T0 + i)
    for i in range(10, 200):  # the attacker never comes back with .9 while cycling
        fw.check_connection(f"192.168.1.{i}", T0 + 3 + i / 100)
    assert fw.check_connection("192.168.1.9", T0 + 5).reason is RefusalReason.LOCKED_OUT


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.booleans()), max_size=200))
def test_memory_never_exceeds_the_cap(events: list[tuple[int, bool]]) -> None:
    fw = Firewall(LAN.model_copy(update={"max_tracked_sources": 8}))
    for step, (host, fail) in enumerate(events):
        source = f"192.168.1.{host}"
        if fail:
            fw.record_failure(source, FailureKind.BAD_FRAME, T0 + step)
        else:
            fw.check_connection(source, T0 + step)
        assert fw.tracked_sources <= 8


# -- identities ----------------------------------------------------------------------------------


def test_only_paired_terminals_are_admitted() -> None:
    fw = firewall()
    assert fw.check_identity("T-1", {"T-1", "T-2"}).allowed
    assert fw.check_identity("T-3", {"T-1", "T-2"}).reason is RefusalReason.NOT_PAIRED


def test_a_revoked_terminal_is_refused_even_if_listed_as_paired() -> None:
    fw = firewall()
    assert fw.check_identity("T-1", {"T-1"}, {"T-1"}).reason is RefusalReason.REVOKED


# -- logging -------------------------------------------------------------------------------------


def test_every_refusal_is_logged_with_source_and_reason_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="shouyin.link.firewall")
    fw = firewall()
    fw.check_connection("8.8.8.8", T0)
    fw.check_connection("bogus\naddress", T0)
    for _ in range(4):
        fw.check_connection("192.168.1.20", T0)
    for i in range(3):
        fw.record_failure("192.168.1.30", FailureKind.PAIRING_CODE, T0 + i)
    fw.check_identity("T-9", {"T-1"}, source_ip="192.168.1.40")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "link firewall refused 8.8.8.8: not_in_allowlist",
        "link firewall refused 'bogus\\naddress': invalid_source",
        "link firewall refused 192.168.1.20: rate_limited",
        "link firewall refused 192.168.1.30: locked_out "
        "(3 failures, last pairing_code; locked for 900 s)",
        "link firewall refused terminal 'T-9' from '192.168.1.40': not_paired",
    ]
    assert fw.refusals == {
        RefusalReason.NOT_IN_ALLOWLIST: 1,
        RefusalReason.INVALID_SOURCE: 1,
        RefusalReason.RATE_LIMITED: 1,
        RefusalReason.LOCKED_OUT: 1,
        RefusalReason.NOT_PAIRED: 1,
    }


# -- policy validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"allowed_networks": ["192.168.1.7/24"]},
        {"allowed_networks": ["not-a-network"]},
        {"link_port": 0},
        {"web_port": 70000},
        {"link_port": 8080, "web_port": 8080},
        {"interfaces": ["eth0; drop"]},
        {"interfaces": ['eth0" accept']},
        {"listen_addresses": []},
        {"max_attempts": 0},
        {"lockout_duration": 100.0, "max_lockout_duration": 10.0},
        {"attempt_window": float("inf")},
        {"surprise": 1},
    ],
)
def test_invalid_policies_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FirewallPolicy.model_validate(fields)


def test_policy_round_trips_through_json() -> None:
    assert FirewallPolicy.model_validate_json(LAN.model_dump_json()) == LAN


def test_overlapping_networks_are_merged_for_the_host_rules() -> None:
    policy = FirewallPolicy.model_validate(
        {"allowed_networks": ["10.8.3.0/24", "10.8.0.0/16", "10.9.0.0/16", "fd00::/64"]}
    )
    assert [str(n) for n in policy.networks(4)] == ["10.8.0.0/15"]
    assert [str(n) for n in policy.networks(6)] == ["fd00::/64"]


# -- host rules ----------------------------------------------------------------------------------

SAMPLE = FirewallPolicy.model_validate(
    {
        "listen_addresses": ["192.168.1.10", "fd00::10"],
        "interfaces": ["eth0"],
        "link_port": 8583,
        "web_port": 8443,
        "allowed_networks": ["192.168.1.0/24", "10.8.0.0/16", "10.8.3.0/24", "fd00::/64"],
    }
)

SAMPLE_NFT = """\
#!/usr/sbin/nft -f
# shouyin host firewall (nftables), from `shouyin firewall --format nftables`.
# Filters only shouyin's TCP ports (8443, 8583); SSH and other services are untouched.
# shouyin listens on 192.168.1.10, fd00::10.
# Load with `nft -f FILE`: it replaces any previous shouyin table atomically.

table inet shouyin
delete table inet shouyin

table inet shouyin {
\tset shouyin_ports {
\t\ttype inet_service
\t\telements = { 8443, 8583 }
\t}

\tset allowed_ipv4 {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = { 10.8.0.0/16, 192.168.1.0/24 }
\t}

\tset allowed_ipv6 {
\t\ttype ipv6_addr
\t\tflags interval
\t\telements = { fd00::/64 }
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tct state established,related accept
\t\tiifname "lo" accept
\t\tiifname "eth0" tcp dport @shouyin_ports ip saddr @allowed_ipv4 accept
\t\tiifname "eth0" tcp dport @shouyin_ports ip6 saddr @allowed_ipv6 accept
\t\ttcp dport @shouyin_ports counter drop
\t}
}
"""

SAMPLE_IPTABLES = """\
#!/bin/sh
# shouyin host firewall (iptables), from `shouyin firewall --format iptables`.
# Filters only shouyin's TCP ports (8443,8583); SSH and other services are untouched.
# shouyin listens on 192.168.1.10, fd00::10.
# Run as root; running it again replaces the previous shouyin rules.
set -e

# IPv4
iptables -N SHOUYIN 2>/dev/null || iptables -F SHOUYIN
iptables -A SHOUYIN -p tcp -m multiport ! --dports 8443,8583 -j RETURN
iptables -A SHOUYIN -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
iptables -A SHOUYIN -i lo -j RETURN
iptables -A SHOUYIN -i eth0 -s 10.8.0.0/16 -j RETURN
iptables -A SHOUYIN -i eth0 -s 192.168.1.0/24 -j RETURN
iptables -A SHOUYIN -j DROP
iptables -C INPUT -p tcp -j SHOUYIN 2>/dev/null || iptables -I INPUT -p tcp -j SHOUYIN

# IPv6
ip6tables -N SHOUYIN 2>/dev/null || ip6tables -F SHOUYIN
ip6tables -A SHOUYIN -p tcp -m multiport ! --dports 8443,8583 -j RETURN
ip6tables -A SHOUYIN -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
ip6tables -A SHOUYIN -i lo -j RETURN
ip6tables -A SHOUYIN -i eth0 -s fd00::/64 -j RETURN
ip6tables -A SHOUYIN -j DROP
ip6tables -C INPUT -p tcp -j SHOUYIN 2>/dev/null || ip6tables -I INPUT -p tcp -j SHOUYIN
"""


def test_nftables_rules_for_the_sample_policy() -> None:
    assert render_nftables(SAMPLE) == SAMPLE_NFT


def test_iptables_script_for_the_sample_policy() -> None:
    assert render_iptables(SAMPLE) == SAMPLE_IPTABLES


def test_nftables_rules_never_touch_other_ports() -> None:
    for line in render_nftables(SAMPLE).splitlines():
        if line.strip().endswith(("accept", "drop")) and "dport" not in line:
            assert line.strip() in {"ct state established,related accept", 'iifname "lo" accept'}
    assert "policy accept;" in render_nftables(SAMPLE)


def test_nftables_without_ipv6_networks_drops_ipv6_to_shouyin_ports() -> None:
    policy = FirewallPolicy.model_validate(
        {"allowed_networks": ["10.0.0.0/8"], "web_port": None, "interfaces": ["eth0", "wlan0"]}
    )
    text = render_nftables(policy)
    assert "allowed_ipv6" not in text
    assert "elements = { 8583 }" in text
    assert 'iifname { "eth0", "wlan0" } tcp dport @shouyin_ports ip saddr' in text


def test_iptables_without_interfaces_matches_any_interface() -> None:
    text = render_iptables(FirewallPolicy())
    assert "iptables -A SHOUYIN -s 127.0.0.0/8 -j RETURN" in text
    assert "ip6tables -A SHOUYIN -s ::1/128 -j RETURN" in text


NFT = shutil.which("nft")


@pytest.mark.skipif(NFT is None, reason="the nft binary (package nftables) is not installed")
@pytest.mark.parametrize(
    "policy",
    [SAMPLE, FirewallPolicy(), FirewallPolicy.model_validate({"allowed_networks": ["10.0.0.0/8"]})],
    ids=["sample", "default", "ipv4-only"],
)
def test_nft_accepts_the_rules(tmp_path: Path, policy: FirewallPolicy) -> None:
    assert NFT is not None
    path = tmp_path / "shouyin.nft"
    path.write_text(render_nftables(policy))
    result = subprocess.run(
        [NFT, "-c", "-f", str(path)], capture_output=True, text=True, timeout=10, check=False
    )
    if result.returncode != 0 and "Operation not permitted" in result.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN here")
    assert result.returncode == 0, result.stderr
