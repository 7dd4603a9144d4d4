"""The agent runtime: durable runs, queues, workers, events, LLM providers and tools."""
