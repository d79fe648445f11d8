"""Shared fixtures come from plugins so each area owns its own file."""

pytest_plugins = ["emulator.pytest_plugin", "tests.harness"]
