"""Teams: create a team, add and remove its members (people with ``manage_teams``, or superusers)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from builder.schema import ConfigError
from builder.services.teams import may_manage_teams, team_add_member, team_create, team_remove_member
from builder.views.common import page, refused, staff_view

NOT_ALLOWED = (
    "Only people with the 'manage teams' permission, or superusers, may manage teams; ask an administrator."
)


def _render(
    request: HttpRequest,
    *,
    errors: dict | None = None,
    done: str = "",
    typed: dict | None = None,
    status: int = 200,
) -> HttpResponse:
    members = Prefetch("user_set", queryset=get_user_model().objects.order_by("username"))
    context = {
        "teams": list(Group.objects.order_by("name").prefetch_related(members)),
        "errors": errors or {},
        "done": done,
        "typed": typed or {},
        "base_url": reverse("builder:teams"),
        "people_url": reverse("builder:people-search"),
        "title": "Teams",
        "section": "teams",
    }
    return page(request, "builder/teams.html", context, partial="teams", status=status)


@staff_view
@require_http_methods(["GET", "POST"])
def teams(request: HttpRequest) -> HttpResponse:
    if not may_manage_teams(request.user):
        return refused(request, NOT_ALLOWED)
    if request.method == "GET":
        return _render(request)
    action = request.POST.get("action", "")
    typed = {k: request.POST.get(k, "")[:200] for k in ("name", "person", "team")}
    try:
        if action == "create":
            team = team_create(name=request.POST.get("name", ""))
            done = f"Created the team {team.name}. Add its members below."
        else:
            team_id = request.POST.get("team", "")
            team = Group.objects.filter(pk=team_id).first() if team_id.isdigit() else None
            if team is None:
                raise ConfigError({"name": "That team no longer exists; reload the page."})
            if action == "add":
                user = team_add_member(team=team, person=request.POST.get("person", ""))
                done = f"Added {user.get_username()} to {team.name}."
            elif action == "remove":
                user_id = request.POST.get("user", "")
                user = get_user_model().objects.filter(pk=user_id).first() if user_id.isdigit() else None
                if user is not None:
                    team_remove_member(team=team, user=user)
                done = f"Removed {user.get_username() if user else 'them'} from {team.name}."
            else:
                raise ConfigError({"name": "Unknown action; reload the page."})
    except ConfigError as exc:
        return _render(request, errors=exc.errors, typed=typed, status=422)
    return _render(request, done=done)
