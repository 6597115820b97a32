"""Per-agent or per-run sampling settings passed to the model."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from ..errors import UserError

__all__ = ["ModelSettings"]

ToolChoice = Literal["auto", "required", "none"] | str


@dataclass
class ModelSettings:
    """Optional model parameters; ``None`` means "use the endpoint's default".

    ``resolve`` overlays another settings object: its non-``None`` fields win.
    ``extra_body`` is merged into the request body as-is, for provider-specific options.
    ``context_window`` is not sent: it tells the runner how many tokens the model takes in
    one request (instructions, tools, history and reply), overriding what threadline knows of
    the model (:mod:`threadline.models.context_windows`), so that the default history window
    fits it.
    """

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    stop: list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    extra_body: dict[str, Any] | None = field(default=None)
    context_window: int | None = None

    def __post_init__(self) -> None:
        window = self.context_window
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)):
            raise UserError(f"ModelSettings.context_window must be an integer, got {window!r}")
        if window is not None and window <= 0:
            raise UserError(f"ModelSettings.context_window must be > 0, got {window!r}")

    def resolve(self, override: ModelSettings | None) -> ModelSettings:
        """A new settings object: ``override``'s non-``None`` fields over this one's."""
        if override is None:
            return self
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for f in fields(override):
            value = getattr(override, f.name)
            if value is not None:
                values[f.name] = value
        return ModelSettings(**values)
