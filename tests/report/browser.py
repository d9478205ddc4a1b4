"""Load a page in headless Chromium and report its JS errors and what plotly drew.

How: a probe script is injected as the first ``<script>`` of a *copy* of the page (the report
itself stays as written). It records uncaught errors (also failed resource loads, in the capture
phase), unhandled promise rejections and ``console.error`` calls, and after ``load`` writes them
with a census of every plotly figure (SVGs, markers, canvases, traces) into ``<pre id="__probe">``.
The census also holds the screen boxes ``[left, top, right, bottom]`` of each figure's
annotation texts, legend, shapes (constraint lines) and plot areas, so tests can check that
labels do not collide. ``chromium --headless --dump-dom`` prints the DOM after the page settled (``--virtual-time-budget``
lets timers run), and the test parses the probe's JSON. The network is cut off with a proxy that
does not exist, so a page that needs a CDN fails. As a second, independent source, Chromium's
own log (``--enable-logging=stderr``) is scanned for ``Uncaught`` and ``Failed to load resource``
console lines. ``test_chromium_probe_catches_errors_and_blocked_network`` shows both work.
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# Injected as the first script of a *copy* of the page: records uncaught errors (also failed
# resource loads, in the capture phase), unhandled rejections and console.error calls, then,
# after load, writes them and a census of every plotly figure into <pre id="__probe">, which
# `chromium --dump-dom` prints with the rest of the DOM.
PROBE = """<script>(function(){
var rec={errors:[],warnings:[]};
window.addEventListener('error',function(e){rec.errors.push('error: '+(e.message||
  (e.target&&(e.target.src||e.target.href))||'resource failed to load'));},true);
window.addEventListener('unhandledrejection',function(e){rec.errors.push('rejection: '+e.reason);});
var ce=console.error,cw=console.warn;
console.error=function(){rec.errors.push('console.error: '+Array.from(arguments).join(' '));
  return ce.apply(console,arguments);};
console.warn=function(){rec.warnings.push(Array.from(arguments).join(' '));
  return cw.apply(console,arguments);};
window.addEventListener('load',function(){setTimeout(function(){
  var plots={};
  function box(e){var r=e.getBoundingClientRect();return [r.left,r.top,r.right,r.bottom];}
  function boxes(d,sel){return Array.from(d.querySelectorAll(sel)).map(box);}
  document.querySelectorAll('.plotly-graph-div').forEach(function(d){plots[d.id]={
    svg:d.querySelectorAll('svg.main-svg').length, points:d.querySelectorAll('path.point').length,
    canvas:d.querySelectorAll('canvas').length, traces:(d.data||[]).length,
    names:(d.data||[]).map(function(t){return t.name||'';}),
    annotations:boxes(d,'g.annotation-text-g'), legend:boxes(d,'g.legend'),
    shapes:boxes(d,'.shapelayer path'), plotarea:boxes(d,'rect.nsewdrag')};});
  var pre=document.createElement('pre');pre.id='__probe';
  pre.textContent=JSON.stringify({errors:rec.errors,warnings:rec.warnings,plots:plots,
    plotly:typeof Plotly!=='undefined'?Plotly.version:null});
  document.body.appendChild(pre);},500);});
})();</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@dataclasses.dataclass(frozen=True)
class BrowserResult:
    probe: dict
    console_errors: list[str]  # "Uncaught ..." / "Failed to load resource" lines of chromium's log
    dom: str


def load_in_chromium(html_file: Path, workdir: Path) -> BrowserResult:
    """Open a probed copy of ``html_file`` in headless Chromium with the network cut off."""
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get("UNETMM_REQUIRE_CHROMIUM") == "1":
            pytest.fail(
                "chromium is not on PATH and UNETMM_REQUIRE_CHROMIUM=1 (apt-get install chromium)"
            )
        pytest.skip(
            "chromium not on PATH (apt-get install chromium); set UNETMM_REQUIRE_CHROMIUM=1 to fail"
        )
    page = html_file.read_text(encoding="utf-8")
    assert "<head>" in page
    probed = workdir / f"probed-{html_file.name}"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-unsafe-swiftshader",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={workdir / 'chromium-profile'}",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",  # no network
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--dump-dom",
        probed.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    match = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.DOTALL)
    assert match, (
        f"no probe output; chromium rc={done.returncode}, stderr tail:\n{done.stderr[-2000:]}"
    )
    probe = json.loads(html_lib.unescape(match.group(1)))
    console_errors = [
        line
        for line in done.stderr.splitlines()
        if ":CONSOLE" in line and ("Uncaught" in line or "Failed to load resource" in line)
    ]
    return BrowserResult(probe, console_errors, done.stdout)
