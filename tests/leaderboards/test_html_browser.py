"""The HTML leaderboard in a real browser: Debian's headless Chromium lays the page out, and the DOM it
returns says that every task table, each of its rows and every plot rendered.

The page's own script marks what the browser laid out (``data-rows-rendered``, ``data-rendered``),
so the checks read the browser's result, not the HTML we wrote. The screenshot is kept at
``runs/test-artifacts/leaderboard.png`` for a person to look at. Skips only where no Chromium is
installed (``.ci/run`` installs Debian's ``chromium`` package first).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.runner import SystemSpec, TaskSpec, run_system
from leaderboards.render import render_table

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "runs" / "test-artifacts" / "leaderboard.png"
TASKS = ("esconv_strategy", "memorybank_probe", "open_dialogue")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed and could not be installed here (apt-get install -y chromium; .ci/run does it)")
    return path


class Elements(HTMLParser):
    """Collects the attributes of tables, table rows and figures of a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, str]] = []
        self.figures: list[dict[str, str]] = []
        self.svgs = 0
        self._in_body_rows: list[int] = []

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        if tag == "table" and "task-table" in attributes.get("class", ""):
            self.tables.append(attributes)
        elif tag == "figure":
            self.figures.append(attributes)
        elif tag == "svg":
            self.svgs += 1


def browse(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile{len(list(tmp_path.iterdir()))}"
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_leaderboard_page_renders_every_table_row_and_plot(tmp_path):
    chromium()
    runs = []
    for system in ("copy_last", "retrieval"):
        run_system(SystemSpec(system), [TaskSpec(name=t) for t in TASKS], tmp_path / system, command=["test"])
        runs.append(tmp_path / system)
    page = tmp_path / "leaderboard.html"
    page.write_text(render_table(runs, fmt="html", published=True), encoding="utf-8")
    # nothing is fetched at view time: no external src/href (SVG namespace URIs are names, not fetches)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.read_text()), "page links an external resource"

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    shot = browse(page, tmp_path, "--window-size=1400,2000", f"--screenshot={SCREENSHOT}")
    assert SCREENSHOT.is_file() and SCREENSHOT.stat().st_size > 10_000, shot.stderr[-2000:]

    dom = browse(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = Elements()
    found.feed(dom.stdout)
    assert sorted(t["data-task"] for t in found.tables) == sorted(TASKS)
    for table in found.tables:
        expected = 2 + (2 if table["data-task"] == "esconv_strategy" else 0)  # ours + the published rows
        assert table["data-rows"] == str(expected)
        assert table.get("data-rows-rendered") == table["data-rows"], table
    metric_plots = [f for f in found.figures if f.get("data-kind") == "metrics"]
    assert sorted(f["data-task"] for f in metric_plots) == sorted(TASKS)
    assert all(f.get("data-rendered") == "yes" for f in found.figures), found.figures
    assert found.svgs >= len(TASKS)
