"""The channel model against the simulator's own records (issue 8, "Done when").

``ChannelModel`` (fillreactor.core.model) is fed exactly what an AMI session received: the raw bytes
framed by ``AmiFramer`` and typed by ``fillreactor.core.normalise`` (and, in one test, through
panoramisk with ``FastAMIProtocol``). Under AMI Hangups of every leg in every order, a graceful
restart, a crash, and a CoreShowChannels that spans events under churn, the model's counts must end
where the simulator says: its live channels (``server.channels``), its live calls
(``server.live_calls()``) and its live V calls (``server.live_call_ids()``).

The client does what an AMI link does and no more: ``set_link(True)`` after a login,
``begin_snapshot`` when it sends CoreShowChannels, ``set_link(False)`` when the socket closes,
``reserve`` before an Originate it sends.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Callable

import panoramisk
from ami_sim_helpers import originate_pairs

from fillreactor.ami.fast_protocol import FastAMIProtocol, event_of
from fillreactor.core.callid import is_auto_dial_id
from fillreactor.core.events import Event, Shutdown
from fillreactor.core.message import AmiFramer, AmiMessage, encode_message
from fillreactor.core.model import ChannelModel
from fillreactor.core.normalise import Normaliser
from fillreactor.simulator import (
    CallTiming,
    DialLevelLoad,
    OrderRules,
    OutcomeRules,
    ServerConfig,
    SimulatedAsterisk,
    TimeBase,
)

SERVER = "10.10.10.11"
CAMPAIGN = "TESTCAMP"
ENDLESS = CallTiming(ring=1.0, talk=None, vdad_wait=None)  # answered calls never end by themselves
WAIT = 10.0  # real seconds: a bound on every wait, never a synchronisation


class ModelSession(asyncio.Protocol):
    """One AMI session whose bytes feed a ChannelModel, as an AMI link would."""

    def __init__(self, sim: SimulatedAsterisk, model: ChannelModel) -> None:
        self.sim = sim
        self.model = model
        self.framer = AmiFramer()
        self.normaliser = Normaliser()
        self.transport: asyncio.Transport | None = None
        self.replies: dict[str, AmiMessage] = {}
        self.events: list[Event] = []
        self.changed = asyncio.Event()
        self.lost = asyncio.Event()
        self.snapshots = 0

    @classmethod
    async def open(cls, sim: SimulatedAsterisk, model: ChannelModel) -> ModelSession:
        loop = asyncio.get_running_loop()
        _transport, session = await loop.create_connection(lambda: cls(sim, model), *sim.address)
        return session

    # -- asyncio.Protocol --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = self.sim.time.now()
        for frame in self.framer.feed(data):
            if frame.startswith(b"Response: "):
                reply = AmiMessage.from_bytes(frame)
                self.replies[reply.action_id] = reply
                if reply.action_id == "login" and reply.get("Response") == "Success":
                    self.model.set_link(SERVER, True, now)
                continue
            event = self.normaliser.feed_frame(frame)
            if event is not None:
                self.events.append(event)
                self.model.apply(SERVER, event, now)
        self.changed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.model.set_link(SERVER, False, self.sim.time.now())
        self.lost.set()
        self.changed.set()

    # -- actions -----------------------------------------------------------------------------------
    def send(self, *pairs: tuple[str, str]) -> None:
        assert self.transport is not None
        self.transport.write(encode_message(pairs))

    async def until(self, condition: Callable[[], bool]) -> None:
        async def check() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(check(), WAIT)

    async def action(self, action_id: str, *pairs: tuple[str, str]) -> AmiMessage:
        self.send(*pairs, ("ActionID", action_id))
        await self.until(lambda: action_id in self.replies)
        return self.replies.pop(action_id)

    async def login(self, events: str = "call,system") -> None:
        reply = await self.action(
            "login", ("Action", "Login"), ("Username", "cron"), ("Secret", "1234"), ("Events", events)
        )
        assert reply.get("Message") == "Authentication accepted"

    async def snapshot(self) -> None:
        self.snapshots += 1
        action_id = f"snapshot-{self.snapshots}"
        self.model.begin_snapshot(SERVER, action_id, self.sim.time.now())
        self.send(("Action", "CoreShowChannels"), ("ActionID", action_id))
        await self.until(lambda: self.model.server_view(SERVER).snapshot.action_id is None)
        assert self.model.server_view(SERVER).snapshot.state == "loaded"

    async def sync(self) -> None:
        """Everything the server sent before now has been read and applied."""
        self.snapshots += 1
        await self.action(f"sync-{self.snapshots}", ("Action", "Ping"))

    def originate(self, call_id: str, number: str, *, timeout_ms: int = 600_000) -> None:
        self.model.reserve(SERVER, call_id, CAMPAIGN, self.sim.time.now())
        self.send(
            *originate_pairs(
                call_id, f"Local/{number}@default", f'"{call_id}" <3125550000>', timeout_ms=timeout_ms
            )
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def assert_model_agrees(model: ChannelModel, sim: SimulatedAsterisk, *, reservations: int = 0) -> None:
    """The model's counts are the simulator's own records."""
    view = model.server_view(SERVER)
    truth_uniqueids = {channel.uniqueid for channel in sim.channels.values()}
    assert set(model.live_channels(SERVER)) == truth_uniqueids
    assert view.channels == len(sim.channels)
    assert view.calls == len(sim.live_calls())
    live_v = {call_id for call_id in sim.live_call_ids() if is_auto_dial_id(call_id)}
    assert view.dialer_calls["V"] == len(live_v)
    assert view.reservations == reservations
    assert view.usage == len(live_v) + reservations


def new_sim(seed: int = 0, **config: object) -> SimulatedAsterisk:
    rules = OutcomeRules(timing=ENDLESS, orders=OrderRules())  # varied orders
    return SimulatedAsterisk(
        ServerConfig(name="dialer1", seed=seed, **config),  # type: ignore[arg-type]
        time=TimeBase(0.01),
        rules=rules,
    )


def call_id(n: int) -> str:
    return f"V1126101010{n:09d}"


async def test_ami_hangups_of_every_leg_in_every_order_end_where_the_simulator_says() -> None:
    seen_k: Counter[int | None] = Counter()
    reasons: Counter[int | None] = Counter()
    for seed in range(6):
        model = ChannelModel()
        async with new_sim(seed) as sim:
            session = await ModelSession.open(sim, model)
            await session.login()
            await session.snapshot()
            ringing = [call_id(seed * 100 + n) for n in range(8)]
            answered = [call_id(seed * 100 + 50 + n) for n in range(4)]
            for n, cid in enumerate(ringing):
                session.originate(cid, f"9180055{n:01d}9999")  # rings until the Timeout
            for n, cid in enumerate(answered):
                session.originate(cid, f"9180055{n:01d}1212")
            await sim.wait_until(
                lambda: (
                    len(sim.channels) == 48
                    and sum(c.answered for c in sim.calls) == 4
                    and sum(1 for ch in sim.channels.values() if ch.state == 5) == 2 * 8
                )  # ;1 legs ringing
            )
            await session.sync()
            assert_model_agrees(model, sim)  # every reservation became its live call
            for n, call in enumerate(list(sim.calls)):
                role = ("d1", "d2", "t1", "t2")[n % 4]
                cause = () if n % 2 else (("Cause", "16"),)
                reply = await session.action(
                    f"h{n}", ("Action", "Hangup"), ("Channel", call.legs[role].name), *cause
                )
                assert reply.get("Message") == "Channel Hungup"
            await sim.wait_calls_finished()
            await session.sync()
            assert_model_agrees(model, sim)
            assert model.usage(SERVER) == 0 and model.server_view(SERVER).channels == 0
            for call in sim.history:
                seen_k[call.hangups_before_response if not call.answered else None] += 1
                reasons[call.reason] += 1
            session.close()
    assert {0, 1, 2, 3, 4} <= set(seen_k)  # failures whose channels were all live ... all gone
    assert set(reasons) == {0, 4, 8}  # hung up originated leg / answered / hung up trunk leg


async def test_failures_in_every_order_release_or_convert_every_reservation() -> None:
    model = ChannelModel()
    rules = OutcomeRules(timing=CallTiming(ring=1.0, talk=2.0, vdad_wait=5.0))
    async with SimulatedAsterisk(
        ServerConfig(name="dialer1", seed=11), time=TimeBase(0.005), rules=rules
    ) as sim:
        session = await ModelSession.open(sim, model)
        await session.login()
        await session.snapshot()
        n = 0
        for _round in range(5):
            for suffix in ("0000", "1111", "9999", "1212"):
                session.originate(call_id(1000 + n), f"91800{n:03d}{suffix}", timeout_ms=3000)
                n += 1
            session.originate(call_id(1000 + n), "123", timeout_ms=3000)  # bad target: Local/123@default
            n += 1
        await sim.wait_until(lambda: sim.calls_started == n)
        await sim.wait_calls_finished()
        await session.sync()
        assert_model_agrees(model, sim)
        assert model.usage(SERVER) == 0
        session.close()
    failures = [call for call in sim.history if call.reason != 4]
    assert {call.hangups_before_response for call in failures} >= {0, 1, 2, 3, 4}


async def test_a_graceful_restart_ends_with_the_model_matching_the_rebooted_server() -> None:
    model = ChannelModel(reservation_timeout=30.0)
    async with new_sim(3) as sim:
        session = await ModelSession.open(sim, model)
        await session.login()
        await session.snapshot()
        for n in range(4):
            session.originate(call_id(2000 + n), f"9180055{n}1212")
        for n in range(3):
            session.originate(call_id(2100 + n), f"9180055{n}9999")
        await sim.wait_until(lambda: len(sim.channels) == 28)
        await session.sync()
        assert_model_agrees(model, sim)

        outage = await sim.faults.graceful_shutdown(restart=True, wait=False)
        refused = call_id(2200)
        session.originate(refused, "918005551212")  # answered "Asterisk is shutting down", never called
        await session.until(lambda: session.lost.is_set())
        await outage.wait_down()
        # every Hangup and the Shutdown were read: nothing live, only the refused originate reserved
        assert_model_agrees(model, sim, reservations=1)
        assert not model.server_view(SERVER).link_live and not model.dialable(SERVER)
        assert model.server_view(SERVER).reserved_call_ids == (refused,)
        model.expire(sim.time.now() + 30.0)  # its reservation times out: the model never saw a call
        assert_model_agrees(model, sim)

        await outage.wait_up()
        again = await ModelSession.open(sim, model)
        await again.login()
        await again.snapshot()
        assert model.dialable(SERVER)
        for n in range(3):  # new calls: Uniqueids start again at <boot epoch>.0, names repeat
            again.originate(call_id(2300 + n), f"9180055{n}1212")
        await sim.wait_until(lambda: len(sim.channels) == 12)
        await again.sync()
        assert_model_agrees(model, sim)
        again.close()


async def test_a_crash_leaves_stale_counts_that_the_resync_after_the_reboot_corrects() -> None:
    model = ChannelModel()
    async with new_sim(4) as sim:
        session = await ModelSession.open(sim, model)
        await session.login()
        await session.snapshot()
        for n in range(5):
            session.originate(call_id(3000 + n), f"9180055{n}1212")
        await sim.wait_until(lambda: len(sim.channels) == 20)
        await session.sync()
        assert_model_agrees(model, sim)

        outage = await sim.faults.crash()
        await session.until(lambda: session.lost.is_set())
        view = model.server_view(SERVER)
        assert (view.usage, view.channels, view.stale, view.dialable) == (
            5,
            20,
            True,
            False,
        )  # no Hangup came
        assert sim.channels == {}

        await outage.wait_up()
        again = await ModelSession.open(sim, model)
        await again.login()
        sim.place_call("918005551212", call_id(3100))  # the server's own dialer, right after the boot
        await sim.wait_until(lambda: len(sim.channels) == 4)
        await again.snapshot()  # the 20 missed channels are removed, the new call kept
        await again.sync()
        assert_model_agrees(model, sim)
        assert model.usage(SERVER) == 1 and not model.server_view(SERVER).stale
        again.close()


async def test_a_snapshot_that_spans_events_under_churn_still_ends_in_agreement() -> None:
    model = ChannelModel()
    rules = OutcomeRules(timing=CallTiming(ring=1.0, talk=2.0, vdad_wait=5.0))
    config = ServerConfig(name="dialer1", listing_row_interval=0.3)
    async with SimulatedAsterisk(config, time=TimeBase(0.005), rules=rules) as sim:
        load = DialLevelLoad(sim, calls_per_second=4, max_concurrent=20)
        load.start()
        try:
            await sim.wait_until(lambda: len(sim.channels) >= 16)  # calls were up before we connected
            session = await ModelSession.open(sim, model)
            await session.login()
            await session.snapshot()
            snapshot = model.server_view(SERVER).snapshot
            assert snapshot.state == "loaded", snapshot.detail
        finally:
            await load.stop()
        await sim.wait_calls_finished()
        await session.sync()
        assert_model_agrees(model, sim)
        session.close()


async def test_panoramisk_with_the_fast_protocol_agrees_after_a_graceful_restart() -> None:
    model = ChannelModel()
    async with new_sim(5) as sim:
        logins: list[int] = []
        logged_in = asyncio.Event()
        shut_down = asyncio.Event()

        def sink(event: Event) -> None:
            model.apply(SERVER, event, sim.time.now())
            if isinstance(event, Shutdown):
                shut_down.set()

        def on_login(_manager: panoramisk.Manager) -> None:
            model.set_link(SERVER, True, sim.time.now())
            logins.append(1)
            logged_in.set()

        for n in range(3):
            sim.place_call(f"9180055{n}1212", call_id(4000 + n))
        await sim.wait_until(lambda: len(sim.channels) == 12)
        manager = panoramisk.Manager(
            host=sim.host,
            port=sim.port,
            username="cron",
            secret="1234",
            events="call,system",
            ping_delay=3600,
            reconnect_timeout=0.02,
            on_login=on_login,
            protocol_factory=functools.partial(FastAMIProtocol, on_event=sink),
        )

        async def resync() -> None:
            model.begin_snapshot(SERVER, "snap", sim.time.now())
            listing = await asyncio.wait_for(
                manager.send_action({"Action": "CoreShowChannels", "ActionID": "snap"}), WAIT
            )
            for message in listing[1:]:
                event = event_of(message)
                if event is not None:
                    model.apply(SERVER, event, sim.time.now())
            assert model.server_view(SERVER).snapshot.state == "loaded"

        await manager.connect()
        try:
            await asyncio.wait_for(logged_in.wait(), WAIT)
            await resync()
            assert_model_agrees(model, sim)
            logged_in.clear()
            outage = await sim.faults.graceful_shutdown(restart=True)
            await asyncio.wait_for(shut_down.wait(), WAIT)
            assert_model_agrees(model, sim)  # the Hangups and the Shutdown went through the sink
            assert not model.server_view(SERVER).link_live
            await outage.wait_up()
            await asyncio.wait_for(logged_in.wait(), WAIT)
            sim.place_call("918005551299", call_id(4100))
            await sim.wait_until(lambda: len(sim.channels) == 4)
            await resync()
            await asyncio.wait_for(manager.send_action({"Action": "Ping"}), WAIT)
            assert_model_agrees(model, sim)
            assert len(logins) == 2
        finally:
            manager.close()
