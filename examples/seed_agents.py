"""The seed README's own agents, copied with only their import paths changed to ``runtime.``.

- ``ChatAgent`` ("chat-agent"): Quick Start, step 4.
- ``ToolAgent`` ("tool-agent"): "Building Agents with Tools".
- ``WeatherAgent`` ("weather-agent"): "Agent Framework Options", option 2 (``ToolCallingAgent``).

They are registered by the default ``AGENT_RUNTIME_REGISTRY`` entry
``examples.seed_agents:register_agents`` and run on the offline demo model without a key
(try "what is get_weather for Paris?" with tool-agent or weather-agent).
The bodies below are kept as the seed wrote them on purpose, so that they keep proving the
public API is compatible; do not "improve" them.
"""

# ruff: noqa
from runtime.interfaces import (
    AgentRuntime,
    RunContext,
    RunResult,
    EventType,
)
from runtime.registry import register_runtime
from runtime.llm import get_llm_client


class ChatAgent(AgentRuntime):
    """A simple conversational agent."""

    @property
    def key(self) -> str:
        return "chat-agent"

    async def run(self, ctx: RunContext) -> RunResult:
        # Get the LLM client
        llm = get_llm_client()

        # Generate a response
        response = await llm.generate(ctx.input_messages)

        # Emit event for real-time streaming
        await ctx.emit(
            EventType.ASSISTANT_MESSAGE,
            {
                "content": response.message["content"],
            },
        )

        return RunResult(
            final_output={"response": response.message["content"]},
            final_messages=[response.message],
        )


# --- "Building Agents with Tools" -------------------------------------------------------
from runtime.interfaces import (
    AgentRuntime,
    RunContext,
    RunResult,
    EventType,
    Tool,
    ToolRegistry,
)
from runtime.llm import get_llm_client


def get_weather(location: str) -> str:
    """Get current weather for a location."""
    # Your weather API call here
    return f"Sunny, 72°F in {location}"


def search_database(query: str) -> list:
    """Search the database for relevant information."""
    # Your database search here
    return [{"title": "Result 1", "content": "..."}]


class ToolAgent(AgentRuntime):
    @property
    def key(self) -> str:
        return "tool-agent"

    def __init__(self):
        self.tools = ToolRegistry()
        self.tools.register(Tool.from_function(get_weather))
        self.tools.register(Tool.from_function(search_database))

    async def run(self, ctx: RunContext) -> RunResult:
        llm = get_llm_client()
        messages = list(ctx.input_messages)

        while True:
            response = await llm.generate(
                messages,
                tools=self.tools.to_openai_format(),
            )
            messages.append(response.message)

            if not response.tool_calls:
                break

            for tool_call in response.tool_calls:
                # Emit tool call event
                await ctx.emit(
                    EventType.TOOL_CALL,
                    {
                        "tool": tool_call["function"]["name"],
                        "arguments": tool_call["function"]["arguments"],
                    },
                )

                # Execute tool
                result = await self.tools.execute(
                    tool_call["function"]["name"],
                    tool_call["function"]["arguments"],
                )

                # Emit result event
                await ctx.emit(
                    EventType.TOOL_RESULT,
                    {
                        "tool_call_id": tool_call["id"],
                        "result": result,
                    },
                )

                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": tool_call["id"],
                        "content": str(result),
                    }
                )

        return RunResult(
            final_output={"response": response.message["content"]},
            final_messages=messages,
        )


# --- "Agent Framework Options", option 2 ---------------------------------------------------
from runtime.agents import ToolCallingAgent
from runtime.interfaces import ToolRegistry, Tool


class WeatherAgent(ToolCallingAgent):
    @property
    def key(self) -> str:
        return "weather-agent"

    @property
    def system_prompt(self) -> str:
        return "You are a helpful weather assistant. Use the get_weather tool to answer questions."

    @property
    def tools(self) -> ToolRegistry:
        registry = ToolRegistry()
        registry.register(
            Tool(
                name="get_weather",
                description="Get the current weather for a location",
                parameters={
                    "type": "object",
                    "properties": {
                        "location": {"type": "string", "description": "City name"},
                    },
                    "required": ["location"],
                },
                handler=self._get_weather,
            )
        )
        return registry

    async def _get_weather(self, location: str) -> str:
        # Your weather API call here
        return f"The weather in {location} is sunny, 72°F"


def register_agents():
    """Called by the runtime on startup (``AGENT_RUNTIME_REGISTRY``)."""
    register_runtime(ChatAgent())
    register_runtime(ToolAgent())
    register_runtime(WeatherAgent())
