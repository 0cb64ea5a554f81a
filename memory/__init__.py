"""Per-user memory: the conversation log, the SQLite store, identity data and on-disk paths."""
