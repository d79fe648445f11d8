"""VOD actions, one module per feature area (moto style). Importing this package registers them."""

from emulator.vod import edit, library, translation, upload, workflow  # noqa: F401
