"""The action table (written once, ended exactly once) and panoramisk's machinery switched off."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest

from fillreactor.ami.actions import ActionTable, ReplyStatus, encode_action, field_pairs, is_shutting_down
from fillreactor.ami.link import _LinkManager
from fillreactor.core.message import AmiMessage


def table_and_log() -> tuple[ActionTable, list, list[bytes]]:
    table = ActionTable(clock=lambda: 7.0)
    ended: list = []
    written: list[bytes] = []
    return table, ended, written


async def test_an_action_ends_once_by_its_reply() -> None:
    table, ended, written = table_and_log()
    errors: list[str] = []
    table.on_error = lambda message: errors.append(message.get("Message"))
    table.send(written.append, [("Action", "Ping"), ("ActionID", "a1")], timeout=5, on_done=ended.append)
    assert written == [b"Action: Ping\r\nActionID: a1\r\n\r\n"] and "a1" in table
    assert not table.take("other", b"Response: Success\r\nActionID: other\r\n")
    assert table.take("a1", b"Response: Success\r\nActionID: a1\r\nPing: Pong")
    assert not table.take("a1", b"Response: Success\r\nActionID: a1\r\nPing: Pong")  # only the first
    [reply] = ended
    assert (reply.status, reply.success, reply.at, reply.message.get("Ping")) == (
        ReplyStatus.REPLIED,
        True,
        7.0,
        "Pong",
    )
    assert len(table) == 0 and errors == []

    table.send(written.append, [("Action", "Originate"), ("ActionID", "a2")], timeout=5, on_done=ended.append)
    table.take("a2", b"Response: Error\r\nActionID: a2\r\nMessage: Asterisk is shutting down")
    assert errors == ["Asterisk is shutting down"] and ended[-1].text == "Asterisk is shutting down"
    assert is_shutting_down(ended[-1].message) and not is_shutting_down(AmiMessage({"Response": "Success"}))


async def test_timeouts_and_losses_end_every_action_once() -> None:
    table, ended, written = table_and_log()
    done = asyncio.get_running_loop().create_future()

    def on_done(reply) -> None:
        ended.append(reply)
        done.set_result(None)

    table.send(written.append, [("Action", "Ping"), ("ActionID", "t1")], timeout=0.01, on_done=on_done)
    await asyncio.wait_for(done, 1)
    assert [(r.status, r.detail) for r in ended] == [(ReplyStatus.TIMEOUT, "no reply to Ping within 0.01 s")]
    assert not table.take("t1", b"Response: Success\r\nActionID: t1")  # a late reply is nobody's

    later: list = []
    for action_id in ("l1", "l2"):
        table.send(
            written.append,
            [("Action", "Originate"), ("ActionID", action_id)],
            timeout=5,
            on_done=later.append,
        )
    table.lose_all("connection closed by the server")
    table.lose_all("again")
    assert [(r.action_id, r.status, r.detail) for r in later] == [
        ("l1", ReplyStatus.LOST, "connection closed by the server"),
        ("l2", ReplyStatus.LOST, "connection closed by the server"),
    ]

    def broken(_data: bytes) -> None:
        raise ConnectionError("closing")

    failed: list = []
    table.send(broken, [("Action", "Ping"), ("ActionID", "w1")], timeout=5, on_done=failed.append)
    assert failed[0].status is ReplyStatus.LOST and "write failed" in failed[0].detail and len(table) == 0


async def test_bad_actions_are_refused_before_anything_is_written() -> None:
    table, ended, written = table_and_log()
    table.send(written.append, [("Action", "Ping"), ("ActionID", "d1")], timeout=5, on_done=ended.append)
    with pytest.raises(ValueError, match="already waiting"):
        table.send(written.append, [("Action", "Ping"), ("ActionID", "d1")], timeout=5, on_done=ended.append)
    with pytest.raises(ValueError, match="needs Action and ActionID"):
        table.send(written.append, [("Action", "Ping")], timeout=5, on_done=ended.append)
    with pytest.raises(ValueError, match="line break"):
        encode_action([("Action", "Originate"), ("Exten", "1\nAction: Hangup")])
    with pytest.raises(ValueError, match="header name"):
        encode_action([("Bad: key", "x")])
    assert len(written) == 1
    assert field_pairs({"Variable": ["a=1", "b=2"], "Timeout": 60000}) == [
        ("Variable", "a=1"),
        ("Variable", "b=2"),
        ("Timeout", "60000"),
    ]


async def test_a_raising_callback_does_not_stop_the_others() -> None:
    table, ended, written = table_and_log()

    def explode(_reply) -> None:
        raise RuntimeError("bug")

    table.send(written.append, [("Action", "Ping"), ("ActionID", "r1")], timeout=5, on_done=explode)
    table.send(written.append, [("Action", "Ping"), ("ActionID", "r2")], timeout=5, on_done=ended.append)
    table.lose_all("gone")
    assert table.callback_errors == 1 and [r.action_id for r in ended] == ["r2"]


def test_panoramisk_reconnect_pinger_and_resend_are_switched_off() -> None:
    loop = mock.Mock()
    manager = _LinkManager(host="127.0.0.1", port=1, loop=loop)
    failed = mock.Mock()
    failed.cancelled.return_value = False
    failed.exception.return_value = ConnectionRefusedError()
    manager.connection_made(failed)  # panoramisk: call_later(reconnect_timeout, connect)
    manager.connection_lost(None)  # panoramisk: call_later(reconnect_timeout, connect)
    cancelled = mock.Mock()
    cancelled.cancelled.return_value = True
    manager.connection_made(cancelled)  # panoramisk: CancelledError out of a done callback
    manager.ping()  # panoramisk: a Ping nobody checks, every ping_interval
    assert loop.call_later.call_count == 0 and loop.call_soon.call_count == 0
    manager.awaiting_actions.append({"Action": "Originate"})
    assert manager.send_awaiting_actions() is None and not manager.awaiting_actions
    manager.close()
    assert manager.stopped
