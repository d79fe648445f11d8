"""clipflow's Prefect side, one room per concern; layers depend downward only:

``app`` (CLI, local stack) → ``stages`` (the flows, preflight) → ``engine`` (buying and watching paid jobs) →
``coordination`` (quotas, pacing, leases) → ``runtime`` (settings, processes, shared files, compat); ``models``,
``costs`` and ``outputs`` are used by the rooms above them.
"""
