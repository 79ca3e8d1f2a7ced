"""Open a page in Debian's headless chromium, cut off from the network, and read back what it
rendered: the DOM, the console, and for each image and table its laid-out state."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import netns

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]

# Appended to a copy of the page: once everything has loaded, it writes what was rendered into
# the DOM that --dump-dom prints. An image that failed to decode has naturalWidth 0.
PROBE_ID = "vicokd-render-probe"
PROBE = f"""<script>
window.addEventListener("load", () => {{
  const box = e => e.getBoundingClientRect();
  const images = [...document.images].map(i => ({{
    loaded: i.complete && i.naturalWidth > 0, width: i.naturalWidth, height: i.naturalHeight,
    shown: box(i).width * box(i).height}}));
  const tables = [...document.querySelectorAll("table")].map(t => ({{
    id: t.id, rows: t.rows.length, shown: box(t).width * box(t).height}}));
  const out = document.createElement("pre");
  out.id = "{PROBE_ID}";
  out.textContent = JSON.stringify({{images, tables, title: document.title,
                                     height: document.documentElement.scrollHeight}});
  document.body.appendChild(out);
}});
</script>"""


def missing() -> str | None:
    """Why chromium cannot be used here, or None."""
    if shutil.which("chromium") is None:
        return "Debian's chromium is not installed (apt-get install chromium; .ci/run does)"
    return None


def open_page(page: Path, scratch: Path) -> tuple[int, str, list[str]]:
    """Load `page` in headless chromium: exit code, the DOM it built, its console messages.
    Each call gets a fresh profile folder under `scratch`."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=scratch)
    proc = subprocess.run(
        netns.isolated(["chromium", *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                        page.resolve().as_uri()]),
        capture_output=True, text=True, timeout=180)
    # chromium's own pages (chrome://...) log too, e.g. "Slow network is detected" on a busy
    # machine: only what the page under test logs counts
    console = [ln for ln in proc.stderr.splitlines()
               if (":CONSOLE" in ln or "Uncaught" in ln) and "source: chrome://" not in ln]
    return proc.returncode, proc.stdout, console


def render(page: Path, scratch: Path) -> tuple[dict, list[str]]:
    """What chromium rendered of `page`: images (loaded, natural size, area on screen), tables
    (id, rows, area on screen), title and page height; and the console messages."""
    probed = Path(tempfile.mkdtemp(prefix="probed-", dir=scratch)) / page.name
    text = page.read_text()
    at = text.rfind("</body>")
    probed.write_text(text[:at] + PROBE + text[at:] if at >= 0 else text + PROBE)
    code, dom, console = open_page(probed, scratch)
    found = re.search(rf'<pre id="{PROBE_ID}">(.*?)</pre>', dom, re.DOTALL)
    if code != 0 or not found:
        raise AssertionError(f"chromium did not render {page} (exit {code}); console: {console}")
    return json.loads(html.unescape(found.group(1))), console
