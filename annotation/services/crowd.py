"""Crowd entry: a project's invite link, and raters who arrive through it with a worker id.

A crowd platform (Prolific, MTurk, …) sends each worker to the project's invite link with their
worker id in the URL. The worker gets an account of their own without ever seeing a password
form: the account is keyed by (project, worker id) through ``Membership.external_id`` (unique
per project in the database), its username is generated (``crowd-<project>-<random>``) and its
password is unusable. So:

- the same worker id in the same project always reaches the same account;
- the same worker id in another project is another account (a worker id never opens a door to
  a project whose link the worker was not given);
- a worker id equal to an existing username (``manager``, ``rater1``) is just a worker id: the
  lookup never goes through usernames, so it cannot reach a named account.

The invite token is ``<project id>-<secret>``: the project is found by its id and the whole
token compared in constant time (``secrets.compare_digest``), so the secret is never looked up
in an index whose timing could leak it. Rotating draws a new secret; the old link stops working.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction

from annotation.models import Membership, Project

logger = logging.getLogger(__name__)

#: Worker, study and session ids: letters, digits and ``_ . : @ -``, starting with a letter or
#: digit, at most this long. Prolific's ids are 24 hex digits, MTurk's 12–14 capitals and digits.
EXTERNAL_ID_MAX_LENGTH = 100
_EXTERNAL_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]*")
CROWD_USERNAME_PREFIX = "crowd-"
_ENTER_ATTEMPTS = 3


class CrowdEntryError(Exception):
    """A crowd entry the rules refuse. ``code`` is stable; ``message`` says what and where."""

    def __init__(self, message: str, *, code: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


class InviteInvalid(CrowdEntryError):
    """No invite link, a rotated or disabled one, or a token that is not this project's."""

    def __init__(self) -> None:
        super().__init__("This invite link is not valid.", code="invite_invalid")


class CrowdSettingsError(ValueError):
    """Crowd settings that cannot be stored; ``errors`` maps each field to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def external_id_clean(value: str | None, *, field: str = "worker id", required: bool = True) -> str:
    """``value`` stripped of surrounding blanks, or :class:`CrowdEntryError` saying what is wrong.

    An empty optional value gives "". A value still holding the platform's placeholder
    (``{{%PROLIFIC_PID%}}``) gets its own message: the study URL was opened as written.
    """
    text = (value or "").strip()
    if not text:
        if required:
            raise CrowdEntryError(f"The {field} is missing.", code="external_id_missing", field=field)
        return ""
    if "{{" in text or "%" in text:
        raise CrowdEntryError(
            f"The {field} is still the placeholder {text[:40]!r}: the crowd platform fills it in when a "
            "worker opens the study; open the link from there.",
            code="external_id_placeholder",
            field=field,
        )
    if len(text) > EXTERNAL_ID_MAX_LENGTH:
        raise CrowdEntryError(
            f"The {field} is {len(text)} characters long; at most {EXTERNAL_ID_MAX_LENGTH} are allowed.",
            code="external_id_invalid",
            field=field,
        )
    if not _EXTERNAL_ID_RE.fullmatch(text):
        raise CrowdEntryError(
            f"The {field} {text[:40]!r} has characters that are not allowed: use letters, digits and _ . : @ - "
            "(starting with a letter or digit).",
            code="external_id_invalid",
            field=field,
        )
    return text


# --- the invite link ------------------------------------------------------------------------


def _new_token(project: Project) -> str:
    # 32 random bytes (256 bits); with the id prefix at most 19 + 1 + 43 = 63 characters.
    return f"{project.pk}-{secrets.token_urlsafe(32)}"


@transaction.atomic
def project_invite_rotate(*, project: Project) -> str:
    """Give ``project`` a new invite token and return it; the previous link stops working."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    project.invite_token = _new_token(project)
    project.save(update_fields=["invite_token", "updated_at"])
    logger.info("invite link of project %s rotated", project.pk)
    return project.invite_token


@transaction.atomic
def project_invite_disable(*, project: Project) -> None:
    """Remove ``project``'s invite link: no token works until one is rotated in again.

    Accounts that already entered keep their membership (and their session).
    """
    Project.objects.filter(pk=project.pk).update(invite_token=None)
    project.invite_token = None
    logger.info("invite link of project %s disabled", project.pk)


def project_for_invite(*, token: str) -> Project:
    """The project whose invite token is ``token``, or :class:`InviteInvalid`.

    The project is found by the id in front of the token; the whole token is then compared in
    constant time. Any other shape of token is invalid.
    """
    head, sep, _ = (token or "").partition("-")
    if not sep or not head.isdigit() or len(head) > 18:
        raise InviteInvalid()
    project = Project.objects.filter(pk=int(head)).first()
    if project is None:
        raise InviteInvalid()
    invite_token_check(project=project, token=token)
    return project


def invite_token_check(*, project: Project, token: str) -> None:
    """Raise :class:`InviteInvalid` unless ``token`` is ``project``'s current invite token."""
    current = project.invite_token
    # compare_digest on bytes: its time does not depend on where the strings first differ.
    if not current or not token or not secrets.compare_digest(current.encode(), token.encode()):
        raise InviteInvalid()


# --- entering -------------------------------------------------------------------------------


def _crowd_username(project: Project) -> str:
    # Random, not derived from the worker id: nobody can predict (or pre-create) a crowd
    # account's username, and the worker id is not exposed in it.
    return f"{CROWD_USERNAME_PREFIX}{project.pk}-{secrets.token_hex(8)}"


def _is_crowd_account(user: AbstractBaseUser) -> bool:
    return (
        user.get_username().startswith(CROWD_USERNAME_PREFIX)
        and not user.has_usable_password()
        and not user.is_staff
        and not user.is_superuser
    )


def _existing(project: Project, external_id: str) -> Membership | None:
    return Membership.objects.select_related("user").filter(project=project, external_id=external_id).first()


def _checked(membership: Membership) -> AbstractBaseUser:
    user = membership.user
    # Only crowd_rater_enter sets external_id, always on a fresh crowd account; this guards
    # against an account edited since (a password set, staff rights, a manager role).
    if membership.role != Membership.ROLE_RATER or not _is_crowd_account(user):
        raise CrowdEntryError(
            "This worker id belongs to an account that cannot enter through the invite link; "
            "ask the project's manager.",
            code="account_not_crowd",
            field="worker id",
        )
    if not user.is_active:
        raise CrowdEntryError(
            "The account of this worker id is deactivated; ask the project's manager.",
            code="account_inactive",
            field="worker id",
        )
    return user


def _create(project: Project, external_id: str) -> AbstractBaseUser:
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model(username=_crowd_username(project))
        user.set_unusable_password()
        user.save()
        Membership.objects.create(project=project, user=user, role=Membership.ROLE_RATER, external_id=external_id)
    return user


def crowd_rater_enter(
    *, project: Project, token: str, external_id: str, study_id: str = "", session_id: str = ""
) -> AbstractBaseUser:
    """The crowd account of ``external_id`` in ``project``, created on first entry.

    Checks ``token`` against the project's invite token (constant time), then the worker id (and
    the optional study and session ids: letters, digits and ``_ . : @ -``, at most
    :data:`EXTERNAL_ID_MAX_LENGTH` characters). Raises :class:`InviteInvalid` or
    :class:`CrowdEntryError` (with ``field``) and changes nothing when refused.

    Race-safe: two tabs entering at once both end with the same account (the second insert hits
    the unique (project, external_id) constraint, rolls back its own new user, and reads the
    first one's). The study and session ids are logged with the membership (no column holds them).
    """
    invite_token_check(project=project, token=token)
    worker = external_id_clean(external_id)
    study = external_id_clean(study_id, field="study id", required=False)
    session = external_id_clean(session_id, field="session id", required=False)
    created = False
    for attempt in range(_ENTER_ATTEMPTS):
        membership = _existing(project, worker)
        if membership is not None:
            user = _checked(membership)
            break
        try:
            user = _create(project, worker)
            created = True
            break
        except IntegrityError:
            # Another request created this worker's membership between our read and insert
            # (or, astronomically unlikely, the random username was taken): read again.
            if attempt + 1 == _ENTER_ATTEMPTS:
                raise
    logger.info(
        "crowd entry: project=%s user=%s created=%s study_id=%s session_id=%s",
        project.pk,
        user.pk,
        created,
        study or "-",
        session or "-",
    )
    return user


# --- settings -------------------------------------------------------------------------------


_CODE_MAX = Project._meta.get_field("completion_code").max_length
_URL_MAX = Project._meta.get_field("completion_url").max_length


def project_crowd_settings_update(
    *, project: Project, rater_quota: Any, completion_code: str, completion_url: str
) -> Project:
    """Store the per-rater quota, completion code and return link, or :class:`CrowdSettingsError`.

    ``rater_quota``: a positive whole number, or None / "" for no limit. ``completion_url``: an
    http(s) URL or "". Nothing is stored when any field is refused.
    """
    errors: dict[str, str] = {}
    quota: int | None = None
    if rater_quota not in (None, ""):
        try:
            quota = int(str(rater_quota).strip())
        except ValueError:
            errors["rater_quota"] = f"{str(rater_quota)[:40]!r} is not a whole number."
        else:
            if quota < 1:
                errors["rater_quota"] = "The quota must be at least 1 (leave it empty for no limit)."
            elif quota > 2_147_483_647:
                errors["rater_quota"] = "The quota is too large."
    code = (completion_code or "").strip()
    if len(code) > _CODE_MAX:
        errors["completion_code"] = f"At most {_CODE_MAX} characters ({len(code)} given)."
    url = (completion_url or "").strip()
    if url:
        if len(url) > _URL_MAX:
            errors["completion_url"] = f"At most {_URL_MAX} characters ({len(url)} given)."
        else:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except ValidationError:
                errors["completion_url"] = f"{url[:60]!r} is not an http(s) URL."
            else:
                if not urlsplit(url).netloc:
                    errors["completion_url"] = f"{url[:60]!r} has no host."
    if errors:
        raise CrowdSettingsError(errors)
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        project.rater_quota = quota
        project.completion_code = code
        project.completion_url = url
        project.save(update_fields=["rater_quota", "completion_code", "completion_url", "updated_at"])
    return project
