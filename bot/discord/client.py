"""The Discord bot: a ``commands.Bot`` that owns the engine and the orchestrator.

    python -m bot run            (``make run``; DISCORD_TOKEN from the environment or .env)

``setup_hook`` opens the engine (store + model thread), starts the orchestrator (sleep queue,
automatic and nightly sleep), adds the chat and memory cogs and syncs the slash commands.
When connected (and whenever it joins a guild) it leaves the guilds that ``allowed_guilds``
does not list, and says what it cannot read when run without the Message Content intent.
``close`` stops taking messages, lets the replies in flight finish, then stops the
orchestrator and the engine. Nothing the bot sends can ping anyone (``AllowedMentions.none()``
is the client default and is passed on every send). The token is never printed or logged.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.access import NETWORK_ERRORS, Access, RateLimiter
from bot.engine import Engine, open_engine
from runtime.config import Config
from runtime.thread import ModelRuntime

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()

INTENTS_HELP = (
    "error: Discord refused the connection because the Message Content intent is not enabled. "
    "Open https://discord.com/developers/applications → your application → Bot, turn on "
    "'Message Content Intent', save, and run again (or set SLEEPBOT_DISCORD_MESSAGE_CONTENT=0 "
    "to run without it: DMs and messages that mention the bot only)."
)
PUBLIC_BOT = (
    "this application is a Public Bot: anyone with its invite link can add it to a server, and "
    "every member there gets memory on this machine. Turn off 'Public Bot' at "
    "https://discord.com/developers/applications → your application → Bot, or set "
    "SLEEPBOT_DISCORD_GUILDS"
)
WITHOUT_CONTENT = (
    "running without the Message Content intent: I read DMs and guild messages that mention "
    "me; replies to my messages that do not mention me arrive empty (I ask for a mention)"
)
BAD_TOKEN = (
    "error: Discord rejected DISCORD_TOKEN. Reset the token at "
    "https://discord.com/developers/applications → your application → Bot → Reset Token, and "
    "put the new one in .env."
)


def bot_intents(message_content: bool = True) -> discord.Intents:
    """Guilds, messages and DMs, plus message content (a privileged intent to switch on in
    the developer portal; optional: without it DMs and mentions still carry their text)."""
    intents = discord.Intents.default()
    intents.message_content = message_content
    intents.members = False
    intents.presences = False
    return intents


class SleepBot(commands.Bot):
    """The bot. ``runtime`` lets tests share one model thread; ``options`` go to discord.py."""

    def __init__(self, cfg: Config, *, runtime: ModelRuntime | None = None,
                 sync_commands: bool = True, **options: Any) -> None:
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice here
        options.setdefault("allowed_mentions", NO_MENTIONS)
        super().__init__(command_prefix=commands.when_mentioned,
                         intents=bot_intents(cfg.discord.message_content),
                         help_command=None, **options)
        self.cfg = cfg
        self.access = Access(cfg.discord)
        # one budget per user for everything that costs model time (messages and commands)
        self.limiter = RateLimiter(cfg.discord.rate_limit_messages,
                                   cfg.discord.rate_limit_seconds)
        self.engine: Engine | None = None
        self.orchestrator = None  # bot.orchestrator.Orchestrator once setup_hook ran
        self.closing = False
        self._orchestrator_stopped = False
        self._runtime = runtime
        self._sync_commands = sync_commands
        self._stack = AsyncExitStack()

    async def setup_hook(self) -> None:
        from bot.cluster.head import orchestrator_for
        from bot.discord.cogs.chat import ChatCog
        from bot.discord.cogs.memory import MemoryCog

        self.engine = await self._stack.enter_async_context(open_engine(self.cfg, self._runtime))
        # the single-host orchestrator, or with cluster.enabled one that sleeps on Ray workers
        orchestrator = await orchestrator_for(self.engine)
        await orchestrator.start()
        self.orchestrator = orchestrator  # close() stops it, before the engine closes
        await self.add_cog(ChatCog(self))
        await self.add_cog(MemoryCog(self))
        self.tree.on_error = self.on_app_command_error
        if self._sync_commands:
            try:
                synced = await self.tree.sync()
                log.info("synced %d slash commands", len(synced))
            except discord.HTTPException as exc:  # e.g. 400: Discord refused a schema
                log.warning("could not sync slash commands (%s %s); old ones stay", exc.status,
                            exc.text[:300])

    async def on_ready(self) -> None:
        log.info("connected as %s (id %s) to %d guild(s)", self.user, self.user and self.user.id,
                 len(self.guilds))
        if not self.intents.message_content:
            log.warning(WITHOUT_CONTENT)
        app = self.application  # fetched at login
        if app is not None and app.bot_public and not self.cfg.discord.allowed_guilds:
            log.warning(PUBLIC_BOT)
        for guild in list(self.guilds):
            await self.leave_if_not_allowed(guild)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        log.info("added to guild %s", guild.id)
        await self.leave_if_not_allowed(guild)

    async def leave_if_not_allowed(self, guild: discord.Guild) -> None:
        """Leave a guild outside ``allowed_guilds`` (when set and ``leave_other_guilds``):
        anyone can invite a public bot, and every member would get memory on this machine."""
        cfg = self.cfg.discord
        if self.access.guild_allowed(guild.id) or not cfg.leave_other_guilds:
            return
        try:
            await guild.leave()
            log.warning("left guild %s: not in SLEEPBOT_DISCORD_GUILDS", guild.id)
        except (discord.HTTPException, *NETWORK_ERRORS) as exc:
            log.warning("could not leave guild %s (%s); ignoring it", guild.id,
                        getattr(exc, "status", type(exc).__name__))

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: the chat cog answers messages, slash commands do the rest."""

    async def on_app_command_error(self, interaction: discord.Interaction,
                                   error: app_commands.AppCommandError) -> None:
        from bot.discord.cogs.memory import NotAllowedHere

        if self.is_closed():  # shutting down: the connection is gone
            log.info("user %s: /%s interrupted by shutdown", interaction.user.id,
                     interaction.command and interaction.command.name)
            return
        refused = error if isinstance(error, NotAllowedHere) else getattr(error, "original",
                                                                          None)
        if self.closing:
            text = "I'm restarting right now; please try again in a minute."
        elif isinstance(refused, NotAllowedHere):
            text = refused.text
        elif isinstance(error, app_commands.CheckFailure):
            text = "I'm not enabled in this channel."
        elif isinstance(error, app_commands.CommandNotFound):
            log.info("user %s: unknown command /%s", interaction.user.id, error.name)
            text = "I don't know that command (my commands may still be updating)."
        elif isinstance(error, (app_commands.CommandSignatureMismatch,
                                app_commands.TransformerError)):
            log.info("user %s: malformed /%s (%s)", interaction.user.id,
                     interaction.command and interaction.command.name, type(error).__name__)
            text = ("That command arrived incomplete (a required option was missing). Please "
                    "try again; if it keeps happening, my commands may still be updating.")
        else:
            log.error("user %s: /%s failed", interaction.user.id,
                      interaction.command and interaction.command.name, exc_info=error)
            text = "Sorry, something went wrong on my side. Please try again."
        await send_ephemeral(interaction, text)

    async def close(self) -> None:
        """Stop taking messages and finish the replies in flight; stop the orchestrator (a
        running cycle goes back to the queue) and let waiting commands say so; then close
        the connection, the store and the model thread."""
        self.closing = True
        chat, memory = self.get_cog("ChatCog"), self.get_cog("MemoryCog")
        if chat is not None:
            await chat.drain(timeout=30.0)
        if self.orchestrator is not None and not self._orchestrator_stopped:
            self._orchestrator_stopped = True
            await self.orchestrator.stop()
        if memory is not None:
            await memory.drain(timeout=10.0)
        await super().close()
        await self._stack.aclose()


async def send_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """Answer an interaction whether or not it was already acknowledged."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(text, ephemeral=True,
                                                    allowed_mentions=NO_MENTIONS)
    except (discord.HTTPException, *NETWORK_ERRORS) as exc:
        log.warning("could not answer an interaction (%s)",
                    getattr(exc, "status", type(exc).__name__))


# Reaching Discord at start: this many tries, waiting 2, 4, 8, 16 s between them (about half
# a minute in all); after that a one-line error. Once connected, discord.py reconnects itself.
CONNECT_ATTEMPTS = 5
CONNECT_FIRST_WAIT_S = 2.0
UNREACHABLE_ERRORS = (OSError, aiohttp.ClientError, TimeoutError, discord.DiscordServerError)


class DiscordUnreachable(RuntimeError):
    """Discord could not be reached at start, after retries (the message says what to do)."""


async def login_with_retry(bot: SleepBot, token: str) -> None:
    """``bot.login`` with backoff while Discord cannot be reached (network down, DNS, a
    Discord outage); a rejected token or intent is raised at once."""
    wait, waited = CONNECT_FIRST_WAIT_S, 0.0
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            await bot.login(token)
            return
        except UNREACHABLE_ERRORS as exc:
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if attempt == CONNECT_ATTEMPTS:
                raise DiscordUnreachable(
                    f"error: cannot reach Discord ({why}) after {attempt} attempts over "
                    f"{waited:.0f}s; check the network connection (and "
                    "https://discordstatus.com), then run again") from exc
            log.warning("cannot reach Discord (%s); retry %d of %d in %.0fs", why, attempt,
                        CONNECT_ATTEMPTS - 1, wait)
            await asyncio.sleep(wait)
            waited += wait
            wait *= 2


async def serve(bot: SleepBot, token: str) -> None:
    """Run ``bot`` until it is closed (SIGTERM and SIGINT close it cleanly)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    async with bot:
        await login_with_retry(bot, token)
        await bot.connect()


def run_bot(cfg: Config, token: str) -> int:
    """``python -m bot run``: connect to Discord with ``token`` and serve until stopped."""
    for name in ("bot", "memory", "sleep"):  # the CLI quiets these for terminal chat
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLogger().level))
    try:
        asyncio.run(serve(SleepBot(cfg), token))
    except discord.LoginFailure:
        print(BAD_TOKEN, file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print(INTENTS_HELP, file=sys.stderr)
        return 2
    except DiscordUnreachable as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
