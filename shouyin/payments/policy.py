"""How long the orchestrator waits, asks and retries: one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PaymentPolicy"]


@dataclass(frozen=True, slots=True)
class PaymentPolicy:
    """Timings (seconds) and switches of the payment orchestration.

    Attributes:
        query_interval: between status queries while an outcome is unknown (3-5 s, as the
            wallets ask for their own queries).
        query_window: how long an unknown payment is queried before it is reversed. It must
            outlast the terminal's own work on a payment it may still be doing — a QR micropay
            is polled for 45 s and then revoked by the terminal — hence 90 s.
        query_timeout: bound on each status query (the link's request timeout applies anyway).
        payment_timeout: extra bound on a Payment exchange (``None``: the link's own deadlines,
            which every progress message pushes back, with their hard limit).
        reversal_retry: first pause between reversal (or void, or refund) attempts; doubled
            after each failed one up to ``reversal_retry_max``.
        reversal_retry_max: the longest pause between attempts.
        inline_tries: attempts made while the cashier waits (the rest in the background).
        link_wait: at start-up, how long recovery waits for the terminal to log in.
        record_sent: write the ``sent`` state once the request left. Off by default: it is
            observability only (recovery settles a ``pending`` intent exactly as a ``sent`` one,
            querying the terminal by ``ecr_ref``) and it costs one durable commit per payment,
            refund and void. The intent before sending and the result after the answer are
            written durably either way.

    Raises:
        ValueError: a non-positive interval or window, or fewer than one inline try.
    """

    query_interval: float = 3.0
    query_window: float = 90.0
    query_timeout: float | None = None
    payment_timeout: float | None = None
    reversal_retry: float = 5.0
    reversal_retry_max: float = 120.0
    inline_tries: int = 3
    link_wait: float = 30.0
    record_sent: bool = False

    def __post_init__(self) -> None:
        if min(self.query_interval, self.query_window, self.reversal_retry) <= 0:
            raise ValueError("intervals and windows must be positive")
        if self.reversal_retry_max < self.reversal_retry:
            raise ValueError("reversal_retry_max must be at least reversal_retry")
        if self.inline_tries < 1:
            raise ValueError("at least one inline try")
