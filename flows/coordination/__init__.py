"""Cluster coordination: staying inside the provider quotas with every worker of an account, on Prefect's global
concurrency limits (``quotas``). It never decides who pays — the engine's journal does — and it holds no lock on a
paid task: a cached paid task uses Prefect's stock cache policy (``flows.engine.caching``).

Two parts are custom, because nothing off the shelf does what they do:

- ``leases`` (+ ``lease_heartbeats``): Prefect's ``concurrency()`` hides the lease id (needed to release a dead
  holder's slot), gives up renewing after three failures, and cancels the body on a lost lease, which would
  abandon a wait on a job already paid for.
- ``pacing``: one Prefect call per turn instead of one per provider call, so a call goes out without a server
  round trip in front of it.
"""
