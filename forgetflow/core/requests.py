"""Pydantic deletion requests: validated before anything is written, and the Prefect UI form.

Field descriptions and Literal kinds become the form's help texts and drop-downs. Which
selector a kind needs, and what the ledger stores, come from the kind table `core.forget.KINDS`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forgetflow.core.data.manifest import ManifestError, parse_sample_id
from forgetflow.core.forget import KINDS, ForgetRequest
from forgetflow.core.ids import MAX_TEXT, PRINTABLE

if TYPE_CHECKING:  # pulls in torch; the ledger verbs of the CLI must not
    from forgetflow.core.triggers import TriggerSpec

Kind = Literal[tuple(KINDS)]  # type: ignore[valid-type]
NonNegInt = Annotated[int, Field(ge=0)]
MAX_IDS = 100_000  # more rows than any built-in dataset's train split: a bigger list is a mistake
# printable text only: control characters (NUL above all) break SQL drivers and terminals
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=PRINTABLE)]
SampleId = Text  # the ledger's sample-id column holds MAX_TEXT characters


class TriggerIn(BaseModel):
    """The docs/design.md §6 trigger spec: a square or checkerboard patch stamped on images."""

    model_config = ConfigDict(extra="forbid")

    pattern: Literal["square", "checkerboard"] = Field("square", description="Patch pattern")
    size: int = Field(4, ge=1, description="Patch side in pixels")
    value: float = Field(1.0, ge=0.0, le=1.0, description="Patch intensity in [0, 1]")
    position: Literal["bottom-right", "top-left", "top-right", "bottom-left"] | tuple[
        NonNegInt, NonNegInt
    ] = Field("bottom-right", description="A corner name or [row, col] of the top-left pixel")
    margin: int = Field(1, ge=0, description="Distance from the corner in pixels")
    target: int = Field(0, ge=0, description="The label the backdoor flips inputs to")

    @field_validator("size", "value", "margin", "target", mode="before")
    @classmethod
    def _not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):  # JSON true is not 1 pixel (TriggerSpec agrees)
            raise ValueError("must be a number, not true/false")
        return value

    def to_spec(self) -> TriggerSpec:
        from forgetflow.core.triggers import TriggerSpec

        return TriggerSpec.from_dict(self.model_dump())


class DeletionRequest(BaseModel):
    """One right-to-be-forgotten request. Set exactly the selector its kind needs."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(description="samples: named sample ids · subject: every sample of a data "
                       "owner · class: a whole label · backdoor: samples carrying a trigger")
    ids: list[SampleId] = Field(
        default_factory=list, max_length=MAX_IDS,
        description="kind=samples: sample ids `<dataset>:<split>:<key>` (the key is a "
                    "position, or an image's path under its split folder), each once")
    subject: Text | None = Field(None, description="kind=subject: the data owner's subject id")
    label: int | None = Field(None, ge=0, description="kind=class: the label to forget")
    trigger: TriggerIn | None = Field(None, description="kind=backdoor: the trigger to scan for")
    idempotency_key: Text | None = Field(
        None, description="Submitting the same key again returns the first request")
    model_name: Text | None = Field(
        None, description="Registered model to unlearn from (default: params)")

    @field_validator("ids")
    @classmethod
    def _ids_well_formed(cls, ids: list[str]) -> list[str]:
        for sample in ids:
            try:
                parse_sample_id(sample)
            except ManifestError as exc:
                raise ValueError(str(exc)) from exc
        twice = sorted(i for i, n in Counter(ids).items() if n > 1)
        if twice:
            raise ValueError(f"{len(twice)} sample id(s) named more than once, e.g. "
                             f"{', '.join(twice[:3])}: name each sample once")
        return sorted(ids)

    @model_validator(mode="after")
    def _selector_matches_kind(self) -> DeletionRequest:
        needs = KINDS[self.kind].selector
        given = {rule.selector for rule in KINDS.values()
                 if rule.given(getattr(self, rule.selector))}
        if needs not in given:
            raise ValueError(f"a {self.kind} request needs `{needs}`")
        extra = sorted(given - {needs})
        if extra:
            raise ValueError(f"a {self.kind} request must not set {extra}")
        if self.subject is not None and not self.subject.strip():
            raise ValueError("subject must not be blank")
        return self

    def selector(self) -> Any:
        """The selector value as JSON-able data (a trigger becomes its dict)."""
        value = getattr(self, KINDS[self.kind].selector)
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else value

    def payload(self) -> dict[str, Any]:
        """What the ledger stores inline (sample ids go to their own table)."""
        return KINDS[self.kind].payload(self.selector())

    def to_forget_request(self) -> ForgetRequest:
        return forget_request_from(self.kind, self.payload(), self.ids)


def forget_request_from(kind: str, payload: dict[str, Any], ids: list[str]) -> ForgetRequest:
    """Rebuild the core request from what the ledger stored."""
    rule = KINDS[kind]
    raw = ids if rule.selector == "ids" else payload.get(rule.selector)
    return ForgetRequest(kind=kind, **{rule.selector: rule.decode(raw) if raw is not None
                                       else None})
