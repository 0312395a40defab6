"""Shadow mode: fillreactor plans beside the Perl FILL, dials nothing, and compares.

The modules, one idea each:

* ``compare``: the pure comparison (no I/O, time passed in). fillreactor's wanted calls, from each
  ``PlanDecision``, are paired with the calls the Perl FILL placed (its new OUTBALANCE
  ``vicidial_auto_calls`` rows); the pairs, the differences and their reasons come out as report
  lines (plain dicts, one JSON line each).
* ``report``: the figures of a set of report lines (per campaign, server, hour), the percentile
  rule, the summary tables; shared by ``status`` and ``fillreactor shadow-report``.
* ``runner``: the I/O shell. ``attach(service, report_path=...)`` wires the comparison to a
  ``ReactorService`` built with ``shadow=True``, through its extension points only (decision and
  event observers, an extra task polling the Perl's rows, the trace).
* ``metrics``: the figures as Prometheus metrics (``SHADOW_METRICS``, ``ShadowCollector``).
* ``report_cli``: ``fillreactor shadow-report FILE``.
"""
