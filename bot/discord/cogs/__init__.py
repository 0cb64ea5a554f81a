"""The Discord bot's cogs: ``chat`` (messages) and ``memory`` (slash commands)."""
