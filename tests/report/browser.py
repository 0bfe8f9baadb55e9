"""Open a report in headless Chromium: what a reader sees (images, tables, errors), screenshots.

Used by the render test and by ``docs/make_screenshots.py``. Chromium is optional: callers
skip when :func:`find_chromium` returns None (``apt-get install chromium`` to run them).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

_EMPTY = ("", "—", "None", "nan", "null")

# Collects script errors and resources that fail to load (images), before anything renders.
_HEAD = """<script>window.__twErrors=[];
window.addEventListener('error',function(e){var t=e.target||{};
 window.__twErrors.push(e.message||('failed to load '+(t.alt||t.src||t.tagName)));},true);
var __twConsoleError=console.error;console.error=function(){
 window.__twErrors.push([].slice.call(arguments).join(' '));__twConsoleError.apply(console,arguments);};
</script>"""

# After load: every image decoded?, every table's cells, then the findings as JSON in the DOM.
_TAIL = """<script>window.addEventListener('load',function(){
 var imgs=[].slice.call(document.images).map(function(i){
   return {alt:i.alt,ok:i.complete&&i.naturalWidth>0};});
 var tables=[].slice.call(document.querySelectorAll('table')).map(function(t){
   return [].slice.call(t.rows).map(function(r){
     return [].slice.call(r.cells).map(function(c){return [c.tagName,c.textContent.trim()];});});});
 var pre=document.createElement('pre');pre.id='tw-check';
 pre.textContent=JSON.stringify({images:imgs,tables:tables,errors:window.__twErrors,
   width:document.documentElement.scrollWidth});
 document.body.appendChild(pre);});
</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(chromium: str, args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--allow-file-access-from-files", *args],
                          capture_output=True, text=True, timeout=timeout)


def inspect_report(html: Path, chromium: str) -> dict:
    """Load ``html`` in Chromium; return its images, tables, script/console errors and width."""
    text = Path(html).read_text(encoding="utf-8")
    text = re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + _HEAD, text, count=1)
    text = text.replace("</body>", _TAIL + "</body>")
    with tempfile.TemporaryDirectory(prefix="trainwell-render-") as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(text, encoding="utf-8")
        done = _run(chromium, ["--enable-logging=stderr", "--v=0",
                               "--virtual-time-budget=5000", "--dump-dom", page.as_uri()])
    found = re.search(r'<pre id="tw-check">(.*?)</pre>', done.stdout, re.S)
    if found is None:
        raise AssertionError(f"Chromium did not render {html}: {done.stderr[-1500:]}")
    import html as _html

    result = json.loads(_html.unescape(found.group(1)))
    console = [ln for ln in done.stderr.splitlines() if "CONSOLE" in ln and (
        "Uncaught" in ln or "rror" in ln)]
    result["errors"] = result["errors"] + console
    return result


def problems(result: dict) -> list[str]:
    """What a reader would call broken: images that do not show, tables or columns holding
    nothing but "—"/"None"/empty cells, a "None" anywhere in a table, script errors."""
    out = [f"image {i['alt']!r} does not show" for i in result["images"] if not i["ok"]]
    for k, rows in enumerate(result["tables"]):
        body = [[text for tag, text in row] for row in rows if any(t == "TD" for t, _ in row)]
        header = next(([text for _, text in row] for row in rows
                       if all(t == "TH" for t, _ in row)), None)
        cells = [c for row in body for c in row]
        if cells and all(c in _EMPTY for c in cells):
            out.append(f"table {k + 1} holds nothing but empty cells")
            continue
        if any(c == "None" or re.search(r"\bNone\b", c) for c in cells):
            out.append(f"table {k + 1} shows 'None'")
        if header and len(body) > 1:
            for j, name in enumerate(header):
                col = [row[j] for row in body if j < len(row)]
                if j > 0 and col and all(c in _EMPTY for c in col):
                    out.append(f"table {k + 1}: column {name!r} is empty in every row")
    out += [f"error: {e}" for e in result["errors"]]
    return out


def screenshot(html: Path, png: Path, chromium: str, *, width: int = 1100,
               height: int = 1600) -> Path:
    """A ``width`` × ``height`` PNG of the top of the page."""
    png.parent.mkdir(parents=True, exist_ok=True)
    done = _run(chromium, [f"--window-size={width},{height}", f"--screenshot={png}",
                           "--virtual-time-budget=3000", Path(html).resolve().as_uri()])
    if not png.is_file():
        raise AssertionError(f"no screenshot of {html}: {done.stderr[-1000:]}")
    return png
