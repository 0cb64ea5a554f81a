"""A local fake Discord that says no: REST and gateway for the real discord.py client, on 127.0.0.1.

    fake = FakeDiscord()
    await fake.start()          # aiohttp server on a free port
    fake.install()              # point discord.py at it (Route.BASE, DEFAULT_GATEWAY)
    ... bot.start("token") ...; await fake.dm(alice, "hi"); await fake.wait_for(...)
    fake.uninstall(); await fake.stop()

What it speaks: login (``GET /users/@me``, ``GET /oauth2/applications/@me``), command sync,
messages (create, fetch, edit, delete, typing), members, leaving a guild, interaction
callbacks, webhook follow-ups and ``@original`` edits (JSON and multipart with files), and a
gateway that sends HELLO, READY (with a local ``resume_gateway_url``) and one GUILD_CREATE per
guild, acks heartbeats, resumes (replaying what the bot missed) and dispatches the events the
helpers below build. Messages the bot creates are echoed back as MESSAGE_CREATE, as Discord
does. Every REST call is recorded in ``calls``; a route it does not know answers 404 and lands
in ``unknown`` (the test fixture fails on it).

Where the bot's behaviour depends on Discord saying no, it says no as Discord does:

* permissions: guilds have roles, channels and threads have overwrites, and every call the
  bot makes in a guild channel is checked against the bot's computed permissions (403 50001
  Missing Access without View Channel, 403 50013 Missing Permissions without Send Messages,
  Send Messages in Threads, Read Message History or Attach Files). ``deny_bot`` changes them,
  telling the bot (CHANNEL_UPDATE) or not (a stale cache). ``delete_channel`` makes the
  channel answer 404 10003. ``close_dms`` makes sends to a user's DM answer 403 50007.
* rate limits: every answer carries ``X-RateLimit-*`` headers for its bucket (route and major
  parameter); a call over a bucket gets a 429 and is recorded in ``violations`` (the bot
  should never cause one: discord.py waits when a bucket is empty). ``rate_limit_next``
  forces one 429, per route or global (``global: true``).
* interactions: a callback later than ``ack_deadline`` (3 s) after the interaction answers
  404 10062 Unknown interaction; a follow-up or ``@original`` call later than
  ``token_lifetime`` (15 min) answers 401 50027 Invalid Webhook Token. An ephemeral message
  can only be clicked by the user who invoked it (``click`` raises :class:`NotVisible`).
* the Message Content intent: without it, guild messages that do not mention the bot arrive
  with content, embeds, attachments and components blanked (DMs and mentions keep them).
* command sync validates each command's schema (names, descriptions, options, choices,
  subcommands, sizes) and answers 400 50035 for a bad one, keeping the old commands.
* the network can fail: ``drop_next`` closes the connection instead of answering (the bot
  sees ``aiohttp.ServerDisconnectedError``).
* the gateway can ask the bot to RECONNECT (op 7; it resumes and gets what it missed) or
  invalidate its session (op 9; it identifies again).

Details discord.py depends on (found the hard way): JSON responses need the exact header
``Content-Type: application/json``; INTERACTION_CREATE needs ``attachment_size_limit``;
gateway frames may be plain text even though the client asks for zlib-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import itertools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import WSMsgType, web

T = TypeVar("T")
API = "/api/v10"
DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
CONTENT_INTENT = 1 << 15

# permission bits (https://discord.com/developers/docs/topics/permissions)
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
SEND_MESSAGES_IN_THREADS = 1 << 38
PERMISSIONS = {"view_channel": VIEW_CHANNEL, "send_messages": SEND_MESSAGES,
               "attach_files": ATTACH_FILES, "read_message_history": READ_MESSAGE_HISTORY,
               "send_messages_in_threads": SEND_MESSAGES_IN_THREADS}
EVERYONE_PERMISSIONS = 104324673  # Discord's default for @everyone
# what the README's invite URL grants the bot's own role
BOT_PERMISSIONS = (VIEW_CHANNEL | SEND_MESSAGES | SEND_MESSAGES_IN_THREADS
                   | READ_MESSAGE_HISTORY | ATTACH_FILES)

TEXT, DM, PUBLIC_THREAD = 0, 1, 11
NAME = re.compile(r"^[-_\w]{1,32}$")


class NotVisible(AssertionError):
    """A user tried to click a message that Discord would not show them (ephemeral)."""


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


@dataclass
class RestCall:
    """One REST request the bot made, and what the fake answered."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any  # the JSON body (``payload_json`` for multipart), or None
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (filename, content)
    status: int = 200
    code: int = 0  # Discord's error code in the answer (0: none)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None  # when the answer went out (None: still being answered)

    def route(self) -> str:
        """The path with ids and tokens replaced by {id}/{token} (for counting by route)."""
        return re.sub(r"/(\d{5,}|[A-Za-z0-9_-]{20,})(?=/|$)", "/{id}", self.path)


@dataclass
class FakeInteraction:
    """An interaction the fake sent, with every response the bot gave to it."""

    id: int
    token: str
    user_id: int
    channel_id: int
    data: dict
    created: float = field(default_factory=time.monotonic)
    callbacks: list[dict] = field(default_factory=list)  # the callback bodies, in order
    original: dict | None = None  # the response message (payload), once there is one
    contents: list[str] = field(default_factory=list)  # every content the original had
    followups: list[dict] = field(default_factory=list)

    @property
    def content(self) -> str:
        return (self.original or {}).get("content", "")

    @property
    def deferred(self) -> bool:
        return bool(self.callbacks) and self.callbacks[0].get("type") == 5

    @property
    def buttons(self) -> list[str]:
        """The custom ids of the buttons on the response message now."""
        return [c["custom_id"] for row in (self.original or {}).get("components", [])
                for c in row.get("components", []) if "custom_id" in c]


@dataclass
class FakeGuild:
    id: int
    name: str
    bot_role: int
    roles: dict[int, dict] = field(default_factory=dict)  # id → role payload
    channels: dict[int, dict] = field(default_factory=dict)  # id → channel/thread payload
    member_roles: dict[int, list[int]] = field(default_factory=dict)  # user id → role ids


class FakeDiscord:
    """The fake server; see the module doc. All ids are Discord-style snowflakes."""

    def __init__(self, *, echo: bool = True, refuse_privileged_intents: bool = False,
                 token: str | None = None, ack_deadline: float = 3.0,
                 token_lifetime: float = 15 * 60.0, bucket_limit: int = 50,
                 bucket_window: float = 1.0) -> None:
        self.token = token  # if set, REST calls must authenticate with it (else 401)
        self._counter = itertools.count()
        self.echo = echo
        self.refuse_privileged_intents = refuse_privileged_intents
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.bucket_limit, self.bucket_window = bucket_limit, bucket_window
        self.bot_user = self.make_user("sleepbot", bot=True)
        self.app_id = int(self.bot_user["id"])
        self.guilds: dict[int, FakeGuild] = {}
        self.guild_id = self.add_guild("Test Guild")
        self.channel_id = self.add_channel(name="general")
        self.calls: list[RestCall] = []
        self.unknown: list[RestCall] = []
        self.violations: list[RestCall] = []  # calls made into an exhausted bucket
        self.messages: dict[int, dict] = {}  # every message by id (the bot's and users')
        self.edits: dict[int, list[str]] = {}  # message id → every content it had, in order
        self.interactions: dict[str, FakeInteraction] = {}  # by token
        self.commands: list[dict] = []
        self.identify: dict | None = None
        self.identifies = self.resumes = 0
        self.left_guilds: list[int] = []
        self.ready = asyncio.Event()
        self._dm_channels: dict[int, int] = {}  # user id → DM channel id
        self._closed_dms: set[int] = set()  # DM channel ids that refuse the bot
        self._deleted_channels: set[int] = set()
        self._rate_limits: list[tuple[str, re.Pattern, float, bool]] = []
        self._drops: list[tuple[str, re.Pattern]] = []
        self._delays: list[tuple[str, re.Pattern, float]] = []
        self._buckets: dict[tuple, list[float]] = {}  # key → [window start, count]
        self._bucket_limits: list[tuple[str, re.Pattern, int, float]] = []
        self._changed = asyncio.Condition()
        self._ws: web.WebSocketResponse | None = None
        self._seq = 0
        self._session = 0
        self._sent: list[dict] = []  # this session's dispatches, for RESUME
        self._in_flight = 0
        self._runner: web.AppRunner | None = None
        self._saved: tuple[str, yarl.URL] | None = None
        self.port = 0
        self._routes: list[tuple[str, re.Pattern, Callable]] = [
            ("GET", re.compile(r"/users/@me"), self._get_me),
            ("GET", re.compile(r"/oauth2/applications/@me"), self._get_app),
            ("DELETE", re.compile(r"/users/@me/guilds/(\d+)"), self._leave_guild),
            ("GET", re.compile(r"/guilds/(\d+)/members/(\d+)"), self._get_member),
            ("PUT", re.compile(r"/applications/(\d+)/commands"), self._put_commands),
            ("PUT", re.compile(r"/applications/(\d+)/guilds/(\d+)/commands"), self._put_commands),
            ("POST", re.compile(r"/channels/(\d+)/messages"), self._create_message),
            ("GET", re.compile(r"/channels/(\d+)/messages/(\d+)"), self._get_message),
            ("PATCH", re.compile(r"/channels/(\d+)/messages/(\d+)"), self._edit_message),
            ("DELETE", re.compile(r"/channels/(\d+)/messages/(\d+)"), self._delete_message),
            ("POST", re.compile(r"/channels/(\d+)/typing"), self._typing),
            ("POST", re.compile(r"/interactions/(\d+)/([^/]+)/callback"), self._callback),
            ("GET", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/@original"), self._get_original),
            ("PATCH", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/(@original|\d+)"),
             self._edit_webhook_message),
            ("POST", re.compile(r"/webhooks/(\d+)/([^/]+)"), self._followup),
        ]

    # -- ids, users, guilds, channels ------------------------------------------------------
    def snowflake(self) -> int:
        """A fresh id whose timestamp is now (discord.py reads created_at from it)."""
        now_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (now_ms << 22) | (next(self._counter) & 0x3FFFFF)

    def make_user(self, name: str, *, bot: bool = False) -> dict:
        return {"id": str(self.snowflake()), "username": name, "global_name": name,
                "discriminator": "0", "avatar": None, "bot": bot, "public_flags": 0}

    def dm_channel(self, user: dict) -> int:
        return self._dm_channels.setdefault(int(user["id"]), self.snowflake())

    def add_guild(self, name: str) -> int:
        """A guild the bot is in from the start (before it connects)."""
        gid, bot_role = self.snowflake(), self.snowflake()
        guild = FakeGuild(gid, name, bot_role)
        guild.roles[gid] = self._role(gid, "@everyone", EVERYONE_PERMISSIONS)
        guild.roles[bot_role] = self._role(bot_role, "sleepbot", BOT_PERMISSIONS) | {
            "managed": True}
        guild.member_roles[int(self.bot_user["id"])] = [bot_role]
        self.guilds[gid] = guild
        return gid

    async def join_guild(self, name: str) -> int:
        """The bot is added to a new guild (GUILD_CREATE, as when someone invites it)."""
        gid = self.add_guild(name)
        self.add_channel(gid, name="general")
        payload = self.guild_payload(gid)
        del payload["unavailable"]  # absent on a join (False would mean "back from an outage")
        await self.send_event("GUILD_CREATE", payload)
        return gid

    @staticmethod
    def _role(rid: int, name: str, permissions: int) -> dict:
        return {"id": str(rid), "name": name, "permissions": str(permissions), "position": 0,
                "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}

    def add_role(self, name: str, guild_id: int | None = None) -> int:
        guild = self.guilds[guild_id or self.guild_id]
        rid = self.snowflake()
        guild.roles[rid] = self._role(rid, name, 0)
        return rid

    def give_role(self, user: dict, role_id: int, guild_id: int | None = None) -> None:
        guild = self.guilds[guild_id or self.guild_id]
        guild.member_roles.setdefault(int(user["id"]), []).append(role_id)

    def add_channel(self, guild_id: int | None = None, *, name: str = "channel",
                    thread_of: int | None = None) -> int:
        """A text channel, or a public thread of ``thread_of``. Call before the bot connects,
        or use :meth:`create_channel` to tell a connected bot."""
        gid = guild_id or (self.guild_of(thread_of) if thread_of else self.guild_id)
        cid = self.snowflake()
        channel: dict[str, Any] = {"id": str(cid), "guild_id": str(gid), "name": name,
                                   "type": TEXT, "position": 0, "permission_overwrites": [],
                                   "nsfw": False, "parent_id": None, "topic": None,
                                   "rate_limit_per_user": 0, "flags": 0}
        if thread_of is not None:
            channel |= {"type": PUBLIC_THREAD, "parent_id": str(thread_of),
                        "owner_id": self.bot_user["id"], "member_count": 1,
                        "message_count": 0, "thread_metadata": {
                            "archived": False, "auto_archive_duration": 1440,
                            "archive_timestamp": iso_now(), "locked": False}}
            del channel["permission_overwrites"]
        self.guilds[gid].channels[cid] = channel
        return cid

    async def create_channel(self, guild_id: int | None = None, *, name: str = "channel",
                             thread_of: int | None = None) -> int:
        cid = self.add_channel(guild_id, name=name, thread_of=thread_of)
        channel = self._guild_channel(cid)
        event = "THREAD_CREATE" if thread_of else "CHANNEL_CREATE"
        await self.send_event(event, channel | ({"newly_created": True} if thread_of else {}))
        return cid

    def guild_of(self, channel_id: int) -> int | None:
        for gid, guild in self.guilds.items():
            if channel_id in guild.channels:
                return gid
        return None

    def _guild_channel(self, channel_id: int) -> dict:
        return self.guilds[self.guild_of(channel_id)].channels[channel_id]

    async def deny_bot(self, channel_id: int, *permissions: str, tell_bot: bool = True
                       ) -> None:
        """Take ``permissions`` (names, e.g. "send_messages") from the bot in a channel. With
        ``tell_bot`` False the bot is not told (its cache is stale, as in a race)."""
        channel = self._guild_channel(channel_id)
        deny = sum(PERMISSIONS[p] for p in permissions)
        overwrites = channel.setdefault("permission_overwrites", [])
        overwrites.append({"id": self.bot_user["id"], "type": 1, "allow": "0",
                           "deny": str(deny)})
        if tell_bot:
            await self.send_event("CHANNEL_UPDATE", channel)

    async def delete_channel(self, channel_id: int, *, tell_bot: bool = False) -> None:
        """The channel is gone: calls to it answer 404 10003 Unknown Channel."""
        self._deleted_channels.add(channel_id)
        if tell_bot:
            await self.send_event("CHANNEL_DELETE", self._guild_channel(channel_id))

    def close_dms(self, user: dict) -> None:
        """``user`` no longer accepts DMs from the bot (403 50007)."""
        self._closed_dms.add(self.dm_channel(user))

    def bucket(self, method: str, pattern: str, limit: int, window: float) -> None:
        """Give the routes matching ``pattern`` a smaller rate-limit bucket."""
        self._bucket_limits.append((method, re.compile(pattern), limit, window))

    # -- permissions ----------------------------------------------------------------------
    def bot_permissions(self, channel_id: int) -> int:
        """What the bot may do in a guild channel or thread (Discord's algorithm)."""
        gid = self.guild_of(channel_id)
        guild = self.guilds[gid]
        channel = guild.channels[channel_id]
        if channel["type"] == PUBLIC_THREAD:  # threads take their parent's overwrites
            channel = guild.channels[int(channel["parent_id"])]
        bot_id = int(self.bot_user["id"])
        roles = guild.member_roles.get(bot_id, [])
        perms = int(guild.roles[gid]["permissions"])
        for rid in roles:
            perms |= int(guild.roles[rid]["permissions"])
        if perms & ADMINISTRATOR:
            return (1 << 50) - 1
        overwrites = channel.get("permission_overwrites", [])
        for ow in overwrites:
            if int(ow["id"]) == gid:
                perms = (perms & ~int(ow["deny"])) | int(ow["allow"])
        allow = deny = 0
        for ow in overwrites:
            if ow["type"] == 0 and int(ow["id"]) in roles:
                allow, deny = allow | int(ow["allow"]), deny | int(ow["deny"])
        perms = (perms & ~deny) | allow
        for ow in overwrites:
            if ow["type"] == 1 and int(ow["id"]) == bot_id:
                perms = (perms & ~int(ow["deny"])) | int(ow["allow"])
        return perms if perms & VIEW_CHANNEL else 0

    def _refusal(self, channel_id: int, *, send: bool = False, history: bool = False,
                 files: bool = False) -> web.Response | None:
        """Discord's answer when the bot may not do this in the channel, else None."""
        if channel_id in self._deleted_channels:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        if channel_id in self._closed_dms and send:
            return _json({"message": "Cannot send messages to this user", "code": 50007}, 403)
        if self.guild_of(channel_id) is None:
            return None  # a DM
        perms = self.bot_permissions(channel_id)
        if not perms & VIEW_CHANNEL:
            return _json({"message": "Missing Access", "code": 50001}, 403)
        thread = self._guild_channel(channel_id)["type"] == PUBLIC_THREAD
        needed = 0
        if send:
            needed |= SEND_MESSAGES_IN_THREADS if thread else SEND_MESSAGES
        if history:
            needed |= READ_MESSAGE_HISTORY
        if files:
            needed |= ATTACH_FILES
        if perms & needed != needed:
            return _json({"message": "Missing Permissions", "code": 50013}, 403)
        return None

    # -- payloads -------------------------------------------------------------------------
    def _message(self, channel_id: int, author: dict, content: str, **extra: Any) -> dict:
        msg = {"id": str(self.snowflake()), "channel_id": str(channel_id), "author": author,
               "content": content, "timestamp": iso_now(), "edited_timestamp": None,
               "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
               "attachments": [], "embeds": [], "components": [], "pinned": False, "type": 0,
               "flags": 0}
        gid = self.guild_of(channel_id)
        if gid is not None:
            msg["guild_id"] = str(gid)
        msg.update(extra)
        return msg

    def _member(self, user: dict | None = None, guild_id: int | None = None) -> dict:
        guild = self.guilds[guild_id or self.guild_id]
        roles = guild.member_roles.get(int(user["id"]), []) if user else []
        member = {"roles": [str(r) for r in roles], "joined_at": iso_now(), "deaf": False,
                  "mute": False, "flags": 0, "permissions": "2147483647"}
        if user is not None:
            member["user"] = user
        return member

    def guild_payload(self, guild_id: int | None = None) -> dict:
        guild = self.guilds[guild_id or self.guild_id]
        gid = str(guild.id)
        channels = [c for c in guild.channels.values() if c["type"] != PUBLIC_THREAD]
        threads = [c for c in guild.channels.values() if c["type"] == PUBLIC_THREAD]
        return {
            "id": gid, "name": guild.name, "icon": None, "owner_id": str(self.snowflake()),
            "unavailable": False, "member_count": 3, "large": False, "features": [],
            "roles": list(guild.roles.values()), "channels": channels, "threads": threads,
            "members": [self._member(self.bot_user, guild.id)], "emojis": [], "stickers": [],
            "voice_states": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [],
            "preferred_locale": "en-US", "premium_tier": 0, "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0,
            "nsfw_level": 0, "system_channel_flags": 0, "afk_timeout": 300,
        }

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    def install(self) -> None:
        """Point discord.py's REST routes (incl. webhooks) and gateway at this server."""
        self._saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = self.base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
            f"ws://127.0.0.1:{self.port}/gateway")

    def uninstall(self) -> None:
        if self._saved is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved
            self._saved = None

    async def stop(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- waiting --------------------------------------------------------------------------
    async def wait_for(self, predicate: Callable[[], T], timeout: float = 120.0) -> T:
        """Wait until ``predicate()`` is truthy (checked after every REST call and gateway
        frame, and every 50 ms for what the bot does on its own); return it."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while not (value := predicate()):
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise TimeoutError(f"still waiting after {timeout} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(0.05, left))
        return value

    async def settled(self) -> None:
        """Wait until no REST call is being answered."""
        await self.wait_for(lambda: self._in_flight == 0 or None, 30)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- test-facing queries --------------------------------------------------------------
    def calls_to(self, method: str, pattern: str) -> list[RestCall]:
        rx = re.compile(pattern)
        return [c for c in self.calls if c.method == method and rx.search(c.path)]

    def refused(self) -> list[RestCall]:
        """Calls answered with an error (4xx or 5xx)."""
        return [c for c in self.calls if c.status >= 400]

    def bot_messages(self, channel_id: int) -> list[dict]:
        """The bot's messages in a channel, oldest first, with their current content."""
        return [m for m in self.messages.values()
                if int(m["channel_id"]) == channel_id and m["author"]["id"] == self.bot_user["id"]
                and "interaction_token" not in m]

    def rate_limit_next(self, method: str, pattern: str, retry_after: float = 0.2, *,
                        global_: bool = False) -> None:
        """The next ``method`` call whose path matches ``pattern`` gets a 429 (a global one,
        which holds every request, with ``global_``)."""
        self._rate_limits.append((method, re.compile(pattern), retry_after, global_))

    def delay(self, method: str, pattern: str, seconds: float) -> None:
        """Answer matching calls only after ``seconds`` (a slow network or a busy Discord)."""
        self._delays.append((method, re.compile(pattern), seconds))

    def drop_next(self, method: str, pattern: str, times: int = 1) -> None:
        """The next ``times`` matching calls lose their connection (no answer at all)."""
        self._drops += [(method, re.compile(pattern))] * times

    # -- events into the bot --------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def send_event(self, name: str, data: dict) -> None:
        """Dispatch an event; while the bot is disconnected it is kept for its RESUME."""
        self._seq += 1
        frame = {"op": 0, "t": name, "s": self._seq, "d": data}
        self._sent.append(frame)
        del self._sent[:-1000]
        if self.connected:
            await self._ws.send_str(json.dumps(frame))

    def _visible(self, msg: dict) -> dict:
        """``msg`` as the bot receives it: content blanked without the Message Content
        intent, except in DMs, when the bot is mentioned, and in the bot's own messages."""
        intents = (self.identify or {}).get("intents", 0)
        mentioned = any(u["id"] == self.bot_user["id"] for u in msg.get("mentions", []))
        if (intents & CONTENT_INTENT or "guild_id" not in msg or mentioned
                or msg["author"]["id"] == self.bot_user["id"]):
            out = msg
        else:
            out = msg | {"content": "", "embeds": [], "attachments": [], "components": []}
        if out.get("referenced_message"):
            out = out | {"referenced_message": self._visible(out["referenced_message"])}
        return out

    async def dm(self, author: dict, content: str, *, attachments: list[dict] | None = None
                 ) -> dict:
        """``author`` sends the bot a direct message."""
        msg = self._message(self.dm_channel(author), author, content,
                            attachments=attachments or [])
        return await self._post_user_message(msg)

    async def guild_message(self, author: dict, content: str, *, mention: bool = True,
                            reply_to: dict | None = None, mention_everyone: bool = False,
                            channel_id: int | None = None, webhook: bool = False,
                            kind: int | None = None, referenced: bool = True) -> dict:
        """``author`` posts in a guild channel (the default one unless ``channel_id``),
        mentioning the bot and/or replying to ``reply_to`` (a message that may since have
        been deleted: then ``referenced_message`` is null, as Discord sends it). ``webhook``:
        posted by a webhook; ``kind``: a message type (e.g. 7, a member joined);
        ``referenced`` False leaves ``referenced_message`` out (Discord sometimes does: the
        bot must fetch it)."""
        channel_id = channel_id or self.channel_id
        gid = self.guild_of(channel_id)
        text = f"<@{self.bot_user['id']}> {content}" if mention and content else content
        extra: dict[str, Any] = {"mentions": [self.bot_user | {"member": self._member(
                                     self.bot_user, gid)}] if mention else [],
                                 "mention_everyone": mention_everyone}
        if not webhook:
            extra["member"] = self._member(author, gid)
        else:
            extra["webhook_id"] = str(self.snowflake())
        if reply_to is not None:
            current = self.messages.get(int(reply_to["id"]))
            extra |= {"type": 19, "message_reference": {"message_id": reply_to["id"],
                                                        "channel_id": reply_to["channel_id"],
                                                        "guild_id": str(gid)}}
            if referenced:
                extra["referenced_message"] = copy.deepcopy(current)
        if kind is not None:
            extra["type"] = kind
        msg = self._message(channel_id, author, text, **extra)
        return await self._post_user_message(msg)

    async def delete_user_message(self, msg: dict) -> None:
        """A user (or a moderator) deletes a message."""
        self.messages.pop(int(msg["id"]), None)
        data = {"id": msg["id"], "channel_id": msg["channel_id"]}
        if "guild_id" in msg:
            data["guild_id"] = msg["guild_id"]
        await self.send_event("MESSAGE_DELETE", data)

    async def _post_user_message(self, msg: dict) -> dict:
        self.messages[int(msg["id"])] = msg
        await self.send_event("MESSAGE_CREATE", self._visible(msg))
        return msg

    async def slash(self, user: dict, name: str, options: dict[str, Any] | None = None, *,
                    guild: bool = False, sub: str | None = None) -> FakeInteraction:
        """``user`` runs ``/name [sub]`` with ``options`` (str, bool or int values)."""
        opts = [{"name": k, "type": _option_type(v), "value": v}
                for k, v in (options or {}).items()]
        if sub is not None:
            opts = [{"name": sub, "type": 1, "options": opts}]
        data = {"id": str(self._command_id(name)), "name": name, "type": 1, "options": opts}
        return await self._interaction(user, 2, data, guild=guild)

    async def click(self, user: dict, interaction: FakeInteraction, custom_id: str
                    ) -> FakeInteraction:
        """``user`` presses the button ``custom_id`` on ``interaction``'s response message."""
        message = interaction.original
        assert message is not None, "that interaction has no message to click on"
        if message.get("flags", 0) & EPHEMERAL and int(user["id"]) != interaction.user_id:
            raise NotVisible("only the user who invoked the command sees an ephemeral message")
        assert custom_id in interaction.buttons, f"no button {custom_id!r} in " \
                                                 f"{interaction.buttons}"
        data = {"custom_id": custom_id, "component_type": 2}
        guild = "guild_id" in message
        return await self._interaction(user, 3, data, guild=guild, message=message)

    def _command_id(self, name: str) -> int:
        for cmd in self.commands:
            if cmd["name"] == name:
                return int(cmd["id"])
        return self.snowflake()  # not synced: Discord would not show it, but tests may send

    async def _interaction(self, user: dict, kind: int, data: dict, *, guild: bool,
                           message: dict | None = None) -> FakeInteraction:
        iid, token = self.snowflake(), f"itoken-{self.snowflake()}-{'x' * 24}"
        payload: dict[str, Any] = {
            "id": str(iid), "application_id": str(self.app_id), "type": kind, "token": token,
            "version": 1, "data": data, "locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if guild:
            channel_id = int(message["channel_id"]) if message else self.channel_id
            payload |= {"guild_id": str(self.guild_id), "guild_locale": "en-US",
                        "member": self._member(user), "context": 0,
                        "app_permissions": str(self.bot_permissions(channel_id)),
                        "channel": self._guild_channel(channel_id)}
        else:
            channel_id = self.dm_channel(user)
            payload |= {"user": user, "context": 1, "app_permissions": str(BOT_PERMISSIONS),
                        "channel": {"id": str(channel_id), "type": DM, "recipients": [user]}}
        payload["channel_id"] = str(channel_id)
        if message is not None:
            payload["message"] = message
        record = FakeInteraction(iid, token, int(user["id"]), channel_id, data)
        if message is not None:  # a component: its "original" is the message clicked on
            record.original = message
        self.interactions[token] = record
        await self.send_event("INTERACTION_CREATE", payload)
        return record

    # -- gateway --------------------------------------------------------------------------
    async def reconnect(self) -> None:
        """Op 7 RECONNECT: the bot closes, connects again and resumes."""
        assert self.connected
        await self._ws.send_str(json.dumps({"op": 7, "d": None}))

    async def invalidate_session(self, resumable: bool = False) -> None:
        """Op 9 INVALID_SESSION: the bot identifies again (or resumes, if ``resumable``)."""
        assert self.connected
        if not resumable:
            self._session += 1  # a RESUME of the old session will not be accepted
        await self._ws.send_str(json.dumps({"op": 9, "d": resumable}))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._ws = ws
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                msg = json.loads(frame.data)
                if msg["op"] == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif msg["op"] == 2:
                    await self._identified(ws, msg["d"])
                elif msg["op"] == 6:
                    await self._resume(ws, msg["d"])
                await self._notify()
        finally:
            if self._ws is ws:
                self._ws = None
        return ws

    async def _identified(self, ws: web.WebSocketResponse, data: dict) -> None:
        self.identify = data
        self.identifies += 1
        if self.refuse_privileged_intents and data.get("intents", 0) & CONTENT_INTENT:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        self._session += 1
        self._seq, self._sent = 0, []  # a new session: nothing of the old one is replayed
        await self.send_event("READY", {
            "v": 10, "user": self.bot_user,
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
            "session_id": f"fake-session-{self._session}",
            "application": {"id": str(self.app_id), "flags": 0},
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
            "private_channels": [], "relationships": [],
        })
        for gid in self.guilds:
            await self.send_event("GUILD_CREATE", self.guild_payload(gid))
        self.ready.set()

    async def _resume(self, ws: web.WebSocketResponse, data: dict) -> None:
        if data.get("session_id") != f"fake-session-{self._session}":
            await ws.send_str(json.dumps({"op": 9, "d": False}))
            return
        self.resumes += 1
        for frame in [f for f in self._sent if f["s"] > (data.get("seq") or 0)]:
            await ws.send_str(json.dumps(frame))  # what the bot missed, in order
        await self.send_event("RESUMED", {})

    # -- REST -----------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.Response:
        path = request.path
        self._in_flight += 1
        try:
            body, files = await _read_body(request)
            call = RestCall(request.method, path.removeprefix(API), dict(request.query), body,
                            files)
            self.calls.append(call)
            for entry in self._drops:
                if entry[0] == call.method and entry[1].search(call.path):
                    self._drops.remove(entry)
                    call.status = 599  # not an HTTP answer: the connection was dropped
                    call.ended = time.monotonic()
                    request.transport.close()
                    return web.Response(status=599)
            for method, pattern, seconds in self._delays:
                if method == call.method and pattern.search(call.path):
                    await asyncio.sleep(seconds)
            response = await self._answer(request, call)
            call.status, call.ended = response.status, time.monotonic()
            if response.status >= 400 and response.body:
                call.code = json.loads(response.body).get("code", 0)
            return response
        finally:
            self._in_flight -= 1
            await self._notify()

    async def _answer(self, request: web.Request, call: RestCall) -> web.Response:
        if not request.path.startswith(API):
            return self._unknown(call)
        auth = request.headers.get("Authorization")
        if self.token is not None and auth is not None and auth != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        for entry in list(self._rate_limits):
            method, pattern, retry_after, is_global = entry
            if method == call.method and pattern.search(call.path):
                self._rate_limits.remove(entry)
                headers = {"Via": "1.1 google",
                           "X-RateLimit-Scope": "global" if is_global else "user"}
                if is_global:
                    headers["X-RateLimit-Global"] = "true"
                return _json({"message": "You are being rate limited.",
                              "retry_after": retry_after, "global": is_global}, 429, headers)
        headers, over = self._take_bucket(call)
        if over is not None:
            self.violations.append(call)
            return _json({"message": "You are being rate limited.", "retry_after": over,
                          "global": False}, 429, headers | {"Via": "1.1 google",
                                                            "X-RateLimit-Scope": "user"})
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(call.path)
            if match and method == call.method:
                response = await handler(call, *match.groups())
                response.headers.update(headers)
                return response
        return self._unknown(call)

    def _take_bucket(self, call: RestCall) -> tuple[dict[str, str], float | None]:
        """Count the call in its bucket: the X-RateLimit-* headers, and the seconds to wait
        if the bucket was already empty (a violation)."""
        limit, window = self.bucket_limit, self.bucket_window
        for method, pattern, lim, win in self._bucket_limits:
            if method == call.method and pattern.search(call.path):
                limit, window = lim, win
        major = re.match(r"/(?:channels|guilds|webhooks|interactions)/(\d+)", call.path)
        key = (call.method, call.route(), major.group(1) if major else "")
        now = time.monotonic()
        state = self._buckets.setdefault(key, [now, 0])
        if now >= state[0] + window:
            state[:] = [now, 0]
        reset_after = math.ceil((state[0] + window - now) * 1000) / 1000
        over = reset_after if state[1] >= limit else None
        if over is None:
            state[1] += 1
        headers = {"X-RateLimit-Limit": str(limit),
                   "X-RateLimit-Remaining": str(max(0, limit - state[1])),
                   "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                   "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                   "X-RateLimit-Bucket": hashlib.sha1(
                       f"{call.method} {call.route()}".encode()).hexdigest()[:16]}
        return headers, over

    def _unknown(self, call: RestCall) -> web.Response:
        self.unknown.append(call)
        return _json({"message": f"fake Discord: unknown route {call.method} {call.path}",
                      "code": 0}, 404)

    async def _get_me(self, call: RestCall) -> web.Response:
        return _json(self.bot_user)

    async def _get_app(self, call: RestCall) -> web.Response:
        return _json({"id": str(self.app_id), "name": "sleepbot", "description": "",
                      "icon": None, "bot_public": True, "bot_require_code_grant": False,
                      "owner": self.make_user("owner"), "verify_key": "0" * 64, "flags": 0,
                      "summary": "", "team": None, "bot": self.bot_user})

    async def _leave_guild(self, call: RestCall, guild_id: str) -> web.Response:
        gid = int(guild_id)
        if gid not in self.guilds:
            return _json({"message": "Unknown Guild", "code": 10004}, 404)
        del self.guilds[gid]
        self.left_guilds.append(gid)
        asyncio.get_running_loop().create_task(self.send_event("GUILD_DELETE", {"id": guild_id}))
        return web.Response(status=204)

    async def _get_member(self, call: RestCall, guild_id: str, user_id: str) -> web.Response:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            return _json({"message": "Unknown Guild", "code": 10004}, 404)
        if int(user_id) not in guild.member_roles:
            return _json({"message": "Unknown Member", "code": 10007}, 404)
        user = {"id": user_id, "username": f"user{user_id[-4:]}", "discriminator": "0",
                "avatar": None, "global_name": None}
        return _json(self._member(user, guild.id))

    async def _put_commands(self, call: RestCall, *ids: str) -> web.Response:
        errors = validate_commands(call.body or [])
        if errors:
            return _json({"message": "Invalid Form Body", "code": 50035, "errors": errors}, 400)
        synced = [cmd | {"id": str(self.snowflake()), "application_id": str(self.app_id),
                         "version": str(self.snowflake())} for cmd in call.body or []]
        self.commands = synced
        return _json(synced)

    async def _typing(self, call: RestCall, channel_id: str) -> web.Response:
        if (refusal := self._refusal(int(channel_id), send=True)) is not None:
            return refusal
        return web.Response(status=204)

    def _check_content(self, body: dict) -> web.Response | None:
        content = (body or {}).get("content")
        if content is not None and utf16_len(content) > 2000:
            return _json({"message": "Invalid Form Body", "code": 50035, "errors": {
                "content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                                         "message": "Must be 2000 or fewer in length."}]}}},
                         400)
        if content is not None and not content and not (body.get("components")
                                                        or body.get("attachments")):
            return _json({"message": "Cannot send an empty message", "code": 50006}, 400)
        return None

    def _bot_message(self, channel_id: int, body: dict, files: list, **extra: Any) -> dict:
        msg = self._message(channel_id, self.bot_user, body.get("content") or "",
                            components=body.get("components") or [],
                            flags=body.get("flags") or 0, **extra)
        msg["attachments"] = [{"id": str(self.snowflake()), "filename": name,
                               "size": len(data), "url": f"{self.base}/files/{name}",
                               "proxy_url": f"{self.base}/files/{name}"}
                              for name, data in files]
        if body.get("message_reference"):
            msg["message_reference"] = body["message_reference"]
            msg["type"] = 19
        self.messages[int(msg["id"])] = msg
        self.edits[int(msg["id"])] = [msg["content"]]
        return msg

    async def _create_message(self, call: RestCall, channel_id: str) -> web.Response:
        body = call.body or {}
        refusal = self._refusal(int(channel_id), send=True, files=bool(call.files),
                                history=bool(body.get("message_reference")))
        if refusal is not None:
            return refusal
        if (error := self._check_content(body)) is not None:
            return error
        msg = self._bot_message(int(channel_id), body, call.files)
        if self.echo:  # Discord sends the bot its own messages too
            asyncio.get_running_loop().create_task(self.send_event("MESSAGE_CREATE", msg))
        return _json(msg)

    async def _get_message(self, call: RestCall, channel_id: str, message_id: str
                           ) -> web.Response:
        if (refusal := self._refusal(int(channel_id), history=True)) is not None:
            return refusal
        msg = self.messages.get(int(message_id))
        if msg is None or msg["channel_id"] != channel_id:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        return _json(self._visible(msg))

    async def _edit_message(self, call: RestCall, channel_id: str, message_id: str
                            ) -> web.Response:
        if (refusal := self._refusal(int(channel_id))) is not None:
            return refusal
        msg = self.messages.get(int(message_id))
        if msg is None or msg["author"]["id"] != self.bot_user["id"]:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        if (error := self._check_content(call.body)) is not None:
            return error
        return _json(self._apply_edit(msg, call.body))

    async def _delete_message(self, call: RestCall, channel_id: str, message_id: str
                              ) -> web.Response:
        if (refusal := self._refusal(int(channel_id))) is not None:
            return refusal
        msg = self.messages.get(int(message_id))
        if msg is None or msg["author"]["id"] != self.bot_user["id"]:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        del self.messages[int(message_id)]
        return web.Response(status=204)

    def _apply_edit(self, msg: dict, body: dict) -> dict:
        if "content" in body:
            msg["content"] = body["content"] or ""
            self.edits.setdefault(int(msg["id"]), []).append(msg["content"])
        if "components" in body:
            msg["components"] = body["components"] or []
        msg["edited_timestamp"] = iso_now()
        msg["flags"] = msg.get("flags", 0) & ~LOADING
        return msg

    def _interaction_for(self, token: str) -> FakeInteraction | None:
        return self.interactions.get(token)

    def _expired(self, record: FakeInteraction) -> web.Response | None:
        if time.monotonic() - record.created > self.token_lifetime:
            return _json({"message": "Invalid Webhook Token", "code": 50027}, 401)
        return None

    async def _callback(self, call: RestCall, interaction_id: str, token: str
                        ) -> web.Response:
        record = self._interaction_for(token)
        if (record is None or record.id != int(interaction_id)
                or time.monotonic() - record.created > self.ack_deadline):
            return _json({"message": "Unknown interaction", "code": 10062}, 404)
        if record.callbacks and record.callbacks[-1].get("type") != 1:
            return _json({"message": "Interaction has already been acknowledged.",
                          "code": 40060}, 400)
        body = call.body or {}
        kind, data = body.get("type"), body.get("data") or {}
        if (error := self._check_content(data)) is not None:
            return error
        record.callbacks.append(body)
        if kind in (4, 5):  # a message, or "thinking…" to be edited later
            flags = (data.get("flags") or 0) | (LOADING if kind == 5 else 0)
            msg = self._bot_message(record.channel_id, data | {"flags": flags}, call.files,
                                    interaction_token=token)
            record.original = msg
            record.contents.append(msg["content"])
        elif kind == 7 and record.original is not None:  # update the clicked message
            self._apply_edit(record.original, data)
        response = {"interaction": {"id": str(record.id), "type": 2,
                                    "response_message_loading": kind == 5,
                                    "response_message_ephemeral":
                                        bool((data.get("flags") or 0) & EPHEMERAL)}}
        if record.original is not None:
            response["interaction"]["response_message_id"] = record.original["id"]
            response["resource"] = {"type": kind, "message": record.original}
        return _json(response)

    async def _get_original(self, call: RestCall, app_id: str, token: str) -> web.Response:
        record = self._interaction_for(token)
        if record is None or record.original is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        if (expired := self._expired(record)) is not None:
            return expired
        return _json(record.original)

    async def _edit_webhook_message(self, call: RestCall, app_id: str, token: str,
                                    message_id: str) -> web.Response:
        record = self._interaction_for(token)
        if record is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        if (expired := self._expired(record)) is not None:
            return expired
        if message_id == "@original":
            msg = record.original
        else:
            msg = next((m for m in record.followups if m["id"] == message_id), None)
        if msg is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        if (error := self._check_content(call.body)) is not None:
            return error
        self._apply_edit(msg, call.body or {})
        if msg is record.original:
            record.contents.append(msg["content"])
        return _json(msg)

    async def _followup(self, call: RestCall, app_id: str, token: str) -> web.Response:
        record = self._interaction_for(token)
        if record is None or not record.callbacks:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        if (expired := self._expired(record)) is not None:
            return expired
        if (error := self._check_content(call.body)) is not None:
            return error
        msg = self._bot_message(record.channel_id, call.body or {}, call.files,
                                interaction_token=token)
        record.followups.append(msg)
        return _json(msg)


# -- command schemas (https://discord.com/developers/docs/interactions/application-commands)
def validate_commands(commands: list[dict]) -> dict:
    """Discord's checks on a bulk overwrite: ``{}`` if every command is valid, else the
    errors keyed by position, as in a 50035 answer."""
    errors: dict[str, Any] = {}
    if len(commands) > 100:
        errors["_errors"] = [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Too many commands"}]
    names = [(c.get("name"), c.get("type", 1)) for c in commands]
    for i, cmd in enumerate(commands):
        problems = _command_problems(cmd)
        if names.count((cmd.get("name"), cmd.get("type", 1))) > 1:
            problems.append("duplicate command name")
        if problems:
            errors[str(i)] = {"_errors": [{"code": "INVALID_COMMAND", "message": p}
                                          for p in problems]}
    return errors


def _command_problems(cmd: dict) -> list[str]:
    problems: list[str] = []
    kind = cmd.get("type", 1)
    name = cmd.get("name") or ""
    if kind == 1:
        if not NAME.fullmatch(name) or name != name.lower():
            problems.append(f"bad name {name!r}")
        if not 1 <= len(cmd.get("description") or "") <= 100:
            problems.append(f"description of /{name} must be 1-100 characters")
        problems += _options_problems(cmd.get("options") or [], depth=0)
    elif cmd.get("description"):
        problems.append("only slash commands have descriptions")
    for ctx in cmd.get("contexts") or []:
        if ctx not in (0, 1, 2):
            problems.append(f"unknown context {ctx}")
    for integration in cmd.get("integration_types") or []:
        if integration not in (0, 1):
            problems.append(f"unknown integration type {integration}")
    if _chars(cmd) > 4000:
        problems.append("command is over 4000 characters")
    return problems


def _options_problems(options: list[dict], depth: int) -> list[str]:
    problems: list[str] = []
    if len(options) > 25:
        problems.append("more than 25 options")
    kinds = [o.get("type") for o in options]
    if any(k in (1, 2) for k in kinds) and not all(k in (1, 2) for k in kinds):
        problems.append("subcommands cannot sit beside other options")
    seen_optional = False
    names = [o.get("name") for o in options]
    for opt in options:
        name, kind = opt.get("name") or "", opt.get("type")
        if not NAME.fullmatch(name) or name != name.lower():
            problems.append(f"bad option name {name!r}")
        if names.count(name) > 1:
            problems.append(f"duplicate option {name!r}")
        if not 1 <= len(opt.get("description") or "") <= 100:
            problems.append(f"description of option {name!r} must be 1-100 characters")
        if kind not in range(1, 12):
            problems.append(f"unknown option type {kind}")
        if kind in (1, 2):
            if kind == 2 and depth > 0 or kind == 1 and depth > 1:
                problems.append(f"{name!r} nested too deep")
            sub = opt.get("options") or []
            if kind == 2 and any(o.get("type") != 1 for o in sub):
                problems.append(f"group {name!r} may hold subcommands only")
            problems += _options_problems(sub, depth + 1)
            continue
        if opt.get("required"):
            if seen_optional:
                problems.append(f"required option {name!r} after an optional one")
        else:
            seen_optional = True
        choices = opt.get("choices") or []
        if len(choices) > 25:
            problems.append(f"option {name!r} has more than 25 choices")
        for choice in choices:
            if not 1 <= len(str(choice.get("name", ""))) <= 100:
                problems.append(f"a choice of {name!r} has a bad name")
    return problems


def _chars(cmd: dict) -> int:
    total = len(cmd.get("name") or "") + len(cmd.get("description") or "")
    for opt in cmd.get("options") or []:
        total += _chars(opt)
        total += sum(len(str(c.get("name", ""))) + len(str(c.get("value", "")))
                     for c in opt.get("choices") or [])
    return total


def _option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    return 3


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py decodes JSON only under this exact content type (no "; charset=...")
    return web.Response(body=json.dumps(data).encode("utf-8"), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


async def _read_body(request: web.Request) -> tuple[Any, list[tuple[str, bytes]]]:
    ctype = request.headers.get("Content-Type", "")
    if ctype.startswith("multipart/"):
        body, files = None, []
        reader = await request.multipart()
        async for part in reader:
            if part.name == "payload_json":
                body = json.loads(await part.text())
            else:
                files.append((part.filename or part.name or "file", bytes(await part.read())))
        return body, files
    raw = await request.read()
    return (json.loads(raw) if raw else None), []
