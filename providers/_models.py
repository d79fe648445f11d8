"""Pydantic bases: Pythonic field names, wire names as aliases, unknown response fields kept."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_pascal


class WireModel(BaseModel):
    """snake_case on the wire (Jimeng, gateway). Extra fields are kept: providers add fields over time."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    def to_wire(self) -> dict:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class PascalModel(WireModel):
    """PascalCase on the wire (VOD): ``run_id`` <-> ``RunId``. Irregular names get an explicit alias."""

    model_config = ConfigDict(populate_by_name=True, extra="allow", alias_generator=to_pascal)
