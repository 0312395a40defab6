"""Parse throughput: panoramisk's protocol against the framer + normaliser fast path.

Prints figures, asserts nothing. Run with ``python tests/bench/run.py parse`` or standalone
``python tests/bench/bench_parse.py [--events=N] [--repeat=K]`` (run.py passes only ``--x=y`` options).

The traffic is the three real Asterisk 22 captures (``fixtures/asterisk22/*.raw``, read=all, so
including the dialplan-class noise), repeated with the Uniqueid/Linkedid epoch rewritten on each
pass so every call is new, one byte stream per server, fed in 64 KiB chunks. "events/s" counts
every AMI message on the wire (events and responses), as spec/AMI.md B 1.10 does.

Measured, in one process, best of ``--repeat`` runs:

(a) panoramisk 1.4 ``AMIProtocol.data_received`` with handlers for Newchannel and Hangup that
    keep a set of live Uniqueids (the baseline of spec/AMI.md B 1.10);
(b) ``AmiFramer.feed`` + ``normalise_raw``;
(c) (b) + ``ChannelModel().apply(server, event, now)``;
(d) ``FastAMIProtocol.data_received`` end to end, with a trivial sink and with the model as sink.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from panoramisk import Manager  # noqa: E402
from panoramisk.ami_protocol import AMIProtocol  # noqa: E402

from fillreactor.ami.fast_protocol import FastAMIProtocol  # noqa: E402
from fillreactor.core.message import AmiFramer, iter_messages  # noqa: E402
from fillreactor.core.model import ChannelModel  # noqa: E402
from fillreactor.core.normalise import normalise_raw  # noqa: E402

CAPTURES = sorted((ROOT / "fixtures" / "asterisk22").glob("*.raw"))
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CAPTURE_EPOCH = b"1795688152"
CHUNK = 64 * 1024


class NullTransport:
    """What the protocols write to: nothing."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def keep_classes(body: bytes, classes: frozenset[bytes]) -> bytes:
    """What a session logged in with ``Events: <classes>`` would have received of ``body``."""
    kept = []
    for frame in iter_messages(body, expect_banner=False):
        start = frame.find(b"\r\nPrivilege: ")
        if start >= 0:
            end = frame.find(b"\r\n", start + 2)
            privilege = frame[start + 13 : end if end >= 0 else len(frame)]
            if not classes & set(privilege.split(b",")):
                continue
        kept.append(frame + b"\r\n\r\n")  # no Privilege: responses and list rows always arrive
    return b"".join(kept)


def build_streams(
    target_events: int, classes: frozenset[bytes] | None = None
) -> tuple[dict[str, list[bytes]], int]:
    """One chunked byte stream per server, about ``target_events`` messages in all."""
    bodies = []
    for path in CAPTURES:
        data = path.read_bytes()
        body = data[len(BANNER) :] if data.startswith(BANNER) else data
        bodies.append(body if classes is None else keep_classes(body, classes))
    per_pass = sum(len(list(iter_messages(body, expect_banner=False))) for body in bodies)
    passes = max(1, round(target_events / per_pass))
    streams = {}
    for index, body in enumerate(bodies):
        parts = [BANNER]
        for n in range(passes):
            epoch = str(1_700_000_000 + n * 10 + index).encode()  # same length: offsets unchanged
            parts.append(body.replace(CAPTURE_EPOCH, epoch))
        blob = b"".join(parts)
        streams[f"dialer{index + 1}"] = [blob[i : i + CHUNK] for i in range(0, len(blob), CHUNK)]
    return streams, per_pass * passes


def best_of(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()  # CPU time: other work on the box does not count
        run()
        best = min(best, time.process_time() - started)
    return best


def panoramisk_baseline(streams: dict[str, list[bytes]], loop: asyncio.AbstractEventLoop) -> None:
    for chunks in streams.values():
        manager = Manager(loop=loop)
        live: set[str] = set()
        manager.register_event("Newchannel", lambda _m, msg, live=live: live.add(msg["Uniqueid"]))
        manager.register_event("Hangup", lambda _m, msg, live=live: live.discard(msg["Uniqueid"]))
        protocol = AMIProtocol()
        protocol.connection_made(NullTransport())
        protocol.factory = manager
        protocol.encoding = "utf8"
        for chunk in chunks:
            protocol.data_received(chunk)


def framer_normalise(streams: dict[str, list[bytes]]) -> None:
    for chunks in streams.values():
        framer = AmiFramer()
        for chunk in chunks:
            for frame in framer.feed(chunk):
                normalise_raw(frame)


def framer_normalise_model(streams: dict[str, list[bytes]]) -> None:
    model = ChannelModel()
    apply = model.apply
    now = 0.0
    for server, chunks in streams.items():
        framer = AmiFramer()
        for chunk in chunks:
            now += 0.05
            for frame in framer.feed(chunk):
                event = normalise_raw(frame)
                if event is not None:
                    apply(server, event, now)


def fast_protocol(streams: dict[str, list[bytes]], loop: asyncio.AbstractEventLoop, with_model: bool) -> None:
    model = ChannelModel() if with_model else None
    for server, chunks in streams.items():
        manager = Manager(loop=loop)
        if model is not None:
            clock = [0.0]
            apply = model.apply

            def sink(event: object, server: str = server, clock: list[float] = clock, apply=apply) -> None:
                apply(server, event, clock[0])

        else:
            seen = [0]

            def sink(event: object, seen: list[int] = seen) -> None:
                seen[0] += 1

        protocol = FastAMIProtocol(on_event=sink)
        protocol.connection_made(NullTransport())
        protocol.factory = manager
        protocol.encoding = "utf8"
        for chunk in chunks:
            if model is not None:
                clock[0] += 0.05
            protocol.data_received(chunk)
        assert protocol.normaliser.errors == 0 and protocol.sink_errors == 0, protocol.stats()


async def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_parse")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args, _ = parser.parse_known_args(argv)
    loop = asyncio.get_running_loop()
    for title, classes in MIXES:
        streams, total = build_streams(args.events, classes)
        await measure_mix(title, streams, total, args.repeat, loop)


# read=all is the captures as recorded; fillreactor logs in with ``Events: call,system`` (DESIGN.md),
# which removes the cheap-to-drop dialplan noise, so its per-message figure is the harder one.
MIXES: tuple[tuple[str, frozenset[bytes] | None], ...] = (
    ("read=all (the captures as recorded)", None),
    ("Events: call,system (what fillreactor asks for)", frozenset({b"call", b"system"})),
)


async def measure_mix(
    title: str,
    streams: dict[str, list[bytes]],
    total: int,
    repeat: int,
    loop: asyncio.AbstractEventLoop,
) -> None:
    size = sum(len(c) for chunks in streams.values() for c in chunks)
    print(
        f"{title}: {total:,} AMI messages, {size / 1e6:.1f} MB, {len(streams)} servers, "
        f"{CHUNK // 1024} KiB chunks, best of {repeat} (Python {sys.version.split()[0]})"
    )

    results: list[tuple[str, float]] = []

    def measure(label: str, job: Callable[[], object]) -> None:
        seconds = best_of(repeat, job)
        results.append((label, total / seconds))
        rate = total / seconds
        print(f"  {label:<58} {rate:>11,.0f} events/s  {rate / results[0][1]:5.2f}x", flush=True)

    measure("(a) panoramisk AMIProtocol + set handler", lambda: panoramisk_baseline(streams, loop))
    await asyncio.sleep(0)  # let the FullyBooted tasks panoramisk scheduled run
    measure("(b) AmiFramer + normalise_raw", lambda: framer_normalise(streams))
    measure("(c) AmiFramer + normalise_raw + ChannelModel.apply", lambda: framer_normalise_model(streams))
    measure("(d) FastAMIProtocol, trivial sink", lambda: fast_protocol(streams, loop, False))
    measure("(d) FastAMIProtocol, ChannelModel sink", lambda: fast_protocol(streams, loop, True))
    await asyncio.sleep(0)


def main(argv: list[str]) -> None:
    asyncio.run(run(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
