"""Channels: how a published agent reaches people outside the builder.

- The web widget (``WidgetChannel``, ``api``, ``services``; docs/publishing.md): visitors trade a
  publishable key for a short-lived visitor token (an anonymous session tied to the channel) and
  chat with the agent's published version only; files they attach, when the owner allows them,
  are read in ``files``. Mounted at ``/api/widget/`` (``urls``).
- API keys (``api_key_models``, ``api_keys``; docs/api-keys.md): secret keys scoped to agents,
  their DRF authentication and rate limit (``auth``), the daily spend budget per agent
  (``budget``) and the OpenAI-compatible endpoint (``openai_compat``), mounted at ``/v1/``
  (``openai_urls``).

Agents are named by their ``agent_key`` only: stored (builder) agents and code agents alike.
Owners manage channels; whether someone is an owner is asked through ``runtime.access``
(``may_manage_channels``), never of the builder directly.
"""
