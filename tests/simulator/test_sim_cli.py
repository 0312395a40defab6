"""``fillreactor simulate`` as a subprocess: printed lines, a login, a clean exit on SIGINT, the options
of the issue 8 behaviours, and the SIGUSR1/SIGUSR2 outages."""

from __future__ import annotations

import asyncio
import signal
import sys

from ami_sim_helpers import RawAmiClient

from fillreactor.core.message import AmiMessage


async def test_simulate_prints_servers_accepts_logins_and_exits_0_on_sigint() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fillreactor",
        "simulate",
        "--servers",
        "2",
        "--base-port",
        "0",
        "--username",
        "cron",
        "--secret",
        "1234",
        "--time-scale",
        "0.01",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        lines = []
        while (line := (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()) != "ready":
            assert line, "simulate exited before it was ready"
            lines.append(line.split())
        assert [fields[0] for fields in lines] == ["dialer1", "dialer2"]
        for _name, address, username, secret in lines:
            host, _, port = address.rpartition(":")
            assert host == "127.0.0.1" and username == "cron" and secret == "1234"
            client = await RawAmiClient.connect(host, int(port))
            assert (await client.login()).get("Message") == "Authentication accepted"
            await client.close()
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_port_in_use_is_a_one_line_error_not_a_traceback() -> None:
    holder = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = holder.sockets[0].getsockname()[1]
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fillreactor",
            "simulate",
            "--servers",
            "1",
            "--base-port",
            str(port),
            stderr=asyncio.subprocess.PIPE,
        )
        _, error = await asyncio.wait_for(process.communicate(), 30)
    finally:
        holder.close()
        await holder.wait_closed()
    assert process.returncode == 1
    assert error.decode().startswith("fillreactor simulate: cannot listen on 127.0.0.1:")
    assert b"Traceback" not in error


def test_nonsense_options_are_refused(capsys) -> None:  # type: ignore[no-untyped-def]
    from fillreactor.cli import main

    assert main(["simulate", "--servers", "0"]) == 2
    assert main(["simulate", "--time-scale", "0"]) == 2
    assert main(["simulate", "--ring", "-1"]) == 2
    assert capsys.readouterr().err.count("fillreactor simulate: ") == 3


async def start_simulate(*options: str) -> tuple[asyncio.subprocess.Process, list[list[str]]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fillreactor",
        "simulate",
        "--servers",
        "1",
        "--time-scale",
        "0.01",
        *options,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines = []
    while (line := (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()) != "ready":
        assert line, "simulate exited before it was ready"
        lines.append(line.split())
    return process, lines


async def stop_simulate(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            assert await asyncio.wait_for(process.wait(), 30) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_simulate_with_timestamps_split_writes_and_a_seed() -> None:
    process, lines = await start_simulate(
        "--seed", "3", "--order", "captured", "--timestamp-events", "--split-writes", "--split-max-bytes", "7"
    )  # fmt: skip
    try:
        host, _, port = lines[0][1].rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        client = RawAmiClient(reader, writer)
        client.send(("Action", "Login"), ("ActionID", "l"), ("Username", "cron"), ("Secret", "1234"))
        for index in range(5):
            client.send(("Action", "Ping"), ("ActionID", f"p{index}"))
        chunks: list[bytes] = []
        messages: list[AmiMessage] = []
        while not any(m.action_id == "p4" for m in messages):
            chunks.append(await asyncio.wait_for(reader.read(65536), 30))
            messages.extend(AmiMessage.from_bytes(frame) for frame in client.framer.feed(chunks[-1]))
        # cut at arbitrary offsets (test_sim_delivery checks the cuts), framed whole all the same
        assert [m.action_id for m in messages if m.get("Ping") == "Pong"] == [f"p{i}" for i in range(5)]
        auth = next(m for m in messages if m.event == "SuccessfulAuth")
        assert auth.pairs[2][0] == "Timestamp"  # --timestamp-events
        await client.close()
    finally:
        await stop_simulate(process)


async def test_sigusr1_restarts_gracefully_and_sigusr2_crashes_each_reported_on_stdout() -> None:
    process, lines = await start_simulate("--restart-down-for", "1", "--crash-down-for", "1")
    assert process.stdout is not None
    try:
        states = []

        async def next_state() -> str:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().split()  # type: ignore[union-attr]
            assert line[0] == "dialer1"
            states.append(line[1])
            return line[1]

        process.send_signal(signal.SIGUSR1)
        while await next_state() != "up":
            pass
        process.send_signal(signal.SIGUSR2)
        while await next_state() != "up":
            pass
        assert states == ["shutting_down", "down", "booting", "up", "down", "booting", "up"]
        host, _, port = lines[0][1].rpartition(":")
        client = await RawAmiClient.connect(host, int(port))
        assert (await client.login()).get("Message") == "Authentication accepted"
        await client.close()
    finally:
        await stop_simulate(process)


def test_the_new_options_reach_every_server() -> None:
    from fillreactor.cli import build_parser_for
    from fillreactor.simulator.cli import _cluster

    args = build_parser_for("simulate").parse_args(
        ["simulate", "--servers", "2", "--seed", "9", "--order", "captured", "--timestamp-events",
         "--delivery", "burst", "--split-writes", "--split-max-bytes", "64", "--listing-row-interval", "0.25",
         "--boot-time", "0.5", "--restart-down-for", "3", "--crash-down-for", "4"]
    )  # fmt: skip
    cluster = _cluster(args)
    for server in cluster:
        config = server.config
        assert (config.seed, config.timestamp_events, config.delivery) == (9, True, "burst")
        assert (config.split_writes, config.split_max_bytes, config.listing_row_interval) == (True, 64, 0.25)
        assert (config.boot_time, config.restart_down_for, config.crash_down_for) == (0.5, 3.0, 4.0)
        assert server.rules.orders.captured
    assert cluster[0].rules.orders is not cluster[1].rules.orders  # each server its own rules


def test_nonsense_new_options_are_refused(capsys) -> None:  # type: ignore[no-untyped-def]
    from fillreactor.cli import main

    assert main(["simulate", "--split-max-bytes", "0"]) == 2
    assert main(["simulate", "--listing-row-interval", "-1"]) == 2
    assert main(["simulate", "--boot-time", "-1"]) == 2
    assert capsys.readouterr().err.count("fillreactor simulate: ") == 3
