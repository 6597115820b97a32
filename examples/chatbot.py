"""A chatbot on any OpenAI-compatible endpoint, with a tool, an agent used as a tool, a
handoff, streaming, and memory in a SQLite session.

    GEMINI_API_KEY=... python examples/chatbot.py

GEMINI_BASE_URL and CHATBOT_MODEL override the endpoint and the model name. Type a message
per line; an empty line or end of input quits.
"""

import asyncio
import os
import sys

from openai.types.responses import ResponseTextDeltaEvent

from threadline import (
    Agent,
    AsyncOpenAI,
    OpenAIChatCompletionsModel,
    RunConfig,
    Runner,
    SQLiteSession,
    function_tool,
    set_tracing_disabled,
)

BASE_URL = os.environ.get(
    "GEMINI_BASE_URL", "https://generativelanguage.googleapis.com/v1beta/openai/"
)
API_KEY = os.environ.get("GEMINI_API_KEY", "")
MODEL = os.environ.get("CHATBOT_MODEL", "gemini-1.5-flash")

set_tracing_disabled(disabled=True)


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: The city to look up.
    """
    return f"The weather in {city} is sunny."


async def main() -> None:
    if not API_KEY:
        sys.exit("Set GEMINI_API_KEY to run this example.")
    client = AsyncOpenAI(api_key=API_KEY, base_url=BASE_URL)
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    math = Agent(name="Math Assistant", instructions="Solve math.", model=model)
    main_agent = Agent(
        name="Helpful Assistant",
        instructions="Use tools when needed. If user asks a math question, call the Math Assistant.",
        model=model,
        tools=[get_weather, math.as_tool("math_assistant", "Solves math problems.")],
        handoffs=[math],
    )
    config = RunConfig(model=model, model_provider=client)
    session = SQLiteSession(
        os.environ.get("CHATBOT_SESSION", "chatbot"), os.environ.get("CHATBOT_DB", "chatbot.db")
    )
    for line in sys.stdin:
        question = line.strip()
        if not question:
            break
        result = Runner.run_streamed(main_agent, question, run_config=config, session=session)
        async for event in result.stream_events():
            if event.type == "raw_response_event" and isinstance(
                event.data, ResponseTextDeltaEvent
            ):
                print(event.data.delta, end="", flush=True)
        print()


if __name__ == "__main__":
    asyncio.run(main())
