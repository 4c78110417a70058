"""How long a failed delivery waits before its next attempt, and when it is given up to the DLQ."""

from __future__ import annotations


def retry_delay(attempts: int, retry_after_s: float | None, jitter: float, base_s: float = 1.0, cap_s: float = 300.0) -> float:
    """Exponential backoff with jitter (0 ≤ jitter < 1); a receiver's Retry-After always wins when longer."""
    backoff = min(cap_s, base_s * 2 ** min(max(0, attempts), 64)) * (0.5 + jitter / 2)  # a day of retries never overflows
    return max(backoff, retry_after_s or 0.0)


def gives_up(failed_attempts: int, alert_age_s: float, max_attempts: int, retry_for_s: float) -> bool:
    """The DLQ is for a message that will not go through, not for an outage: a delivery is given up only once it
    failed `max_attempts` times and its alert is `retry_for_s` old, however fast the failures came."""
    return failed_attempts >= max_attempts and alert_age_s >= retry_for_s
