"""Jimeng AI video 3.0 Pro (visual OpenAPI): submit a text/first-frame video job, poll its result."""

from providers.jimeng.client import JimengClient
from providers.jimeng.models import JimengResult, JimengVideoRequest, validate_request

__all__ = ["JimengClient", "JimengResult", "JimengVideoRequest", "validate_request"]
