"""python manage.py demo_setup end to end: the two projects, gold pairs, the invite link; twice."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotation.management.commands.demo_setup import DEMO_PROJECT, GOLD_GENERATORS
from annotation.models import Membership, Pair, Project

# transaction=True: the media tasks run on commit, as they do in `make demo`.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_demo_setup_builds_the_demo_and_is_idempotent(settings, capsys):
    settings.DEBUG = True
    call_command("demo_setup")
    project = Project.objects.get(name=DEMO_PROJECT)
    pairs = project.pairs.count()
    golds = list(project.pairs.filter(is_gold=True).select_related("generator_a", "generator_b"))
    assert len(golds) == 2
    for pair in golds:
        better = "a" if pair.generator_a.name == GOLD_GENERATORS[0] else "b"
        assert {pair.generator_a.name, pair.generator_b.name} == set(GOLD_GENERATORS)
        assert pair.gold_answers == {"visual_appeal": [better], "final_verdict": [better]}
    assert project.invite_token and project.rater_quota == 10 and project.completion_code == "DEMO-DONE"
    assert f"/join/{project.invite_token}/" in capsys.readouterr().out
    assert Project.objects.count() == 2  # the FETV project too

    token = project.invite_token
    call_command("demo_setup")
    project.refresh_from_db()
    assert project.invite_token == token and project.pairs.count() == pairs
    assert Pair.objects.filter(project=project, is_gold=True).count() == 2
    assert Membership.objects.filter(project=project, role=Membership.ROLE_RATER).count() == 2


def test_demo_setup_refuses_with_debug_off(settings):
    from django.core.management.base import CommandError  # noqa: PLC0415

    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("demo_setup")
