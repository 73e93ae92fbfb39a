"""The gold pairs page for project managers: find a pair (by id, or prompt id and generator),
mark it gold with the accepted answers per question (several allowed, e.g. B or tie), list the
project's gold pairs, unmark one. Forms call ``annotation.services.quality.pair_gold_set``; a
refused form is shown again with the errors per question and stores nothing.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.models import CANONICAL_ANSWERS, Pair, Project
from annotation.selectors.catalog import pair_detail, pairs_list
from annotation.selectors.projects import MAX_DB_ID
from annotation.services.quality import GoldAnswersError, pair_gold_set
from frontend.views_raters import managed_project

ANSWER_LABELS = {"a": "A", "b": "B", "tie": "Tie"}


def _pairs_found(project: Project, query: dict[str, str]) -> tuple[list[Pair], str]:
    """Pairs matching the search (by pair id, or prompt id and optionally a generator name)."""
    pair_id = query.get("pair", "").strip()
    prompt_id = query.get("prompt", "").strip()
    generator = query.get("generator", "").strip()
    if pair_id:
        if not pair_id.isdigit() or not 0 < int(pair_id) <= MAX_DB_ID:
            return [], f"Pair id {pair_id[:40]!r} is not a number."
        pair = pair_detail(pair_id=int(pair_id))
        found = [pair] if pair is not None and pair.project_id == project.pk else []
        return found, "" if found else f"No pair {pair_id} in this project."
    if prompt_id:
        pairs = (
            pairs_list(project_id=project.pk, generator=generator)
            .select_related("video_a", "video_b")
            .filter(prompt__external_id=prompt_id)
        )
        found = list(pairs.order_by("id")[:200])
        if found:
            return found, ""
        extra = f" with generator {generator!r}" if generator else ""
        return [], f"No pair of prompt {prompt_id[:100]!r}{extra} in this project."
    return [], ""


def _answer_text(answers: list[str]) -> str:
    return " or ".join(ANSWER_LABELS.get(a, a) for a in answers)


def _gold_page(
    request: HttpRequest,
    project: Project,
    *,
    checked: dict[str, list[str]] | None = None,
    errors: dict[str, str] | None = None,
    form_error: str = "",
    selected: Pair | None = None,
    status: int = 200,
) -> HttpResponse:
    questions = list(project.questions.all())
    found, search_error = _pairs_found(project, request.GET) if selected is None else ([selected], "")
    if selected is None and len(found) == 1:
        selected = found[0]
    current = checked if checked is not None else (dict(selected.gold_answers) if selected and selected.is_gold else {})
    form_rows = [
        {
            "key": q.key,
            "text": q.text,
            "errors": (errors or {}).get(q.key, ""),
            "choices": [
                {
                    "value": a,
                    "label": ANSWER_LABELS[a],
                    "checked": a in current.get(q.key, []),
                    "allowed": a in q.allowed,
                }
                for a in CANONICAL_ANSWERS
            ],
        }
        for q in questions
    ]
    known = {q.key for q in questions}
    gold = []
    for pair in pairs_list(project_id=project.pk, is_gold=True):
        answers = pair.gold_answers or {}
        gold.append(
            {
                "pair": pair,
                "answers": [
                    {"key": q.key, "text": _answer_text(answers[q.key])} for q in questions if answers.get(q.key)
                ]
                + [{"key": k, "text": _answer_text(v)} for k, v in answers.items() if k not in known],
            }
        )
    return render(
        request,
        "frontend/gold.html",
        {
            "project": project,
            "query": {name: request.GET.get(name, "") for name in ("pair", "prompt", "generator")},
            "found": found,
            "search_error": search_error,
            "selected": selected,
            "form_rows": form_rows,
            "form_error": form_error,
            "other_errors": {k: v for k, v in (errors or {}).items() if k not in known},
            "gold": gold,
        },
        status=status,
    )


@login_required
@require_GET
def gold_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _gold_page(request, managed_project(request, pk))


def _gold_pair(project: Project, pair_id: int) -> Pair:
    pair = pair_detail(pair_id=pair_id)
    if pair is None or pair.project_id != project.pk:
        raise Http404("no such pair in this project")
    return pair


@login_required
@require_POST
def gold_set(request: HttpRequest, pk: int, pair_id: int) -> HttpResponse:
    """Mark the pair gold with the checked answers per question (several allowed, e.g. B or tie)."""
    project = managed_project(request, pk)
    pair = _gold_pair(project, pair_id)
    keys = list(project.questions.values_list("key", flat=True))
    checked = {key: [a for a in request.POST.getlist(f"answer-{key}") if a] for key in keys}
    answers = {key: values for key, values in checked.items() if values}
    if not answers:
        return _gold_page(
            request,
            project,
            checked=checked,
            selected=pair,
            status=400,
            form_error="Check at least one accepted answer for at least one question (to unmark, use Unmark).",
        )
    try:
        pair_gold_set(pair=pair, gold_answers=answers)
    except GoldAnswersError as exc:
        return _gold_page(
            request,
            project,
            checked=checked,
            errors=exc.errors,
            selected=pair,
            status=400,
            form_error="Not saved: see the questions marked below.",
        )
    messages.success(request, f"Pair {pair.pk} is gold.")
    return redirect(f"{reverse('frontend:project-gold', args=[project.pk])}?pair={pair.pk}")


@login_required
@require_POST
def gold_unmark(request: HttpRequest, pk: int, pair_id: int) -> HttpResponse:
    project = managed_project(request, pk)
    pair = _gold_pair(project, pair_id)
    pair_gold_set(pair=pair, gold_answers=None)
    messages.success(request, f"Pair {pair.pk} is no longer gold (its judgments are kept).")
    return redirect("frontend:project-gold", pk=project.pk)
