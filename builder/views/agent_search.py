"""Searchable agent pickers: a few matching agents per keystroke, so a site with thousands of
agents never renders one checkbox (or option) per agent.

``GET /agents/search/?q=bill&for=members`` answers list items with an "Add" button;
``for=options`` answers ``<option>``s for a ``<datalist>``; ``?add=<slug>`` answers the chip of
one chosen agent (a checked checkbox, so unticking it removes the agent on save).
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from builder import selectors
from builder.views.common import staff_view

LIMIT = 20


@staff_view
def agent_search(request: HttpRequest) -> HttpResponse:
    agents = selectors.agent_list(user=request.user)
    add = request.GET.get("add")
    if add:
        agent = agents.filter(slug=add).values("slug", "name").first()
        if agent is None:
            raise Http404("Unknown agent.")
        return TemplateResponse(
            request, "builder/_agent_chip.html", {"agent": agent, "name": request.GET.get("name", "members")}
        )
    query = (request.GET.get("q") or request.GET.get("entry_agent") or "").strip()[:100]
    found = list(selectors.agent_list(user=request.user, search=query).values("slug", "name")[: LIMIT + 1])
    context = {
        "agents": found[:LIMIT],
        "more": len(found) > LIMIT,
        "query": query,
        "target": request.GET.get("for", "members"),
    }
    response = TemplateResponse(request, "builder/_agent_search.html", context)
    response["Vary"] = "HX-Request"
    return response
