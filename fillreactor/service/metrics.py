"""Prometheus metrics: a collector that reads the service's state at scrape time, on 127.0.0.1 only.

Rules this module keeps:

* Nothing on the hot path: gauges and counters are read from the service when Prometheus scrapes
  (``ServiceCollector.collect``: ``service.status()``, the links' counters, the database's
  statement counts), never updated per event. The only per-call work is the reaction-latency
  histogram, fed by ``service.latency.observers`` (one ``observe`` per Originate) and the plans'
  need, kept by a decision observer (one dict write per campaign planned).
* The endpoint is served by the service's own event loop (``MetricsServer``, a few lines of HTTP
  over asyncio), not by prometheus_client's thread: a scrape then reads the service's state
  between two steps of the loop, never while the loop is changing it. It binds 127.0.0.1 only; a
  port that cannot be bound is one error line and the service goes on without metrics.
* Every metric is in ``METRICS`` (name -> help): the Grafana dashboard shipped beside this module
  uses only those names (a test checks it), and README lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fillreactor import __version__
from fillreactor.service.status import CampaignNeeds, status_payload

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REQUEST_LIMIT = 8192
REQUEST_TIMEOUT = 5.0
# reaction latency, trigger input read to Originate written: milliseconds matter, seconds are a fault
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
LINK_STATES = ("connecting", "resyncing", "ready", "shutting_down", "down", "stopped", "none")
BREAKER_STATES = ("closed", "half-open", "open")
BREAKER_CHANGES = ("opened", "half-open", "probe", "probe lost", "closed", "reopened")
ORIGINATE_RESULTS = ("queued", "error", "not_sent", "timeout", "link_lost")
CALL_OUTCOMES = {
    "planned": "calls_planned",
    "sent": "calls_sent",
    "refused": "calls_refused",
    "not_placed": "calls_not_placed",
}

METRICS: dict[str, str] = {
    "fillreactor_info": "fillreactor's version and how it runs (labels), always 1",
    "fillreactor_dialing": "1 while this instance dials (leader, database reachable, not stopping)",
    "fillreactor_leader": "1 while this instance holds the leader lock",
    "fillreactor_database_up": "1 while the database answers",
    "fillreactor_server_usage": "lines used on a server: live dialer calls + reservations",
    "fillreactor_server_live_calls": "live dialer calls on a server by call id family (V, M, Y, ...)",
    "fillreactor_server_reservations": "originates sent to a server whose channels are not seen yet",
    "fillreactor_server_limit": "servers.max_vicidial_trunks",
    "fillreactor_server_balance_threshold": "a balance server's lines usable by FILL: the limit less "
    "servers.balance_trunks_offlimits",
    "fillreactor_server_dialable": "1 when the server may receive FILL calls now",
    "fillreactor_server_link_up": "1 when the server's AMI link is logged in and resynced",
    "fillreactor_server_link_state": "1 for the AMI link's current state",
    "fillreactor_server_reconnects_total": "AMI reconnects (sessions after the first)",
    "fillreactor_server_resyncs_total": "CoreShowChannels resyncs",
    "fillreactor_server_ami_events_total": "AMI events read from the server",
    "fillreactor_server_breaker_state": "1 for the state of the server's carrier circuit breaker "
    "(closed, half-open, open)",
    "fillreactor_server_breaker_transitions_total": "circuit breaker transitions of the server, by change",
    "fillreactor_campaign_shortage": "a campaign's trunk shortage over all its servers",
    "fillreactor_campaign_need": "the calls the last plan found a campaign needs (shortage less in flight)",
    "fillreactor_campaign_fill_in_flight": "fillreactor's own OUTBALANCE calls live or reserved",
    "fillreactor_originates_total": "Originate actions by Asterisk's answer",
    "fillreactor_calls_total": "FILL calls by outcome: planned, sent, refused, not placed",
    "fillreactor_plans_total": "plans made",
    "fillreactor_sql_statements_total": "SQL statements by kind (read, write)",
    "fillreactor_sql_errors_total": "SQL statements that failed",
    "fillreactor_sql_retries_total": "SQL statements retried after a lost connection",
    "fillreactor_reaction_latency_seconds": "trigger event received to Originate written",
}


class ServiceCollector(Collector):
    """Reads a ``ReactorService`` at scrape time (see the module rules)."""

    def __init__(self, service: Any, needs: CampaignNeeds) -> None:
        self.service = service
        self.needs = needs

    def describe(self) -> list[Metric]:
        return []  # nothing is read before the first scrape

    def collect(self) -> Iterator[Metric]:
        service = self.service
        status = status_payload(service, self.needs)
        settings = service.settings
        info = GaugeMetricFamily(
            "fillreactor_info",
            METRICS["fillreactor_info"],
            labels=["version", "shortage_source", "dial_via", "trigger"],
        )
        info.add_metric([__version__, settings.shortage_source, settings.dial_via, settings.trigger], 1)
        yield info
        for name, value in (
            ("fillreactor_dialing", status["dialing"]),
            ("fillreactor_leader", status["leader"]),
            ("fillreactor_database_up", service.database_ok),
        ):
            yield GaugeMetricFamily(name, METRICS[name], value=1 if value else 0)
        yield from self._servers(status["servers"])
        yield from self._campaigns(status["campaigns"])
        yield from self._counters(status["counters"])

    def _servers(self, servers: list[dict[str, Any]]) -> Iterator[Metric]:
        def gauge(name: str, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, METRICS[name], labels=["server", *labels])

        usage, calls, reserved = (
            gauge("fillreactor_server_usage"),
            gauge("fillreactor_server_live_calls", "family"),
            gauge("fillreactor_server_reservations"),
        )
        limit, threshold = gauge("fillreactor_server_limit"), gauge("fillreactor_server_balance_threshold")
        dialable, up, state = (
            gauge("fillreactor_server_dialable"),
            gauge("fillreactor_server_link_up"),
            gauge("fillreactor_server_link_state", "state"),
        )
        stats = self.service.links.stats()
        reconnects = CounterMetricFamily(
            "fillreactor_server_reconnects", METRICS["fillreactor_server_reconnects_total"], labels=["server"]
        )
        resyncs = CounterMetricFamily(
            "fillreactor_server_resyncs", METRICS["fillreactor_server_resyncs_total"], labels=["server"]
        )
        events = CounterMetricFamily(
            "fillreactor_server_ami_events", METRICS["fillreactor_server_ami_events_total"], labels=["server"]
        )
        for server in servers:
            ip = server["server_ip"]
            usage.add_metric([ip], server["usage"])
            for family, count in sorted(server["families"].items()):
                calls.add_metric([ip, family], count)
            reserved.add_metric([ip], server["reservations"])
            if server["limit"] is not None:
                limit.add_metric([ip], server["limit"])
            if server.get("threshold") is not None:
                threshold.add_metric([ip], server["threshold"])
            dialable.add_metric([ip], 1 if server["dialable"] else 0)
            up.add_metric([ip], 1 if server["link"] == "ready" else 0)
            for name in LINK_STATES:
                state.add_metric([ip, name], 1 if server["link"] == name else 0)
            link = stats.get(ip)
            if link is not None:
                reconnects.add_metric([ip], float(link.get("reconnects", 0)))
                resyncs.add_metric([ip], float(link.get("resyncs", 0)))
                events.add_metric([ip], float(link.get("events_total", 0)))
        breaker_state = gauge("fillreactor_server_breaker_state", "state")
        breaker_changes = CounterMetricFamily(
            "fillreactor_server_breaker_transitions",
            METRICS["fillreactor_server_breaker_transitions_total"],
            labels=["server", "change"],
        )
        for server in servers:
            breaker = server.get("breaker")
            if breaker is None:  # --no-circuit-breaker
                continue
            ip = server["server_ip"]
            for name in BREAKER_STATES:
                breaker_state.add_metric([ip, name], 1 if breaker["state"] == name else 0)
            counts = breaker.get("transitions") or {}
            for name in BREAKER_CHANGES:
                breaker_changes.add_metric([ip, name], float(counts.get(name, 0)))
        yield from (breaker_state, breaker_changes)
        yield from (usage, calls, reserved, limit, threshold, dialable, up, state)
        yield from (reconnects, resyncs, events)

    def _campaigns(self, campaigns: list[dict[str, Any]]) -> Iterator[Metric]:
        families = {
            key: GaugeMetricFamily(
                f"fillreactor_campaign_{key}", METRICS[f"fillreactor_campaign_{key}"], labels=["campaign"]
            )
            for key in ("shortage", "need", "fill_in_flight")
        }
        for campaign in campaigns:
            for key, family in families.items():
                family.add_metric([campaign["campaign_id"]], campaign.get(key) or 0)
        yield from families.values()

    def _counters(self, counters: dict[str, int]) -> Iterator[Metric]:
        originates = CounterMetricFamily(
            "fillreactor_originates", METRICS["fillreactor_originates_total"], labels=["result"]
        )
        for result in ORIGINATE_RESULTS:
            originates.add_metric([result], counters.get(f"originate_{result}", 0))
        yield originates
        calls = CounterMetricFamily(
            "fillreactor_calls", METRICS["fillreactor_calls_total"], labels=["outcome"]
        )
        for outcome, key in CALL_OUTCOMES.items():
            calls.add_metric([outcome], counters.get(key, 0))
        yield calls
        yield CounterMetricFamily(
            "fillreactor_plans", METRICS["fillreactor_plans_total"], value=counters.get("plans", 0)
        )
        database = self.service.database
        if database is not None:
            counts = database.counts
            statements = CounterMetricFamily(
                "fillreactor_sql_statements", METRICS["fillreactor_sql_statements_total"], labels=["kind"]
            )
            statements.add_metric(["read"], counts.reads)
            statements.add_metric(["write"], counts.writes)
            yield statements
            yield CounterMetricFamily(
                "fillreactor_sql_errors", METRICS["fillreactor_sql_errors_total"], value=counts.errors
            )
            yield CounterMetricFamily(
                "fillreactor_sql_retries", METRICS["fillreactor_sql_retries_total"], value=counts.retries
            )


def build_registry(service: Any, needs: CampaignNeeds) -> CollectorRegistry:
    """A registry of its own (never the global one): the collector and the latency histogram."""
    registry = CollectorRegistry()
    registry.register(ServiceCollector(service, needs))
    histogram = Histogram(
        "fillreactor_reaction_latency_seconds",
        METRICS["fillreactor_reaction_latency_seconds"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    service.latency.observers.append(histogram.observe)
    return registry


class MetricsServer:
    """``GET /metrics`` on 127.0.0.1:<port>, answered from the event loop (see the module rules)."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str = HOST) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self.scrapes = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> bool:
        """Bind; False (one error line) when the port cannot be bound."""
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as error:
            log.error(
                "metrics: cannot listen on %s:%d (%s); going on without metrics",
                self.host,
                self.port,
                error.strerror or error,
            )
            return False
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return True

    async def serve(self) -> None:
        """Start and serve until cancelled (a ``service.extra_tasks`` entry)."""
        if self._server is None and not await self.start():
            return
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            request = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if (
                len(request) >= 2
                and request[0] in ("GET", "HEAD")
                and request[1].split("?")[0] in ("/metrics", "/")
            ):
                self.scrapes += 1
                body = generate_latest(self.registry)
                self._reply(
                    writer, "200 OK", CONTENT_TYPE_LATEST, b"" if request[0] == "HEAD" else body, len(body)
                )
            else:
                body = b"fillreactor: only GET /metrics here\n"
                self._reply(writer, "404 Not Found", "text/plain; charset=utf-8", body, len(body))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that sends nothing useful gets nothing
        except Exception:  # a scrape must never hurt the service
            log.exception("metrics: answering a scrape failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    def _reply(
        writer: asyncio.StreamWriter, status: str, content_type: str, body: bytes, length: int
    ) -> None:
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + body)


METRICS_BEGIN = ".. BEGIN METRICS TABLE (made by fillreactor.service.metrics.metrics_table_rst: do not edit)"
METRICS_END = ".. END METRICS TABLE"
LABELS = {
    "fillreactor_info": "version, shortage_source, dial_via, trigger",
    "fillreactor_server_live_calls": "server, family",
    "fillreactor_server_link_state": "server, state",
    "fillreactor_originates_total": "result",
    "fillreactor_calls_total": "outcome",
    "fillreactor_sql_statements_total": "kind",
}


def metrics_table_rst() -> str:
    """README's table of every metric (name, labels, meaning)."""
    lines = [
        METRICS_BEGIN,
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 40 20 40",
        "",
        "   * - metric",
        "     - labels",
        "     - what it is",
    ]
    for name, text in METRICS.items():
        if name in LABELS:
            labels = LABELS[name]
        elif name.startswith("fillreactor_server_"):
            labels = "server"
        elif name.startswith("fillreactor_campaign_"):
            labels = "campaign"
        elif name == "fillreactor_reaction_latency_seconds":
            labels = "le (a histogram: ``_bucket``, ``_sum``, ``_count``)"
        else:
            labels = "(none)"
        lines += [f"   * - ``{name}``", f"     - {labels}", f"     - {text}"]
    lines += ["", METRICS_END]
    return "\n".join(lines) + "\n"
