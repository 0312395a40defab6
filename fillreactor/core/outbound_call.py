"""Every value of one OUTBALANCE call, computed from the facts the store read (spec 2.7-2.9, 5.3-5.5).

Rules this module keeps (line numbers are ``bin/AST_VDauto_dial_FILL.pl`` 2.14, build 231129-0905):

* Inputs are what the Perl sees: database values as the text DBI hands it (``perl_text``: NULL is
  ``''``, DECIMAL ``-5.00``, dates ``YYYY-MM-DD``), numbers read with Perl's numification
  (``perl_num``). Settings come from the **FILL host's** ``servers`` row (``local_gmt``,
  ``ext_context``, ``answer_transfer_agent``) and the **target's** (``asterisk_version``,
  ``routing_prefix``), as in the Perl (spec 9.3.14).
* The per-lead sequence, in the Perl's order: the dial-timeout lead container (736-844, on the
  values before any change); ``called_count + 1``; ``called_since_last_reset`` N→Y→Y1→…→Y10
  (864-875, ``CSLR_NEXT``); ``last_local_call_time`` = the FILL host's local clock at
  ``now − (local_gmt + DST − gmt_offset_now)`` hours (877-887, ``get_time_now`` 1651-1657); the
  alt-dial number (889-925); the call id (952-954); the dial timeout, prefix and extension
  (983-994); the caller id (996-1235, ``choose_caller_id``); ``x`` in the prefix means none (1237);
  the dial string (1249-1255); the 24-hour state (1257-1272, looked up by the shell); the
  Asterisk 12+ routing prefix (1281-1287); the rows (1290-1311).
* What is stored is what the Perl stores on a non-strict server, written explicitly: text cut to
  its column's width (``COLUMN_WIDTHS``, spec 6), integers held to their column's range
  (``called_count`` 65535, ``timeout`` 16777215), a fractional millisecond timeout rounded as
  MySQL rounds it, the ``Y10`` + 1 overflow stored as the ENUM error value ``''``
  (``cslr_overflow``: the store writes it with ``UPDATE IGNORE``, the one way strict mode stores it).
* Every way a row differs from the Perl's is a ``RowCorrection`` recorded on the call.
* The caller id: ``CidPool`` holds the active ``vicidial_campaign_cid_areacodes`` rows of every
  group or campaign a pass may ask for, and counts its own picks, so the next call sees the
  ``call_count_today + 1`` of the previous one, as the Perl's next SELECT does. The Perl keeps the
  *last* row of its ordered SELECT: the longest (numerically largest) matching areacode and, among
  those, the lowest ``call_count_today``; rows the Perl would see in an unspecified order (equal
  areacode and count) are decided by the largest ``outbound_cid``. Names compare like the
  database's case-insensitive collation (``sql_key``).
* Pure: no I/O, no clock. Local time is a function passed in (``PassTime.localtime``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import Enum
from typing import Any

from fillreactor.core.callid import build_call_id

LocalTime = Callable[[int], tuple[datetime, bool]]
"""epoch seconds → (the FILL host's local wall time, whether DST is in effect then)."""

DISABLED_GROUP = "---DISABLED---"
CID_MIN_LENGTH = 7  # the Perl's "length > 6"
TIMEOUT_FLOOR = 4  # "dial_timeout > 4"
DEFAULT_DIAL_TIMEOUT = 60
DEFAULT_DIAL_PREFIX = "9"
DEFAULT_CONTEXT = "default"
CALL_TYPE = "OUTBALANCE"


class RowCorrection(Enum):
    """Every way the rows of a call differ from what the Perl FILL writes on the same state."""

    EXTENDED_ALT_DIALED = (
        "an X<n>/XLAST hopper entry dials the extended number from vicidial_list_alt_phones, as"
        " AST_VDauto_dial.pl does (its lines 1905-1927); the Perl FILL's ^X test never matches and"
        " dials the main number (spec 2.7h, 9.3.5)"
    )
    DAILY_COUNT_LIST_ID = (
        "vicidial_lead_call_daily_counts.list_id is the lead's list_id; the Perl writes $PSCBlist_id,"
        " the list of the last scheduled callback it looked up, usually '' stored as 0 (spec 2.7j, 9.3.6)"
    )
    MISSING_LEAD_RELEASED = (
        "a claimed hopper row whose vicidial_list row is missing goes back to READY; the Perl leaves it"
        " INCALL for ever (spec 2.7d, 9.3.9)"
    )
    LIST_LASTCALLDATE_PASS_START = (
        "vicidial_lists.list_lastcalldate is the pass's start time; the Perl reads its clock again after"
        " the campaigns loop (line 1541)"
    )
    DUPLICATE_LOG_NAMES_DUPLICATE = (
        "a VDFC_DUPLICATE log line names the duplicated lead; the Perl's names the last lead it found"
        " again after the duplicate's hopper row was already deleted (lines 675-686)"
    )


# -- Perl and MySQL value rules ---------------------------------------------------------------

_PERL_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_MYSQL_SIGNED = re.compile(r"^\s*([+-]?\d+)")
_NON_DIGITS = re.compile(r"\D")


def perl_text(value: Any) -> str:
    """A database value as the text DBI gives the Perl (NULL → ``''``)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def perl_num(text: Any) -> float:
    """Perl's numification of a string: its leading number, else 0."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = _PERL_NUMBER.match(perl_text(text))
    return float(match.group(1)) if match else 0.0


def perl_number_text(value: float) -> str:
    """How Perl prints a number: integers plainly, others with 15 significant digits."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.15g}"


def perl_true(text: str) -> bool:
    """Perl truthiness of a string: ``''`` and ``'0'`` are false."""
    return text not in ("", "0")


def digits(text: str) -> str:
    """``s/\\D//g``."""
    return _NON_DIGITS.sub("", text)


def mysql_signed(text: str) -> int:
    """``CAST(text AS SIGNED)``: the leading integer, else 0."""
    match = _MYSQL_SIGNED.match(text)
    return int(match.group(1)) if match else 0


def mysql_int(text: str, low: int, high: int) -> int:
    """An integer column's value for a numeric string on a non-strict server: rounded half away
    from zero (MySQL's rounding of a decimal string), then held to the column's range."""
    try:
        number = Decimal(text.strip() or "0")
    except InvalidOperation:
        number = Decimal(perl_number_text(perl_num(text)))
    rounded = int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return max(low, min(high, rounded))


def sql_key(text: str) -> str:
    """A name as the database compares it (case-insensitive, trailing spaces ignored)."""
    return text.rstrip(" ").casefold()


# -- what is stored: column widths and ranges (spec 6) ----------------------------------------

COLUMN_WIDTHS: Mapping[str, Mapping[str, int]] = {
    "vicidial_auto_calls": {
        "server_ip": 15,
        "campaign_id": 20,
        "callerid": 20,
        "phone_code": 10,
        "phone_number": 18,
        "alt_dial": 6,
    },
    "vicidial_manager": {
        "uniqueid": 20,
        "server_ip": 15,
        "channel": 100,
        "action": 20,
        "callerid": 20,
        "cmd_line_b": 100,
        "cmd_line_c": 100,
        "cmd_line_d": 200,
        "cmd_line_e": 100,
        "cmd_line_f": 100,
        "cmd_line_g": 100,
        "cmd_line_h": 100,
        "cmd_line_i": 50,
        "cmd_line_j": 50,
        "cmd_line_k": 100,
    },
    "vicidial_dial_log": {
        "caller_code": 30,
        "server_ip": 15,
        "extension": 100,
        "channel": 100,
        "context": 100,
        "outbound_cid": 100,
    },
    "vicidial_dial_cid_log": {"caller_code": 30, "call_alt": 20, "outbound_cid": 20, "outbound_cid_type": 20},
    "vicidial_lead_24hour_calls": {"phone_number": 18, "phone_code": 10, "state": 2},
    "vicidial_phone_number_call_daily_counts": {"phone_number": 18},
    "vicidial_recent_ascb_calls": {"caller_code": 30, "server_ip": 60, "orig_status": 6, "reschedule": 10},
}
"""VARCHAR widths of every text column a call writes (characters, as MySQL cuts them)."""

CALLED_COUNT_MAX = 65535  # vicidial_list.called_count SMALLINT(5) UNSIGNED
TIMEOUT_MAX = 16777215  # vicidial_dial_log.timeout MEDIUMINT(7) UNSIGNED
DAILY_COUNT_MAX = 255  # the daily-count TINYINT(3) UNSIGNED columns
CID_COUNT_MAX = 8388607  # vicidial_campaign_cid_areacodes.call_count_today MEDIUMINT(7)
ROTATE_COUNT_MAX = 16777215  # vicidial_cid_groups.cid_auto_rotate_calls MEDIUMINT(7) UNSIGNED
QUEUE_PRIORITY_RANGE = (-128, 127)  # vicidial_auto_calls.queue_priority TINYINT(2)
BIGINT_UNSIGNED_MAX = 18446744073709551615
ZERO_DATETIME = "0000-00-00 00:00:00"  # what '' becomes in a DATETIME column on a non-strict server


def fit(table: str, column: str, value: str) -> str:
    """``value`` as a non-strict server stores it in ``table.column`` (cut to the column width)."""
    width = COLUMN_WIDTHS[table][column]
    return value[:width]


class DbNow:
    """A column the database fills with ``NOW()``, as the Perl's statement does."""

    def __repr__(self) -> str:
        return "NOW()"


DB_NOW = DbNow()

# called_since_last_reset: the Perl's step (864-875) over the column's ENUM. N, D and '' (anything
# not starting with Y) become Y; Y becomes Y1; Yn becomes Y(n+1). Y11 is not in the ENUM: a
# non-strict server stores the error value ''.
CSLR_ENUM = ("Y", "N", "Y1", "Y2", "Y3", "Y4", "Y5", "Y6", "Y7", "Y8", "Y9", "Y10", "D")


def next_called_since_last_reset(current: str) -> tuple[str, str]:
    """(what the Perl computes, what a non-strict server stores) for the next call of a lead."""
    if current.startswith("Y"):
        if current == "Y":
            perl = "Y1"
        else:
            # s/^Y//i then ++: a numeric rest counts up; anything else is not in the ENUM anyway
            rest = current[1:]
            perl = f"Y{int(perl_num(rest)) + 1}" if re.fullmatch(r"\d*", rest) else f"Y{rest}1"
    else:
        perl = "Y"
    return perl, perl if perl in CSLR_ENUM else ""


# -- the facts one call is computed from ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PassTime:
    """The one "now" of a pass (spec 2.2.1): the call ids' date part, the rows' dates, the LLCT base."""

    epoch: int
    local: datetime
    """The FILL host's local wall time, whole seconds."""
    is_dst: bool
    localtime: LocalTime = field(repr=False, compare=False)

    @classmethod
    def at(cls, epoch: int, localtime: LocalTime) -> PassTime:
        local, dst = localtime(int(epoch))
        return cls(int(epoch), local.replace(microsecond=0), dst, localtime)

    @property
    def sql(self) -> str:
        return self.local.strftime("%Y-%m-%d %H:%M:%S")

    @property
    def day(self) -> str:
        return self.local.strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class FillHost:
    """The FILL host's ``servers`` row (VARserver_ip), as the Perl keeps it (lines 212-238)."""

    server_ip: str
    local_gmt: float = 0.0
    ext_context: str = ""
    answer_transfer_agent: str = ""
    server_logs: bool = False
    """``vd_server_logs`` is Y: the Perl writes its log files (VDFC_DUPLICATE)."""

    @property
    def context(self) -> str:
        return self.ext_context or DEFAULT_CONTEXT


@dataclass(frozen=True, slots=True)
class TargetServer:
    """The balance server a call is placed on (the ``servers`` columns the call needs)."""

    server_ip: str
    asterisk_version: str = ""
    routing_prefix: str = ""


@dataclass(frozen=True, slots=True)
class CampaignDialSettings:
    """The 13 ``vicidial_campaigns`` columns the Perl reads per campaign (line 381), as text.

    A campaign without a row gets ``''`` everywhere, as the Perl's undefined values.
    """

    campaign_id: str
    dial_timeout: str = ""
    dial_prefix: str = ""
    campaign_cid: str = ""
    campaign_vdad_exten: str = ""
    omit_phone_code: str = ""
    auto_alt_dial: str = ""
    queue_priority: str = ""
    use_custom_cid: str = ""
    cid_group_id: str = ""
    scheduled_callbacks_auto_reschedule: str = ""
    dial_timeout_lead_container: str = ""
    cid_group_id_two: str = ""
    container_entry: str | None = None
    """``vicidial_settings_containers.container_entry`` of the lead container, when there is one."""

    @property
    def uses_lead_container(self) -> bool:
        name = self.dial_timeout_lead_container
        return len(name) > 1 and name.upper() != "DISABLED"

    @property
    def reschedules_callbacks(self) -> bool:
        value = self.scheduled_callbacks_auto_reschedule
        return "DISABLED" not in value and len(value) > 0

    @property
    def dials_extended(self) -> bool:
        """AST_VDauto_dial.pl's test for the extended numbers (``auto_alt_dial =~ /X/``)."""
        return "X" in self.auto_alt_dial

    def cid_groups(self) -> tuple[str, ...]:
        """Group ids the caller-id rules may look up for this campaign (before list overrides)."""
        return tuple(g for g in (self.cid_group_id, self.cid_group_id_two) if DISABLED_GROUP not in g)


@dataclass(frozen=True, slots=True)
class HopperEntry:
    """A claimed ``vicidial_hopper`` row."""

    hopper_id: int
    lead_id: int
    campaign_id: str
    user: str
    alt_dial: str = ""
    source: str = ""
    priority: int = 0


LEAD_TEXT_FIELDS = (
    "list_id",
    "gmt_offset_now",
    "called_since_last_reset",
    "phone_code",
    "phone_number",
    "address3",
    "alt_phone",
    "called_count",
    "security_phrase",
    "state",
    "vendor_lead_code",
    "source_id",
    "title",
    "first_name",
    "middle_initial",
    "last_name",
    "address1",
    "address2",
    "city",
    "province",
    "postal_code",
    "country_code",
    "date_of_birth",
    "email",
    "comments",
    "rank",
    "owner",
)
"""The 27 ``vicidial_list`` columns the Perl reads per lead (line 694), in its order."""


@dataclass(frozen=True, slots=True)
class Lead:
    """A ``vicidial_list`` row as the Perl reads it: every column as text (``perl_text``)."""

    lead_id: int
    fields: Mapping[str, str]

    def __getitem__(self, name: str) -> str:
        return self.fields.get(name, "")

    @property
    def list_id(self) -> int:
        return int(perl_num(self["list_id"]))


@dataclass(frozen=True, slots=True)
class ListOverrides:
    """``vicidial_lists`` columns of the lead's list (line 850); ``None`` when the list has no row."""

    campaign_cid_override: str = ""
    cid_group_id: str = ""
    dial_prefix: str = ""


@dataclass(frozen=True, slots=True)
class AltPhone:
    """A ``vicidial_list_alt_phones`` row."""

    alt_phone_id: int
    alt_phone_count: int | None
    phone_code: str
    phone_number: str


@dataclass(frozen=True, slots=True)
class Callback:
    """The lead's first LIVE ANYONE ``vicidial_callbacks`` row (line 959)."""

    callback_id: int
    callback_time: datetime | None
    lead_status: str
    list_id: int | None


# -- dial timeout lead container (spec 2.7e) --------------------------------------------------

# auto_dial_field names -> the lead column compared (the Perl's $vendor_id is vendor_lead_code)
CONTAINER_FIELDS = (
    "vendor_lead_code",
    "source_id",
    "list_id",
    "gmt_offset_now",
    "phone_code",
    "title",
    "first_name",
    "middle_initial",
    "last_name",
    "address1",
    "address2",
    "address3",
    "city",
    "state",
    "province",
    "postal_code",
    "country_code",
    "date_of_birth",
    "alt_phone",
    "email",
    "security_phrase",
    "comments",
    "called_count",
    "rank",
    "owner",
)
_CONTAINER_STRIP = re.compile(r"[\r\t'\"\\]")
_CONTAINER_LINE_STRIP = re.compile(r";.*|\r|\t")
_CONTAINER_ARROW = re.compile(r" => |=> | =>")


def container_timeout(entry: str | None, lead: Lead) -> float:
    """The lead container's timeout for this lead (lines 736-844): the last matching line, else 0."""
    if entry is None:
        return 0.0
    text = _CONTAINER_STRIP.sub("", entry)
    if len(text) <= 5:
        return 0.0
    field_name = ""
    override = 0.0
    for raw in text.split("\n"):
        line = _CONTAINER_ARROW.sub("=>", _CONTAINER_LINE_STRIP.sub("", raw))
        if len(line) <= 3:
            continue
        if line.lower().startswith("auto_dial_field"):
            field_name = re.sub("auto_dial_field=>", "", line, flags=re.IGNORECASE)
            continue
        if line.lower().startswith("manual_dial_field") or line.startswith(";"):
            continue
        key, _, value = line.partition("=>")
        if field_name in CONTAINER_FIELDS and lead[field_name] == key:
            # Perl: split(/=>/) gives no value when there is no arrow: undef, numified 0
            override = perl_num(value.split("=>")[0]) if "=>" in line else 0.0
    return override


# -- the number dialed (spec 2.7h) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DialedNumber:
    phone_code: str
    phone_number: str
    alt_dial: str
    """As recorded: the hopper's, ``MAIN`` when empty."""
    corrections: tuple[RowCorrection, ...] = ()


def choose_number(
    hopper: HopperEntry, lead: Lead, campaign: CampaignDialSettings, alt_phones: Sequence[AltPhone] = ()
) -> DialedNumber:
    """Lines 889-925, with the extended numbers dialed (``RowCorrection.EXTENDED_ALT_DIALED``)."""
    alt = hopper.alt_dial
    auto = campaign.auto_alt_dial
    phone_code = lead["phone_code"]
    phone_number = lead["phone_number"]
    corrections: tuple[RowCorrection, ...] = ()
    if re.search("ALT|ADDR3|X", alt) and re.search("ALT|ADDR|X", auto):
        if "ALT" in alt and "ALT" in auto:
            phone_number = digits(lead["alt_phone"])
        if "ADDR3" in alt and "ADDR3" in auto:
            phone_number = digits(lead["address3"])
        if "X" in alt and "X" in auto:
            extended = _extended_phone(alt, alt_phones)
            if extended is not None:
                phone_code, phone_number = extended.phone_code, digits(extended.phone_number)
                corrections = (RowCorrection.EXTENDED_ALT_DIALED,)
    return DialedNumber(phone_code, phone_number, alt or "MAIN", corrections)


def _extended_phone(alt_dial: str, rows: Sequence[AltPhone]) -> AltPhone | None:
    """AST_VDauto_dial.pl 1908-1917: XLAST (or 99999) → the highest alt_phone_count, X<n> → count n.

    Rows the server returns in no specified order are taken by lowest alt_phone_id.
    """
    ordered = sorted(rows, key=lambda r: r.alt_phone_id)
    if re.search("LAST|99999", alt_dial):
        if not ordered:
            return None
        # ORDER BY alt_phone_count DESC: NULL sorts last; the first of the highest wins
        return min(ordered, key=lambda r: (r.alt_phone_count is None, -(r.alt_phone_count or 0)))
    wanted = int(digits(alt_dial) or "0")  # alt_phone_count='' compares as 0
    for row in ordered:
        if row.alt_phone_count is not None and row.alt_phone_count == wanted:
            return row
    return None


# -- caller id (spec 2.9) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CidRow:
    """An active ``vicidial_campaign_cid_areacodes`` row; ``owner`` is its campaign_id column."""

    owner: str
    areacode: str
    outbound_cid: str
    call_count_today: int
    group_type: str = ""
    """``vicidial_cid_groups.cid_group_type`` of the owner when it is a CID group, else ''."""


@dataclass(frozen=True, slots=True)
class CidPick:
    """One chosen CID row: its ``call_count_today`` is incremented, and for a NONE group also the
    group's ``cid_auto_rotate_calls``."""

    owner: str
    areacode: str
    outbound_cid: str
    rotate_group: str | None = None


class CidPool:
    """The CID rows of a pass and the picks made from them (see the module rules)."""

    def __init__(self, rows: Iterable[CidRow] = ()) -> None:
        self._rows: dict[str, list[list[Any]]] = {}
        self._types: dict[str, str] = {}
        self.loaded: set[str] = set()
        self.picks: list[CidPick] = []
        self.add(rows)

    def add(self, rows: Iterable[CidRow], owners: Iterable[str] = ()) -> None:
        """Rows read for ``owners`` (an owner with no rows is remembered as loaded too)."""
        for owner in owners:
            self.loaded.add(sql_key(owner))
        for row in rows:
            key = sql_key(row.owner)
            self.loaded.add(key)
            self._rows.setdefault(key, []).append(
                [row.owner, row.areacode, row.outbound_cid, row.call_count_today]
            )
            if row.group_type:
                self._types[key] = row.group_type

    def missing(self, owners: Iterable[str]) -> list[str]:
        return sorted({o for o in owners if o and sql_key(o) not in self.loaded})

    def group_type(self, group_id: str) -> str | None:
        return self._types.get(sql_key(group_id))

    def pick_group(self, group_id: str, phone_number: str, state: str) -> CidPick | None:
        """A CID group lookup: by the group's type AREACODE, STATE or NONE (spec 2.9.2)."""
        kind = self.group_type(group_id)
        if kind is None:
            return None  # no such group (or none of its rows is active): nothing chosen
        if "AREACODE" in kind:
            return self._pick(group_id, self._areacode_rows(group_id, phone_number), by_areacode=True)
        if "STATE" in kind:
            wanted = sql_key(state)
            rows = [r for r in self._rows.get(sql_key(group_id), []) if sql_key(r[1]) == wanted]
            return self._pick(group_id, rows, by_areacode=False)
        if "NONE" in kind:
            return self._pick(group_id, self._rows.get(sql_key(group_id), []), by_areacode=False, rotate=True)
        return None

    def pick_areacode(self, campaign_id: str, phone_number: str) -> CidPick | None:
        """``use_custom_cid=AREACODE``: the campaign's own areacode rows (spec 2.9.4d)."""
        return self._pick(campaign_id, self._areacode_rows(campaign_id, phone_number), by_areacode=True)

    def _areacode_rows(self, owner: str, phone_number: str) -> list[list[Any]]:
        prefixes = {sql_key(phone_number[:n]) for n in (2, 3, 4, 5)}
        return [r for r in self._rows.get(sql_key(owner), []) if sql_key(r[1]) in prefixes]

    def _pick(
        self, owner: str, rows: list[list[Any]], *, by_areacode: bool, rotate: bool = False
    ) -> CidPick | None:
        if not rows:
            return None

        # the Perl keeps the last row of ORDER BY [CAST(areacode) ASC,] call_count_today DESC
        def rank(row: list[Any]) -> tuple[int, int, str]:
            return (mysql_signed(row[1]) if by_areacode else 0, -row[3], row[2])

        chosen = max(rows, key=rank)
        chosen[3] += 1
        pick = CidPick(chosen[0], chosen[1], chosen[2], owner if rotate else None)
        self.picks.append(pick)
        return pick


@dataclass(frozen=True, slots=True)
class CallerIdChoice:
    ccid: str
    """The number sent as the CallerID number; '' when none qualified."""
    ccid_type: str
    picks: tuple[CidPick, ...] = ()


def choose_caller_id(
    campaign: CampaignDialSettings,
    lists: ListOverrides | None,
    lead: Lead,
    phone_number: str,
    pool: CidPool,
) -> CallerIdChoice:
    """Lines 996-1235: campaign CID, the list's CID group or CID, else custom, groups, areacode."""
    ccid, ccid_type = "", ""
    picks: list[CidPick] = []

    def group_cid(group: str) -> tuple[bool, str]:
        """(group row exists, the digits of the chosen outbound_cid)."""
        if pool.group_type(group) is None:
            return False, ""
        pick = pool.pick_group(group, phone_number, lead["state"])
        if pick is None:
            return True, ""
        picks.append(pick)
        return True, digits(pick.outbound_cid)

    if len(campaign.campaign_cid) >= CID_MIN_LENGTH:
        ccid, ccid_type = campaign.campaign_cid, "CAMPAIGN_CID"
    list_group = lists.cid_group_id if lists else ""
    override = lists.campaign_cid_override if lists else ""
    temp = ""
    if list_group and DISABLED_GROUP not in list_group:
        _, temp = group_cid(list_group)
    if len(override) >= CID_MIN_LENGTH or len(temp) >= CID_MIN_LENGTH:
        if len(temp) >= CID_MIN_LENGTH:
            ccid, ccid_type = temp, "LIST_CID_GROUP"
        else:
            ccid, ccid_type = override, "LIST_CID"
        return CallerIdChoice(ccid, ccid_type, tuple(picks))
    if "Y" in campaign.use_custom_cid:
        custom = digits(lead["security_phrase"])
        if len(custom) >= CID_MIN_LENGTH:
            ccid, ccid_type = custom, "CUSTOM_CID"
    group_set = False
    for group, kind in ((campaign.cid_group_id, "CID_GROUP"), (campaign.cid_group_id_two, "CID_GROUP_TWO")):
        if group_set or DISABLED_GROUP in group:
            continue
        found, temp = group_cid(group)
        if found and len(temp) >= CID_MIN_LENGTH:
            ccid, ccid_type, group_set = temp, kind, True
    if "AREACODE" in campaign.use_custom_cid and not group_set:
        pick = pool.pick_areacode(campaign.campaign_id, phone_number)
        if pick is not None:
            picks.append(pick)
            temp = digits(pick.outbound_cid)
            if len(temp) >= CID_MIN_LENGTH:
                ccid, ccid_type = temp, "AC_CID"
    return CallerIdChoice(ccid, ccid_type, tuple(picks))


# -- dial parameters --------------------------------------------------------------------------


def asterisk_minor(version: str) -> int:
    """``parse_asterisk_version``'s minor (lines 1745-1786): 1.x.y → x; 13.x → 13 (major forced to 1)."""
    parts = version.split("-")[0].split(".") if version else []
    first = perl_num(parts[0]) if parts else 0.0
    if first <= 1:
        return int(perl_num(parts[1])) if len(parts) > 1 else 0
    return int(first)


def routing_exten(exten: str, target: TargetServer) -> str:
    """Lines 1281-1287: Asterisk 12+ gets the target's routing_prefix (the ``major = 1`` test is an
    assignment, always true, spec 9.3.13)."""
    if asterisk_minor(target.asterisk_version) > 11:
        return target.routing_prefix + exten
    return exten


def dial_timeout_ms(campaign: CampaignDialSettings, override: float) -> float:
    """Lines 983-986: 60 s, the campaign's if > 4, the lead container's if > 4; in milliseconds."""
    seconds = float(DEFAULT_DIAL_TIMEOUT)
    if perl_num(campaign.dial_timeout) > TIMEOUT_FLOOR:
        seconds = perl_num(campaign.dial_timeout)
    if override > TIMEOUT_FLOOR:
        seconds = override
    return seconds * 1000


def dial_prefix(campaign: CampaignDialSettings, lists: ListOverrides | None) -> str:
    """Lines 987-988 and 1237: 9, the campaign's, the list's; any x or X means no prefix."""
    prefix = DEFAULT_DIAL_PREFIX
    if campaign.dial_prefix:
        prefix = campaign.dial_prefix
    if lists is not None and lists.dial_prefix:
        prefix = lists.dial_prefix
    return "" if "x" in prefix.lower() else prefix


def last_local_call_time(now: PassTime, server_gmt: float, gmt_offset_now: float) -> datetime:
    """Lines 877-887 with get_time_now (1651-1657): the host's local clock shifted to the lead's zone.

    ``LOCAL_GMT_OFF`` is the host's ``servers.local_gmt``, plus 1 when the host is in DST now; the
    shifted epoch is read back with the host's own local time (so a DST change inside the shift
    shows, as in the Perl's ``localtime``).
    """
    local_gmt_off = server_gmt + (1 if now.is_dst else 0)
    offset = local_gmt_off - gmt_offset_now
    shifted = now.epoch - (offset * 3600)
    return now.localtime(int(shifted))[0].replace(microsecond=0)


# -- the call ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundCall:
    """One OUTBALANCE call, every value computed; ``*_row`` give the rows exactly as stored."""

    campaign_id: str
    server_ip: str
    host_ip: str
    hopper_id: int
    lead_id: int
    list_id: int
    call_id: str
    phone_code: str
    phone_number: str
    alt_dial: str
    called_count: int
    called_since_last_reset: str
    """What is stored ('' for the Y10 overflow)."""
    cslr_overflow: bool
    last_local_call_time: datetime
    timeout_ms: float
    exten: str
    context: str
    dial_string: str
    ccid: str
    ccid_type: str
    cid_picks: tuple[CidPick, ...]
    queue_priority: str
    call_time: str
    """The pass's "now" as SQL text: vac call_time, vm entry_date, the logs' call_date."""
    tf_state: str = ""
    callback: Callback | None = None
    reschedule: str = ""
    corrections: tuple[RowCorrection, ...] = ()

    @property
    def channel(self) -> str:
        return f"Local/{self.dial_string}@{self.context}"

    @property
    def cid_string(self) -> str:
        return f'"{self.call_id}" <{self.ccid}>' if self.ccid else self.call_id

    @property
    def timeout_text(self) -> str:
        return perl_number_text(self.timeout_ms)

    @property
    def vdac_note(self) -> str:
        return (
            f"VDACnote: {self.campaign_id}|{self.lead_id}|{self.phone_code}|{self.phone_number}|{CALL_TYPE}"
            f"|{self.alt_dial}|{self.queue_priority}|{self.host_ip}|{self.ccid_type}"
        )

    # -- rows ---------------------------------------------------------------------------------
    def lead_update(self) -> dict[str, Any]:
        """``UPDATE vicidial_list SET ... WHERE lead_id`` (line 927; status unchanged)."""
        return {
            "called_since_last_reset": self.called_since_last_reset,
            "called_count": self.called_count,
            "user": "VDAD",
            "last_local_call_time": self.last_local_call_time.strftime("%Y-%m-%d %H:%M:%S"),
        }

    def daily_lead_row(self) -> dict[str, Any]:
        """vicidial_lead_call_daily_counts (line 932), list_id corrected (DAILY_COUNT_LIST_ID)."""
        return {"lead_id": self.lead_id, "modify_date": DB_NOW, "list_id": self.list_id}

    def daily_phone_row(self) -> dict[str, Any]:
        """vicidial_phone_number_call_daily_counts (line 934): the number dialed."""
        table = "vicidial_phone_number_call_daily_counts"
        return {"phone_number": fit(table, "phone_number", self.phone_number), "modify_date": DB_NOW}

    def auto_call_row(self) -> dict[str, Any]:
        """vicidial_auto_calls (line 1302; spec 5.5)."""
        table = "vicidial_auto_calls"
        low, high = QUEUE_PRIORITY_RANGE
        return {
            "server_ip": fit(table, "server_ip", self.server_ip),
            "campaign_id": fit(table, "campaign_id", self.campaign_id),
            "status": "SENT",
            "lead_id": self.lead_id,
            "callerid": fit(table, "callerid", self.call_id),
            "phone_code": fit(table, "phone_code", self.phone_code),
            "phone_number": fit(table, "phone_number", self.phone_number),
            "call_time": self.call_time,
            "call_type": CALL_TYPE,
            "alt_dial": fit(table, "alt_dial", self.alt_dial),
            "queue_priority": mysql_int(self.queue_priority, low, high),
        }

    def manager_row(self, status: str) -> dict[str, Any]:
        """vicidial_manager Originate (line 1295; spec 5.4): ``NEW`` for AST_manager_send.pl, or
        ``SENT`` when fillreactor sent it itself (the audit trail)."""
        table = "vicidial_manager"
        row: dict[str, Any] = {
            "uniqueid": "",
            "entry_date": self.call_time,
            "status": status,
            "response": "N",
            "server_ip": fit(table, "server_ip", self.server_ip),
            "channel": "",
            "action": "Originate",
            "callerid": fit(table, "callerid", self.call_id),
        }
        for column, value in self.command_lines():
            row[column] = fit(table, column, value)
        return row

    def command_lines(self) -> tuple[tuple[str, str], ...]:
        """The ``cmd_line_b``..``k`` values before they are cut to width."""
        return (
            ("cmd_line_b", f"Exten: {self.exten}"),
            ("cmd_line_c", f"Context: {self.context}"),
            ("cmd_line_d", f"Channel: {self.channel}"),
            ("cmd_line_e", "Priority: 1"),
            ("cmd_line_f", f"Callerid: {self.cid_string}"),
            ("cmd_line_g", f"Timeout: {self.timeout_text}"),
            ("cmd_line_h", ""),
            ("cmd_line_i", ""),
            ("cmd_line_j", ""),
            ("cmd_line_k", self.vdac_note),
        )

    def dial_log_row(self) -> dict[str, Any]:
        """vicidial_dial_log (line 1307)."""
        table = "vicidial_dial_log"
        return {
            "caller_code": fit(table, "caller_code", self.call_id),
            "lead_id": self.lead_id,
            "server_ip": fit(table, "server_ip", self.server_ip),
            "call_date": self.call_time,
            "extension": fit(table, "extension", self.exten),
            "channel": fit(table, "channel", self.channel),
            "timeout": mysql_int(self.timeout_text, 0, TIMEOUT_MAX),
            "outbound_cid": fit(table, "outbound_cid", self.cid_string),
            "context": fit(table, "context", self.context),
        }

    def lead_24hour_row(self) -> dict[str, Any]:
        """vicidial_lead_24hour_calls (line 1310)."""
        table = "vicidial_lead_24hour_calls"
        return {
            "lead_id": self.lead_id,
            "list_id": self.list_id,
            "call_date": DB_NOW,
            "phone_number": fit(table, "phone_number", self.phone_number),
            "phone_code": fit(table, "phone_code", self.phone_code),
            "state": fit(table, "state", self.tf_state),
            "call_type": "AUTO",
        }

    def dial_cid_log_row(self) -> dict[str, Any]:
        """vicidial_dial_cid_log (line 1313)."""
        table = "vicidial_dial_cid_log"
        return {
            "caller_code": fit(table, "caller_code", self.call_id),
            "call_date": self.call_time,
            "call_type": CALL_TYPE,
            "call_alt": fit(table, "call_alt", self.alt_dial),
            "outbound_cid": fit(table, "outbound_cid", self.ccid),
            "outbound_cid_type": fit(table, "outbound_cid_type", self.ccid_type),
        }

    def recent_ascb_row(self) -> dict[str, Any] | None:
        """vicidial_recent_ascb_calls (line 974), when the lead has a LIVE ANYONE callback."""
        if self.callback is None:
            return None
        table = "vicidial_recent_ascb_calls"
        callback = self.callback
        return {
            "call_date": DB_NOW,
            "callback_date": (
                callback.callback_time.strftime("%Y-%m-%d %H:%M:%S")
                if callback.callback_time is not None
                else ZERO_DATETIME
            ),
            "callback_id": callback.callback_id,
            "caller_code": fit(table, "caller_code", self.call_id),
            "lead_id": self.lead_id,
            "server_ip": fit(table, "server_ip", self.server_ip),
            "orig_status": fit(table, "orig_status", callback.lead_status),
            "reschedule": fit(table, "reschedule", self.reschedule),
            "list_id": callback.list_id or 0,
            "rescheduled": "U",
        }

    def ami_action(self) -> tuple[tuple[str, str], ...]:
        """The Originate as fillreactor sends it over AMI: the stored command lines (so the audit row
        is what was sent), plus ``Async`` and ``ActionID`` = the call id. No VDACnote: it is the
        database copy the answer AGI reads, and Asterisk ignores it."""
        row = self.manager_row("SENT")
        headers: list[tuple[str, str]] = [("Action", "Originate"), ("ActionID", self.call_id)]
        for column in ("cmd_line_b", "cmd_line_c", "cmd_line_d", "cmd_line_e", "cmd_line_f", "cmd_line_g"):
            name, _, value = str(row[column]).partition(": ")
            headers.append((name, value))
        headers.append(("Async", "true"))
        return tuple(headers)


def prepare_call(
    *,
    hopper: HopperEntry,
    lead: Lead,
    lists: ListOverrides | None,
    campaign: CampaignDialSettings,
    host: FillHost,
    target: TargetServer,
    now: PassTime,
    number: DialedNumber,
    pool: CidPool,
    tf_state: str = "",
    callback: Callback | None = None,
) -> OutboundCall:
    """Every value of the call for one claimed lead (see the module rules for the order)."""
    override = container_timeout(campaign.container_entry, lead) if campaign.uses_lead_container else 0.0
    called_count = min(int(perl_num(lead["called_count"])) + 1, CALLED_COUNT_MAX)
    cslr_perl, cslr = next_called_since_last_reset(lead["called_since_last_reset"])
    llct = last_local_call_time(now, host.local_gmt, perl_num(lead["gmt_offset_now"]))
    call_id = build_call_id(now.local, lead.lead_id)
    wants_callback = campaign.reschedules_callbacks or hopper.source == "C"
    exten = campaign.campaign_vdad_exten or host.answer_transfer_agent
    cid = choose_caller_id(campaign, lists, lead, number.phone_number, pool)
    prefix = dial_prefix(campaign, lists)
    code = "" if "Y" in campaign.omit_phone_code else number.phone_code
    corrections = (*number.corrections, RowCorrection.DAILY_COUNT_LIST_ID)
    return OutboundCall(
        campaign_id=campaign.campaign_id,
        server_ip=target.server_ip,
        host_ip=host.server_ip,
        hopper_id=hopper.hopper_id,
        lead_id=lead.lead_id,
        list_id=min(lead.list_id, BIGINT_UNSIGNED_MAX),
        call_id=call_id,
        phone_code=number.phone_code,
        phone_number=number.phone_number,
        alt_dial=number.alt_dial,
        called_count=called_count,
        called_since_last_reset=cslr,
        cslr_overflow=cslr_perl != cslr,
        last_local_call_time=llct,
        timeout_ms=dial_timeout_ms(campaign, override),
        exten=routing_exten(exten, target),
        context=host.context,
        dial_string=f"{prefix}{code}{number.phone_number}",
        ccid=cid.ccid,
        ccid_type=cid.ccid_type,
        cid_picks=cid.picks,
        queue_priority=campaign.queue_priority,
        call_time=now.sql,
        tf_state=tf_state,
        callback=callback if wants_callback else None,
        reschedule=campaign.scheduled_callbacks_auto_reschedule,
        corrections=corrections,
    )


def phone_code_key(phone_code: str, phone_number: str) -> tuple[str, str]:
    """The ``vicidial_phone_codes`` lookup of the 24-hour limit (line 1261): code and first 3 digits."""
    return phone_code, phone_number[:3]
