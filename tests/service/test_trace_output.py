"""The verbose trace: the documented line format, golden output of a scripted FILL, colour on a terminal
only, plain in a file, filters by server and campaign (also changed on reload).

The golden file (golden/trace_fill.txt) was reviewed line by line against the hand-worked numbers in
trace_scenario.py; the assertions below re-check the decisive lines independently of it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from service_helpers import eventually
from trace_scenario import A, B, C, run_scenario

from fillreactor.reactor.trace import (
    FAILURE_COLOUR,
    KIND_COLOURS,
    KINDS,
    RESET,
    FileSink,
    StreamSink,
    TraceFilter,
    TraceRecord,
    colour_line,
    strip_colour,
    wants_colour,
)

GOLDEN = Path(__file__).with_name("golden") / "trace_fill.txt"
# README "The trace": <seconds, 3 decimals> <kind padded to 9> <server or -, to 15> <campaign or -, to 8>
# <detail>
LINE = re.compile(r"^(\d+\.\d{3}) (\S+) +(\S+) +(\S+)(?: (.*))?$")


def test_the_scripted_fill_traces_exactly_the_golden_lines() -> None:
    lines = run_scenario().lines()
    assert lines == GOLDEN.read_text(encoding="utf-8").splitlines()


def test_the_decisive_lines_say_what_the_hand_calculation_says() -> None:
    lines = run_scenario().lines()
    # 20 calls on A: usage 0 -> 20, one event each; the last one
    assert sum(1 for line in lines if line.startswith("1.000 event     10.10.10.11 ")) == 20
    assert (
        lines.count(
            "1.000 plan      -               DEMO     shortage 10 in flight 0 needed 10 -> 10.10.10.12 +8, "
            "10.10.10.13 +2"
        )
        == 1
    )
    assert (
        "1.000 plan      -               DEMO       Server 10.10.10.12  AVAIL 8  DIAL 8  tally 8/10" in lines
    )
    assert (
        "1.020 originate 10.10.10.13     -        refused V2011000000000000903: Channel unavailable" in lines
    )
    # the hang-up: A 20 -> 19, campaign DEMO's calls on A 20 -> 19; Q.850 cause 16
    assert any(
        line.startswith("2.000 event     10.10.10.11     -        ChannelHungUp ")
        and line.endswith(" usage 20->19 cause 16 (DEMO 20->19)")
        for line in lines
    )
    # shortage still 10 (19 calls: make 11, min(30 - 20, 11) = 10); in flight 6 + 2 on B, 1 on C = 9
    assert (
        "2.000 plan      -               DEMO     shortage 10 in flight 9 needed 1 -> 10.10.10.13 +1" in lines
    )
    assert lines[-2:] == [
        "3.000 link      10.10.10.12     -        down connection lost",
        "3.000 link      10.10.10.12     -        not dialable",
    ]


def test_every_line_keeps_the_documented_columns() -> None:
    for record in run_scenario().records:
        line = record.line()
        match = LINE.match(line)
        assert match, line
        assert (float(match.group(1)), match.group(2), match.group(3), match.group(4)) == (
            record.at,
            record.kind,
            record.server or "-",
            record.campaign or "-",
        )
        assert record.kind in KINDS
        assert line[6:16] == f"{record.kind:<9} " and line[16:32] == f"{record.server or '-':<15} "
        assert line[32:41] == f"{record.campaign or '-':<8} " or not record.detail


def test_colour_is_only_escape_codes_around_the_same_text() -> None:
    for record in run_scenario().records:
        assert strip_colour(colour_line(record)) == record.line()
    plan = TraceRecord(1.0, "plan", "", "DEMO", "shortage 10 in flight 0 needed 10 -> 10.10.10.12 +8")
    assert colour_line(plan) == KIND_COLOURS["plan"] + plan.line() + RESET
    refused = TraceRecord(1.02, "originate", C, "", "refused V2011000000000000903: Channel unavailable")
    assert colour_line(refused) == FAILURE_COLOUR + refused.line() + RESET
    down = TraceRecord(3.0, "link", B, "", "down connection lost")
    assert colour_line(down).startswith(FAILURE_COLOUR)
    note = TraceRecord(3.0, "note", B, "", "8 of 8 placed")
    assert colour_line(note) == note.line()  # notes carry no colour


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_on_a_terminal_plain_in_a_pipe_and_never_with_no_color() -> None:
    assert wants_colour(Terminal(), {"TERM": "xterm"})
    assert not wants_colour(Terminal(), {"TERM": "xterm", "NO_COLOR": "1"})
    assert not wants_colour(Terminal(), {"TERM": "dumb"})
    assert not wants_colour(io.StringIO(), {"TERM": "xterm"})
    records = run_scenario().records
    terminal, pipe = Terminal(), io.StringIO()
    coloured, plain = StreamSink(terminal, colour=True), StreamSink(pipe, colour=False)
    for record in records:
        coloured(record)
        plain(record)
    assert pipe.getvalue() == GOLDEN.read_text(encoding="utf-8")
    assert "\x1b[" in terminal.getvalue() and strip_colour(terminal.getvalue()) == pipe.getvalue()


def test_the_file_sink_appends_plain_lines_and_a_bad_path_fails_at_open(tmp_path: Path) -> None:
    path = tmp_path / "trace.log"
    path.write_text("earlier line\n")
    sink = FileSink(path)
    sink.open()
    for record in run_scenario().records:
        sink(record)
    sink.close()
    assert path.read_text() == "earlier line\n" + GOLDEN.read_text(encoding="utf-8")
    bad = FileSink(tmp_path / "missing-dir" / "trace.log")
    try:
        bad.open()
        raise AssertionError("opening a file in a missing directory must fail")
    except OSError:
        pass
    bad(TraceRecord(0.0, "note", "", "", "x"))  # and a sink called anyway never raises
    assert bad.errors == 1


def test_a_broken_stream_is_counted_not_raised() -> None:
    stream = io.StringIO()
    stream.close()
    sink = StreamSink(stream, colour=False)
    sink(TraceRecord(0.0, "note", "", "", "x"))
    assert sink.errors == 1


def test_filters_keep_their_server_and_campaign_and_records_without_either() -> None:
    kept: list[TraceRecord] = []
    only = TraceFilter(kept.append, servers=[B], campaigns=["OTHER"])
    for record in run_scenario().records:
        only(record)
    assert {r.server for r in kept} <= {B, ""} and {r.campaign for r in kept} <= {"OTHER", ""}
    assert any(r.server == B for r in kept) and not any(r.campaign == "DEMO" for r in kept)
    assert any(r.kind == "refresh" for r in kept)  # a record with neither always passes
    kept.clear()
    only.set_filters([A], [])
    for record in run_scenario().records:
        only(record)
    assert {r.server for r in kept} == {A, ""} and any(r.campaign == "DEMO" for r in kept)


async def test_the_running_service_traces_to_a_file_filtered_by_server_and_sighup_changes_the_filter(
    database_dsn, seed, tmp_path: Path
) -> None:
    import os
    import signal

    from service_helpers import running_service

    trace_file = tmp_path / "trace.log"
    reloaded: list[object] = []
    async with running_service(
        database_dsn,
        seed,
        tmp_path,
        trace=True,
        trace_file=str(trace_file),
        trace_servers=(A,),
        reload_settings=lambda: reloaded[0],
    ) as running:
        service = running.service

        def traced() -> str:
            return trace_file.read_text() if trace_file.exists() else ""

        # A's own dialer brings it to 20 calls: one event line each; the plan fills B and C
        await eventually(
            lambda: " usage 19->20" in traced() and " -> 10.10.10.12 +8" in traced(),
            what="A's 20th call and the plan in the trace",
        )
        reloaded.append(running.settings.with_values({"trace_servers": (C,)}))
        os.kill(os.getpid(), signal.SIGHUP)  # serve() reloads: the filter changes at once
        (sink,) = service.trace_sinks
        await eventually(lambda: sink.servers == {C}, what="the new trace filter")
        now = service.clock.monotonic()
        service.core.note(now, "note", A, "", "probe on A")
        service.core.note(now, "note", C, "", "probe on C")
        assert await running.stop() == 0
    text = trace_file.read_text()
    lines = text.splitlines()
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    assert {m.group(3) for m in matches if m} == {A, C, "-"}  # B's lines were never written
    assert "\x1b[" not in text  # plain in a file
    assert any(line.endswith("note      10.10.10.13     -        probe on C") for line in lines)
    assert "probe on A" not in text
    # A's usage climbs to its 20 trunks, one event line per step after its link's resync (calls
    # already up at the login come in the resync's listing)
    steps = [re.search(r" usage (\d+)->(\d+)", line) for line in lines if " event     10.10.10.11 " in line]
    climb = [(int(m.group(1)), int(m.group(2))) for m in steps if m]
    assert (19, 20) in climb
    # the first plans may come before the leader lock is taken ("(not dialing)"): the dialing one
    plan = next(
        line for line in lines
        if " plan " in line and " -> 10.10.10.12" in line and not line.endswith("(not dialing)")
    )
    assert plan.endswith("shortage 10 in flight 0 needed 10 -> 10.10.10.12 +8, 10.10.10.13 +2")
