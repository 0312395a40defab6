"""Dial-level load, per-server Uniqueid counters that collide, and the cluster."""

from __future__ import annotations

from ami_sim_helpers import RawAmiClient

from fillreactor.core.callid import is_auto_dial_id
from fillreactor.simulator import CallTiming, DialLevelLoad, SimulatedCluster


async def test_cluster_servers_listen_on_their_own_ports_and_uniqueids_collide() -> None:
    async with SimulatedCluster(3, time_scale=1.0, start_epoch=1795688152.0) as cluster:
        assert len({server.port for server in cluster}) == 3
        assert [server.name for server in cluster] == ["dialer1", "dialer2", "dialer3"]
        for server in cluster:
            server.place_call("918005559999", "V1126101010000000131")
        for server in cluster:
            await server.wait_until(lambda s=server: len(s.channels) == 4)
        firsts = [next(iter(server.channels.values())).uniqueid for server in cluster]
        assert firsts == ["1795688152.0"] * 3  # same epoch, per-server counters from 0
        client = await RawAmiClient.connect(*cluster[1].address)
        assert (await client.login()).get("Message") == "Authentication accepted"
        await client.close()


async def test_dial_level_load_places_v_calls_that_no_session_asked_for() -> None:
    timing = CallTiming(ring=1.0, talk=2.0, vdad_wait=None)
    async with SimulatedCluster(1, time_scale=0.01, timing=timing) as cluster:
        server = cluster[0]
        client = await RawAmiClient.connect(*server.address)
        await client.login(events="call")
        load = DialLevelLoad(server, calls_per_second=20, max_concurrent=5)
        load.start()
        await server.wait_until(lambda: server.calls_finished >= 10)
        await load.stop()
        assert all(len(call.channels) <= 4 for call in server.calls)
        assert server.calls_started <= len(load.placed) + server.calls_finished
        messages = await client.read_until(lambda m: m.event == "OriginateResponse")
        newchannel = next(m for m in messages if m.event == "NewCallerid")
        assert is_auto_dial_id(newchannel.get("CallerIDName"))
        assert newchannel.get("CallerIDNum") == "0000000000"
        response = messages[-1]
        assert response.action_id == response.get("CallerIDName")
        await server.wait_calls_finished()
        await client.close()


async def test_load_never_exceeds_its_concurrency() -> None:
    timing = CallTiming(ring=5.0, talk=None, vdad_wait=None)  # calls never end by themselves
    async with SimulatedCluster(1, time_scale=0.001, timing=timing) as cluster:
        server = cluster[0]
        load = DialLevelLoad(server, calls_per_second=100, max_concurrent=3)
        load.start()
        await server.wait_until(lambda: load.skipped_ticks >= 5 and len(server.channels) == 12)
        await load.stop()
        assert len(server.calls) == 3 and len(server.channels) == 12
