"""The AMI links of every server, reconciled from the desired server list.

Rules this module keeps:

* ``update(targets)`` makes the running links match ``targets`` (one ``LinkTarget`` per
  ``servers`` row, ``config.targets_from_rows``): a server not running yet gets a new link; a
  running server absent from ``targets`` is stopped (its handler hears DOWN, if it was up, and
  STOPPED with detail ``removed``); a server whose target changed (address, user, secret) is
  stopped (STOPPED, detail ``target changed``) and a new link started; every other link is left
  alone, its session untouched. No restart of the service is needed for any of it.
* Updates run one at a time (a lock), stops before starts, so a changed server never has two
  sessions at once. A server listed twice keeps its first target (the rest is logged).
* All links share one handler and one ``LinkSettings``; the handler tells them apart by the
  ``server`` argument of its calls.
* ``close()`` stops every link; after it, ``update`` starts nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from fillreactor.ami.actions import Fields
from fillreactor.ami.config import LinkSettings, LinkTarget
from fillreactor.ami.link import AmiLink, LinkHandler, OriginateReply, OriginateStatus, OriginateTicket
from fillreactor.clock import Clock, SystemClock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkSetUpdate:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.restarted)


class LinkSet:
    """Running ``AmiLink`` objects by server (``server_ip``)."""

    def __init__(
        self,
        handler: LinkHandler,
        settings: LinkSettings | None = None,
        *,
        clock: Clock | None = None,
        link_factory: Callable[..., AmiLink] = AmiLink,
    ) -> None:
        self.handler = handler
        self.settings = settings or LinkSettings()
        self.clock: Clock = clock or SystemClock()
        self._factory = link_factory
        self._links: dict[str, AmiLink] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    # -- mapping-like access ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._links)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._links))

    def __contains__(self, server: object) -> bool:
        return server in self._links

    def __getitem__(self, server: str) -> AmiLink:
        return self._links[server]

    def get(self, server: str) -> AmiLink | None:
        return self._links.get(server)

    def links(self) -> list[AmiLink]:
        return list(self._links.values())

    def ready(self, server: str) -> bool:
        link = self._links.get(server)
        return link is not None and link.ready

    def ready_servers(self) -> frozenset[str]:
        return frozenset(server for server, link in self._links.items() if link.ready)

    def send_originate(
        self,
        server: str,
        fields: Fields,
        *,
        action_id: str,
        timeout: float | None = None,
        before_write: Callable[[], object] | None = None,
    ) -> OriginateTicket:
        """``AmiLink.send_originate`` on ``server``'s link; NOT_SENT when there is no such link."""
        link = self._links.get(server)
        if link is not None:
            return link.send_originate(
                fields, action_id=action_id, timeout=timeout, before_write=before_write
            )
        future: asyncio.Future[OriginateReply] = asyncio.get_running_loop().create_future()
        future.set_result(
            OriginateReply(
                action_id, OriginateStatus.NOT_SENT, f"no AMI link for {server}", None, self.clock.monotonic()
            )
        )
        return OriginateTicket(action_id, None, future)

    def stats(self) -> dict[str, dict[str, object]]:
        return {server: link.stats() for server, link in self._links.items()}

    # -- reconciling -----------------------------------------------------------------------------
    async def update(self, targets: Iterable[LinkTarget]) -> LinkSetUpdate:
        async with self._lock:
            if self._closed:
                return LinkSetUpdate()
            wanted: dict[str, LinkTarget] = {}
            for target in targets:
                if target.server in wanted:
                    log.warning(
                        "server %s listed twice; keeping %s", target.server, wanted[target.server].address
                    )
                    continue
                wanted[target.server] = target
            removed = tuple(server for server in self._links if server not in wanted)
            restarted = tuple(
                server
                for server, target in wanted.items()
                if server in self._links and self._links[server].target != target
            )
            added = tuple(server for server in wanted if server not in self._links)
            stopping = [(self._links.pop(server), "removed") for server in removed]
            stopping += [(self._links.pop(server), "target changed") for server in restarted]
            if stopping:
                await asyncio.gather(*(link.stop(reason) for link, reason in stopping))
            for server in (*restarted, *added):
                link = self._factory(wanted[server], self.handler, self.settings, clock=self.clock)
                self._links[server] = link
                link.start()
            result = LinkSetUpdate(added, removed, restarted)
            if result.changed:
                log.info(
                    "AMI links: %d running; added %s, removed %s, restarted %s",
                    len(self._links),
                    ", ".join(added) or "-",
                    ", ".join(removed) or "-",
                    ", ".join(restarted) or "-",
                )
            return result

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            links, self._links = list(self._links.values()), {}
            await asyncio.gather(*(link.stop("closed") for link in links))
