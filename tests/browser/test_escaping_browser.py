"""Text people type is shown, never run: prompts, instructions, question and help texts,
generator and project names, and import error messages that contain ``<script>`` and
``<img onerror>`` are shown literally on the rating page and the manager pages, in real
Chromium, and no injected script runs (``window.__xss`` stays undefined)."""

from __future__ import annotations

import csv
import io
import subprocess
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from annotation.models import Generator, ImportJob, Membership, Pair, Prompt, Video
from annotation.services.imports import manifest_import
from annotation.services.judgment_imports import judgments_import
from annotation.services.projects import project_create
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def xss(site: str) -> str:
    """A payload that sets window.__xss to ``site`` if it is ever parsed as HTML."""
    return f'<script>window.__xss="{site}"</script><img src=x onerror="window.__xss=\'{site}-img\'">'


NO_SCRIPT_RAN = "() => ({xss: window.__xss ?? null, imgs: document.querySelectorAll('img[src=\"x\"]').length})"


def _mp4(path: Path, hue: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size=160x96:rate=24:duration=1,hue=h={hue}", "-c:v", "libx264", "-preset",
         "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)],
        check=True, timeout=60,
    )  # fmt: skip


def _hostile_rubric(project) -> None:
    project.questions.filter(key="final_verdict").update(text=xss("question"), help_text=xss("help"))


@pytest.fixture
def hostile():
    """A rating project and a judged project whose every free text is a payload."""
    manager = UserFactory(username="xss-manager")
    rater = UserFactory(username="xss-rater")
    rating = project_create(name=xss("project")[:200], overlap=1, instructions=xss("instructions") + "\nline two")
    _hostile_rubric(rating)
    generators = [Generator.objects.create(project=rating, name=xss(f"generator{i}")[:200]) for i in range(2)]
    prompt = Prompt.objects.create(project=rating, external_id="p1", text=xss("prompt"))
    media = Path(settings.MEDIA_ROOT)
    videos = []
    for i, generator in enumerate(generators):
        public_id = uuid.uuid4()
        _mp4(media / f"browser/{public_id}.mp4", hue=90 * i)
        videos.append(Video.objects.create(
            public_id=public_id, project=rating, prompt=prompt, generator=generator, source=f"/x/{i}.mp4",
            browser=f"browser/{public_id}.mp4", status=Video.STATUS_READY, fps=24, duration=1, width=160, height=96,
        ))  # fmt: skip
    Pair.objects.create(project=rating, prompt=prompt, generator_a=generators[0], generator_b=generators[1],
                        video_a=videos[0], video_b=videos[1])
    Membership.objects.create(project=rating, user=rater, role=Membership.ROLE_RATER)
    Membership.objects.create(project=rating, user=manager, role=Membership.ROLE_MANAGER)
    # An import whose bad row echoes a hostile value in its error message.
    bad = f"prompt_id,prompt,generator,video\np9,{xss('row-prompt')},G,{xss('path').replace(',', ' ')}\n"
    manifest_import(project=rating, file_obj=io.BytesIO(bad.encode()), file_name="hostile.csv")

    judged = project_create(name="Judged " + xss("judged")[:180], overlap=3)
    _hostile_rubric(judged)
    Membership.objects.create(project=judged, user=manager, role=Membership.ROLE_MANAGER)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["prompt_id", "generator_a", "generator_b", "rater", "final_verdict"])
    names = [xss(f"judged-gen{i}")[:200] for i in range(3)]
    for p in range(6):
        for r in range(3):
            a, b = names[p % 3], names[(p + 1) % 3]
            writer.writerow([f"q{p}", a, b, f"r{r}", ("a", "b", "tie")[(p + r) % 3]])
    job = judgments_import(project=judged, file_obj=io.BytesIO(out.getvalue().encode()), file_name="j.csv",
                           placeholders=True)
    assert job.status == "done", job.error
    return rating, judged


def _assert_nothing_ran(page, where: str) -> None:
    state = page.evaluate(NO_SCRIPT_RAN)
    assert state == {"xss": None, "imgs": 0}, (where, state)


def test_rating_page_shows_hostile_text_literally(hostile, browser_page, browser_login):
    rating, _ = hostile
    page = browser_page
    browser_login(page, "xss-rater", "pw")
    page.goto(f"/projects/{rating.pk}/rate/")
    page.wait_for_function("document.querySelector('#prompt').textContent.length > 0")
    assert page.text_content("#prompt") == xss("prompt")
    rubric = page.text_content("#rubric")
    assert xss("question") in rubric and xss("help") in rubric
    page.keyboard.press("i")  # the instructions dialog
    page.wait_for_selector("#instructions[open]")
    assert xss("instructions") in page.text_content("#instructions")
    assert xss("project")[:200] in page.text_content("h1")
    page.wait_for_timeout(300)  # let any injected onerror fire before looking
    _assert_nothing_ran(page, "rating page")


def test_manager_pages_show_hostile_text_literally(hostile, browser, live_server, browser_login):
    rating, judged = hostile
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        browser_login(page, "xss-manager", "pw")
        job = ImportJob.objects.get(project=rating)
        required = {
            f"/projects/{rating.pk}/": [xss("project")[:200]],
            f"/projects/{rating.pk}/imports/{job.pk}/": [xss("path").replace(",", " ")],
            f"/projects/{judged.pk}/dashboard/?question=final_verdict": [xss("judged-gen0")[:200]],
            f"/projects/{judged.pk}/exports/": [],
            "/": [xss("project")[:200]],
        }
        optional = [f"/projects/{rating.pk}/raters/", f"/projects/{rating.pk}/gold/", f"/projects/{judged.pk}/"]
        for url, literals in required.items():
            response = page.goto(url)
            assert response.status == 200, url
            if "dashboard" in url:
                page.wait_for_selector("body[data-dashboard-ready='1']")
            page.wait_for_timeout(200)
            text = page.text_content("body")
            for literal in literals:
                assert literal in text, (url, literal)
            _assert_nothing_ran(page, url)
        for url in optional:  # pages other issues add: checked when they exist
            response = page.goto(url)
            if response.status == 200:
                page.wait_for_timeout(200)
                _assert_nothing_ran(page, url)
    finally:
        context.close()
