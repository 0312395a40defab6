"""CoreShowChannels that spans events under churn (issue 8 point 8, spec/AMI.md 6a.7).

Under a burst a real listing took up to ~330 ms and listed a mixture that never existed at one
instant. With ``listing_row_interval`` the simulator writes one row per interval, each the next
unlisted channel live at that moment, while calls go on; ``ListItems`` is the number of rows sent.
"""

from __future__ import annotations

import asyncio

import panoramisk
from ami_sim_helpers import RawAmiClient

from fillreactor.simulator import (
    CallTiming,
    DialLevelLoad,
    OutcomeRules,
    ServerConfig,
    SimulatedAsterisk,
    TimeBase,
)


def churning_server(**config: object) -> SimulatedAsterisk:
    rules = OutcomeRules(timing=CallTiming(ring=1.0, talk=2.0, vdad_wait=5.0))
    config.setdefault("listing_row_interval", 0.5)
    return SimulatedAsterisk(ServerConfig(name="dialer1", **config), time=TimeBase(0.005), rules=rules)  # type: ignore[arg-type]


async def test_a_listing_under_churn_spans_events_and_lists_a_set_that_never_existed_at_once() -> None:
    async with churning_server() as server:
        load = DialLevelLoad(server, calls_per_second=4, max_concurrent=20)
        load.start()
        client = await RawAmiClient.connect(*server.address)
        await client.login(events="call")
        try:
            await server.wait_until(lambda: len(server.channels) >= 12)
            live_at_start = {channel.uniqueid for channel in server.channels.values()}
            client.send(("Action", "CoreShowChannels"), ("ActionID", "csc"))
            seen = await client.read_until(lambda m: m.event == "CoreShowChannelsComplete")
        finally:
            await load.stop()
            await client.close()
    start = next(i for i, m in enumerate(seen) if m.action_id == "csc" and m.response == "Success")
    during = seen[start + 1 :]
    rows = [m for m in during if m.event == "CoreShowChannel"]
    listed = {m.get("Uniqueid") for m in rows}
    assert during[-1].get("ListItems") == str(len(rows)) and len(listed) == len(rows)
    events = [m for m in during[:-1] if m.get("Privilege")]
    assert events, "other events interleave with the rows"
    hung_up = {m.get("Uniqueid") for m in events if m.event == "Hangup"}
    created = {m.get("Uniqueid") for m in events if m.event == "Newchannel"}
    assert live_at_start - listed, "a channel live at the start hung up before its row"
    assert listed & hung_up, "a listed channel hung up before the listing ended"
    assert listed & created, "a channel created during the listing was listed"
    # the rows as a set never existed at one instant: some listed channel was gone before another was born
    order = {m.get("Uniqueid"): i for i, m in enumerate(during)}
    gone = [order[u] for u in listed & hung_up if during[order[u]].event == "Hangup"]
    born = [i for i, m in enumerate(during) if m.event == "Newchannel" and m.get("Uniqueid") in listed]
    assert min(gone) < max(born)


async def test_the_default_listing_is_atomic() -> None:
    async with churning_server(listing_row_interval=None) as server:
        for index in range(3):
            server.place_call("918005559999", f"V11261010100000010{index:02d}", timeout=1000.0)
        await server.wait_until(lambda: len(server.channels) == 12)
        client = await RawAmiClient.connect(*server.address)
        await client.login(events="call")
        client.send(("Action", "CoreShowChannels"), ("ActionID", "csc"))
        seen = await client.read_until(lambda m: m.event == "CoreShowChannelsComplete")
        await client.close()
    listing = seen[seen.index(next(m for m in seen if m.action_id == "csc")) :]
    assert [m.response or m.event for m in listing] == ["Success"] + ["CoreShowChannel"] * 12 + [
        "CoreShowChannelsComplete"
    ]


async def test_panoramisk_gets_the_spanning_listing_whole() -> None:
    async with churning_server(listing_row_interval=0.2) as server:
        load = DialLevelLoad(server, calls_per_second=4, max_concurrent=20)
        load.start()
        manager = panoramisk.Manager(
            host=server.host, port=server.port, username="cron", secret="1234", events="call", ping_delay=3600
        )
        await manager.connect()
        try:
            await asyncio.wait_for(manager.authenticated_future, 5)
            await server.wait_until(lambda: len(server.channels) >= 8)
            listing = await asyncio.wait_for(manager.send_action({"Action": "CoreShowChannels"}), 10)
        finally:
            manager.close()
            await load.stop()
    rows = [m for m in listing if m.get("Event") == "CoreShowChannel"]
    assert listing[-1]["Event"] == "CoreShowChannelsComplete" and listing[-1]["ListItems"] == str(len(rows))
    assert len(rows) >= 8
