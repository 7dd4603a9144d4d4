"""Channels: how a published agent reaches people outside the builder.

This package holds the API-key channel: secret keys scoped to agents (``api_key_models``,
``api_keys``), their DRF authentication and rate limit (``auth``), the daily spend budget per
agent (``budget``) and the OpenAI-compatible endpoint (``openai_compat``, mounted at ``/v1/``).
Agents are named by their ``agent_key`` only: stored (builder) agents and code agents alike.
See docs/api-keys.md.
"""
