"""Credential blocks: secrets live in Prefect, and each block builds its provider client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr

if TYPE_CHECKING:
    from providers.gateway.client import GatewayClient
    from providers.jimeng.client import JimengClient
    from providers.vod.client import VodClient

# The models providers/gateway/models.py has rules for (api-notes section 5); edit the block's list per gateway.
DEFAULT_GATEWAY_MODELS: tuple[str, ...] = (
    "grok-video-3", "veo3", "veo3.1", "veo3.1-fast", "veo3.1-components", "veo3-frames", "veo3.1-frames", "sora-2",
)

_VOLC_LOGO = "https://lf3-static.bytednsdoc.com/obj/eden-cn/lm-ylwm/ljhwZthlaukjlkulzlp/logo.png"


class VolcengineCredentials(CredentialsBlock):
    """Volcengine access keys (optionally STS) and endpoints; builds the VOD and Jimeng (visual) clients."""

    _block_type_name = "Volcengine Credentials"
    _block_type_slug = "volcengine-credentials"
    _logo_url = _VOLC_LOGO  # type: ignore[assignment]
    _documentation_url = "https://www.volcengine.com/docs/6369/67269"  # type: ignore[assignment]
    _code_example = """
from blocks import VolcengineCredentials

volcengine_credentials = VolcengineCredentials.load("BLOCK_NAME")
async with volcengine_credentials.get_vod_client() as vod:
    run_id = await vod.start_workflow(...)
"""

    access_key_id: SecretStr = Field(description="Access key id (AK) of the Volcengine account or IAM user.")
    secret_access_key: SecretStr = Field(description="Secret access key (SK) paired with the access key id.")
    session_token: SecretStr | None = Field(
        default=None, description="STS session token, when the keys are temporary credentials."
    )
    region: str = Field(default="cn-north-1", description="Region used in the signature scope.")
    vod_endpoint: str = Field(
        default="https://vod.volcengineapi.com", description="Base URL of the VOD OpenAPI (override for the emulator)."
    )
    visual_endpoint: str = Field(
        default="https://visual.volcengineapi.com",
        description="Base URL of the visual (Jimeng) OpenAPI (override for the emulator).",
    )

    def _keys(self) -> dict[str, str | None]:
        return {
            "access_key": self.access_key_id.get_secret_value(),
            "secret_key": self.secret_access_key.get_secret_value(),
            "session_token": self.session_token.get_secret_value() if self.session_token else None,
        }

    def get_vod_client(self) -> VodClient:
        from providers.vod.client import VodClient

        keys = self._keys()
        return VodClient(
            keys["access_key"] or "", keys["secret_key"] or "", session_token=keys["session_token"],
            region=self.region, endpoint=self.vod_endpoint,
        )

    def get_jimeng_client(self) -> JimengClient:
        from providers.jimeng.client import JimengClient

        keys = self._keys()
        return JimengClient(
            keys["access_key"] or "", keys["secret_key"] or "", session_token=keys["session_token"],
            region=self.region, endpoint=self.visual_endpoint,
        )

    def get_client(self, service: str = "vod") -> VodClient | JimengClient:
        """``service`` is ``vod`` or ``visual`` (Jimeng)."""
        if service == "vod":
            return self.get_vod_client()
        if service in ("visual", "cv", "jimeng"):
            return self.get_jimeng_client()
        raise ValueError(f"service: must be 'vod' or 'visual', got {service!r}")


class VideoGatewayCredentials(CredentialsBlock):
    """Base URL and API key of an OpenAI-style video gateway (/v1/video/create + /v1/video/query)."""

    _block_type_name = "Video Gateway Credentials"
    _block_type_slug = "video-gateway-credentials"
    _logo_url = _VOLC_LOGO  # type: ignore[assignment]
    _documentation_url = "https://platform.openai.com/docs/api-reference/videos"  # type: ignore[assignment]
    _code_example = """
from blocks import VideoGatewayCredentials

video_gateway_credentials = VideoGatewayCredentials.load("BLOCK_NAME")
async with video_gateway_credentials.get_client() as gateway:
    task = await gateway.create_video(...)
"""

    base_url: str = Field(description="Gateway base URL, without the /v1 path.")
    api_key: SecretStr = Field(description="Bearer API key of the gateway account.")
    models: list[str] = Field(
        default_factory=lambda: list(DEFAULT_GATEWAY_MODELS),
        description="Models this gateway serves. A clip asking for any other model is refused before it is paid "
        "for; add a model here when the gateway starts serving it.",
    )

    def get_client(self) -> GatewayClient:
        from providers.gateway.client import GatewayClient

        return GatewayClient(self.base_url, self.api_key.get_secret_value())
