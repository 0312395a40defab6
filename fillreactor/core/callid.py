"""VICIdial call ids: building the ``V`` id of an auto-dial call and recognising every family.

Rules this module keeps (spec/VICIDIAL_FILL.md 5.3 and 5.9):

* An auto-dial id is ``"V" + CIDdate + PADlead_id``: CIDdate is ``MMDDhhmmss`` of the FILL host's
  local time with its first character dropped (9 digits), PADlead_id the lead id zero-padded to 10
  digits (a longer id keeps its leftmost 10). Always 20 characters, ``^V\\d{19}$``.
* Consumers read the lead id as ``int(call_id[10:20])``.
* Families recognised: ``V`` auto dial, ``M`` manual dial, ``Y`` inbound (each a letter and 19
  digits), ``DC`` three-way (``DC\\d{6}W\\d{10}W``), ``RA`` ring-agent (``RINGAGENT…`` / ``RA_…``).
  Only ``V`` calls are dialer line usage; the others are counted apart.
* A CallerIDName may carry text after a space (VICIdial's listener keeps what is before it); the
  first word is what is matched.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

AUTO_DIAL = "V"
MANUAL_DIAL = "M"
INBOUND = "Y"
THREE_WAY = "DC"
RING_AGENT = "RA"

_DIGITS19 = re.compile(r"[VMY]\d{19}")
_THREE_WAY = re.compile(r"DC\d{6}W\d{10}W")


def build_call_id(local_time: datetime, lead_id: int) -> str:
    """The ``VqueryCID`` of a call placed at ``local_time`` (the FILL host's local clock)."""
    cid_date = f"{local_time.month:02d}{local_time.day:02d}{local_time.hour:02d}"
    cid_date += f"{local_time.minute:02d}{local_time.second:02d}"
    padded = f"{lead_id:010d}"[:10]
    return "V" + cid_date[1:] + padded


def call_id_family(name: str) -> str | None:
    """The family of a VICIdial call id found in a CallerIDName/ConnectedLineName, else None."""
    if not name:
        return None
    first = name[0]
    if first in "VMY":
        if len(name) > 20 and name[20] == " ":
            name = name[:20]
        if len(name) == 20 and _DIGITS19.fullmatch(name):
            return first
        return None
    if first == "D":
        return THREE_WAY if _THREE_WAY.match(name) else None
    if first == "R" and (name.startswith("RINGAGENT") or name.startswith("RA_")):
        return RING_AGENT
    return None


def is_auto_dial_id(name: str) -> bool:
    return call_id_family(name) == AUTO_DIAL


def lead_id_of(call_id: str) -> int:
    """The lead id of a ``V``/``M``/``Y`` id (digits 10-19)."""
    return int(call_id[10:20])


# Each call's names recur on every event of its channels (about 8 per channel), so the answer is
# cached: a hit costs 0.1 us against 1 us for the regex, on the model's hot path. Bounded.
@lru_cache(maxsize=16384)
def call_id_of(caller_id_name: str, connected_line_name: str) -> tuple[str, str] | None:
    """(family, id) found in a channel's names: the CallerIDName first, else the ConnectedLineName.

    VICIdial's trunk channels carry the customer in CallerIDName and the id in ConnectedLineName.
    """
    for name in (caller_id_name, connected_line_name):
        family = call_id_family(name)
        if family is not None:
            return family, name[:20] if family in "VMY" else name
    return None
