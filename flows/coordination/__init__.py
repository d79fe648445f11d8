"""Cluster coordination: provider quotas (leases on Prefect's concurrency limits), pacing, and the task
locks that spare duplicate waiting. They never decide who pays — the engine's journal does.
"""
