"""Local emulation of Volcengine VOD, Jimeng (visual) and an OpenAI-style video gateway (moto style).

``create_app(config)`` builds the FastAPI app; ``emulator.testing.running_emulator`` runs it for tests;
``emulator.cli.main`` serves it from the command line.
"""

from emulator.config import DEMO_ACCESS_KEY, DEMO_GATEWAY_KEY, DEMO_SECRET_KEY, EmulatorConfig, FaultRule

__all__ = ["DEMO_ACCESS_KEY", "DEMO_GATEWAY_KEY", "DEMO_SECRET_KEY", "EmulatorConfig", "FaultRule", "create_app"]


def __getattr__(name: str):  # lazy: importing the package must not pull in FastAPI for config users
    if name == "create_app":
        from emulator.app import create_app

        return create_app
    raise AttributeError(name)
