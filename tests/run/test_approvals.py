"""Human-in-the-loop approvals: needs_approval, interruptions, RunState, resuming, and the
pending run kept durably with the session (on every backend), through the real openai client
against the scripted server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from threadline import (
    Agent,
    CorruptItemError,
    LeaseLostError,
    MaxTurnsExceeded,
    ModelError,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    PendingRunError,
    RunContextWrapper,
    Runner,
    RunResult,
    RunState,
    SessionSettings,
    StaleRunStateError,
    ToolApprovalItem,
    ToolError,
    UserError,
    function_tool,
    handoff,
)
from threadline.agent import HandoffInputData
from threadline.items import Item
from threadline.run.approvals import ApprovalBook
from threadline.sessions import PendingRun
from threadline.sessions.lease import held_lease
from threadline.sessions.pending import PENDING_RUN_RECORD
from threadline.testing import ScriptedServer, error, reply, tool_calls
from threadline.tools.guardrails import ToolGuardrailFunctionOutput, tool_input_guardrail

from ..backends import BACKENDS, Backend

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def chat_model(server: ScriptedServer) -> OpenAIChatCompletionsModel:
    client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
    return OpenAIChatCompletionsModel(model="test-model", openai_client=client)


class Tools:
    """The tools of one test, counting what actually ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

        @function_tool(needs_approval=True)
        def send_email(to: str, body: str) -> str:
            """Send an email.

            Args:
                to: The recipient.
                body: The text.
            """
            self.ran.append(f"send_email:{to}")
            return f"sent to {to}"

        @function_tool
        def get_weather(city: str) -> str:
            """Get the weather for a city."""
            self.ran.append(f"get_weather:{city}")
            return f"sunny in {city}"

        self.send_email = send_email
        self.get_weather = get_weather

    def agent(self, server: ScriptedServer, **kwargs: Any) -> Agent[Any]:
        tools = kwargs.pop("tools", [self.send_email, self.get_weather])
        return Agent(
            name="Assistant", instructions="Help.", model=chat_model(server), tools=tools, **kwargs
        )


def assert_valid_to_send(items: list[Item]) -> None:
    """Every function_call has its output and every output its call (DESIGN §4.1)."""
    calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
    outputs = [i["call_id"] for i in items if i.get("type") == "function_call_output"]
    assert sorted(calls) == sorted(outputs), items
    for item in items:
        if item.get("type") == "function_call_output":
            position = items.index(item)
            assert any(
                c.get("type") == "function_call" and c["call_id"] == item["call_id"]
                for c in items[:position]
            ), items


def kinds(items: list[Item]) -> list[str]:
    return [str(i.get("role") or i.get("type")) for i in items]


def sent_messages(server: ScriptedServer, index: int) -> list[dict[str, Any]]:
    return list(server.requests[index].body["messages"])


# ---------------------------------------------------------------------- approve and reject


async def test_a_call_needing_approval_stops_the_run_and_approving_it_resumes(
    server: ScriptedServer, store: Any
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("approve")
    server.add(tool_calls(("send_email", {"to": "ann@example.com", "body": "hi"})), reply("Sent."))

    result = await Runner.run(agent, "Email Ann.", session=session)
    assert result.final_output is None
    assert len(result.interruptions) == 1
    item = result.interruptions[0]
    assert isinstance(item, ToolApprovalItem)
    assert (item.tool_name, item.name, item.agent) == ("send_email", "send_email", agent)
    assert json.loads(item.arguments or "") == {"to": "ann@example.com", "body": "hi"}
    assert item.call_id.startswith("call_")
    assert tools.ran == []  # not run before a decision
    stored = await session.get_items()
    assert kinds(stored) == ["user"]  # the step with the waiting call is not in the history
    assert_valid_to_send(stored)
    pending = await session.pending_run()
    assert isinstance(pending, PendingRun)
    assert [c["call_id"] for c in pending.tool_calls] == [item.call_id]
    assert pending.agent_name == "Assistant"

    state = result.to_state()
    state.approve(state.interruptions[0])
    resumed = await Runner.run(agent, state, session=session)
    assert resumed.final_output == "Sent."
    assert resumed.interruptions == []
    assert tools.ran == ["send_email:ann@example.com"]
    stored = await session.get_items()
    assert kinds(stored) == ["user", "function_call", "function_call_output", "assistant"]
    assert stored[2]["output"] == "sent to ann@example.com"
    assert_valid_to_send(stored)
    assert await session.pending_run() is None
    assert await session.get_record(PENDING_RUN_RECORD) is None
    # the model was sent the call with its output on resume
    second = sent_messages(server, 1)
    assert second[-1] == {
        "role": "tool",
        "tool_call_id": item.call_id,
        "content": "sent to ann@example.com",
    }
    assert resumed.usage.requests == 2  # the run's usage covers both sides of the interruption


async def test_a_rejected_call_is_answered_without_running(
    server: ScriptedServer, store: Any
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("reject")
    server.add(tool_calls(("send_email", {"to": "bob@example.com", "body": "x"})), reply("OK."))
    result = await Runner.run(agent, "Email Bob.", session=session)
    state = result.to_state()
    state.reject(state.interruptions[0])
    resumed = await Runner.run(agent, state, session=session)
    assert resumed.final_output == "OK."
    assert tools.ran == []
    stored = await session.get_items()
    assert kinds(stored) == ["user", "function_call", "function_call_output", "assistant"]
    assert "not approved" in stored[2]["output"] and "send_email" in stored[2]["output"]
    assert_valid_to_send(stored)
    assert sent_messages(server, 1)[-1]["content"] == stored[2]["output"]


async def test_a_rejection_message_is_what_the_model_gets(server: ScriptedServer) -> None:
    tools = Tools()
    agent = tools.agent(server)
    server.add(tool_calls(("send_email", {"to": "c@example.com", "body": "x"})), reply("Fine."))
    state = (await Runner.run(agent, "Email C.")).to_state()
    state.reject(state.interruptions[0], rejection_message="Legal said no.")
    resumed = await Runner.run(agent, state)
    outputs = [i.raw_item for i in resumed.new_items if i.type == "tool_call_output_item"]
    assert [o["output"] for o in outputs] == ["Legal said no."]
    assert resumed.final_output == "Fine."


async def test_always_approve_covers_later_calls_of_the_run_only(
    server: ScriptedServer, store: Any
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("always")
    server.add(
        tool_calls(("send_email", {"to": "a@example.com", "body": "1"})),
        tool_calls(("send_email", {"to": "b@example.com", "body": "2"})),
        tool_calls(("send_email", {"to": "c@example.com", "body": "3"})),
        reply("Three sent."),
    )
    result = await Runner.run(agent, "Email three people.", session=session)
    state = result.to_state()
    state.approve(state.interruptions[0], always_approve=True)
    resumed = await Runner.run(agent, state, session=session)
    assert resumed.interruptions == []  # the later calls were not asked about again
    assert resumed.final_output == "Three sent."
    assert tools.ran == [f"send_email:{x}@example.com" for x in "abc"]
    stored = await session.get_items()
    assert_valid_to_send(stored)
    assert kinds(stored).count("function_call_output") == 3
    # decisions end with the run: a new run asks again
    server.add(tool_calls(("send_email", {"to": "d@example.com", "body": "4"})))
    again = await Runner.run(agent, "One more.", session=session)
    assert [i.tool_name for i in again.interruptions] == ["send_email"]
    assert tools.ran[-1] == "send_email:c@example.com"


async def test_always_reject_answers_later_calls_without_asking(server: ScriptedServer) -> None:
    tools = Tools()
    agent = tools.agent(server)
    server.add(
        tool_calls(("send_email", {"to": "a@example.com", "body": "1"})),
        tool_calls(("send_email", {"to": "b@example.com", "body": "2"})),
        reply("Gave up."),
    )
    state = (await Runner.run(agent, "Email.")).to_state()
    state.reject(state.interruptions[0], always_reject=True)
    resumed = await Runner.run(agent, state)
    assert resumed.interruptions == [] and resumed.final_output == "Gave up."
    assert tools.ran == []
    outputs = [i.raw_item["output"] for i in resumed.new_items if i.type == "tool_call_output_item"]
    assert len(outputs) == 2 and all("not approved" in o for o in outputs)


def test_approval_book_follows_the_sdk_precedence() -> None:
    book = ApprovalBook()
    book.decide("A", "t", "c1", approve=True, always=True)
    book.decide("A", "t", "c2", approve=False)  # a decision on one call beats "always"
    assert (book.status("A", "t", "c1"), book.status("A", "t", "c2")) == (True, False)
    assert book.status("A", "t", "c9") is True
    assert book.status("B", "t", "c9") is None  # "always" is for that agent only
    book.decide("A", "t", "c3", approve=False, always=True, message="no")
    assert book.status("A", "t", "c1") is False  # a new "always" replaces the earlier ones
    assert book.message("A", "t", "c4") == "no"
    book.decide("A", "t", "c4", approve=True)
    assert book.status("A", "t", "c4") is True
    assert ApprovalBook.from_json(book.to_json()).to_json() == book.to_json()


# ---------------------------------------------------------------------- mixed steps, policies


async def test_a_parallel_call_without_approval_runs_once(
    server: ScriptedServer, store: Any
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("mixed")
    server.add(
        tool_calls(
            ("get_weather", {"city": "Oslo"}),
            ("send_email", {"to": "d@example.com", "body": "sunny"}),
        ),
        reply("Done."),
    )
    result = await Runner.run(agent, "Weather, then email.", session=session)
    assert [i.tool_name for i in result.interruptions] == ["send_email"]
    assert tools.ran == ["get_weather:Oslo"]  # the call that needs no approval ran at once
    stored = await session.get_items()
    assert kinds(stored) == ["user"]
    assert_valid_to_send(stored)

    state = result.to_state()
    state.approve(state.interruptions[0])
    resumed = await Runner.run(agent, state, session=session)
    assert resumed.final_output == "Done."
    assert tools.ran == ["get_weather:Oslo", "send_email:d@example.com"]  # weather not again
    stored = await session.get_items()
    assert kinds(stored) == [
        "user",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "assistant",
    ]
    assert [stored[3]["output"], stored[4]["output"]] == ["sunny in Oslo", "sent to d@example.com"]
    assert_valid_to_send(stored)
    tool_messages = [m for m in sent_messages(server, 1) if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["sunny in Oslo", "sent to d@example.com"]


async def test_needs_approval_functions_decide_per_call(server: ScriptedServer) -> None:
    seen: list[tuple[dict[str, Any], str]] = []

    def over_limit(ctx: Any, arguments: dict[str, Any], call_id: str) -> bool:
        seen.append((arguments, call_id))
        return bool(arguments["amount"] > 100)

    async def never(ctx: Any, arguments: dict[str, Any], call_id: str) -> bool:
        return False

    ran: list[int] = []

    @function_tool(needs_approval=over_limit)
    def pay(amount: int) -> str:
        """Pay."""
        ran.append(amount)
        return "paid"

    @function_tool(needs_approval=never)
    def refund(amount: int) -> str:
        """Refund."""
        ran.append(-amount)
        return "refunded"

    agent = Agent(name="Bank", model=chat_model(server), tools=[pay, refund])
    server.add(
        tool_calls(("pay", {"amount": 5}), ("pay", {"amount": 500}), ("refund", {"amount": 7})),
    )
    result = await Runner.run(agent, "Pay.")
    assert [json.loads(i.arguments or "") for i in result.interruptions] == [{"amount": 500}]
    assert ran == [5, -7]
    assert [a for a, _ in seen] == [{"amount": 5}, {"amount": 500}]
    assert all(call_id.startswith("call_") for _, call_id in seen)


async def test_a_policy_that_returns_no_bool_is_a_user_error(server: ScriptedServer) -> None:
    @function_tool(needs_approval=lambda ctx, args, call_id: "yes")
    def act() -> str:
        """Act."""
        return "done"

    server.add(tool_calls(("act", {})))
    with pytest.raises(UserError, match="needs_approval of tool 'act' must return a bool"):
        await Runner.run(Agent(name="A", model=chat_model(server), tools=[act]), "Go.")


async def test_a_policy_that_raises_is_a_user_error_naming_the_tool(
    server: ScriptedServer, store: Any
) -> None:
    def broken(ctx: Any, arguments: dict[str, Any], call_id: str) -> bool:
        raise KeyError("limit")

    @function_tool(needs_approval=broken)
    def act() -> str:
        """Act."""
        return "done"

    session = store.session("broken-policy")
    server.add(tool_calls(("act", {})))
    agent = Agent(name="A", model=chat_model(server), tools=[act])
    with pytest.raises(UserError, match="needs_approval of tool 'act' raised KeyError"):
        await Runner.run(agent, "Go.", session=session)
    assert kinds(await session.get_items()) == ["user"]
    assert await session.pending_run() is None


def test_needs_approval_must_be_a_bool_or_a_function() -> None:
    with pytest.raises(UserError, match="needs_approval must be True, False or a function"):
        function_tool(needs_approval="always")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- RunState


async def test_a_run_state_round_trips_through_json_without_a_session(
    server: ScriptedServer,
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    server.add(tool_calls(("send_email", {"to": "e@example.com", "body": "x"})), reply("Sent."))
    result = await Runner.run(agent, "Email E.", context={"user": "u1"})
    text = result.to_state().to_string()
    assert json.loads(text)["kind"] == "threadline.run_state"

    fresh_tools = Tools()  # another process: new objects, same definitions
    fresh_agent = fresh_tools.agent(server)
    state = await RunState.from_string(fresh_agent, text)
    assert state.context == {"user": "u1"}
    assert [i.call_id for i in state.interruptions] == [result.interruptions[0].call_id]
    assert state.interruptions[0].agent is fresh_agent
    state.approve(state.interruptions[0])
    again = await RunState.from_json(fresh_agent, state.to_json())  # decisions are kept
    resumed = await Runner.run(fresh_agent, again)
    assert resumed.final_output == "Sent."
    assert fresh_tools.ran == ["send_email:e@example.com"]
    assert resumed.to_input_list()[0] == {"role": "user", "content": "Email E."}
    assert_valid_to_send(resumed.to_input_list())
    sent = sent_messages(server, 1)
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]


async def test_the_state_finds_the_agent_that_was_handed_off_to(
    server: ScriptedServer, store: Any
) -> None:
    def agents(tools: Tools) -> tuple[Agent[Any], Agent[Any]]:
        mailer = Agent(name="Mailer", model=chat_model(server), tools=[tools.send_email])
        return Agent(name="Triage", model=chat_model(server), handoffs=[mailer]), mailer

    tools = Tools()
    triage, mailer = agents(tools)
    session = store.session("handoff")
    server.add(
        tool_calls(("transfer_to_mailer", {})),
        tool_calls(("send_email", {"to": "r@example.com", "body": "x"})),
        reply("Mailed."),
    )
    result = await Runner.run(triage, "Mail R.", session=session)
    assert result.interruptions[0].agent is mailer and result.last_agent is mailer

    fresh_tools = Tools()
    fresh_triage, fresh_mailer = agents(fresh_tools)
    state = await RunState.from_session(fresh_triage, session)
    assert state is not None and state.agent is fresh_mailer
    state.approve(state.interruptions[0])
    resumed = await Runner.run(fresh_triage, state, session=session)
    assert (resumed.final_output, resumed.last_agent) == ("Mailed.", fresh_mailer)
    assert fresh_tools.ran == ["send_email:r@example.com"]
    assert [i.type for i in resumed.new_items][:2] == ["handoff_call_item", "handoff_output_item"]
    assert_valid_to_send(await session.get_items())
    with pytest.raises(UserError, match="cannot be reached from it through handoffs"):
        await RunState.from_json(Agent(name="Other"), state.to_json())


def test_run_sync_resumes_and_context_can_be_replaced(server: ScriptedServer) -> None:
    seen: list[Any] = []

    @function_tool(needs_approval=True)
    def whoami(ctx: RunContextWrapper[Any]) -> str:
        """Who is asking."""
        seen.append(ctx.context)
        return "ok"

    agent = Agent(name="A", model=chat_model(server), tools=[whoami])
    server.add(tool_calls(("whoami", {})), reply("Done."))
    result = Runner.run_sync(agent, "Who?", context=object())  # a context JSON cannot hold
    data = result.to_state().to_json()
    assert data["context_kept"] is False and data["context"] is None
    state = asyncio.run(RunState.from_json(agent, data, context_override={"user": "u2"}))
    state.approve(state.interruptions[0])
    resumed = Runner.run_sync(agent, state)
    assert resumed.final_output == "Done." and seen == [{"user": "u2"}]


async def test_one_state_resumed_by_two_runs_at_once_runs_its_calls_once(
    server: ScriptedServer,
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    server.add(tool_calls(("send_email", {"to": "s@example.com", "body": "x"})), reply("Sent."))
    state = (await Runner.run(agent, "Email S.")).to_state()
    state.approve(state.interruptions[0])
    first, second = await asyncio.gather(
        Runner.run(agent, state), Runner.run(agent, state), return_exceptions=True
    )
    assert isinstance(first, RunResult) and first.final_output == "Sent."
    assert isinstance(second, StaleRunStateError) and "being resumed" in str(second)
    assert tools.ran == ["send_email:s@example.com"]


async def test_a_resume_that_fails_after_its_step_keeps_the_step(
    server: ScriptedServer, store: Any
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("retry")
    server.add(
        tool_calls(("send_email", {"to": "t@example.com", "body": "x"})),
        error(500, "upstream down"),
        reply("Sent."),
    )
    state = (await Runner.run(agent, "Email T.", session=session)).to_state()
    state.approve(state.interruptions[0])
    with pytest.raises(ModelError):
        await Runner.run(agent, state, session=session)
    # the resolved step was stored (and the pending run cleared) before the model failed
    assert kinds(await session.get_items())[1:] == ["function_call", "function_call_output"]
    assert await session.pending_run() is None
    with pytest.raises(StaleRunStateError):
        await Runner.run(agent, state, session=session)
    assert tools.ran == ["send_email:t@example.com"]


async def test_a_resume_that_fails_before_its_step_is_stored_can_be_retried(
    server: ScriptedServer, store: Any
) -> None:
    attempts: list[int] = []

    def flaky() -> str:
        """Fail the first time."""
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise RuntimeError("the mail server is down")
        return "sent"

    tool = function_tool(flaky, needs_approval=True, failure_error_function=None)
    agent = Agent(name="A", model=chat_model(server), tools=[tool])
    session = store.session("flaky")
    server.add(tool_calls(("flaky", {})), reply("Sent."))
    state = (await Runner.run(agent, "Send.", session=session)).to_state()
    state.approve(state.interruptions[0])
    with pytest.raises(ToolError, match="the mail server is down"):
        await Runner.run(agent, state, session=session)
    assert kinds(await session.get_items()) == ["user"]  # nothing of the step was stored
    assert (await session.pending_run()).id == state.id  # type: ignore[union-attr]
    resumed = await Runner.run(agent, state, session=session)  # the same state, again
    assert resumed.final_output == "Sent." and attempts == [0, 1]
    assert await session.pending_run() is None


async def test_server_side_state_resumes_from_the_interrupted_response(
    server: ScriptedServer,
) -> None:
    tools = Tools()
    client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
    model = OpenAIResponsesModel(model="test-model", openai_client=client)
    agent = Agent(name="Assistant", model=model, tools=[tools.send_email])
    server.add(tool_calls(("send_email", {"to": "u@example.com", "body": "x"})), reply("Sent."))
    result = await Runner.run(agent, "Email U.", previous_response_id="resp_earlier")
    state = await RunState.from_string(agent, result.to_state().to_string())
    state.approve(state.interruptions[0])
    resumed = await Runner.run(agent, state)
    assert resumed.final_output == "Sent."
    body = server.requests[1].body
    assert body["previous_response_id"] == result.last_response_id
    assert [i["type"] for i in body["input"]] == ["function_call_output"]


class Account:
    def __init__(self, user: str) -> None:
        self.user = user


async def test_a_context_that_is_not_json_goes_through_a_serializer(
    server: ScriptedServer,
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    server.add(tool_calls(("send_email", {"to": "v@example.com", "body": "x"})))
    state = (await Runner.run(agent, "Email V.", context=Account("ann"))).to_state()
    with pytest.raises(UserError, match="is not JSON: pass context_serializer"):
        state.to_json(strict_context=True)
    text = state.to_string(context_serializer=lambda account: {"user": account.user})
    loaded = await RunState.from_string(
        agent, text, context_deserializer=lambda data: Account(data["user"])
    )
    assert isinstance(loaded.context, Account) and loaded.context.user == "ann"
    with pytest.raises(UserError, match="pass context_deserializer= or context_override="):
        await RunState.from_string(agent, text, strict_context=True)
    with pytest.raises(UserError, match="was not JSON and was left out"):
        await RunState.from_json(agent, state.to_json(), strict_context=True)


async def test_bad_run_state_text_is_a_user_error(server: ScriptedServer) -> None:
    agent = Tools().agent(server)
    with pytest.raises(UserError, match="not valid JSON"):
        await RunState.from_string(agent, "{nope")
    with pytest.raises(UserError, match="not a threadline run state"):
        await RunState.from_json(agent, {"kind": "something else"})


async def test_deciding_on_a_call_that_does_not_wait_is_a_user_error(
    server: ScriptedServer,
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    server.add(
        tool_calls(("send_email", {"to": "f@example.com", "body": "x"})),
        tool_calls(("send_email", {"to": "g@example.com", "body": "x"})),
    )
    first = (await Runner.run(agent, "Email F.")).to_state()
    second = (await Runner.run(agent, "Email G.")).to_state()
    with pytest.raises(UserError, match="is not one of this run state's waiting calls"):
        first.approve(second.interruptions[0])


async def test_to_state_of_a_finished_run_is_a_user_error(server: ScriptedServer) -> None:
    server.add(reply("Hi."))
    result = await Runner.run(Agent(name="A", model=chat_model(server)), "Hello.")
    assert result.interruptions == []
    with pytest.raises(UserError, match="did not stop for approvals"):
        result.to_state()


# ---------------------------------------------------------------------- durable pending runs


async def test_a_new_run_is_refused_while_a_run_waits(server: ScriptedServer, store: Any) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("refuse")
    server.add(tool_calls(("send_email", {"to": "h@example.com", "body": "x"})))
    result = await Runner.run(agent, "Email H.", session=session)
    call_id = result.interruptions[0].call_id
    before = await session.get_items()
    with pytest.raises(PendingRunError) as caught:
        await Runner.run(agent, "Something else.", session=session)
    message = str(caught.value)
    assert "send_email" in message and call_id in message
    assert "RunState.from_session" in message and "discard_pending_run" in message
    assert caught.value.session_id == "refuse"
    assert await session.get_items() == before  # nothing of the refused run was stored
    assert len(server.requests) == 1  # and the model was not called

    assert await session.discard_pending_run() is True
    assert await session.discard_pending_run() is False
    with pytest.raises(StaleRunStateError, match="resumed or discarded already"):
        await Runner.run(agent, result.to_state(), session=session)
    server.add(reply("Sure."))
    after = await Runner.run(agent, "Something else.", session=session)
    assert after.final_output == "Sure."
    stored = await session.get_items()
    assert kinds(stored) == ["user", "user", "assistant"]
    assert_valid_to_send(stored)
    assert tools.ran == []


async def test_a_state_is_resumed_once(
    server: ScriptedServer, backend: Backend, store: Any, open_store: Callable[[], Any]
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("once")
    server.add(tool_calls(("send_email", {"to": "i@example.com", "body": "x"})), reply("Sent."))
    state = (await Runner.run(agent, "Email I.", session=session)).to_state()
    # another process (another store object on the same storage) loads the same pending run
    # (a private ":memory:" SQLite database is the one storage no second store reaches)
    shared = backend.name != "sqlite-memory"
    other_session = open_store().session("once") if shared else session
    other = await RunState.from_session(agent, other_session)
    assert other is not None and other.id == state.id
    other.approve(other.interruptions[0])
    await Runner.run(agent, other, session=other_session)
    assert tools.ran == ["send_email:i@example.com"]

    state.approve(state.interruptions[0])
    with pytest.raises(StaleRunStateError, match="resumed or discarded already"):
        await Runner.run(agent, state, session=session)  # a stale state: the other resumed it
    with pytest.raises(StaleRunStateError, match="was resumed already"):
        await Runner.run(agent, other, session=other_session)  # the same state twice
    assert tools.ran == ["send_email:i@example.com"]  # the call ran exactly once
    stored = await session.get_items()
    assert kinds(stored) == ["user", "function_call", "function_call_output", "assistant"]


async def test_a_partly_decided_step_waits_again_with_a_new_id(
    server: ScriptedServer, store: Any
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("partly")
    server.add(
        tool_calls(
            ("send_email", {"to": "j@example.com", "body": "1"}),
            ("send_email", {"to": "k@example.com", "body": "2"}),
        ),
        reply("Both handled."),
    )
    first = (await Runner.run(agent, "Two emails.", session=session)).to_state()
    j, k = first.interruptions
    first.approve(j)
    second_result = await Runner.run(agent, first, session=session)
    assert [i.call_id for i in second_result.interruptions] == [k.call_id]
    assert tools.ran == ["send_email:j@example.com"]
    assert kinds(await session.get_items()) == ["user"]
    second = second_result.to_state()
    assert second.id != first.id
    assert (await session.pending_run()).id == second.id  # type: ignore[union-attr]
    second.reject(second.interruptions[0])
    done = await Runner.run(agent, second, session=session)
    assert done.final_output == "Both handled."
    assert tools.ran == ["send_email:j@example.com"]  # j did not run twice
    stored = await session.get_items()
    assert_valid_to_send(stored)
    outputs = [i["output"] for i in stored if i.get("type") == "function_call_output"]
    assert outputs[0] == "sent to j@example.com" and "not approved" in outputs[1]
    assert len(server.requests) == 2  # one model call per step, none while waiting


async def test_the_pending_run_is_sealed_like_items(server: ScriptedServer, store: Any) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("sealed")
    server.add(tool_calls(("send_email", {"to": "l@example.com", "body": "secret words"})))
    await Runner.run(agent, "Email L.", session=session)
    value = await session.get_record(PENDING_RUN_RECORD)
    assert value["model_input"] is None  # the history stays in the session, not in the record
    assert "secret words" in json.dumps(value)
    stats = await store.stats()
    assert stats.sessions == 1


async def test_resuming_with_another_session_is_a_user_error(
    server: ScriptedServer, store: Any
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    server.add(tool_calls(("send_email", {"to": "m@example.com", "body": "x"})))
    state = (await Runner.run(agent, "Email M.", session=store.session("mine"))).to_state()
    state.approve(state.interruptions[0])
    with pytest.raises(UserError, match="belongs to session 'mine'"):
        await Runner.run(agent, state, session=store.session("theirs"))
    with pytest.raises(UserError, match="belongs to session 'mine'"):
        await Runner.run(agent, state)
    assert tools.ran == []


@pytest.mark.parametrize("phase", ["interrupt", "resume"])
async def test_pending_run_writes_are_fenced(
    server: ScriptedServer, store: Any, open_store: Callable[[], Any], phase: str
) -> None:
    """A run that stalled past its lease's ttl, and was taken over, writes no pending run
    (when it stops) and clears none (when it resumes): the store refuses its stale fence."""
    if "shared" not in store.capabilities:
        pytest.skip("needs a second store on the same storage")
    session = store.session("fenced", session_settings=SessionSettings(lease_ttl=0.3))
    other = open_store().session("fenced")

    @function_tool(needs_approval=phase == "resume")
    async def stall() -> str:
        """Stall past the lease's ttl while another run takes the session over."""
        lease = held_lease(store, "fenced")
        assert lease is not None
        lease.suspend_renewal()
        async with other.lease(timeout=10):
            await other.add_items([{"role": "user", "content": "other turn"}])
        return "stalled"

    tools = Tools()
    agent = tools.agent(server, tools=[stall, tools.send_email])
    if phase == "interrupt":
        server.add(tool_calls(("stall", {}), ("send_email", {"to": "q@example.com", "body": "x"})))
        with pytest.raises(LeaseLostError, match="'fenced'"):
            await Runner.run(agent, "Go.", session=session)
        assert await other.pending_run() is None
    else:
        server.add(tool_calls(("stall", {})), reply("never stored"))
        state = (await Runner.run(agent, "Go.", session=session)).to_state()
        state.approve(state.interruptions[0])
        with pytest.raises(LeaseLostError, match="'fenced'"):
            await Runner.run(agent, state, session=session)
        assert (await other.pending_run()).id == state.id  # type: ignore[union-attr]
    stored = await other.get_items()
    assert [item.get("content") for item in stored] == ["Go.", "other turn"]
    assert_valid_to_send(stored)


class ListSession:
    """A duck-typed session with no records (as the SDK's own sessions)."""

    def __init__(self) -> None:
        self.session_id = "duck"
        self.items: list[Item] = []

    async def get_items(self, limit: int | None = None) -> list[Item]:
        return list(self.items)

    async def add_items(self, items: list[Item]) -> None:
        self.items += items

    async def pop_item(self) -> Item | None:
        return self.items.pop() if self.items else None

    async def clear_session(self) -> None:
        self.items.clear()


async def test_a_session_without_records_approves_in_process(server: ScriptedServer) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = ListSession()
    server.add(tool_calls(("send_email", {"to": "n@example.com", "body": "x"})), reply("Sent."))
    result = await Runner.run(agent, "Email N.", session=session)
    assert kinds(session.items) == ["user"]
    with pytest.raises(UserError, match="keeps no session records"):
        await RunState.from_session(agent, session)
    state = result.to_state()
    state.approve(state.interruptions[0])
    resumed = await Runner.run(agent, state, session=session)
    assert resumed.final_output == "Sent."
    assert kinds(session.items) == ["user", "function_call", "function_call_output", "assistant"]
    assert_valid_to_send(session.items)


# ---------------------------------------------------------------------- streaming


async def test_a_streamed_run_ends_with_its_interruptions(
    server: ScriptedServer, store: Any
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("streamed")
    server.add(tool_calls(("send_email", {"to": "o@example.com", "body": "x"})), reply("Sent!"))
    streamed = Runner.run_streamed(agent, "Email O.", session=session)
    with pytest.raises(UserError, match="has not ended; iterate stream_events"):
        streamed.to_state()
    names = [getattr(e, "name", None) async for e in streamed.stream_events()]
    assert "tool_called" in names
    assert streamed.is_complete
    assert [i.tool_name for i in streamed.interruptions] == ["send_email"]
    assert streamed.final_output is None
    assert kinds(await session.get_items()) == ["user"]

    state = streamed.to_state()
    state.approve(state.interruptions[0])
    resumed = Runner.run_streamed(agent, state, session=session)
    events = [e async for e in resumed.stream_events()]
    outputs = [e for e in events if getattr(e, "name", None) == "tool_output"]
    assert [e.item.raw_item["output"] for e in outputs] == ["sent to o@example.com"]
    assert resumed.final_output == "Sent!" and resumed.interruptions == []
    assert_valid_to_send(await session.get_items())
    assert await session.pending_run() is None


# ---------------------------------------------------------------------- another process


PROCESS_BACKENDS = [b.param for b in BACKENDS if b.name.startswith("sqlite-file")]
"""Configurations whose storage a fresh interpreter reaches (a file); the memory ones are
covered by ``test_a_state_is_resumed_once`` through a second store object."""

RESUME_PROGRAM = """
    import asyncio, json, sys
    from pathlib import Path

    from openai import AsyncOpenAI
    from threadline import Agent, OpenAIChatCompletionsModel, Runner, RunState, function_tool
    from tests.backends import BACKENDS

    backend_name, tmp_path, base_url = sys.argv[1:4]
    ran = []

    @function_tool(needs_approval=True)
    def send_email(to: str, body: str) -> str:
        \"\"\"Send an email.\"\"\"
        ran.append(to)
        return f"sent to {to}"

    async def main() -> None:
        backend = next(b for b in BACKENDS if b.name == backend_name)
        store = backend.factory(Path(tmp_path))()
        client = AsyncOpenAI(api_key="test-key", base_url=base_url, max_retries=0)
        model = OpenAIChatCompletionsModel(model="test-model", openai_client=client)
        agent = Agent(name="Assistant", instructions="Help.", model=model, tools=[send_email])
        async with store:
            session = store.session("later")
            pending = await session.pending_run()
            state = await RunState.from_session(agent, session)
            for item in state.interruptions:
                state.approve(item)
            result = await Runner.run(agent, state, session=session)
            print(json.dumps({
                "waited_for": [c["call_id"] for c in pending.tool_calls],
                "ran": ran,
                "final": result.final_output,
                "context": state.context,
            }))
        await client.close()

    asyncio.run(main())
"""


@pytest.mark.parametrize("file_backend", PROCESS_BACKENDS)
async def test_an_approval_arrives_in_a_fresh_process(
    server: ScriptedServer, file_backend: Backend, tmp_path: Path
) -> None:
    tools = Tools()
    agent = Agent(
        name="Assistant", instructions="Help.", model=chat_model(server), tools=[tools.send_email]
    )
    server.add(tool_calls(("send_email", {"to": "p@example.com", "body": "x"})), reply("Sent."))
    store = file_backend.factory(tmp_path)()
    async with store:
        session = store.session("later")
        result = await Runner.run(agent, "Email P.", session=session, context={"tenant": "t1"})
        call_id = result.interruptions[0].call_id
    # hours later, in another process: only the store is shared
    script = tmp_path / "resume.py"
    script.write_text(textwrap.dedent(RESUME_PROGRAM))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(script), file_backend.name, str(tmp_path), server.base_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "waited_for": [call_id],
        "ran": ["p@example.com"],
        "final": "Sent.",
        "context": {"tenant": "t1"},
    }
    assert tools.ran == []  # the call ran in the other process only
    store = file_backend.factory(tmp_path)()
    async with store:
        session = store.session("later")
        stored = await session.get_items()
        assert kinds(stored) == ["user", "function_call", "function_call_output", "assistant"]
        assert_valid_to_send(stored)
        assert await session.pending_run() is None


def test_a_tool_approval_item_is_made_as_the_sdk_makes_it() -> None:
    agent = Agent(name="A")
    call = {"type": "function_call", "name": "pay", "call_id": "c1", "arguments": '{"x": 1}'}
    item = ToolApprovalItem(agent, call)
    assert (item.tool_name, item.call_id, item.arguments, item.type) == (
        "pay",
        "c1",
        '{"x": 1}',
        "tool_approval_item",
    )
    assert ToolApprovalItem(agent, call, "pay_v2").tool_name == "pay_v2"
    with pytest.raises(UserError, match="awaits approval and is not an input item"):
        item.to_input_item()


async def test_a_resumed_run_keeps_the_max_turns_it_started_with(server: ScriptedServer) -> None:
    tools = Tools()
    agent = tools.agent(server)
    server.add(
        tool_calls(("send_email", {"to": "w@example.com", "body": "x"})),
        tool_calls(("get_weather", {"city": "Rome"})),
        reply("never reached"),
    )
    state = (await Runner.run(agent, "Email W.", max_turns=2)).to_state()
    assert state.max_turns == 2 and state.turns == 1
    state.approve(state.interruptions[0])
    with pytest.raises(MaxTurnsExceeded):
        await Runner.run(agent, state)  # the default max_turns=10 does not lift the limit
    assert tools.ran == ["send_email:w@example.com", "get_weather:Rome"]
    assert len(server.requests) == 2


async def test_discarding_inside_the_sessions_lease_and_a_damaged_record(
    server: ScriptedServer, store: Any
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("discard")
    server.add(tool_calls(("send_email", {"to": "x@example.com", "body": "x"})))
    await Runner.run(agent, "Email X.", session=session)
    async with session.lease():  # the task holds the lease: discarding writes under it
        assert await session.discard_pending_run() is True
    assert await session.pending_run() is None

    await session.put_records({PENDING_RUN_RECORD: {"not": "a run"}})
    with pytest.raises(CorruptItemError, match="the pending-run record is corrupt"):
        await Runner.run(agent, "Hello.", session=session)
    with pytest.raises(CorruptItemError, match="discard_pending_run"):
        await session.pending_run()
    assert await session.discard_pending_run() is True
    server.add(reply("Hi."))
    assert (await Runner.run(agent, "Hello.", session=session)).final_output == "Hi."
    assert_valid_to_send(await session.get_items())


# ---------------------------------------------------------------------- with the other run features


async def test_a_handoff_filter_before_the_interruption_still_shapes_the_resumed_run(
    server: ScriptedServer, store: Any, open_store: Callable[[], Any], backend: Backend
) -> None:
    """The next agent saw a filtered history; resuming (in another store object) sends it
    that history again, not the raw one the session keeps."""

    def forget_history(data: HandoffInputData) -> HandoffInputData:
        return data.clone(input_history=(), pre_handoff_items=())

    def agents(tools: Tools) -> Agent[Any]:
        mailer = Agent(name="Mailer", model=chat_model(server), tools=[tools.send_email])
        return Agent(
            name="Triage",
            model=chat_model(server),
            handoffs=[handoff(mailer, input_filter=forget_history)],
        )

    session = store.session("filtered")
    await session.add_items([{"role": "user", "content": "an old secret turn"}])
    server.add(
        tool_calls(("transfer_to_mailer", {})),
        tool_calls(("send_email", {"to": "y@example.com", "body": "x"})),
        reply("Mailed."),
    )
    tools = Tools()
    result = await Runner.run(agents(tools), "Mail Y.", session=session)
    assert "an old secret turn" not in json.dumps(sent_messages(server, 1))
    other = open_store().session("filtered") if backend.name != "sqlite-memory" else session
    fresh_tools = Tools()
    triage = agents(fresh_tools)
    state = await RunState.from_session(triage, other)
    assert state is not None and state.id == result.to_state().id
    state.approve(state.interruptions[0])
    resumed = await Runner.run(triage, state, session=other)
    assert resumed.final_output == "Mailed."
    assert "an old secret turn" not in json.dumps(sent_messages(server, 2))
    assert sent_messages(server, 2)[-1]["content"] == "sent to y@example.com"
    stored = await other.get_items()
    assert stored[0]["content"] == "an old secret turn"  # the session keeps what happened
    assert_valid_to_send(stored)


async def test_auto_previous_response_id_chains_the_resumed_call() -> None:
    with ScriptedServer() as server:
        tools = Tools()
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
        model = OpenAIResponsesModel(model="test-model", openai_client=client)
        agent = Agent(name="Assistant", model=model, tools=[tools.send_email])
        server.add(tool_calls(("send_email", {"to": "z@example.com", "body": "x"})), reply("Sent."))
        result = await Runner.run(agent, "Email Z.", auto_previous_response_id=True)
        state = await RunState.from_json(agent, result.to_state().to_json())
        state.approve(state.interruptions[0])
        with pytest.raises(UserError, match="resumes with the server-side state it was saved"):
            await Runner.run(agent, state, auto_previous_response_id=True)
        resumed = await Runner.run(agent, state)
        assert resumed.final_output == "Sent."
        body = server.requests[1].body
        assert body["previous_response_id"] == result.last_response_id
        assert [i["type"] for i in body["input"]] == ["function_call_output"]
        await client.close()


async def test_an_approved_call_still_passes_its_tool_guardrails(server: ScriptedServer) -> None:
    @tool_input_guardrail
    def no_competitors(data: Any) -> ToolGuardrailFunctionOutput:
        if "rival" in data.context.tool_arguments:
            return ToolGuardrailFunctionOutput.reject_content("Not to rivals.")
        return ToolGuardrailFunctionOutput.allow()

    ran: list[str] = []

    @function_tool(needs_approval=True, tool_input_guardrails=[no_competitors])
    def send(to: str) -> str:
        """Send."""
        ran.append(to)
        return "sent"

    agent = Agent(name="A", model=chat_model(server), tools=[send])
    server.add(tool_calls(("send", {"to": "rival@example.com"})), reply("Blocked."))
    state = (await Runner.run(agent, "Send.")).to_state()
    state.approve(state.interruptions[0])
    resumed = await Runner.run(agent, state)
    assert ran == []  # approval lets the call through to its guardrails, not past them
    outputs = [i.raw_item["output"] for i in resumed.new_items if i.type == "tool_call_output_item"]
    assert outputs == ["Not to rivals."]
    assert len(resumed.tool_input_guardrail_results) == 1


async def test_a_waiting_run_starts_no_compaction_and_its_resume_does(
    server: ScriptedServer, store: Any
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session(
        "compact", session_settings=SessionSettings(max_tokens=100_000, compact_at=100_000)
    )
    server.add(tool_calls(("send_email", {"to": "c@example.com", "body": "x"})), reply("Sent."))
    result = await Runner.run(agent, "Email C.", session=session)
    assert result.interruptions and result.compaction is None
    state = result.to_state()
    state.approve(state.interruptions[0])
    resumed = await Runner.run(agent, state, session=session)
    assert resumed.compaction is not None
    await resumed.compaction  # under its threshold: it finds nothing to do, and never raises
    assert_valid_to_send(await session.get_items())


async def test_the_sessions_usage_counts_each_model_call_of_an_interrupted_run_once(
    server: ScriptedServer, store: Any
) -> None:
    tools = Tools()
    agent = tools.agent(server)
    session = store.session("usage")
    server.add(tool_calls(("send_email", {"to": "u@example.com", "body": "x"})), reply("Sent."))
    state = (await Runner.run(agent, "Email U.", session=session)).to_state()
    assert (await session.usage()).requests == 1  # stored with the pending run
    state.approve(state.interruptions[0])
    resumed = await Runner.run(agent, state, session=session)
    assert resumed.usage.requests == 2
    assert (await session.usage()).requests == 2  # not counted twice
