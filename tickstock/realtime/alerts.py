"""Alerts: match every event against the users' rules once for the whole cluster, store each alert
once and deliver it live to every socket of its user (SPEC §11).

(The matcher follows below; this part is what the API uses to announce rule changes.)
"""

from __future__ import annotations

import logging

from quart import current_app

from tickstock.extensions.redis import get_redis

log = logging.getLogger(__name__)


def rules_channel(prefix: str) -> str:
    """The channel a node announces a user's rule (or watchlist) change on."""
    return f"{prefix}:alerts:rules"


async def announce_rules_changed(user_id: int) -> None:
    """Tell the matcher (whichever node runs it) to reload this user's rules and watchlist.

    Best effort: with Redis down the change is still stored, and the matcher's periodic reload
    picks it up.
    """
    prefix = current_app.config["SETTINGS"].key_prefix
    try:
        await get_redis().publish(rules_channel(prefix), str(user_id))
    except Exception as exc:
        log.warning("could not announce the rule change of user %s: %r", user_id, exc)
