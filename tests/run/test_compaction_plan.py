"""The pure decisions of a compaction: where it cuts, what the summariser is sent."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from threadline.items import (
    assistant_message,
    function_call,
    function_call_output,
    is_user_message,
    user_message,
)
from threadline.run._compaction_plan import clean_summary, plan_cut, render_prompt, safe_cuts
from threadline.sessions import estimate_tokens


@st.composite
def histories(draw: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for turn in range(draw(st.integers(0, 8))):
        items.append(user_message(f"q{turn} " + "x" * draw(st.integers(0, 400))))
        for step in range(draw(st.integers(0, 2))):
            call_id = f"c{turn}-{step}"
            items.append(function_call(call_id, "f", "{}"))
            items.append(function_call_output(call_id, "o" * draw(st.integers(0, 300))))
        items.append(assistant_message("a" * draw(st.integers(0, 400))))
    return items


@given(histories(), st.integers(0, 600), st.integers(1, 1500))
def test_a_plan_cuts_at_a_turn_start_within_its_budgets(
    items: list[dict[str, Any]], keep: int, budget: int
) -> None:
    plan, why = plan_cut(items, keep, budget)
    users = [i for i, item in enumerate(items) if is_user_message(item)]
    if len(users) < 2:
        assert plan is None and why
        return
    assert plan is not None
    assert plan.cut in safe_cuts(items) and is_user_message(items[plan.cut])
    tokens = [estimate_tokens(item) for item in items]
    assert plan.covered_tokens == sum(tokens[: plan.cut])
    assert plan.kept_tokens == sum(tokens[plan.cut :])
    first_turn = users[1]
    # covers at most the budget, unless the first turn alone is larger
    assert plan.covered_tokens <= budget or plan.cut == first_turn
    if not plan.limited:  # keeps at most keep_tokens, unless the last turn alone is larger
        assert plan.kept_tokens <= keep or plan.cut == users[-1]
    covered_calls = {
        i.get("call_id") for i in items[: plan.cut] if i.get("type") == "function_call"
    }
    kept_outputs = {
        i.get("call_id") for i in items[plan.cut :] if i.get("type") == "function_call_output"
    }
    assert not covered_calls & kept_outputs


def test_the_prompt_holds_the_previous_summary_and_the_new_messages() -> None:
    items = [
        user_message("Where is it?"),
        function_call("c1", "lookup", '{"q": "bridge"}'),
        function_call_output("c1", "in San Francisco"),
        assistant_message("In San Francisco."),
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ]
    prompt = render_prompt("The user asked about a bridge.", items)
    assert prompt.startswith("Summary so far:\nThe user asked about a bridge.\n\nNew messages:\n")
    assert "[user] Where is it?" in prompt
    assert '[tool call] lookup({"q": "bridge"})' in prompt
    assert "[tool result] in San Francisco" in prompt
    assert "[assistant] In San Francisco." in prompt
    assert "reasoning" not in prompt
    assert "(none yet" in render_prompt(None, items)
    huge = render_prompt(None, [user_message("x" * 10_000)])
    assert "[…]" in huge and len(huge) < 5000


def test_echoed_prompt_lines_are_dropped_from_the_summary() -> None:
    assert clean_summary("  Ada lives in Lisbon.\n[user] Hi\n[assistant] Hello") == (
        "Ada lives in Lisbon."
    )
    assert clean_summary("[user] only an echo") == ""
    assert clean_summary("Line one.\nLine two.") == "Line one.\nLine two."
