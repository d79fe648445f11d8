"""The commands people run: the ``clipflow`` CLI, the demo, the local stack (``up``/``down``), the callbacks
receiver, and ``submit`` (a production started from Python, validated first)."""
