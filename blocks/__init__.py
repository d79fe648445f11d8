"""Prefect blocks for clipflow. Register with ``prefect block register -m blocks``."""

from blocks.credentials import VideoGatewayCredentials, VolcengineCredentials
from blocks.prices import ClipflowPrices
from blocks.setup import BlockNames, build_blocks, save_blocks_from_env

__all__ = ["BlockNames", "ClipflowPrices", "VideoGatewayCredentials", "VolcengineCredentials", "build_blocks", "save_blocks_from_env"]
