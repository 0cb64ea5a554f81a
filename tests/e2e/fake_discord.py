"""A local fake Discord: enough REST and gateway for the real discord.py client, on 127.0.0.1.

    fake = FakeDiscord()
    await fake.start()          # aiohttp server on a free port
    fake.install()              # point discord.py at it (Route.BASE, DEFAULT_GATEWAY)
    ... bot.start("token") ...; await fake.dm(alice, "hi"); await fake.wait_for(...)
    fake.uninstall(); await fake.stop()

What it speaks: login (``GET /users/@me``, ``GET /oauth2/applications/@me``), command sync,
messages (create, edit, typing), interaction callbacks, webhook follow-ups and
``@original`` edits (JSON and multipart with files), and a gateway that sends HELLO, READY
(with a local ``resume_gateway_url``) and GUILD_CREATE, acks heartbeats and dispatches
MESSAGE_CREATE and INTERACTION_CREATE built by the helpers below. Messages the bot creates
are echoed back as MESSAGE_CREATE, as Discord does. Every REST call is recorded in
``calls``; a route it does not know answers 404 and lands in ``unknown`` (the test fixture
fails on it). ``rate_limit_next`` makes the next matching call get a 429 with a ``Via``
header and a JSON ``retry_after``, as Discord's edge does. Content over 2,000 characters
(UTF-16 units) is refused with a 400, as Discord does.

Details discord.py depends on (found the hard way): JSON responses need the exact header
``Content-Type: application/json``; INTERACTION_CREATE needs ``attachment_size_limit``;
gateway frames may be plain text even though the client asks for zlib-stream.
"""

from __future__ import annotations

import asyncio
import itertools
import json
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


class FakeDiscord:
    """The fake server; see the module doc. All ids are Discord-style snowflakes."""

    def __init__(self, *, echo: bool = True, refuse_privileged_intents: bool = False,
                 token: str | None = None) -> None:
        self.token = token  # if set, REST calls must authenticate with it (else 401)
        self._ids = itertools.count(((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) + 1)
        self.echo = echo
        self.refuse_privileged_intents = refuse_privileged_intents
        self.bot_user = self.make_user("sleepbot", bot=True)
        self.app_id = int(self.bot_user["id"])
        self.guild_id = self.snowflake()
        self.channel_id = self.snowflake()
        self.calls: list[RestCall] = []
        self.unknown: list[RestCall] = []
        self.messages: dict[int, dict] = {}  # every message by id (the bot's and users')
        self.edits: dict[int, list[str]] = {}  # message id → every content it had, in order
        self.interactions: dict[str, FakeInteraction] = {}  # by token
        self.commands: list[dict] = []
        self.identify: dict | None = None
        self.ready = asyncio.Event()
        self._dm_channels: dict[int, int] = {}
        self._rate_limits: list[tuple[str, re.Pattern, float]] = []
        self._changed = asyncio.Condition()
        self._ws: web.WebSocketResponse | None = None
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self._saved: tuple[str, yarl.URL] | None = None
        self.port = 0
        self._routes: list[tuple[str, re.Pattern, Callable]] = [
            ("GET", re.compile(r"/users/@me"), self._get_me),
            ("GET", re.compile(r"/oauth2/applications/@me"), self._get_app),
            ("PUT", re.compile(r"/applications/(\d+)/commands"), self._put_commands),
            ("PUT", re.compile(r"/applications/(\d+)/guilds/(\d+)/commands"), self._put_commands),
            ("POST", re.compile(r"/channels/(\d+)/messages"), self._create_message),
            ("PATCH", re.compile(r"/channels/(\d+)/messages/(\d+)"), self._edit_message),
            ("DELETE", re.compile(r"/channels/(\d+)/messages/(\d+)"), self._delete_message),
            ("POST", re.compile(r"/channels/(\d+)/typing"), self._typing),
            ("POST", re.compile(r"/interactions/(\d+)/([^/]+)/callback"), self._callback),
            ("GET", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/@original"), self._get_original),
            ("PATCH", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/(@original|\d+)"),
             self._edit_webhook_message),
            ("POST", re.compile(r"/webhooks/(\d+)/([^/]+)"), self._followup),
        ]

    # -- ids, users, payloads -------------------------------------------------------------
    def snowflake(self) -> int:
        return next(self._ids)

    def make_user(self, name: str, *, bot: bool = False) -> dict:
        return {"id": str(self.snowflake()), "username": name, "global_name": name,
                "discriminator": "0", "avatar": None, "bot": bot, "public_flags": 0}

    def dm_channel(self, user: dict) -> int:
        return self._dm_channels.setdefault(int(user["id"]), self.snowflake())

    def _message(self, channel_id: int, author: dict, content: str, *, guild: bool,
                 **extra: Any) -> dict:
        msg = {"id": str(self.snowflake()), "channel_id": str(channel_id), "author": author,
               "content": content, "timestamp": iso_now(), "edited_timestamp": None,
               "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
               "attachments": [], "embeds": [], "components": [], "pinned": False, "type": 0,
               "flags": 0}
        if guild:
            msg["guild_id"] = str(self.guild_id)
        msg.update(extra)
        return msg

    def _member(self, user: dict | None = None) -> dict:
        member = {"roles": [], "joined_at": iso_now(), "deaf": False, "mute": False,
                  "flags": 0, "permissions": "2147483647"}
        if user is not None:
            member["user"] = user
        return member

    def guild_payload(self) -> dict:
        gid = str(self.guild_id)
        return {
            "id": gid, "name": "Test Guild", "icon": None, "owner_id": self.bot_user["id"],
            "unavailable": False, "member_count": 3, "large": False, "features": [],
            "roles": [{"id": gid, "name": "@everyone", "permissions": "104324673",
                       "position": 0, "color": 0, "hoist": False, "managed": False,
                       "mentionable": False, "flags": 0}],
            "channels": [{"id": str(self.channel_id), "type": 0, "name": "general",
                          "position": 0, "guild_id": gid, "permission_overwrites": [],
                          "nsfw": False, "parent_id": None, "topic": None}],
            "members": [self._member(self.bot_user)], "emojis": [], "stickers": [],
            "threads": [], "voice_states": [], "presences": [], "stage_instances": [],
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
        """Wait until ``predicate()`` is truthy (checked after every REST call); return it."""
        result: list[T] = []

        def check() -> bool:
            value = predicate()
            if value:
                result.append(value)
            return bool(value)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(check), timeout)
        return result[0]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- test-facing queries --------------------------------------------------------------
    def calls_to(self, method: str, pattern: str) -> list[RestCall]:
        rx = re.compile(pattern)
        return [c for c in self.calls if c.method == method and rx.search(c.path)]

    def bot_messages(self, channel_id: int) -> list[dict]:
        """The bot's messages in a channel, oldest first, with their current content."""
        return [m for m in self.messages.values()
                if int(m["channel_id"]) == channel_id and m["author"]["id"] == self.bot_user["id"]
                and "interaction_token" not in m]

    def rate_limit_next(self, method: str, pattern: str, retry_after: float = 0.2) -> None:
        """The next ``method`` call whose path matches ``pattern`` gets a 429."""
        self._rate_limits.append((method, re.compile(pattern), retry_after))

    # -- events into the bot --------------------------------------------------------------
    async def send_event(self, name: str, data: dict) -> None:
        assert self._ws is not None and not self._ws.closed, "the bot is not connected"
        self._seq += 1
        await self._ws.send_str(json.dumps({"op": 0, "t": name, "s": self._seq, "d": data}))

    async def dm(self, author: dict, content: str, *, attachments: list[dict] | None = None
                 ) -> dict:
        """``author`` sends the bot a direct message."""
        msg = self._message(self.dm_channel(author), author, content, guild=False,
                            attachments=attachments or [])
        return await self._post_user_message(msg)

    async def guild_message(self, author: dict, content: str, *, mention: bool = True,
                            reply_to: dict | None = None, mention_everyone: bool = False,
                            channel_id: int | None = None) -> dict:
        """``author`` posts in the guild channel, mentioning the bot and/or replying to it."""
        text = f"<@{self.bot_user['id']}> {content}" if mention and content else content
        extra: dict[str, Any] = {"member": self._member(),
                                 "mentions": [self.bot_user | {"member": self._member()}]
                                 if mention else [],
                                 "mention_everyone": mention_everyone}
        if reply_to is not None:
            extra |= {"type": 19, "referenced_message": reply_to,
                      "message_reference": {"message_id": reply_to["id"],
                                            "channel_id": reply_to["channel_id"],
                                            "guild_id": str(self.guild_id)}}
        msg = self._message(channel_id or self.channel_id, author, text, guild=True, **extra)
        return await self._post_user_message(msg)

    async def _post_user_message(self, msg: dict) -> dict:
        self.messages[int(msg["id"])] = msg
        await self.send_event("MESSAGE_CREATE", msg)
        return msg

    async def slash(self, user: dict, name: str, options: dict[str, Any] | None = None, *,
                    guild: bool = False) -> FakeInteraction:
        """``user`` runs ``/name`` with ``options`` (str, bool or int values)."""
        opts = [{"name": k, "type": _option_type(v), "value": v}
                for k, v in (options or {}).items()]
        data = {"id": str(self._command_id(name)), "name": name, "type": 1, "options": opts}
        return await self._interaction(user, 2, data, guild=guild)

    async def click(self, user: dict, interaction: FakeInteraction, custom_id: str
                    ) -> FakeInteraction:
        """``user`` presses the button ``custom_id`` on ``interaction``'s response message."""
        message = interaction.original
        assert message is not None, "that interaction has no message to click on"
        buttons = [c["custom_id"] for row in message.get("components", [])
                   for c in row.get("components", [])]
        assert custom_id in buttons, f"no button {custom_id!r} in {buttons}"
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
            "attachment_size_limit": 8 * 1024 * 1024, "app_permissions": "2147483647",
        }
        if guild:
            channel_id = self.channel_id
            payload |= {"guild_id": str(self.guild_id), "guild_locale": "en-US",
                        "member": self._member(user), "context": 0,
                        "channel": {"id": str(channel_id), "type": 0, "name": "general",
                                    "guild_id": str(self.guild_id), "position": 0,
                                    "permission_overwrites": [], "nsfw": False}}
        else:
            channel_id = self.dm_channel(user)
            payload |= {"user": user, "context": 1,
                        "channel": {"id": str(channel_id), "type": 1, "recipients": [user]}}
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
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._ws = ws
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            msg = json.loads(frame.data)
            if msg["op"] == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif msg["op"] == 2:
                await self._identified(ws, msg["d"])
            elif msg["op"] == 6:
                self._seq += 1
                await ws.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": self._seq, "d": {}}))
        return ws

    async def _identified(self, ws: web.WebSocketResponse, data: dict) -> None:
        self.identify = data
        content_intent = 1 << 15
        if self.refuse_privileged_intents and data.get("intents", 0) & content_intent:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        await self.send_event("READY", {
            "v": 10, "user": self.bot_user, "guilds": [{"id": str(self.guild_id),
                                                        "unavailable": True}],
            "session_id": "fake-session", "application": {"id": str(self.app_id), "flags": 0},
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
            "private_channels": [], "relationships": [],
        })
        await self.send_event("GUILD_CREATE", self.guild_payload())
        self.ready.set()

    # -- REST -----------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.Response:
        path = request.path
        body, files = await _read_body(request)
        call = RestCall(request.method, path.removeprefix(API), dict(request.query), body, files)
        self.calls.append(call)
        try:
            if not path.startswith(API):
                return self._unknown(call)
            auth = request.headers.get("Authorization")
            if self.token is not None and auth is not None and auth != f"Bot {self.token}":
                call.status = 401
                return _json({"message": "401: Unauthorized", "code": 0}, 401)
            for method, pattern, limit in list(self._rate_limits):
                if method == call.method and pattern.search(call.path):
                    self._rate_limits.remove((method, pattern, limit))
                    call.status = 429
                    return _json({"message": "You are being rate limited.",
                                  "retry_after": limit, "global": False}, 429,
                                 {"Via": "1.1 google", "X-RateLimit-Scope": "user"})
            for method, pattern, handler in self._routes:
                match = pattern.fullmatch(call.path)
                if match and method == call.method:
                    response = await handler(call, *match.groups())
                    call.status = response.status
                    return response
            return self._unknown(call)
        finally:
            await self._notify()

    def _unknown(self, call: RestCall) -> web.Response:
        self.unknown.append(call)
        call.status = 404
        return _json({"message": f"fake Discord: unknown route {call.method} {call.path}",
                      "code": 0}, 404)

    async def _get_me(self, call: RestCall) -> web.Response:
        return _json(self.bot_user)

    async def _get_app(self, call: RestCall) -> web.Response:
        return _json({"id": str(self.app_id), "name": "sleepbot", "description": "",
                      "icon": None, "bot_public": True, "bot_require_code_grant": False,
                      "owner": self.make_user("owner"), "verify_key": "0" * 64, "flags": 0,
                      "summary": "", "team": None, "bot": self.bot_user})

    async def _put_commands(self, call: RestCall, *ids: str) -> web.Response:
        synced = [cmd | {"id": str(self.snowflake()), "application_id": str(self.app_id),
                         "version": str(self.snowflake())} for cmd in call.body or []]
        self.commands = synced
        return _json(synced)

    async def _typing(self, call: RestCall, channel_id: str) -> web.Response:
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
        guild = channel_id == self.channel_id
        msg = self._message(channel_id, self.bot_user, body.get("content") or "", guild=guild,
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
        if (error := self._check_content(call.body)) is not None:
            return error
        msg = self._bot_message(int(channel_id), call.body, call.files)
        if self.echo:  # Discord sends the bot its own messages too
            asyncio.get_running_loop().create_task(self.send_event("MESSAGE_CREATE", msg))
        return _json(msg)

    async def _edit_message(self, call: RestCall, channel_id: str, message_id: str
                            ) -> web.Response:
        msg = self.messages.get(int(message_id))
        if msg is None or msg["author"]["id"] != self.bot_user["id"]:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        if (error := self._check_content(call.body)) is not None:
            return error
        return _json(self._apply_edit(msg, call.body))

    async def _delete_message(self, call: RestCall, channel_id: str, message_id: str
                              ) -> web.Response:
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

    async def _callback(self, call: RestCall, interaction_id: str, token: str
                        ) -> web.Response:
        record = self._interaction_for(token)
        if record is None or record.id != int(interaction_id):
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
        return _json(record.original)

    async def _edit_webhook_message(self, call: RestCall, app_id: str, token: str,
                                    message_id: str) -> web.Response:
        record = self._interaction_for(token)
        if record is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
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
        if (error := self._check_content(call.body)) is not None:
            return error
        msg = self._bot_message(record.channel_id, call.body or {}, call.files,
                                interaction_token=token)
        record.followups.append(msg)
        return _json(msg)


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

