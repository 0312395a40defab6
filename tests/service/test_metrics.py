"""Metrics: scraped from a running instance (serve() with --metrics-port), on 127.0.0.1 only; the
dashboard uses only metrics that exist.

Expected values: the cluster of service_helpers (spec 4.4, 2.4, by hand): A uses its 20 trunks,
campaign short by 10, B takes 8 (threshold 30 - 22 = 8), C 2; every one of the 10 Originates is
answered "queued" by the simulator. The latency histogram holds the service's own samples (one per
plan entry's first call, reactor/service.py ``_Origins``), fed through ``latency.observers``.
"""

from __future__ import annotations

import asyncio
import json
import re
from importlib import resources

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from service_helpers import CAMPAIGN, A, B, C, eventually, free_port, running_service

from fillreactor.service.metrics import METRICS, MetricsServer

pytestmark = pytest.mark.timeout(60)


async def http_get(port: int, path: str = "/metrics") -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return head, body


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def test_a_scrape_of_a_running_instance(database_dsn, seed, tmp_path) -> None:
    port = free_port()
    async with running_service(database_dsn, seed, tmp_path, metrics_port=port) as running:
        service = running.service
        model = service.core.model
        await eventually(
            lambda: (
                service.counters["originate_queued"] == 10
                and (model.usage(A), model.usage(B), model.usage(C)) == (20, 8, 2)
            ),
            what="10 Originates queued, A's own 20 calls up",
        )
        head, body = await http_get(port)
        assert head.startswith("HTTP/1.1 200 OK") and "Content-Type: text/plain; version=" in head
        found = samples(body)
        for server, usage, limit in ((A, 20, 20), (B, 8, 30), (C, 2, 30)):
            assert value(found, "fillreactor_server_usage", server=server) == usage
            assert value(found, "fillreactor_server_limit", server=server) == limit
            assert value(found, "fillreactor_server_link_up", server=server) == 1
            assert value(found, "fillreactor_server_link_state", server=server, state="ready") == 1
            assert value(found, "fillreactor_server_link_state", server=server, state="down") == 0
            assert value(found, "fillreactor_server_reconnects_total", server=server) == 0
            assert value(found, "fillreactor_server_resyncs_total", server=server) >= 1
        assert value(found, "fillreactor_server_balance_threshold", server=B) == 8
        assert value(found, "fillreactor_server_balance_threshold", server=C) == 30
        assert value(found, "fillreactor_server_live_calls", server=A, family="V") == 20
        # B's 8 calls are live or still reservations: together they are its usage
        assert (
            found.get(("fillreactor_server_live_calls", (("family", "V"), ("server", B))), 0)
            + value(found, "fillreactor_server_reservations", server=B)
        ) == 8
        assert value(found, "fillreactor_campaign_shortage", campaign=CAMPAIGN) == 10
        assert value(found, "fillreactor_campaign_fill_in_flight", campaign=CAMPAIGN) == 10
        assert value(found, "fillreactor_originates_total", result="queued") == 10
        assert value(found, "fillreactor_originates_total", result="error") == 0
        assert value(found, "fillreactor_calls_total", outcome="sent") == 10
        samples_taken = list(service.latency.samples)
        assert samples_taken  # at least the B and C entries of the first plan
        assert value(found, "fillreactor_reaction_latency_seconds_count") == len(samples_taken)
        assert value(found, "fillreactor_reaction_latency_seconds_bucket", le="+Inf") == len(samples_taken)
        assert abs(value(found, "fillreactor_reaction_latency_seconds_sum") - sum(samples_taken)) < 1e-9
        assert value(found, "fillreactor_dialing") == 1 and value(found, "fillreactor_leader") == 1
        assert value(found, "fillreactor_sql_statements_total", kind="read") > 0
        assert value(found, "fillreactor_sql_statements_total", kind="write") > 0
        assert value(found, "fillreactor_sql_errors_total") == 0
        # every metric of the METRICS table is served, and nothing else
        names = {re.sub(r"_(bucket|count|sum|created)$", "", name) for name, _ in found}
        assert names == set(METRICS)
        head, _ = await http_get(port, "/other")
        assert head.startswith("HTTP/1.1 404")


async def test_the_endpoint_binds_loopback_only_and_a_busy_port_is_not_fatal(caplog) -> None:
    server = MetricsServer(CollectorRegistry(), 0)
    assert await server.start()
    assert server._server is not None
    assert {sock.getsockname()[0] for sock in server._server.sockets} == {"127.0.0.1"}
    busy = MetricsServer(CollectorRegistry(), server.port)
    assert not await busy.start()
    assert "going on without metrics" in caplog.text
    await server.close()


def test_the_dashboard_uses_only_metrics_that_exist() -> None:
    text = resources.files("fillreactor.service").joinpath("grafana-dashboard.json").read_text()
    dashboard = json.loads(text)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {
        re.sub(r"_(bucket|count|sum)$", "", m) for e in exprs for m in re.findall(r"fillreactor_[a-z_]+", e)
    }
    assert used <= set(METRICS), used - set(METRICS)
    # what the issue asks to see
    for name in (
        "fillreactor_server_live_calls",
        "fillreactor_server_reservations",
        "fillreactor_server_limit",
        "fillreactor_server_link_up",
        "fillreactor_server_reconnects_total",
        "fillreactor_server_resyncs_total",
        "fillreactor_campaign_shortage",
        "fillreactor_campaign_need",
        "fillreactor_campaign_fill_in_flight",
        "fillreactor_originates_total",
        "fillreactor_reaction_latency_seconds",
        "fillreactor_sql_statements_total",
        "fillreactor_sql_errors_total",
    ):
        assert name in used, name
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
