"""Screenshots of each kind of report for the docs (docs/screenshots/<kind>.png).

Builds a fit, compare, diagnose, pretrain and study report on a tiny synthetic dataset and
opens each in headless Chromium (``apt-get install chromium``)::

    python docs/make_screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.report.browser import find_chromium, screenshot  # noqa: E402
from tests.report.kinds import build_reports  # noqa: E402


def main() -> None:
    chromium = find_chromium()
    if chromium is None:
        sys.exit("needs chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="trainwell-shots-") as tmp:
        for kind, report in build_reports(Path(tmp)).items():
            png = screenshot(report, ROOT / "docs" / "screenshots" / f"{kind}.png", chromium,
                             width=1000, height=1500)
            print(f"{kind}: {png.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
