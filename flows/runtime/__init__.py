"""Plumbing every room uses: settings (read at run time only), resources (clients and blocks per run), process
identity and liveness, conditional writes on local disk and S3, the one fetcher of user URLs, progress lines,
run logs, and ``compat``: the only place a private Prefect API is used."""

from flows.runtime.run_logs import send_library_logs_to_runs

send_library_logs_to_runs()
