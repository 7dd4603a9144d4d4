"""Invitations: an owner invites someone without an account, by email, to a role on one object.

The email carries a link with the invitation's public id signed with a timestamp (Django's
signing, salted): it works until ``expires_at`` (``INVITATION_TTL_HOURS``) and once. Accepting
creates a staff account with the invited email, gives the role (the inviter is the actor in the
audit log) and signs the new account in; every refusal says what to do next.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from builder.access import KINDS, MODEL_OF_KIND, ROLES, perms_for
from builder.models import AuditAction, Invitation
from builder.schema import ConfigError
from builder.services.sharing import audit_record, person_name, share_add

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import Model

SALT = "builder.invitation"


class InvitationInvalid(Exception):
    """The link cannot be used; ``message`` says why and what to do, ``status`` the HTTP status."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps(str(invitation.public_id), salt=SALT, compress=True)


@transaction.atomic
def invitation_create(
    *, obj: Model, actor: AbstractBaseUser, email: str, role: str, link_base: str
) -> Invitation:
    """Record and email an invitation. ``link_base`` is the site's absolute root URL."""
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ConfigError({"email": "Enter an email address like name@example.com."}) from None
    if role not in ROLES:
        raise ConfigError({"role": "Choose a role: viewer, editor or owner."})
    existing = get_user_model().objects.filter(email__iexact=email).first()
    if existing is not None:
        raise ConfigError(
            {"email": f"{person_name(existing)} already has an account: share with them by name above."}
        )
    kind = KINDS[type(obj)]
    now = timezone.now()
    pending = Invitation.objects.filter(
        email__iexact=email,
        target_kind=kind,
        target_id=obj.public_id,
        accepted_at__isnull=True,
        expires_at__gt=now,
    )
    if pending.exists():
        raise ConfigError({"email": f"{email} is already invited and has not answered yet."})
    invitation = Invitation.objects.create(
        email=email,
        role=role,
        target_kind=kind,
        target_id=obj.public_id,
        invited_by=actor,
        expires_at=now + timedelta(hours=settings.INVITATION_TTL_HOURS),
    )
    link = f"{link_base.rstrip('/')}/invitations/{invitation_token(invitation)}/"
    label = "knowledge base" if kind == "knowledge" else kind
    hours = settings.INVITATION_TTL_HOURS
    send_mail(
        subject=f"{person_name(actor)} invited you to the {label} {obj}",
        message=(
            f'{person_name(actor)} invited you to work on the {label} "{obj}" as {role}.\n\n'
            f"Choose your password here (the link works once, for {hours} hours):\n{link}\n\n"
            "If you did not expect this, ignore this email."
        ),
        from_email=None,
        recipient_list=[email],
    )
    audit_record(actor=actor, action=AuditAction.INVITED, obj=obj, subject=email, role=role)
    return invitation


def invitation_from_token(token: str) -> tuple[Invitation, Any]:
    """The usable invitation and its object, or InvitationInvalid saying why."""
    try:
        public_id = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise InvitationInvalid(
            "This invitation link is not valid: it may have been cut short when copied. "
            "Open the link from the email again, or ask for a new invitation."
        ) from None
    invitation = Invitation.objects.select_related("invited_by").filter(public_id=public_id).first()
    if invitation is None:
        raise InvitationInvalid("This invitation was withdrawn. Ask whoever invited you for a new one.")
    who = person_name(invitation.invited_by) if invitation.invited_by else "whoever invited you"
    if invitation.accepted_at is not None:
        raise InvitationInvalid("This invitation was already used. Sign in with the password you chose.", 410)
    if invitation.expires_at <= timezone.now():
        raise InvitationInvalid(f"This invitation has expired. Ask {who} to invite you again.", 410)
    obj = MODEL_OF_KIND[invitation.target_kind].objects.filter(public_id=invitation.target_id).first()
    if obj is None:
        raise InvitationInvalid(f"What you were invited to no longer exists. Ask {who} about it.", 410)
    if invitation.invited_by is None or not perms_for(invitation.invited_by, obj).share:
        raise InvitationInvalid(
            f"{who} may no longer share it, so this invitation lapsed. Ask an owner.", 410
        )
    return invitation, obj


@transaction.atomic
def invitation_accept(
    *, token: str, username: str, first_name: str, password: str, password2: str
) -> tuple[Any, Any]:
    """Create the account, give the role, mark the invitation used; returns (user, object)."""
    invitation, obj = invitation_from_token(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:  # two tabs at once: the second loses
        raise InvitationInvalid("This invitation was already used. Sign in with the password you chose.", 410)
    User = get_user_model()
    username = (username or "").strip()
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = "Choose a username you will sign in with."
    elif len(username) > 150 or not all(c.isalnum() or c in "@.+-_" for c in username):
        errors["username"] = "Use at most 150 letters, digits and @ . + - _ only."
    elif User.objects.filter(username__iexact=username).exists():
        errors["username"] = f"The username {username} is taken; choose another."
    if password != password2:
        errors["password2"] = "The two passwords differ; type the same password twice."
    else:
        candidate = User(username=username, email=invitation.email, first_name=first_name.strip()[:150])
        try:
            password_validation.validate_password(password, candidate)
        except ValidationError as exc:
            errors["password"] = " ".join(exc.messages)
    if errors:
        raise ConfigError(errors)
    user = User.objects.create_user(
        username, invitation.email, password, first_name=first_name.strip()[:150], is_staff=True
    )
    share_add(obj=obj, actor=invitation.invited_by, role=invitation.role, user=user)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return user, obj
