"""``fillreactor status``: what the running instance sees, asked over its unix socket.

Rules this module keeps:

* **The service side** (``StatusServer``, started from ``serve()``) listens on
  ``settings.status_socket`` (mode 0660, directory created if missing). Each connection gets one
  JSON document (``status_payload``: ``service.status()`` plus each balance server's threshold
  and each campaign's need from the last plan) and a newline, then the socket is closed; nothing
  is read from the client. A stale socket file (nobody answers) is replaced; one where another
  instance answers is left alone. A socket that cannot be made is one warning line; the service
  goes on without it.
* **The client** (``fillreactor status``) connects, reads one document (bounded in size and time)
  and prints it as tables with bars, ``--json`` as it came, ``--watch`` again every few seconds.
  No instance answering is exit 1 with one line saying where it asked.
* Bars (``usage_bar``): one cell per ``limit / width`` lines; ``#`` a live call, ``+`` a
  reservation (sent, channels not seen yet), ``.`` a free line, ``|`` the balance threshold
  (``limit - balance_trunks_offlimits``: FILL puts no call above it), ``!`` at the end when the
  server is over its limit. Rendering is pure: the same document always gives the same text.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fillreactor import __version__

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_UNREACHABLE = 1
EXIT_USAGE = 2
READ_LIMIT = 16 << 20
READ_TIMEOUT = 5.0
BAR_WIDTH = 30
SOCKET_MODE = 0o660


# -- the service side ------------------------------------------------------------------------------
class CampaignNeeds:
    """A decision observer: each campaign's need (shortage less balance calls in flight) at its last plan."""

    def __init__(self) -> None:
        self.needed: dict[str, int] = {}

    def __call__(self, decision: Any) -> None:
        for campaign in decision.plan.campaigns:
            self.needed[campaign.campaign] = max(0, campaign.needed)


def status_payload(service: Any, needs: CampaignNeeds | None = None) -> dict[str, Any]:
    """``service.status()`` with each server's balance threshold and each campaign's need."""
    status = service.status()
    snapshot = service.core.snapshot
    configs = snapshot.servers if snapshot is not None else {}
    for server in status["servers"]:
        config = configs.get(server["server_ip"])
        server["offlimits"] = config.balance_trunks_offlimits if config is not None else 0
        server["threshold"] = (
            max(0, config.max_vicidial_trunks - config.balance_trunks_offlimits)
            if config is not None and config.balance_active
            else None
        )
    for campaign in status["campaigns"]:
        campaign["need"] = needs.needed.get(campaign["campaign_id"]) if needs is not None else None
    status["version"] = __version__
    status["pid"] = os.getpid()
    return status


class StatusServer:
    """The unix socket ``fillreactor status`` asks (see the module rules)."""

    def __init__(self, path: str | Path, payload: Callable[[], dict[str, Any]]) -> None:
        self.path = Path(path)
        self.payload = payload
        self.answered = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() or self.path.is_symlink():
                if not stat.S_ISSOCK(self.path.lstat().st_mode):
                    log.warning(
                        "status socket %s: a file that is not a socket is there; no status socket", self.path
                    )
                    return False
                if await _answers(self.path):
                    log.warning(
                        "status socket %s: another instance answers there; no status socket", self.path
                    )
                    return False
                self.path.unlink()
            self._server = await asyncio.start_unix_server(self._handle, str(self.path))
            os.chmod(self.path, SOCKET_MODE)
        except OSError as error:
            log.warning(
                "status socket %s cannot be made (%s); `fillreactor status` will not answer",
                self.path,
                error.strerror or error,
            )
            return False
        log.info("status socket %s", self.path)
        return True

    async def serve(self) -> None:
        """Start and answer until cancelled (a ``service.extra_tasks`` entry)."""
        if self._server is None and not await self.start():
            return
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _handle(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = json.dumps(self.payload(), sort_keys=True, default=str).encode() + b"\n"
            writer.write(data)
            await writer.drain()
            self.answered += 1
        except ConnectionError:
            pass
        except Exception:  # a status request must never hurt the service
            log.exception("status: answering failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _answers(path: Path) -> bool:
    try:
        async with asyncio.timeout(1.0):
            _reader, writer = await asyncio.open_unix_connection(str(path))
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


# -- the client ------------------------------------------------------------------------------------
class Unreachable(Exception):
    """No instance answered on the socket (the message says where and why)."""


def ask(path: str | Path, timeout: float = READ_TIMEOUT) -> dict[str, Any]:
    """One status document from the instance listening on ``path``."""
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            while True:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > READ_LIMIT:
                    raise Unreachable(f"{path}: the answer is larger than {READ_LIMIT} bytes")
                chunks.append(chunk)
    except FileNotFoundError:
        raise Unreachable(
            f"no fillreactor instance answers on {path} (no such socket: is it running?)"
        ) from None
    except TimeoutError:
        raise Unreachable(f"no answer on {path} within {timeout:g} s") from None
    except OSError as error:
        raise Unreachable(f"no fillreactor instance answers on {path} ({error.strerror or error})") from None
    try:
        document = json.loads(b"".join(chunks))
    except ValueError as error:
        raise Unreachable(f"{path}: the answer is not a status document ({error})") from None
    if not isinstance(document, dict) or "servers" not in document:
        raise Unreachable(f"{path}: the answer is not a status document")
    return document


def usage_bar(
    usage: int, reservations: int, limit: int | None, threshold: int | None = None, width: int = BAR_WIDTH
) -> str:
    """``[####++|.....]`` (see the module rules); ``[?...]`` without a limit."""
    if not limit or limit <= 0:
        return "[" + "?" * width + "]"
    live = max(0, usage - reservations)

    def cells(lines: int) -> int:
        return min(width, round(lines * width / limit))

    used = cells(live + max(0, reservations))
    live_cells = min(used, cells(live))
    bar = ["#"] * live_cells + ["+"] * (used - live_cells) + ["."] * (width - used)
    if threshold is not None and 0 < threshold < limit:
        mark = cells(threshold)
        if 0 < mark < width:
            bar.insert(mark, "|")
    return "[" + "".join(bar) + "]" + ("!" if usage > limit else "")


def render(status: dict[str, Any], *, width: int = BAR_WIDTH) -> str:
    """The text of ``fillreactor status`` for one document."""
    lines: list[str] = []
    state = "dialing" if status.get("dialing") else f"NOT dialing ({status.get('why_not_dialing') or '?'})"
    lines.append(
        f"fillreactor {status.get('version', '?')} (pid {status.get('pid', '?')}): {state}; "
        f"{'leader' if status.get('leader') else 'standby'}; shortage {status.get('shortage_source')}, "
        f"dial via {status.get('dial_via')}, trigger {status.get('trigger')}"
    )
    latency = status.get("latency_ms") or {}
    if latency.get("samples"):
        lines.append(
            f"reaction latency p50 {latency.get('p50')} ms, p99 {latency.get('p99')} ms "
            f"({latency['samples']} calls)"
        )
    lines.append("")
    servers = status.get("servers") or []
    lines.append(f"{'server':<15} {'link':<13} {'lines used':<{width + 3}} {'used/limit':>10}  calls")
    for server in servers:
        usage, reserved, limit = server.get("usage", 0), server.get("reservations", 0), server.get("limit")
        threshold = server.get("threshold")
        families = " ".join(f"{k} {v}" for k, v in sorted((server.get("families") or {}).items()) if v)
        notes = []
        if reserved:
            notes.append(f"{reserved} reserved")
        if server.get("balance"):
            notes.append(f"balance, threshold {threshold}" if threshold is not None else "balance")
        breaker = server.get("breaker") or {}
        if breaker.get("state") == "open":
            notes.append(f"breaker open, probe in {breaker.get('half_open_in_s')} s")
        elif breaker.get("state") == "half-open":
            notes.append(f"breaker half-open, probe {breaker.get('probe') or 'not sent yet'}")
        if not server.get("dialable"):
            notes.append("not dialable")
        link = server.get("link", "?")
        used = f"{usage}/{limit if limit is not None else '?'}"
        bar = usage_bar(usage, reserved, limit, threshold, width)
        text = f"{server.get('server_ip', '?'):<15} {link:<13} {bar:<{width + 3}} {used:>10}"
        text += f"  {families or '-'}"
        if notes:
            text += "  (" + ", ".join(notes) + ")"
        lines.append(text.rstrip())
    if not servers:
        lines.append("(no servers yet: the first snapshot has not been read)")
    lines.append("")
    campaigns = status.get("campaigns") or []
    lines.append(f"{'campaign':<10} {'shortage':>8} {'need':>6} {'fill in flight':>14}  short on")
    for campaign in campaigns:
        need = campaign.get("need")
        short_on = ", ".join(f"{ip} {n}" for ip, n in sorted((campaign.get("short_on") or {}).items()))
        lines.append(
            f"{campaign.get('campaign_id', '?'):<10} {campaign.get('shortage', 0):>8} "
            f"{'-' if need is None else need:>6} {campaign.get('fill_in_flight', 0):>14}"
            f"  {short_on or '-'}".rstrip()
        )
    if not campaigns:
        lines.append("(no campaign is short or filling)")
    shadow = status.get("shadow")
    if shadow:
        lead = shadow.get("lead_ms") or {}
        lines.append("")
        lines.append(
            f"shadow: the Perl placed {shadow.get('perl_placed', 0)}, fillreactor asked "
            f"{shadow.get('fill_asked', 0)} ({shadow.get('fill_open', 0)} open), matched "
            f"{shadow.get('matched', 0)} (lead p50 {lead.get('p50')} ms, p99 {lead.get('p99')} ms), "
            f"fillreactor only {sum((shadow.get('fill_only') or {}).values())}, Perl only "
            f"{sum((shadow.get('perl_only') or {}).values())}, over limit {shadow.get('over_limit_s', 0)} s"
        )
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--socket",
        default=None,
        metavar="PATH",
        help="the instance's status socket (default: status_socket of --config)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="fillreactor's settings file (default /etc/fillreactor.conf if present)",
    )
    parser.add_argument("--json", action="store_true", help="print the status document as JSON")
    parser.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=2.0,
        default=None,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until Ctrl-C",
    )
    parser.add_argument(
        "--count", type=int, default=None, metavar="N", help="with --watch: stop after N refreshes"
    )
    parser.add_argument(
        "--width", type=int, default=BAR_WIDTH, metavar="CELLS", help="bar width (default %(default)s)"
    )


def socket_path(args: argparse.Namespace) -> str:
    if args.socket:
        return str(args.socket)
    from fillreactor.service.settings import load_settings

    settings = load_settings(Path(args.config) if args.config else None, config_required=bool(args.config))
    return settings.status_socket


def run(args: argparse.Namespace) -> int:
    from fillreactor.astguiclient import ConfigError

    if args.watch is not None and args.watch <= 0:
        print("fillreactor status: --watch needs a number of seconds above 0", file=sys.stderr)
        return EXIT_USAGE
    if args.count is not None and args.count < 1:
        print("fillreactor status: --count needs 1 or more", file=sys.stderr)
        return EXIT_USAGE
    if not 5 <= args.width <= 200:
        print("fillreactor status: --width must be 5-200", file=sys.stderr)
        return EXIT_USAGE
    try:
        path = socket_path(args)
    except ConfigError as error:
        for line in str(error).splitlines():
            print(f"fillreactor status: {line}", file=sys.stderr)
        return EXIT_USAGE
    shown = 0
    clear = args.watch is not None and sys.stdout.isatty() and not args.json
    while True:
        try:
            document = ask(path)
        except Unreachable as error:
            print(f"fillreactor status: {error}", file=sys.stderr)
            return EXIT_UNREACHABLE
        text = (
            json.dumps(document, sort_keys=True) + "\n" if args.json else render(document, width=args.width)
        )
        if clear:
            sys.stdout.write("\x1b[H\x1b[2J")
        sys.stdout.write(text)
        sys.stdout.flush()
        shown += 1
        if args.watch is None or (args.count is not None and shown >= args.count):
            return EXIT_OK
        if not clear:
            sys.stdout.write("\n")
        time.sleep(args.watch)
