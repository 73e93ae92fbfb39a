"""Crowd entry in real headless Chromium: invite link with a Prolific id → judging by keyboard →
quota → completion code and return link; the calm message of a paused worker."""

from __future__ import annotations

import pytest

from annotation.models import Generator, Judgment, Membership, Pair, Prompt
from annotation.services.crowd import project_crowd_settings_update, project_invite_rotate
from annotation.services.projects import project_create
from tests.factories import make_browser_video

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PID = "60a7c3e9f1b2d4c5e6f70812"
CODE = "C7K2Q9XZ"
RETURN_URL = "https://app.prolific.com/submissions/complete?cc=C7K2Q9XZ"
SECONDS = 1.0


def _project(*, pairs: int, quota: int | None):
    """A project with ``pairs`` pairs of short real videos, an invite link and a completion code."""
    project = project_create(name="Crowd study", require_full_watch=True, overlap=1)
    generators = [Generator.objects.create(project=project, name=name) for name in ("GenOne", "GenTwo")]
    for index in range(pairs):
        prompt = Prompt.objects.create(project=project, external_id=f"p{index}", text=f"a kite number {index}")
        videos = []
        for gen_index, generator in enumerate(generators):
            videos.append(
                make_browser_video(
                    project=project, prompt=prompt, generator=generator, source=f"/imports/{index}-{gen_index}.mp4",
                    seconds=SECONDS, hue=60 * gen_index + 20 * index,
                )
            )  # fmt: skip
        Pair.objects.create(
            project=project, prompt=prompt, generator_a=generators[0], generator_b=generators[1],
            video_a=videos[0], video_b=videos[1],
        )  # fmt: skip
    project_crowd_settings_update(project=project, rater_quota=quota, completion_code=CODE, completion_url=RETURN_URL)
    project_invite_rotate(project=project)
    project.refresh_from_db()
    return project


def _join(page, project) -> None:
    page.goto(f"/join/{project.invite_token}/?PROLIFIC_PID={PID}&STUDY_ID=5f1a2b&SESSION_ID=sess77")
    assert page.url.endswith(f"/projects/{project.pk}/rate/"), page.url


def _judge_current_by_keyboard(page) -> int:
    """Answer every question with the keyboard once both videos played through; Enter; return the
    assignment id that was judged."""
    page.wait_for_selector("#stage:not([hidden])")
    current = page.evaluate("window.vidjudgeRater.state.current.assignment")
    questions = page.locator("#rubric fieldset").count()
    for index in range(questions):
        page.keyboard.press(["1", "2", "3"][index % 3])
    page.wait_for_function("() => !document.getElementById('submit').disabled", timeout=15_000)
    page.keyboard.press("Enter")
    page.wait_for_function(
        """(first) => { const c = window.vidjudgeRater.state.current;
                        return (c && c.assignment !== first)
                               || !document.getElementById('completion').hidden
                               || !document.getElementById('done').hidden; }""",
        arg=current,
    )
    return current


def _assert_no_links_away(page, project) -> None:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if "/projects/" in h or "/api/" in h or "/admin" in h], hrefs


def test_invite_judging_quota_completion_code(browser_page):
    project = _project(pairs=3, quota=2)
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    _join(page, project)
    worker = Membership.objects.get(project=project, external_id=PID).user
    assert worker.username.startswith("crowd-")
    page.evaluate("window.__sameDocument = true")
    _assert_no_links_away(page, project)

    judged = [_judge_current_by_keyboard(page) for _ in range(2)]
    assert len(set(judged)) == 2

    # The quota is reached: the completion panel, with the code to copy and the return link.
    page.wait_for_selector("#completion:not([hidden])")
    assert page.evaluate("window.__sameDocument") is True
    assert page.is_hidden("#stage") and page.is_hidden("#done")
    assert "judged all the pairs this study asks of you" in page.text_content("#completion-text")
    assert page.input_value("#completion-code") == CODE
    assert page.get_attribute("#completion-return", "href") == RETURN_URL
    page.click("#completion-copy")
    page.wait_for_function("() => document.getElementById('completion-copied').textContent !== ''")
    assert page.text_content("#completion-copied") == "Copied."
    assert page.evaluate("navigator.clipboard.readText()") == CODE
    _assert_no_links_away(page, project)

    # Stored under the worker's own account; a reload shows the same panel, nothing more to judge.
    assert Judgment.objects.filter(project=project, rater=worker).count() == 2
    page.reload()
    page.wait_for_selector("#completion:not([hidden])")
    assert page.input_value("#completion-code") == CODE
    assert Judgment.objects.filter(project=project).count() == 2
    assert not page.js_errors, page.js_errors


def test_all_pairs_done_shows_the_completion_panel(browser_page):
    project = _project(pairs=2, quota=None)
    page = browser_page
    _join(page, project)
    for _ in range(2):
        _judge_current_by_keyboard(page)
    page.wait_for_selector("#completion:not([hidden])")
    assert "every pair there was for you" in page.text_content("#completion-text")
    assert page.input_value("#completion-code") == CODE
    assert page.get_attribute("#completion-return", "href") == RETURN_URL
    assert not page.js_errors, page.js_errors


def test_a_paused_worker_sees_a_calm_message(browser_page):
    project = _project(pairs=1, quota=None)
    page = browser_page
    _join(page, project)
    page.wait_for_selector("#stage:not([hidden])")
    Membership.objects.filter(project=project, external_id=PID).update(
        paused=True, paused_reason="gold accuracy below threshold (automatic)"
    )
    page.reload()
    page.wait_for_selector("#done:not([hidden])")
    text = page.text_content("#done")
    assert "Thanks — there is nothing for you to rate right now" in text
    for accusing in ("gold", "accuracy", "paused", "threshold", "excluded", "flag"):
        assert accusing not in text.lower()
    assert page.is_hidden("#completion") and page.is_hidden("#stage")
    _assert_no_links_away(page, project)
    assert not page.js_errors, page.js_errors
