"""Searchable agent pickers: a few matching agents per keystroke, so a site with thousands of
agents never renders one checkbox (or option) per agent.

``GET /agents/search/?q=bill&for=members`` (or ``for=sub_agents``) answers list items with an "Add" button;
``for=options`` answers ``<option>``s for a ``<datalist>``; ``?add=<slug>`` answers the chip of
one chosen agent (a checked checkbox, so unticking it removes the agent on save), or with
``for=sub_agents`` the agent editor's row for it (checkbox, mode and context).
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from builder import selectors
from builder.forms import CONTEXT_CHOICES, MODE_CHOICES
from builder.views.common import staff_view

LIMIT = 20


@staff_view
def agent_search(request: HttpRequest) -> HttpResponse:
    agents = selectors.agent_list(user=request.user)
    add = request.GET.get("add")
    target = request.GET.get("for", "members")
    if add:
        agent = agents.filter(slug=add).values("slug", "name").first()
        if agent is None:
            raise Http404("Unknown agent.")
        if target == "sub_agents":  # a row of the agent editor's sub-agents, with its mode and context
            row = {
                "key": agent["slug"],
                "label": agent["name"],
                "checked": True,
                "mode": "delegate",
                "context": "full",
            }
            context = {"row": row, "mode_choices": MODE_CHOICES, "context_choices": CONTEXT_CHOICES}
            return TemplateResponse(request, "builder/_sub_agent_row.html", context)
        return TemplateResponse(
            request, "builder/_agent_chip.html", {"agent": agent, "name": request.GET.get("name", "members")}
        )
    query = (request.GET.get("q") or request.GET.get("entry_agent") or "").strip()[:100]
    matching = selectors.agent_list(user=request.user, search=query)
    if request.GET.get("exclude"):  # the agent being edited is not its own sub-agent
        matching = matching.exclude(slug=request.GET["exclude"])
    found = list(matching.values("slug", "name")[: LIMIT + 1])
    context = {
        "agents": found[:LIMIT],
        "more": len(found) > LIMIT,
        "query": query,
        "target": target,
    }
    response = TemplateResponse(request, "builder/_agent_search.html", context)
    response["Vary"] = "HX-Request"
    return response
