"""Shadow mode's figures as Prometheus metrics: one collector read at scrape time.

Rules this module keeps:

* ``SHADOW_METRICS`` is the one table of the metrics (name -> (type, labels, help)); the
  collector yields exactly these names, from ``ShadowRunner.metric_samples()`` (no state of its
  own), and a test checks that every sample's name and labels are in the table.
* Counters are named with ``_total`` here as in the exposition; ``prometheus_client`` takes the
  family name without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from fillreactor.shadow.runner import ShadowRunner

PAIR = ("campaign", "server")
SHADOW_METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "fillreactor_shadow_perl_calls_total": ("counter", PAIR, "OUTBALANCE calls the Perl FILL placed"),
    "fillreactor_shadow_fill_asked_total": ("counter", PAIR, "calls fillreactor's plans asked for"),
    "fillreactor_shadow_matched_total": ("counter", PAIR, "calls fillreactor asked for that the Perl placed"),
    "fillreactor_shadow_lead_seconds": (
        "gauge",
        (*PAIR, "quantile"),
        "fillreactor's plan to the Perl's row, nearest-rank quantile over the matches",
    ),
    "fillreactor_shadow_fill_only_total": (
        "counter",
        (*PAIR, "reason"),
        "calls fillreactor wanted that the Perl never placed, by reason",
    ),
    "fillreactor_shadow_perl_only_total": (
        "counter",
        (*PAIR, "reason"),
        "calls the Perl placed that fillreactor would not have, by reason",
    ),
    "fillreactor_shadow_open_wants": (
        "gauge",
        PAIR,
        "calls fillreactor wants now that the Perl has not placed",
    ),
    "fillreactor_shadow_correction_calls_total": (
        "counter",
        ("correction",),
        "calls that differ by a named correction of the planner",
    ),
    "fillreactor_shadow_over_limit_seconds_total": (
        "counter",
        ("server",),
        "seconds a server spent over max_vicidial_trunks while carrying Perl FILL calls",
    ),
    "fillreactor_shadow_perl_calls_live": (
        "gauge",
        ("server",),
        "the Perl FILL's calls live on a server now",
    ),
    "fillreactor_shadow_balance_trunk_fill": (
        "gauge",
        ("campaign", "source"),
        "balance_trunk_fill: the Perl's stored value, fillreactor's latest plan's",
    ),
}


class ShadowCollector(Collector):
    """Register in the service's registry: ``registry.register(ShadowCollector(runner))``."""

    def __init__(self, runner: ShadowRunner) -> None:
        self.runner = runner

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for name, (kind, names, text) in SHADOW_METRICS.items():
            if kind == "counter":
                families[name] = CounterMetricFamily(name.removesuffix("_total"), text, labels=list(names))
            else:
                families[name] = GaugeMetricFamily(name, text, labels=list(names))
        for name, labels, value in self.runner.metric_samples():
            families[name].add_metric([labels[n] for n in SHADOW_METRICS[name][1]], value)
        yield from families.values()
