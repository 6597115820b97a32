"""The served agents: names → :class:`~threadline.Agent`, and the agent one request runs.

A request's ``model`` picks the agent by its served name (an unknown name is OpenAI's 404
``model_not_found``). The agent of one request is a clone with the request's instructions,
model settings and client-side function tools: the model may call those, and the call comes
back to the client as output (the server never runs them; see :func:`client_tools`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from ..agent import Agent
from ..errors import UserError
from ..models.base import Model
from ..tools.base import FunctionTool
from ._errors import ApiError, bad_request

__all__ = ["DEFAULT_AGENT_NAME", "ServedAgents", "client_tools", "load_agents"]

DEFAULT_AGENT_NAME = "assistant"
"""The served name of the default agent (``--instructions``)."""

DEFAULT_INSTRUCTIONS = "You are a helpful assistant."


class ServedAgents:
    """The agents an app serves, by name; the first one is the default.

    ``agents`` is an :class:`Agent`, a list of them (served under ``agent.name``) or a dict
    of served name → agent; ``None`` serves one agent ``"assistant"`` with ``instructions``.
    An agent without a model gets ``model``. Agents whose tools need approval are refused:
    over HTTP nobody could approve the calls.
    """

    def __init__(
        self,
        agents: Agent[Any] | Sequence[Agent[Any]] | Mapping[str, Agent[Any]] | None = None,
        *,
        model: str | Model | None = None,
        instructions: str | None = None,
    ) -> None:
        named: dict[str, Agent[Any]]
        if agents is None:
            named = {
                DEFAULT_AGENT_NAME: Agent(
                    name=DEFAULT_AGENT_NAME,
                    instructions=instructions or DEFAULT_INSTRUCTIONS,
                )
            }
        elif instructions is not None:
            raise UserError("give agents or instructions (for the default agent), not both")
        elif isinstance(agents, Agent):
            named = {agents.name: agents}
        elif isinstance(agents, Mapping):
            named = dict(agents)
        elif isinstance(agents, Sequence) and not isinstance(agents, (str, bytes)):
            named = {}
            for agent in agents:
                if not isinstance(agent, Agent):
                    raise UserError(f"agents must be threadline Agents, got {type(agent).__name__}")
                if agent.name in named:
                    raise UserError(f"two served agents are named {agent.name!r}")
                named[agent.name] = agent
        else:
            raise UserError(
                "agents must be an Agent, a list of Agents or a dict of name to Agent, got "
                f"{type(agents).__name__}"
            )
        if not named:
            raise UserError("serve at least one agent")
        self._agents: dict[str, Agent[Any]] = {}
        for name, agent in named.items():
            if not isinstance(name, str) or not name:
                raise UserError(f"a served agent's name must be a non-empty string, got {name!r}")
            if not isinstance(agent, Agent):
                raise UserError(f"agent {name!r} must be a threadline Agent")
            for tool in agent.tools:
                if tool.needs_approval is not False:
                    raise UserError(
                        f"agent {name!r}: tool {tool.name!r} needs approval, which nobody can "
                        "give over HTTP; serve it without needs_approval"
                    )
            self._agents[name] = agent if agent.model is not None else agent.clone(model=model)

    async def aclose(self) -> None:
        """Close the openai clients of the served models (their connections belong to the
        event loop that is shutting down); a failure to close is ignored."""
        seen: set[int] = set()
        for agent in self._agents.values():
            client = getattr(agent.model, "openai_client", None)
            close = getattr(client, "close", None)
            if client is None or id(client) in seen or not callable(close):
                continue
            seen.add(id(client))
            with contextlib.suppress(Exception):
                await close()

    @property
    def names(self) -> list[str]:
        """The served names, the default first."""
        return list(self._agents)

    @property
    def default(self) -> str:
        """The default agent's served name."""
        return next(iter(self._agents))

    def get(self, name: object) -> Agent[Any]:
        """The agent served as ``name``, or OpenAI's 400/404 for a missing or unknown model."""
        if name is None:
            raise bad_request("Missing required parameter: 'model'.", param="model")
        if not isinstance(name, str):
            raise bad_request("'model' must be a string", param="model")
        agent = self._agents.get(name)
        if agent is None:
            served = ", ".join(self._agents)
            raise ApiError(
                404,
                f"The model '{name}' does not exist or you do not have access to it. "
                f"This server serves: {served}.",
                param="model",
                code="model_not_found",
            )
        return agent


def _not_run(name: str) -> Any:
    async def invoke(context: Any, arguments: str) -> Any:  # pragma: no cover - never called
        raise UserError(f"the client-side tool {name!r} is run by the client, not the server")

    return invoke


def client_tools(tools: object, agent: Agent[Any], *, chat: bool = False) -> list[FunctionTool]:
    """The request's function tools as tools the run stops at (``needs_approval``): the
    model's call is returned to the client, who sends its output in the next request.

    ``tools`` is the Responses shape (``{"type": "function", "name", "parameters",
    "strict"}``) or, with ``chat``, the chat-completions shape (``{"type": "function",
    "function": {...}}``). Hosted tools (web search, file search, …) are a 400.
    """
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array", param="tools")
    taken = {tool.name for tool in agent.tools} | {h.tool_name for h in agent.get_handoffs()}
    found: list[FunctionTool] = []
    for index, spec in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(spec, dict) or spec.get("type") != "function":
            kind = spec.get("type") if isinstance(spec, dict) else None
            raise bad_request(
                f"'{where}': only function tools are supported by this server, got {kind!r}",
                param=where,
            )
        body = spec.get("function") if chat else spec
        if not isinstance(body, dict):
            raise bad_request(f"'{where}.function' must be an object", param=where)
        name = body.get("name")
        if not isinstance(name, str) or not name or len(name) > 128:
            raise bad_request(f"'{where}.name' must be a non-empty string", param=where)
        if name in taken:
            raise bad_request(
                f"'{where}': a tool named {name!r} is already one of the agent's own tools",
                param=where,
            )
        parameters = body.get("parameters")
        if parameters is None:
            parameters = {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise bad_request(f"'{where}.parameters' must be a JSON schema object", param=where)
        description = body.get("description")
        found.append(
            FunctionTool(
                name=name,
                description=description if isinstance(description, str) else "",
                params_json_schema=parameters,
                on_invoke_tool=_not_run(name),
                strict_json_schema=body.get("strict") is True,
                needs_approval=True,
            )
        )
    return found


def load_agents(spec: str) -> Agent[Any] | list[Agent[Any]] | dict[str, Agent[Any]]:
    """The agents ``module:attr`` names (an Agent, a list or a dict of them)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"--agents takes module:attribute (e.g. myapp.agents:AGENTS), got {spec!r}")
    if os.getcwd() not in sys.path:  # as uvicorn does: modules of the working directory
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"cannot import {module_name!r} (from --agents): {exc}") from None
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise UserError(f"{module_name!r} has no attribute {attr!r} (from --agents)") from None
    if isinstance(value, (Agent, list, tuple, dict)):
        return list(value) if isinstance(value, tuple) else value
    raise UserError(
        f"--agents {spec}: expected an Agent, a list of Agents or a dict of name to Agent, got "
        f"{type(value).__name__}"
    )
