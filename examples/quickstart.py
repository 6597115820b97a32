"""The README quick start: an agent that remembers the conversation.

Uses the default model: set OPENAI_API_KEY (and OPENAI_BASE_URL for any OpenAI-compatible
endpoint), or THREADLINE_MODEL to pick the model name.
"""

import asyncio

from threadline import Agent, Runner, SQLiteSession


async def main() -> None:
    agent = Agent(name="Assistant", instructions="Reply very concisely.")
    session = SQLiteSession("conversation_123", "conversations.db")

    result = await Runner.run(agent, "What city is the Golden Gate Bridge in?", session=session)
    print(result.final_output)

    result = await Runner.run(agent, "What state is it in?", session=session)  # remembers
    print(result.final_output)


if __name__ == "__main__":
    asyncio.run(main())
    # the synchronous entry point, on the same history
    agent = Agent(name="Assistant", instructions="Reply very concisely.")
    session = SQLiteSession("conversation_123", "conversations.db")
    print(Runner.run_sync(agent, "What's the population?", session=session).final_output)
