"""Who may use the bot, where, and how often: the settings of ``runtime.config.DiscordConfig``.

Every user the bot answers gets a memory partition, checkpoints on disk and sleep cycles on
the operator's machine, so the operator decides who that is (the README's "Who may use it"):

* places: DMs only while ``allow_dms``; in a guild, only ``allowed_guilds`` and
  ``allowed_channels`` when they are set (a thread counts as its parent channel, a channel as
  its category). Guilds outside ``allowed_guilds`` are left (``SleepBot`` does it at start and
  when invited), unless ``leave_other_guilds`` is off.
* users: ``blocked_users`` and ``blocked_roles`` always lose; if ``allowed_users`` or
  ``allowed_roles`` is set, only those users and members with those roles get in. In a DM the
  roles are the user's roles in the bot's allowed guilds, looked up over REST (no privileged
  intent needed) and cached for a few minutes: llmcord ignores roles in DMs, which would let a
  user with a blocked role in through the back door.
* pace: at most ``rate_limit_messages`` messages and model-running commands per user in any
  ``rate_limit_seconds`` (:class:`RateLimiter`).

Used by both cogs; tested end to end in ``tests/e2e/test_discord_e2e.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import discord

from runtime.config import DiscordConfig

log = logging.getLogger(__name__)

ROLE_TTL = 300.0  # seconds a DM user's looked-up roles are trusted
# what a REST call can fail with besides Discord's own answers
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)

# why a place or user is refused, as the user reads it (slash commands answer with it)
REFUSED = {
    "dms": "DMs with me are turned off by my owner: mention me in a server channel instead.",
    "place": "I'm not enabled in this channel.",
    "user": "Sorry, my owner hasn't given you access to me.",
}


@dataclass
class RateLimiter:
    """At most ``limit`` messages per user in any ``window`` seconds (sliding window)."""

    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _hits: dict[str, deque[float]] = field(default_factory=dict)
    _warned: dict[str, float] = field(default_factory=dict)

    def allow(self, key: str) -> bool:
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if self.limit > 0 and len(hits) >= self.limit:
            return False
        hits.append(now)
        if len(self._hits) > 10_000:  # bounded: forget users idle for a whole window
            self._prune(now)
        return True

    def should_warn(self, key: str) -> bool:
        """True once per window for a limited user: one notice, not one per message."""
        now = self.clock()
        if now - self._warned.get(key, -self.window) < self.window:
            return False
        self._warned[key] = now
        return True

    def retry_after(self, key: str) -> float:
        hits = self._hits.get(key)
        return max(0.0, self.window - (self.clock() - hits[0])) if hits else 0.0

    def _prune(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or now - h[-1] >= self.window]:
            del self._hits[key]
            self._warned.pop(key, None)


class Access:
    """The allow- and block-lists (see the module doc)."""

    def __init__(self, cfg: DiscordConfig, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.cfg = cfg
        self.clock = clock
        self._dm_roles: dict[int, tuple[float, frozenset[int]]] = {}

    def guild_allowed(self, guild_id: int) -> bool:
        return not self.cfg.allowed_guilds or guild_id in self.cfg.allowed_guilds

    def place_refusal(self, guild_id: int | None, channel: object) -> str | None:
        """Why the bot may not work in this place ("dms", "place"), or None."""
        if guild_id is None:
            return None if self.cfg.allow_dms else "dms"
        if not self.guild_allowed(guild_id):
            return "place"
        if self.cfg.allowed_channels:
            ids = {getattr(channel, "id", None), getattr(channel, "parent_id", None),
                   getattr(channel, "category_id", None)}
            parent = getattr(channel, "parent", None)  # a thread's channel's category
            ids.add(getattr(parent, "category_id", None))
            if not ids & set(self.cfg.allowed_channels):
                return "place"
        return None

    @property
    def uses_roles(self) -> bool:
        return bool(self.cfg.allowed_roles or self.cfg.blocked_roles)

    def user_allowed(self, user_id: int, role_ids: set[int] | frozenset[int]) -> bool:
        cfg = self.cfg
        if user_id in cfg.blocked_users or role_ids & set(cfg.blocked_roles):
            return False
        if not (cfg.allowed_users or cfg.allowed_roles):
            return True
        return user_id in cfg.allowed_users or bool(role_ids & set(cfg.allowed_roles))

    async def refusal(self, bot: discord.Client, user: discord.abc.User,
                      guild: discord.Guild | None, channel: object) -> str | None:
        """Why ``user`` may not use the bot here ("dms", "place", "user"), or None."""
        reason = self.place_refusal(guild.id if guild else None, channel)
        if reason is not None:
            return reason
        if not (self.uses_roles or self.cfg.allowed_users or self.cfg.blocked_users):
            return None
        if isinstance(user, discord.Member):
            roles = frozenset(role.id for role in user.roles)
        elif self.uses_roles:
            roles = await self.roles_in_dm(bot, user.id)
        else:
            roles = frozenset()
        return None if self.user_allowed(user.id, roles) else "user"

    async def roles_in_dm(self, bot: discord.Client, user_id: int) -> frozenset[int]:
        """The user's roles in the bot's allowed guilds (cached for ``ROLE_TTL``)."""
        now = self.clock()
        cached = self._dm_roles.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        roles: set[int] = set()
        for guild in bot.guilds:
            if not self.guild_allowed(guild.id):
                continue
            member = guild.get_member(user_id)
            if member is None:
                try:
                    member = await guild.fetch_member(user_id)
                except discord.NotFound:  # not a member of that guild
                    continue
                except (discord.HTTPException, *NETWORK_ERRORS) as exc:
                    log.warning("user %s: cannot look up their roles in guild %s (%s)",
                                user_id, guild.id, getattr(exc, "status", type(exc).__name__))
                    continue
            roles |= {role.id for role in member.roles}
        if len(self._dm_roles) > 10_000:
            self._dm_roles = {k: v for k, v in self._dm_roles.items() if v[0] > now}
        self._dm_roles[user_id] = (now + ROLE_TTL, frozenset(roles))
        return frozenset(roles)
