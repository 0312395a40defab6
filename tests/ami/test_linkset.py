"""LinkSet: links reconciled from the servers rows; targets, settings and their validation."""

from __future__ import annotations

from dataclasses import replace

import pytest
from ami_link_helpers import FAST_SETTINGS, Recorder, make_server, target_of

from fillreactor.ami import LinkChangeKind as K
from fillreactor.ami import (
    LinkSet,
    LinkSettings,
    LinkTarget,
    OriginateStatus,
    target_from_row,
    targets_from_rows,
)


def row(server_ip: str, port: int, **changes: object) -> dict[str, object]:
    """A ``servers`` row as the store reads it (columns of fillreactor/schema/vicidial.sql)."""
    values: dict[str, object] = {
        "server_ip": server_ip,
        "telnet_host": "127.0.0.1",
        "telnet_port": port,
        "ASTmgrUSERNAME": "cron",
        "ASTmgrSECRET": "1234",
        "ASTmgrUSERNAMEupdate": "updatecron",
        "ASTmgrUSERNAMElisten": "listencron",
        "ASTmgrUSERNAMEsend": "sendcron",
    }
    values.update(changes)
    return values


async def test_update_adds_removes_and_restarts_links_and_leaves_the_rest_alone() -> None:
    recorder = Recorder()
    links = LinkSet(recorder, FAST_SETTINGS)
    async with make_server("dialer1") as a, make_server("dialer2") as b, make_server("dialer3") as c:
        b.config.users["sendcron"] = "1234"
        try:
            first = await links.update([target_of(a, "10.0.0.1"), target_of(b, "10.0.0.2")])
            assert (first.added, first.removed, first.restarted) == (("10.0.0.1", "10.0.0.2"), (), ())
            recorder.links.update({s: links[s] for s in links})
            await recorder.wait_for(lambda: links.ready_servers() == {"10.0.0.1", "10.0.0.2"})
            link_a = links["10.0.0.1"]

            # b now logs in as another user (a changed row), c is new, a is unchanged
            second = await links.update(
                [
                    target_of(a, "10.0.0.1"),
                    target_of(b, "10.0.0.2", username="sendcron"),
                    target_of(c, "10.0.0.3"),
                ]
            )
            assert (second.added, second.removed, second.restarted) == (("10.0.0.3",), (), ("10.0.0.2",))
            assert recorder.changes("10.0.0.2", K.STOPPED)[0].detail == "target changed"
            recorder.links.update({s: links[s] for s in links})
            await recorder.wait_for(lambda: links.ready_servers() == {"10.0.0.1", "10.0.0.2", "10.0.0.3"})
            assert links["10.0.0.1"] is link_a and link_a.counters.connects == 1  # untouched
            assert [s.username for s in b.sessions] == ["sendcron"]
            assert a.logins == 1 and b.logins == 2 and c.logins == 1

            # an identical list changes nothing
            same = await links.update(
                [
                    target_of(a, "10.0.0.1"),
                    target_of(b, "10.0.0.2", username="sendcron"),
                    target_of(c, "10.0.0.3"),
                ]
            )
            assert not same.changed

            third = await links.update([target_of(c, "10.0.0.3")])
            assert set(third.removed) == {"10.0.0.1", "10.0.0.2"} and not third.added
            for server in ("10.0.0.1", "10.0.0.2"):
                assert recorder.kinds(server)[-2:] == [K.DOWN, K.STOPPED]
                assert recorder.changes(server, K.STOPPED)[-1].detail == "removed"
            assert list(links) == ["10.0.0.3"] and "10.0.0.1" not in links
            await a.wait_until(lambda: not a.sessions)

            unknown = links.send_originate("10.0.0.1", {"Channel": "Local/1@default"}, action_id="V1")
            assert unknown.reply.result().status is OriginateStatus.NOT_SENT
            assert set(links.stats()) == {"10.0.0.3"} and links.stats()["10.0.0.3"]["ready"] is True
        finally:
            await links.close()
        assert len(links) == 0 and recorder.changes("10.0.0.3", K.STOPPED)[-1].detail == "closed"
        assert not (await links.update([target_of(a, "10.0.0.1")])).changed  # closed: starts nothing


def test_targets_from_rows_use_the_configured_user_and_skip_bad_rows() -> None:
    rows = [
        row("10.0.0.1", 5038),
        row("10.0.0.2", "5039"),
        row("10.0.0.3", "not-a-port"),
        row("10.0.0.1", 6000),  # listed twice: the first wins
        row("", 5038),
        {"server_ip": "10.0.0.5", "telnet_host": "h"},
        row("10.0.0.6", 5038, ASTmgrUSERNAMEsend=""),
    ]
    targets, problems = targets_from_rows(rows, "ASTmgrUSERNAMEsend")
    assert targets == [
        LinkTarget("10.0.0.1", "127.0.0.1", 5038, "sendcron", "1234"),
        LinkTarget("10.0.0.2", "127.0.0.1", 5039, "sendcron", "1234"),
    ]
    assert problems == [
        "servers row '10.0.0.3' skipped: telnet_port 'not-a-port' is not a number",
        "servers row '10.0.0.1' skipped: server_ip listed twice",
        "servers row '' skipped: server is empty",
        "servers row '10.0.0.5' skipped: servers row lacks telnet_port, ASTmgrUSERNAMEsend, ASTmgrSECRET",
        "servers row '10.0.0.6' skipped: username is empty",
    ]
    assert target_from_row(row("10.0.0.1", 5038)).username == "cron"  # ASTmgrUSERNAME by default
    with pytest.raises(ValueError, match="is not one of"):
        target_from_row(row("10.0.0.1", 5038), "ASTmgrUSERNAMEother")
    assert "1234" not in repr(targets[0])  # the secret never reaches a log line
    # a changed secret is a changed target (the link restarts), an equal row is an equal target
    assert target_from_row(row("10.0.0.1", 5038, ASTmgrSECRET="x")) != target_from_row(row("10.0.0.1", 5038))
    assert target_from_row(row("10.0.0.1", 5038)) == target_from_row(row("10.0.0.1", 5038))


def test_settings_are_checked_when_built() -> None:
    assert LinkSettings().events == "call,system" and LinkSettings().username_column == "ASTmgrUSERNAME"
    for bad in ({"ping_timeout": 0}, {"reconnect_max": -1.0}, {"resync_timeout": float("inf")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LinkSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="username_column"):
        LinkSettings(username_column="ASTmgrUSERNAMEfoo")
    with pytest.raises(ValueError, match="not an AMI event name"):
        LinkSettings(filter_events=("Newchannel", "bad name"))
    with pytest.raises(ValueError, match="line break"):
        LinkTarget("10.0.0.1", "h", 5038, "cron", "12\r\n34")
    with pytest.raises(ValueError, match="port"):
        replace(LinkTarget("10.0.0.1", "h", 5038, "cron", "1234"), port=70000)
