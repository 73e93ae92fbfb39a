"""Adding raters to a project: new accounts (with a generated password, shown once) or existing ones."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.models import Membership, Project
from annotation.services.crowd import CROWD_USERNAME_PREFIX

RATER_CREATED = "created"  # a new account, added as a rater
RATER_ADDED = "added"  # an existing account, added as a rater
RATER_ALREADY = "already_rater"
RATER_IS_MANAGER = "manager"  # left as it is: a manager is never demoted by this
RATER_UNKNOWN = "unknown"  # no such account and creating one was not asked for
RATER_INVALID = "invalid"  # not a valid username


@dataclass(frozen=True)
class RaterAdded:
    username: str
    status: str
    #: The generated password of a new account; None otherwise. It is stored only hashed.
    password: str | None = None
    message: str = ""


def _password() -> str:
    # 16 URL-safe characters (96 bits): readable over the phone, never guessed.
    return secrets.token_urlsafe(12)


@transaction.atomic
def raters_add(*, project: Project, usernames: Iterable[str], create_missing: bool = True) -> list[RaterAdded]:
    """Make each username a rater of ``project``, creating the accounts that do not exist.

    Returns one entry per distinct username, in the order given, with the new password of each
    created account. Managers of the project stay managers.
    """
    user_model = get_user_model()
    validator = UnicodeUsernameValidator()
    results: list[RaterAdded] = []
    seen: set[str] = set()
    for raw in usernames:
        username = raw.strip()
        if not username or username in seen:
            continue
        seen.add(username)
        try:
            validator(username)
            if len(username) > 150:
                raise ValidationError("at most 150 characters")
        except ValidationError as exc:
            results.append(RaterAdded(username, RATER_INVALID, message="; ".join(exc.messages)))
            continue
        user = user_model.objects.filter(username=username).first()
        if username.startswith(CROWD_USERNAME_PREFIX) and not (
            user is not None and Membership.objects.filter(project=project, user=user).exists()
        ):
            # Crowd accounts belong to the one project whose invite link made them (a worker id
            # must not reach another project), and the prefix is reserved for them.
            results.append(RaterAdded(
                username, RATER_INVALID,
                message=f"names starting with {CROWD_USERNAME_PREFIX!r} are crowd accounts of one project",
            ))
            continue
        password = None
        if user is None:
            if not create_missing:
                results.append(RaterAdded(username, RATER_UNKNOWN, message="no such account"))
                continue
            password = _password()
            user = user_model.objects.create_user(username=username, password=password)
            status = RATER_CREATED
        else:
            status = RATER_ADDED
        membership, created = Membership.objects.get_or_create(
            project=project, user=user, defaults={"role": Membership.ROLE_RATER}
        )
        if not created and membership.role == Membership.ROLE_MANAGER:
            results.append(RaterAdded(username, RATER_IS_MANAGER, message="already a manager of this project"))
            continue
        if not created and status == RATER_ADDED:
            status = RATER_ALREADY
        results.append(RaterAdded(username, status, password))
    return results
