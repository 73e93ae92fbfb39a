"""Shared by the metrics commands: a project given by id or by name."""

from __future__ import annotations

from django.core.management.base import CommandError

from annotation.models import Project


def project_arg(value: str) -> Project:
    project = None
    if value.isdigit():
        project = Project.objects.filter(pk=int(value)).first()
    project = project or Project.objects.filter(name=value).first()
    if project is None:
        raise CommandError(f"no project with id or name {value!r}")
    return project
