"""Service settings for a test's quick service: refreshes every few hundred ms, fast reconnects.

One place for the tests' (and the fixtures' recorder's) idea of "quick"; each caller overrides what
its scenario needs. The stale-claim age is 0: a test runs no other FILL, so every claim found by
the recovery is stale (the running dialer's own claims are left alone by ``Dialer.holding``).
"""

from __future__ import annotations

from typing import Any

from fillreactor.service.settings import Settings

QUICK: dict[str, Any] = {
    "agents_refresh": 0.2,
    "config_refresh": 0.5,
    "stats_refresh": 0.2,
    "lock_check": 0.2,
    "ping_interval": 1.0,
    "ping_timeout": 1.0,
    "reconnect_max_wait": 0.2,
    "stale_claim_age": 0.0,
    "hopper_retry": 0.2,
}


def quick_settings(**overrides: Any) -> Settings:
    """``QUICK`` with ``overrides`` on top."""
    return Settings().with_values({**QUICK, **overrides})
