"""The distributed mode: sleep cycles (and recall) on a pool of Ray worker processes or hosts.

    python -m bot cluster run [--workers N] [--address auto|HOST:PORT] [--until-empty]
    python -m bot bench cluster --tiny --json

Opt-in (``[cluster] enabled = true`` or ``SLEEPBOT_CLUSTER=1``; the single-host default never
imports Ray). The head is the process that owns the store: its orchestrator
(:class:`bot.cluster.head.ClusterOrchestrator`) takes jobs from the same SQLite queue, grants
the user's lease (a fencing token), sends a snapshot of what the cycle needs
(:mod:`bot.cluster.jobs`) to a :class:`bot.cluster.actors.SleepWorker` actor, which runs
stages 1-6 on its own model thread, and commits what comes back (stage 7) only while that
token is still the user's lease. Promotions are published on a
:class:`bot.cluster.actors.PromotionBoard`; chat replicas check it before answering.
"""
