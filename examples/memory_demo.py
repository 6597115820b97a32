"""The main job, offline: a three-turn conversation that shows memory.

The conversation is stored in a SQLite file (``memory_demo.db`` beside the current directory,
or the path given as the first argument). The model is a stand-in: the scripted
OpenAI-compatible server from ``threadline.testing``, reached through the real ``openai``
client over HTTP on 127.0.0.1. It answers only from the messages it is sent — ask "What state
is it in?" without the history and it cannot know what "it" is — so every correct answer
below is the memory at work.
"""

from __future__ import annotations

import asyncio
import sys

from threadline import (
    Agent,
    AsyncOpenAI,
    OpenAIChatCompletionsModel,
    Runner,
    SQLiteSession,
    set_tracing_disabled,
)
from threadline.testing.server import RecordedRequest, ScriptedServer, reply

QUESTIONS = [
    "What city is the Golden Gate Bridge in?",
    "What state is it in?",
    "What's the population?",
]

# What the stand-in model "knows": a landmark's city, a city's state and population.
CITIES = {"golden gate bridge": "San Francisco"}
STATES = {"San Francisco": "California"}
POPULATIONS = {"San Francisco": "about 808,000 people (2023)"}


def stand_in_model(request: RecordedRequest) -> object:
    """Answer the last user message using only the conversation in the request."""
    messages = [m for m in request.body.get("messages", []) if m.get("role") != "system"]
    question = str(messages[-1].get("content", "")).lower()
    mentioned = " ".join(str(m.get("content", "")) for m in messages)
    city = next((c for c in STATES if c in mentioned), None)
    for landmark, landmark_city in CITIES.items():
        if landmark in question:
            return reply(f"{landmark_city}.")
    if city is None:
        return reply("I don't know what you are referring to.")
    if "state" in question:
        return reply(f"{STATES[city]}.")
    if "population" in question:
        return reply(f"{city} has {POPULATIONS[city]}.")
    return reply("I don't know.")


async def main(db_path: str = "memory_demo.db") -> int:
    set_tracing_disabled(True)
    with ScriptedServer() as server:
        server.responder = stand_in_model
        client = AsyncOpenAI(api_key="offline-demo", base_url=server.base_url)
        model = OpenAIChatCompletionsModel(model="stand-in", openai_client=client)
        agent = Agent(name="Assistant", instructions="Reply very concisely.", model=model)
        session = SQLiteSession("golden_gate_demo", db_path)
        await session.clear_session()  # start the demo afresh each time
        for question in QUESTIONS:
            result = await Runner.run(agent, question, session=session)
            print(f"You: {question}")
            print(f"Assistant: {result.final_output}\n")
        print(f"Stored history of session {session.session_id!r} in {db_path}:")
        for index, item in enumerate(await session.get_items(), start=1):
            role = item.get("role", item.get("type"))
            content = item.get("content")
            text = content if isinstance(content, str) else content[0].get("text", "")
            print(f"  {index}. {role}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:2])))
