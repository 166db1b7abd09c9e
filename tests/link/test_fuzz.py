"""Decoder fuzzing: random and mutated inputs through every decoder, never a crash or a hang.

At least 100,000 inputs in total run in the normal suite (a seeded ``random.Random`` loop, far
faster than as many hypothesis examples). ``SHOUYIN_FUZZ_EXAMPLES`` scales the total (``make fuzz``
sets 2,000,000) and ``SHOUYIN_FUZZ_SEED`` picks another seed. Each decoder gets a fifth of the
budget: the serial deframer, the stream deframer, the envelope opener, the message decoder and a
logged-in session fed whole frames.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable

from shouyin.link import (
    ConnectionState,
    Direction,
    FrameAcknowledged,
    FrameReceived,
    FrameRejected,
    LinkConfig,
    LinkDown,
    MessageBase,
    MessageDecodeError,
    MessageReceived,
    SecureChannel,
    SecurityError,
    SerialFramer,
    StreamFramer,
    decode,
    derive_session_keys,
    encode,
    encode_serial_frame,
    encode_stream_frame,
    transcript_hash,
)
from shouyin.link.framing import FramingEvent

from .helpers import long_term_key, make_pair
from .samples import SAMPLES, TYPICAL_PAYMENT_REQUEST

TOTAL = int(os.environ.get("SHOUYIN_FUZZ_EXAMPLES", "100000"))
SEED = int(os.environ.get("SHOUYIN_FUZZ_SEED", "20250314"))
PER_TARGET = max(1, -(-TOTAL // 5))  # ceiling: the five targets together run at least TOTAL
ENCODED = [encode(sample) for sample in SAMPLES]
FRAMING_EVENTS = (FrameReceived, FrameRejected, FrameAcknowledged, LinkDown)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four random mutations: bit flips, byte changes, cuts, insertions, splices."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[rng.randrange(len(buf))] = rng.choice(
                (0x00, 0x02, 0x03, 0x06, 0x15, 0x22, 0x7B, 0xFF)
            )
        elif op == 2 and buf:
            del buf[rng.randrange(len(buf)) :]
        elif op == 3:
            i = rng.randrange(len(buf) + 1)
            buf[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 4 and buf:
            i, j = sorted((rng.randrange(len(buf)), rng.randrange(len(buf))))
            del buf[i:j]
        else:
            other = rng.choice(ENCODED)
            cut = rng.randrange(len(other))
            buf = buf[: rng.randrange(len(buf) + 1)] + bytearray(other[cut:])
    if buf == data:  # e.g. an empty cut: a mutation must mutate
        buf.append(rng.randrange(256))
    return bytes(buf)


def random_input(rng: random.Random, valid: Callable[[], bytes]) -> bytes:
    """Half pure noise, half mutations of something valid."""
    if rng.random() < 0.5:
        return rng.randbytes(rng.randint(0, 300))
    return mutate(rng, valid())


def drain(framer: SerialFramer | StreamFramer) -> list[FramingEvent]:
    events = []
    while (event := framer.next_event()) is not None:
        assert isinstance(event, FRAMING_EVENTS)
        events.append(event)
    return events


def test_fuzz_serial_deframer_never_crashes_and_always_recovers() -> None:
    rng = random.Random(SEED)
    framer = SerialFramer(max_body=1024)
    now = 0.0
    marker = 0
    for i in range(PER_TARGET):
        data = random_input(rng, lambda: encode_serial_frame(rng.choice(ENCODED)))
        cut = rng.randint(0, len(data))
        framer.receive_data(data[:cut], now)
        framer.receive_data(data[cut:], now)
        framer.data_to_send()
        drain(framer)
        now += 0.01
        if i % 50 == 49:  # let stalled partial frames go, then a real frame must get through
            while (timer := framer.next_timer()) is not None:
                now = max(now, timer)
                framer.handle_timer(now)
            drain(framer)
            marker += 1
            body = f"marker {marker}".encode()
            framer.receive_data(encode_serial_frame(body), now)
            assert FrameReceived(body) in drain(framer), i
            assert framer.data_to_send().endswith(b"\x06")


def test_fuzz_stream_deframer_never_crashes() -> None:
    rng = random.Random(SEED + 1)
    for _ in range(PER_TARGET):
        framer = StreamFramer(max_body=4096)
        data = random_input(rng, lambda: encode_stream_frame(rng.choice(ENCODED)))
        for piece in (data[: rng.randint(0, len(data))], data):
            framer.receive_data(piece, 0.0)
        events = drain(framer)
        if framer.down:
            assert isinstance(events[-1], LinkDown)


def test_fuzz_envelope_opener_refuses_everything_but_genuine_bodies() -> None:
    rng = random.Random(SEED + 2)
    keys = derive_session_keys(
        long_term_key(),
        ecr_nonce=b"\x01" * 32,
        poi_nonce=b"\x02" * 32,
        transcript=transcript_hash([]),
    )
    sealer = SecureChannel(keys, Direction.ECR_TO_POI)
    opener = SecureChannel(keys, Direction.POI_TO_ECR)
    genuine = 0
    for i in range(PER_TARGET):
        if i % 100 == 0:  # a genuine body now and then: the opener must still work
            body = sealer.seal(rng.choice(ENCODED))
            assert opener.open(body)
            genuine += 1
            continue
        data = random_input(rng, lambda: sealer.seal(rng.choice(ENCODED)))
        try:
            opener.open(data)
        except SecurityError:
            continue
        raise AssertionError(f"a fuzzed body opened: {data.hex()}")
    assert genuine == len(range(0, PER_TARGET, 100))


def random_json(rng: random.Random, depth: int = 0) -> object:
    """A random JSON value, biased towards our field names and types."""
    kind = rng.randrange(7 if depth < 3 else 5)
    names = ("type", "service_id", "ecr_ref", "amount", "kind", "result", "acquirer", "masked_pan")
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 1, 2**63, 12345, 1.5, 1e300])
    if kind == 2:
        return rng.choice(["", "card", "success", "payment_request", "622848******1234", "x" * 300])
    if kind == 3:
        return rng.randbytes(rng.randint(0, 10)).decode("latin-1")
    if kind == 4:
        return rng.choice(["E1", "heartbeat_request", "payment_response", "failure", "busy"])
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(names): random_json(rng, depth + 1) for _ in range(rng.randint(0, 6))}


def test_fuzz_message_decoder_raises_only_typed_errors() -> None:
    rng = random.Random(SEED + 3)
    decoded = 0
    for i in range(PER_TARGET):
        if i % 3 == 0:
            data = json.dumps(random_json(rng)).encode()
        else:
            data = random_input(rng, lambda: rng.choice(ENCODED))
        try:
            message = decode(data)
        except MessageDecodeError:
            continue
        assert isinstance(message, MessageBase)
        assert decode(encode(message)) == message
        decoded += 1
    assert decoded > 0  # some mutations stay valid (e.g. a changed id): the success path ran too


def test_fuzz_logged_in_session_survives_random_frames() -> None:
    rng = random.Random(SEED + 4)
    pair = make_pair("serial", config=LinkConfig(dead_after=1e12, heartbeat_interval=1e11))
    terminal = pair.terminal
    twin = make_pair("serial", config=LinkConfig(dead_after=1e12, heartbeat_interval=1e11))
    twin.terminal.connection_lost(twin.now)
    twin.cashier.send(TYPICAL_PAYMENT_REQUEST, twin.now)
    sealed = twin.cashier.data_to_send()[3:-3]  # the body of the genuine sealed frame
    for _ in range(PER_TARGET):
        body = random_input(rng, lambda: rng.choice((sealed, *ENCODED)))
        terminal.receive_data(encode_serial_frame(body), pair.now)
        terminal.data_to_send()
        for event in terminal.events():
            assert not isinstance(event, MessageReceived)
    assert terminal.state is ConnectionState.READY
    terminal.receive_data(encode_serial_frame(sealed), pair.now)
    assert MessageReceived(TYPICAL_PAYMENT_REQUEST) in terminal.events()
