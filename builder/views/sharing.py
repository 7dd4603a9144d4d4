"""The sharing panel of an agent, system, tool or knowledge base: who has which role, add a colleague
or a team, change a role, remove; and the object's activity (the audit log).

Everyone who may see the object sees the panel; only owners get its forms (a POST from anyone else
is a 403 saying why). Bad input answers 422 with the message next to its field, nothing changed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from builder.access import ROLES, get_shareable_for_user, refusal
from builder.schema import ConfigError
from builder.services.invitations import (
    InvitationInvalid,
    invitation_accept,
    invitation_create,
    invitation_from_token,
)
from builder.services.sharing import (
    MIN_SEARCH,
    audit_for,
    colleague_search,
    find_colleague,
    share_add,
    share_change,
    share_remove,
    shares_of,
)
from builder.views.common import page, refused, staff_view

URL_PREFIX = {"agent": "agent", "system": "system", "tool": "tool", "knowledge": "knowledge"}


def _back_url(kind: str, obj: Any) -> str:
    name = {
        "agent": "agent-edit",
        "system": "system-edit",
        "tool": "tool-edit",
        "knowledge": "knowledge-detail",
    }
    return reverse(f"builder:{name[kind]}", args=[obj.public_id])


def _render(
    request: HttpRequest,
    kind: str,
    obj: Any,
    perms: Any,
    *,
    errors: dict[str, str] | None = None,
    done: str = "",
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    base = reverse(f"builder:{kind}-sharing", args=[obj.public_id])
    context = {
        "kind": kind,
        "kind_label": "knowledge base" if kind == "knowledge" else kind,
        "obj": obj,
        "perms": perms,
        "shares": shares_of(obj),
        "roles": ROLES,
        "teams": list(Group.objects.order_by("name").values_list("pk", "name")) if perms.share else [],
        "activity": list(audit_for(obj)[:20]),
        "errors": errors or {},
        "done": done,
        "typed": typed or {},
        "base_url": base,
        "back_url": _back_url(kind, obj),
        "people_url": reverse("builder:people-search"),
        "invite_url": reverse(f"builder:{kind}-sharing-invite", args=[obj.public_id]),
        "min_search": MIN_SEARCH,
        "title": f"{obj}: sharing",
    }
    return page(request, "builder/sharing.html", context, partial="sharing", status=status)


@staff_view
@require_http_methods(["GET", "POST"])
def sharing_panel(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    """GET: the panel. POST: share with a person (``person``) or a team (``team``) as ``role``."""
    obj, perms = get_shareable_for_user(request.user, kind, public_id)
    if request.method == "GET":
        return _render(request, kind, obj, perms)
    if not perms.share:
        return refused(request, refusal(perms, obj, "share"))
    person = (request.POST.get("person") or request.POST.get("q") or "").strip()
    team_id = request.POST.get("team", "").strip()
    role = request.POST.get("role", "")
    typed = {"q": request.POST.get("q", "")[:200], "role": role, "team": team_id}
    try:
        if team_id and person:
            raise ConfigError({"person": "Share with a colleague or with a team, one at a time."})
        if team_id:
            group = Group.objects.filter(pk=team_id).first() if team_id.isdigit() else None
            if group is None:
                raise ConfigError({"team": "That team no longer exists; pick another."})
            share = share_add(obj=obj, actor=request.user, role=role, group=group)
        else:
            share = share_add(obj=obj, actor=request.user, role=role, user=find_colleague(person))
    except ConfigError as exc:
        return _render(request, kind, obj, perms, errors=exc.errors, typed=typed, status=422)
    return _render(request, kind, obj, perms, done=f"Shared with {share.label} as {role}.")


def _subject(text: str) -> tuple[Any, Any]:
    """``user-<id>`` or ``team-<id>`` as (user, group); a ConfigError if neither exists."""
    kind, _, pk = text.partition("-")
    if pk.isdigit() and kind == "user":
        user = get_user_model().objects.filter(pk=pk).first()
        if user is not None:
            return user, None
    if pk.isdigit() and kind == "team":
        group = Group.objects.filter(pk=pk).first()
        if group is not None:
            return None, group
    raise ConfigError({"role": "That person or team no longer has a role here; reload the page."})


@staff_view
@require_POST
def sharing_change(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    """Change the role of ``subject`` to ``role``, or remove it (``remove``)."""
    obj, perms = get_shareable_for_user(request.user, kind, public_id)
    if not perms.share:
        return refused(request, refusal(perms, obj, "share"))
    subject_key = request.POST.get("subject", "")
    try:
        user, group = _subject(subject_key)
        if request.POST.get("remove"):
            share_remove(obj=obj, actor=request.user, user=user, group=group)
            done = "Removed."
        else:
            role = request.POST.get("role", "")
            share_change(obj=obj, actor=request.user, role=role, user=user, group=group)
            done = f"Role changed to {role}."
    except ConfigError as exc:
        errors = {f"row:{subject_key}": " ".join(exc.errors.values())}
        return _render(request, kind, obj, perms, errors=errors, status=422)
    return _render(request, kind, obj, perms, done=done)


@staff_view
@require_GET
def people_search(request: HttpRequest) -> HttpResponse:
    """Colleagues matching ``q`` (active staff, at least 2 characters, at most 10)."""
    q = request.GET.get("q", "")[:200]
    context = {"people": colleague_search(actor=request.user, q=q), "q": q.strip(), "min_search": MIN_SEARCH}
    return TemplateResponse(request, "builder/_people.html", context)


@staff_view
@require_POST
def sharing_invite(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    """Invite someone without an account by email (``email``, ``role``)."""
    obj, perms = get_shareable_for_user(request.user, kind, public_id)
    if not perms.share:
        return refused(request, refusal(perms, obj, "share"))
    email = request.POST.get("email", "")[:254]
    role = request.POST.get("invite_role", "")
    try:
        invitation_create(
            obj=obj, actor=request.user, email=email, role=role, link_base=request.build_absolute_uri("/")
        )
    except ConfigError as exc:
        errors = {("invite_role" if k == "role" else k): v for k, v in exc.errors.items()}
        typed = {"email": email, "invite_role": role}
        return _render(request, kind, obj, perms, errors=errors, typed=typed, status=422)
    return _render(
        request, kind, obj, perms, done=f"Invited {email} as {role}; the link in the email works once."
    )


@require_http_methods(["GET", "POST"])
def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    """Anyone with the link: choose a username and password, land on the shared object."""
    try:
        invitation, obj = invitation_from_token(token)
    except InvitationInvalid as exc:
        return TemplateResponse(
            request, "builder/invitation.html", {"invalid": exc.message}, status=exc.status
        )
    errors: dict[str, str] = {}
    typed = {"username": invitation.email.split("@")[0], "first_name": ""}
    if request.method == "POST":
        typed = {
            "username": request.POST.get("username", "")[:150],
            "first_name": request.POST.get("first_name", "")[:150],
        }
        try:
            user, obj = invitation_accept(
                token=token,
                username=typed["username"],
                first_name=typed["first_name"],
                password=request.POST.get("password", ""),
                password2=request.POST.get("password2", ""),
            )
        except InvitationInvalid as exc:
            return TemplateResponse(
                request, "builder/invitation.html", {"invalid": exc.message}, status=exc.status
            )
        except ConfigError as exc:
            errors = exc.errors
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(_back_url(invitation.target_kind, obj))
    context = {"invitation": invitation, "obj": obj, "errors": errors, "typed": typed}
    return _invitation_page(request, context, status=422 if errors else 200)


def _invitation_page(request: HttpRequest, context: dict[str, Any], *, status: int) -> HttpResponse:
    full = {**admin.site.each_context(request), "title": "Invitation", **context}
    return TemplateResponse(request, "builder/invitation.html", full, status=status)
