"""Fixtures for the AMI link tests: a fast simulated server, a recording handler, link cleanup."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from ami_link_helpers import FAST_SETTINGS, ModelRecorder, TestAsterisk, make_server, start_link

from fillreactor.ami import AmiLink, LinkSettings, LinkTarget


@pytest.fixture
async def server() -> AsyncIterator[TestAsterisk]:
    sim = make_server()
    async with sim:
        yield sim


@pytest.fixture
def recorder() -> ModelRecorder:
    return ModelRecorder()


@pytest.fixture
async def link_factory(recorder: ModelRecorder) -> AsyncIterator[Callable[..., AmiLink]]:
    """``link_factory(target, settings=FAST_SETTINGS)`` starts a link; every one is stopped at the end."""
    started: list[AmiLink] = []

    def make(target: LinkTarget, settings: LinkSettings = FAST_SETTINGS) -> AmiLink:
        link = start_link(recorder, target, settings)
        started.append(link)
        return link

    yield make
    for link in started:
        await link.stop()
