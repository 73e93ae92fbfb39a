"""The manager dashboard in real headless Chromium: tables and inline-SVG plots render."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.factories import MembershipFactory, ProjectFactory, UserFactory, fetv_like_import, make_clip_scores

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dashboard_project():
    cache.clear()
    project = ProjectFactory(name="Dash <script>alert(1)</script>")
    MembershipFactory(project=project, role="manager", user=UserFactory(username="dashboss"))
    fetv_like_import(project=project)
    make_clip_scores(project=project, seed=1)
    # The import's commit already refreshed the cached analysis (tasks run inline), before these
    # scores, which bypass the services: start from an empty cache as a fresh deployment would.
    cache.clear()
    return project


def test_dashboard_renders_tables_and_plots(browser_page, browser_login, dashboard_project):
    page = browser_page
    browser_login(page, "dashboss", "pw")
    page.goto(f"/projects/{dashboard_project.pk}/dashboard/?question=final_verdict")
    page.wait_for_selector("body[data-dashboard-ready='1']")

    rows = page.locator("#ranking-table tbody tr")
    assert rows.count() == 4
    first = rows.nth(0).locator("td")
    assert first.nth(0).text_content() == "1"
    assert "[" in first.nth(3).text_content()

    for plot in ("#rating-plot", "#winrate-plot", "#scatter-plot"):
        svg = page.locator(f"{plot} svg")
        assert svg.count() == 1, plot
        labels = " ".join(svg.locator("text.label").all_text_contents())
        assert "n = " in labels, plot
    assert page.locator("#rating-plot svg line.errbar").count() >= 4 * 3
    assert page.locator("#winrate-plot svg rect.heat").count() == 16
    assert page.locator("#scatter-plot svg circle.dot").count() > 0

    agreement = page.locator("#agreement-table").text_content()
    assert "Krippendorff α (nominal)" in agreement and "Krippendorff α (ordinal)" in agreement
    assert "Fleiss κ" in agreement
    assert page.locator("#alignment-table tbody tr").count() == 1
    assert page.locator("#rater-table tbody tr").count() == 3
    assert "NaN" not in page.locator("main").text_content()
    # The project name is escaped, not executed.
    assert "<script>" in page.locator("h1").text_content()

    # Switching question re-renders in place; a question without answers shows "—" with a reason.
    page.select_option("#question-select", "text_match")
    assert page.locator("#ranking-table tbody").text_content().startswith("No ranking")
    dash = page.locator("#agreement-table td.missing").first
    assert dash.text_content() == "—"
    assert dash.get_attribute("title")
    assert page.js_errors == []


def test_dashboard_stale_then_newer_and_computing_then_loaded(browser_page, browser_login, dashboard_project):
    """Served stale with an "updating" note; the poll offers the newer result once the task stored it.
    Before any result exists the page says "computing…" and loads the result by itself."""
    from annotation.selectors.analysis import AnalysisParams, analysis_lock_key
    from annotation.services.dashboard import dashboard_invalidate, project_analysis_refresh

    page = browser_page
    project = dashboard_project
    browser_login(page, "dashboss", "pw")
    page.goto(f"/projects/{project.pk}/dashboard/")
    page.wait_for_selector("body[data-dashboard-ready='1']")
    freshness = page.locator("#dash-freshness").text_content()
    assert "Computed" in freshness and "judgments" in freshness and "Updating" not in freshness
    assert "No raters excluded." in page.locator("#dash-exclusions").text_content()

    dashboard_invalidate(project_id=project.pk)  # judgments changed; the refresh waits out the debounce window
    page.reload()
    page.wait_for_selector("body[data-dashboard-ready='1']")
    assert page.locator("#dash-status").get_attribute("data-state") == "stale"
    assert "Updating:" in page.locator("#dash-freshness").text_content()
    assert page.locator("#ranking-table tbody tr").count() == 4  # the last result is still shown
    assert page.locator("#dash-newer").is_hidden()
    project_analysis_refresh(project=project)  # the worker's refresh finishes
    page.wait_for_selector("#dash-newer:not([hidden])", timeout=20_000)
    page.click("#dash-reload")
    page.wait_for_selector("#dash-status[data-state='fresh']")

    cache.clear()
    cache.add(analysis_lock_key(project_id=project.pk, params=AnalysisParams()), 1, 60)  # a first refresh queued
    page.reload()
    page.wait_for_selector("body[data-dashboard-ready='1']")
    assert page.locator("#dash-status").get_attribute("data-state") == "computing"
    assert "Computing…" in page.locator("#dash-freshness").text_content()
    project_analysis_refresh(project=project)
    page.wait_for_selector("#dash-status[data-state='fresh']", timeout=20_000)  # reloaded by itself
    page.wait_for_selector("body[data-dashboard-ready='1']")
    assert page.locator("#ranking-table tbody tr").count() == 4
    assert page.js_errors == []
