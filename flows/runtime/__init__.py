"""What every stage runs on: the paid-job engine, journal, caching and locks, quotas, waiting, run logs."""

from flows.runtime.run_logs import send_library_logs_to_runs

send_library_logs_to_runs()
