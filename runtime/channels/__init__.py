"""Channels: the ways a published agent reaches people outside the builder.

Today: the web widget (``WidgetChannel``), whose visitors trade a publishable key for a
short-lived visitor token (an anonymous session of ``ANONYMOUS_SESSION_MODEL`` tied to the
channel) and chat with the agent's published version only. Owners manage a channel; whether
someone is an owner is asked through ``runtime.access``, never of the builder directly.
"""
