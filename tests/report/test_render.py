"""Every kind of report, opened in headless Chromium: images show, tables hold values, no
script errors (skipped where Chromium is not installed: apt-get install chromium)."""

from __future__ import annotations

import pytest
from tests.report.browser import find_chromium, inspect_report, problems
from tests.report.kinds import build_reports

CHROMIUM = find_chromium()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (headless)")]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return build_reports(tmp_path_factory.mktemp("reports"))


@pytest.mark.parametrize("kind", ["fit", "compare", "diagnose", "pretrain", "study"])
def test_report_renders_whole_in_a_browser(reports, kind):
    result = inspect_report(reports[kind], CHROMIUM)
    assert result["images"], f"the {kind} report has no plot"
    assert problems(result) == []
    assert result["width"] <= 1400  # no table pushes the page sideways


def test_the_checker_sees_what_is_broken(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><head></head><body><img alt='curve' src='data:image/png;base64,AAAA'>"
                    "<table><tr><th>metric</th><th>train</th></tr><tr><td>loss</td><td>—</td>"
                    "</tr><tr><td>acc</td><td>—</td></tr></table>"
                    "<table><tr><td>—</td><td>None</td></tr></table>"
                    "<script>undefined_function()</script></body></html>")
    found = problems(inspect_report(page, CHROMIUM))
    assert "image 'curve' does not show" in found
    assert "table 1: column 'train' is empty in every row" in found
    assert "table 2 holds nothing but empty cells" in found
    assert any("undefined_function" in p for p in found)
