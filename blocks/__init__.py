"""Prefect blocks for clipflow (credentials and prices). Register with ``prefect block register -m blocks``; saved
from environment variables by ``clipflow setup`` (``flows.app.block_setup``)."""

from blocks.credentials import VideoGatewayCredentials, VolcengineCredentials
from blocks.prices import ClipflowPrices

__all__ = ["ClipflowPrices", "VideoGatewayCredentials", "VolcengineCredentials"]
