"""Where a dialer call came from: its ``vicidial_auto_calls`` row, as the store looks it up.

Rules this module keeps:

* A ``CallOrigin`` is what the database says about one call id (``vicidial_auto_calls.callerid``):
  the campaign it dials for, the server it was placed on (``server_ip``: VICIdial counts a call's
  line there, and only there), and its ``call_type`` (``OUT``, ``OUTBALANCE``, ``IN``).
* fillreactor's own originates know their origin without a lookup.
* ``None`` in a lookup result means "looked up, no row": such a call is never asked about again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallOrigin:
    campaign_id: str
    server_ip: str
    call_type: str = "OUT"
