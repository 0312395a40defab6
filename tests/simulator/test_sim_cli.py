"""``fillreactor simulate`` as a subprocess: printed lines, a login, a clean exit on SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys

from ami_sim_helpers import RawAmiClient


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
