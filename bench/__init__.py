"""Benchmarks: ``python -m bench`` runs every ``bench/<name>.py`` module that defines ``main()``."""
