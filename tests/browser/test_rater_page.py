"""The rater page in real headless Chromium: sync, keyboard-only judging, no reload, blindness."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.conf import settings

from annotation.models import Assignment, Generator, Judgment, Membership, Pair, Prompt
from annotation.services.projects import project_create
from tests.factories import BROWSER_FPS, UserFactory, make_browser_video

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GENERATORS = ("SecretGenAlpha", "SecretGenBeta")
FRAME = 1 / BROWSER_FPS
SECONDS = 5.0


@pytest.fixture
def rating_setup():
    """A project with two pairs of real videos and one rater; generator names are secret words."""
    project = project_create(
        name="Blind study",
        require_full_watch=True,
        overlap=1,
        instructions="Compare <b>motion</b> & look.\nTake your time.",
    )
    generators = [Generator.objects.create(project=project, name=name) for name in GENERATORS]
    pairs = []
    for index, text in enumerate(["a <script>alert(1)</script> fox runs", "a slow tide at dusk"]):
        prompt = Prompt.objects.create(project=project, external_id=f"p{index}", text=text)
        videos = []
        for gen_index, generator in enumerate(generators):
            videos.append(
                make_browser_video(
                    project=project,
                    prompt=prompt,
                    generator=generator,
                    source=f"/imports/{generator.name}/{index}.mp4",
                    seconds=SECONDS,
                    hue=90 * gen_index + 30 * index,
                )
            )
        pairs.append(
            Pair.objects.create(
                project=project,
                prompt=prompt,
                generator_a=generators[0],
                generator_b=generators[1],
                video_a=videos[0],
                video_b=videos[1],
            )
        )
    rater = UserFactory(username="rater-one")
    Membership.objects.create(project=project, user=rater, role=Membership.ROLE_RATER)
    return project, pairs, rater


CLIPS = "[...document.querySelectorAll('#videos video.clip')]"
SYNC_JS = """() => {
  const [l, r] = document.querySelectorAll('#videos video.clip');
  return {left: l.currentTime, right: r.currentTime, pausedL: l.paused, pausedR: r.paused,
          rateL: l.playbackRate, rateR: r.playbackRate};
}"""


def _assert_in_sync(page, label: str, samples: int = 5) -> dict:
    worst = 0.0
    last = None
    for _ in range(samples):
        last = page.evaluate(SYNC_JS)
        worst = max(worst, abs(last["left"] - last["right"]))
        page.wait_for_timeout(60)
    assert worst <= FRAME, f"{label}: videos {worst * 1000:.1f} ms apart (one frame is {FRAME * 1000:.1f} ms)"
    return last


def _wait_playing(page, timeout: int = 10_000) -> None:
    page.wait_for_function(
        """() => { const v = [...document.querySelectorAll('#videos video.clip')];
                   return v.length === 2 && v.every(e => !e.paused && e.readyState >= 3 && e.currentTime > 0); }""",
        timeout=timeout,
    )


def test_rater_judges_by_keyboard_with_synced_videos_and_no_reload(
    rating_setup, browser_page, browser_login, browser_traffic
):
    project, pairs, rater = rating_setup
    page = browser_page
    traffic = browser_traffic(page)
    browser_login(page, rater.username, "pw")
    page.goto(f"/projects/{project.pk}/rate/")
    page.evaluate("window.__sameDocument = true")

    # The pair is shown: prompt as text (escaped), both videos, the rubric.
    page.wait_for_selector("#stage:not([hidden])")
    assert page.text_content("#prompt") in {p.prompt.text for p in pairs}
    assert page.locator("#rubric fieldset").count() == 6
    assert page.locator("script:not([src]):not([type])").count() == 0  # the prompt's <script> stayed text

    # 1. Autoplay starts both; they stay within a frame.
    _wait_playing(page)
    page.wait_for_timeout(700)
    _assert_in_sync(page, "after play")

    # 2. Space pauses; a seek moves both; Space plays again; still in sync.
    page.keyboard.press("Space")
    page.wait_for_function("() => [...document.querySelectorAll('#videos video.clip')].every(v => v.paused)")
    page.evaluate(
        "() => { const s = document.getElementById('scrub'); s.value = 300;"
        " s.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    page.wait_for_function(
        f"() => {CLIPS}.every(v => !v.seeking && Math.abs(v.currentTime - 1.5) < 0.05)"
    )
    paused = _assert_in_sync(page, "after a seek (paused)", samples=2)
    assert paused["pausedL"] and paused["pausedR"]
    page.keyboard.press("Space")
    _wait_playing(page)
    page.wait_for_timeout(500)
    _assert_in_sync(page, "after a seek (playing)")

    # 3. Frame steps move both by one frame.
    page.keyboard.press("Space")
    page.wait_for_function("() => [...document.querySelectorAll('#videos video.clip')].every(v => v.paused)")
    before = page.evaluate(SYNC_JS)["left"]
    page.keyboard.press(".")
    page.wait_for_function(
        f"() => {CLIPS}.every(v => !v.seeking && v.currentTime > {before} + 0.02)"
    )
    after = _assert_in_sync(page, "after a frame step", samples=2)
    assert FRAME * 0.5 < after["left"] - before < FRAME * 2

    # 4. A speed change applies to both, which stay in sync at 2x.
    page.select_option("#speed", "2")
    page.keyboard.press("Escape")  # leave the select: keys go to the page again
    page.keyboard.press("Space")
    _wait_playing(page)
    page.wait_for_timeout(400)
    state = _assert_in_sync(page, "after a speed change")
    assert state["rateL"] == pytest.approx(2, rel=0.11) and state["rateR"] == pytest.approx(2, rel=0.11)

    # 5. Submit stays disabled until both played through and every question is answered.
    assert page.is_disabled("#submit")
    page.wait_for_function(
        "() => { const p = window.vidjudgeRater.player.playedThrough; return p.left && p.right; }", timeout=15_000
    )
    assert page.is_disabled("#submit")  # questions still unanswered

    # 6. Keyboard only: ← / T / → and 1 / 2 / 3 answer row by row; ↑ goes back to change one.
    first = page.evaluate("window.vidjudgeRater.state.current")
    for key in ["ArrowLeft", "t", "ArrowRight", "1", "2", "3"]:
        page.keyboard.press(key)
    page.keyboard.press("ArrowUp")  # the cursor stayed on the last row: up to question 5
    page.keyboard.press("ArrowRight")  # question 5: tie -> right
    answers = page.evaluate("window.vidjudgeRater.rubric.values()")
    assert answers == {
        "visual_appeal": "left",
        "text_match": "tie",
        "camera_motion": "right",
        "object_motion": "left",
        "consistency": "right",
        "final_verdict": "right",
    }
    assert page.is_enabled("#submit")
    # Once answered, the likely next pair's videos load in the background.
    page.wait_for_function("() => document.querySelectorAll('#prefetch video[data-prefetched]').length === 2")

    # 7. Enter submits; the next pair appears in the same document, from the prefetched elements.
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(first) => { const c = window.vidjudgeRater.state.current; return c && c.assignment !== first; }",
        arg=first["assignment"],
    )
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("#videos video.clip[data-prefetched]").count() == 2
    assert page.text_content("#progress-text").startswith("1 judged of 2")

    # The judgment is stored in A/B terms: the sides are undone.
    assignment = Assignment.objects.get(pk=first["assignment"])
    judgment = Judgment.objects.get(assignment=assignment)
    pair = assignment.pair
    shown_left = page_video_id(first["left"]["video"])
    assert shown_left == (pair.video_a if assignment.left_is_a else pair.video_b).public_id
    flip = (
        {"left": "a", "right": "b", "tie": "tie"} if assignment.left_is_a else {"left": "b", "right": "a", "tie": "tie"}
    )
    assert judgment.answers == {key: flip[value] for key, value in answers.items()}
    assert judgment.left_is_a == assignment.left_is_a
    assert judgment.duration_ms > 1000
    assert judgment.watch_a_seconds > 1 and judgment.watch_b_seconds > 1

    # 8. Skip the second pair by keyboard: S, pick the second reason, Enter. Then the calm end.
    second = page.evaluate("window.vidjudgeRater.state.current")
    _wait_playing(page)
    page.keyboard.press("s")
    page.wait_for_selector("#skip[open]")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector("#done:not([hidden])")
    assert page.text_content("#done-title") == "No more pairs"
    skipped = Assignment.objects.get(pk=second["assignment"])
    assert (skipped.status, skipped.skip_reason) == ("skipped", "cannot_judge")
    assert page.evaluate("window.__sameDocument") is True

    # 9. Blind: no generator name (nor the video sources) in any URL or body the page received.
    secrets = [name.encode() for name in GENERATORS] + [b"/imports/"]
    assert traffic, "no traffic recorded"
    for record in traffic:
        for secret in secrets:
            assert secret.lower() not in record["url"].lower().encode(), record["url"]
            assert secret.lower() not in record["body"].lower(), record["url"]
    assert any("/api/v1/projects/" in r["url"] for r in traffic)
    assert any("/media/v/" in r["url"] and r["status"] in (200, 206) for r in traffic)
    assert not page.js_errors, page.js_errors


def page_video_id(url: str) -> uuid.UUID:
    return uuid.UUID(url.rsplit("/", 1)[1].removesuffix(".mp4"))


def test_layout_names_and_narrow_screen(rating_setup, browser_page, browser_login):
    project, _pairs, rater = rating_setup
    page = browser_page
    browser_login(page, rater.username, "pw")
    page.goto(f"/projects/{project.pk}/rate/")
    page.wait_for_selector("#stage:not([hidden])")
    # Every control has an accessible name (text, label or aria-label).
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, input, select, video, progress, textarea')]
             .filter(el => el.offsetParent !== null || el.tagName === 'VIDEO')
             .filter(el => !(el.getAttribute('aria-label') || (el.labels && el.labels.length)
                              || (el.textContent || '').trim()))
             .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert unnamed == []
    # At 1280x720 the videos sit side by side, the same size, and the whole page fits.
    left, right = page.locator("#frame-left").bounding_box(), page.locator("#frame-right").bounding_box()
    assert abs(left["y"] - right["y"]) < 1 and left["x"] < right["x"]
    assert abs(left["width"] - right["width"]) < 1 and abs(left["height"] - right["height"]) < 1
    submit = page.locator("#submit").bounding_box()
    assert submit["y"] + submit["height"] <= 720
    # The instructions are one click away, escaped.
    page.click("#instructions-open")
    assert "<b>motion</b> & look." in page.text_content("#instructions")
    page.keyboard.press("Escape")
    # Either video can be enlarged alone.
    page.click("#enlarge-left")
    assert (
        page.locator("#frame-left").bounding_box()["width"] > 2 * page.locator("#frame-right").bounding_box()["width"]
    )
    page.keyboard.press("Escape")
    page.screenshot(path=str(Path(settings.MEDIA_ROOT) / "wide.png"))
    # A narrow screen stacks them.
    page.set_viewport_size({"width": 600, "height": 900})
    left, right = page.locator("#frame-left").bounding_box(), page.locator("#frame-right").bounding_box()
    assert right["y"] >= left["y"] + left["height"] - 1
    assert not page.js_errors, page.js_errors
