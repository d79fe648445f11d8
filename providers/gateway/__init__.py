"""OpenAI-style relay gateway video API: create a generation, poll it."""

from providers.gateway.client import GatewayClient
from providers.gateway.models import GatewayTask, GatewayTaskDetail, GatewayVideoRequest, validate_request

__all__ = ["GatewayClient", "GatewayTask", "GatewayTaskDetail", "GatewayVideoRequest", "validate_request"]
