"""What a channel-model mutation changed: the unit that threshold detection works on.

Rules this module keeps:

* Every mutation of the channel-count model reports, as ``UsageChange`` values, each count it
  moved: the server's line usage (live dialer calls plus reservations) and, when a call's
  campaign is known, that campaign's count on the server. Nothing else needs to rescan the model
  to find out whether a threshold was crossed.
* ``campaign`` is ``None`` when only the server total moved (a call whose campaign is still
  pending a lookup, or a trunk-only change); then ``campaign_before == campaign_after == 0``.
* A campaign attribution that resolves a pending call produces a change with equal
  ``usage_before`` and ``usage_after`` and a moved campaign count.
* One mutation may report several changes, chained: the first carries the server's whole usage
  move, the later ones (other campaigns moved by the same mutation) have equal ``usage_before``
  and ``usage_after``. Summing ``delta`` over them is always right; assuming one change per
  mutation is not.
"""

from __future__ import annotations

from dataclasses import dataclass


# slots, not frozen, like the events: built on the hot path, and nobody mutates one
@dataclass(slots=True)
class UsageChange:
    server: str
    usage_before: int
    usage_after: int
    campaign: str | None = None
    campaign_before: int = 0
    campaign_after: int = 0

    @property
    def delta(self) -> int:
        return self.usage_after - self.usage_before


NO_CHANGES: tuple[UsageChange, ...] = ()
