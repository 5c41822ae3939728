"""The runbook file format as pydantic models (extra keys forbidden).

Only the shape is checked here; what the names mean (actions, templates,
inputs of fragments) is checked by ``erpops.runbook.validate``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from erpops.units import parse_duration

INPUT_TYPES = ("string", "int", "bool", "duration", "datetime", "enum", "list")
STEP_ID = re.compile(r"^[a-z][a-z0-9_]*$")

Seconds = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InputSpec(Strict):
    type: Literal["string", "int", "bool", "duration", "datetime", "enum", "list"] = "string"
    description: str = ""
    required: bool = False
    default: Any = None
    choices: list[str] | None = None  # for type: enum

    @model_validator(mode="after")
    def _enum_has_choices(self) -> "InputSpec":
        if self.type == "enum" and not self.choices:
            raise ValueError("an enum input needs `choices: [...]`")
        if self.type != "enum" and self.choices is not None:
            raise ValueError("`choices` only applies to type: enum")
        if self.required and self.default is not None:
            raise ValueError("an input cannot be both required and have a default")
        return self


class Retries(Strict):
    count: int = Field(1, ge=0, le=100)
    backoff: Seconds = 1.0  # first delay; doubles after every attempt
    max_backoff: Seconds = 300.0
    on: list[Literal["error", "transient", "timeout"]] = ["error", "transient", "timeout"]


class UndoSpec(Strict):
    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")


class Step(Strict):
    id: str | None = None
    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    when: Union[bool, str, None] = None
    timeout: Seconds | None = None
    retries: Retries | None = None
    confirm: str | None = None  # a human gate before the step runs
    continue_on_error: bool = False
    undo: Union[UndoSpec, Literal[False], None] = None  # override (or disable) the action's undo
    # raise (never lower) the action's risk: a shell.run that drops a database is DESTRUCTIVE
    risk: Literal["READ", "WRITE", "DESTRUCTIVE"] | None = None
    description: str = ""

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str | None) -> str | None:
        if v is not None and not STEP_ID.match(v):
            raise ValueError(f"step id {v!r} must be lowercase letters, digits and _ (it is used as steps.<id>)")
        return v

    @field_validator("risk", mode="before")
    @classmethod
    def _risk_upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("uses")
    @classmethod
    def _uses_shape(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("uses: names an action (domain.verb) or a fragment (runbook:NAME)")
        return v

    @property
    def is_fragment(self) -> bool:
        return self.uses.startswith("runbook:")


class Runbook(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    on_failure: list[Step] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, v: dict) -> dict:
        for name in v:
            if not re.match(r"^[a-z][a-z0-9_]*$", str(name)):
                raise ValueError(f"input name {name!r} must be lowercase letters, digits and _")
        return v
