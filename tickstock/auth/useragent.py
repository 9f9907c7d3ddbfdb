"""A browser's name from its User-Agent header, as the sessions list shows it.

ua-parser (the maintained Python port of the uap-core rules) does the parsing; it compiles its
rules on first use (a few hundred milliseconds), so callers on the event loop go through
:func:`describe_agents`, which runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from ua_parser import parse

__all__ = ["describe_agent", "describe_agents"]

_NO_AGENT = "Unknown browser"


@functools.lru_cache(maxsize=1024)
def describe_agent(agent: str | None) -> str:
    """``Mobile Safari 17 on iOS 17``, ``Chrome 120 on Windows 10``, ``curl 8``: the browser or
    client and its major version, and the system when the header names one."""
    if not agent:
        return _NO_AGENT
    result = parse(agent[:512])
    client = result.user_agent
    if client is None or client.family == "Other":
        return agent[:60]
    name = f"{client.family} {client.major}" if client.major else client.family
    system = result.os
    if system is None or system.family == "Other":
        return name
    return (
        f"{name} on {system.family} {system.major}"
        if system.major
        else f"{name} on {system.family}"
    )


async def describe_agents(agents: Sequence[str | None]) -> list[str]:
    """:func:`describe_agent` of each, off the event loop."""
    return await asyncio.to_thread(lambda: [describe_agent(agent) for agent in agents])
