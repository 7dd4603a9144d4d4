"""The runtime's HTTP API: REST for runs, conversations and models, SSE for live events.

Host projects subclass the base classes in :mod:`runtime.api.views` and mount them,
or include :mod:`runtime.api.urls` as it is.
"""
