"""`tbr evidence --format pdf`: the HTML report printed by headless Chromium, driven by Playwright.

Playwright drives the system's Chromium (Debian's `chromium`, or TBR_CHROMIUM); it downloads no browser.
The page footer (the period, "Page N of M") is the report's own CSS (@page margin boxes), so a PDF from
here and one printed from a browser read the same.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from tbr.config import ConfigError

PAPERS = {"a4": "A4", "letter": "Letter"}
MARGINS = {"prefer_css_page_size": False, "margin": {"top": "14mm", "bottom": "16mm", "left": "10mm", "right": "10mm"}}
MISSING = "no Chromium to print the PDF with: install chromium (apt-get install chromium) or set TBR_CHROMIUM=/path"
FLAGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-dev-shm-usage"]


def chromium(env=None) -> str | None:
    env = os.environ if env is None else env
    if env.get("TBR_CHROMIUM"):
        return env["TBR_CHROMIUM"] if os.access(env["TBR_CHROMIUM"], os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def require() -> str:
    """The Chromium to print with; ConfigError (one line, exit status 2, by the CLI's error boundary) if none."""
    executable = chromium()
    if not executable:
        raise ConfigError(MISSING)
    return executable


def flags() -> list[str]:
    # Chromium's sandbox needs user namespaces, which root in a container usually lacks.
    return FLAGS + (["--no-sandbox"] if os.geteuid() == 0 else [])


def render(html_path: Path, paper: str = "a4", executable: str | None = None) -> bytes:
    """The report at `html_path` (a file: it loads nothing else), printed."""
    executable = executable or require()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=flags())
        try:
            page = browser.new_page()
            page.goto(html_path.resolve().as_uri(), wait_until="load")
            return page.pdf(format=PAPERS[paper], print_background=True, **MARGINS)
        finally:
            browser.close()


def write(html_text_writer, out: BinaryIO, paper: str = "a4"):
    """Have `html_text_writer(text_out)` write the report to a temporary file, print it to `out` (a file,
    or standard output's bytes); returns what the writer returned."""
    executable = require()  # before the report is built: it may take seconds
    with tempfile.TemporaryDirectory(prefix="tbr-report-") as folder:
        page = Path(folder) / "report.html"
        with open(page, "w", encoding="utf-8", newline="") as text_out:
            result = html_text_writer(text_out)
        out.write(render(page, paper, executable))
    return result
