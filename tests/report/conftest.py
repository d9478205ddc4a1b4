"""A small REAL unetmm study in a SQLite file, for the report, dashboard and export tests.

Each trial samples a skip design for NAFNet-w16, builds its real ``ArchConfig``, measures its real
costs at 64x64 (``nas.measure_cost(engine="meta")``) and writes exactly the attributes of
``studies.schema``. Only the accuracy is fake: a deterministic function of the measured costs
(no training). The study also holds what a real search produces besides clean trials:

- the three reference points (full skips, no skips, UNet--), enqueued first and all trained;
  full skips breaks the M_sc constraint, so it is *trained but infeasible*;
- trials over the M_sc limit (status ``infeasible``, costs only, no PSNR);
- trials the scheduler stopped early (status ``stopped``); their partial PSNR is deliberately
  made *better* than any complete trial's, so a front that let them in would show it;
- designs that do not fit the backbone (Optuna FAIL, status ``failed``).
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import json
import math
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

import nas
from nas.presets import backbone_preset, reference_designs
from studies import schema

INPUT = (64, 64)
BITS = 8
M_SC_LIMIT = 40 * 1024  # bytes: full skips (120 KiB) and big subsets break it


@dataclasses.dataclass(frozen=True)
class BuiltStudy:
    path: Path
    url: str
    name: str
    m_sc_limit: int
    n_trials: int


def design_label(arch: nas.ArchConfig) -> str:
    skip = arch.skip
    if skip.name == "subset":
        return f"subset {list(skip.stages)}"
    if skip.name == "unetmm":
        return (f"unetmm t={skip.target_stage or 4} A={skip.aggregated_channels} "
                f"r={[round(1 / r) for r in skip.ratios]} d={skip.iem_depth}")  # fmt: skip
    return skip.name


def sample_arch(trial: optuna.Trial) -> nas.ArchConfig:
    backbone = backbone_preset("nafnet-w16")
    kind = trial.suggest_categorical("skip", ["subset", "unetmm"])  # "none" is a reference
    if kind == "subset":
        first = trial.suggest_int("subset_first", 1, 4)
        last = trial.suggest_int("subset_last", first, 4)
        return nas.ArchConfig(backbone, nas.SubsetSkipsConfig(tuple(range(first, last + 1))))
    divisor = trial.suggest_categorical("ratio_divisor", [4, 8, 16])
    skip = nas.UNetMMConfig(
        ratios=(1 / divisor,) * 4,
        target_stage=trial.suggest_int("target_stage", 2, 4),
        aggregated_channels=trial.suggest_categorical("aggregated_channels", [16, 64, 256]),
        iem_depth=trial.suggest_int("iem_depth", 0, 2),
    )
    return nas.ArchConfig(backbone, skip)


def fake_psnr(m_sc: int, macs: int, full_macs: int) -> float:
    """Deterministic stand-in for a proxy's PSNR: more skip memory and compute help, saturating."""
    return round(20.0 + 9.0 * (1 - math.exp(-m_sc / 12000)) + 2.0 * math.log(macs / full_macs + 1), 4)


def build_study(path: Path, name: str = "report-test", n_trials: int = 24, seed: int = 3) -> BuiltStudy:
    """Run a cheap but real unetmm-shaped study into the SQLite file ``path``."""
    url = f"sqlite:///{path}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    references = reference_designs(backbone_preset("nafnet-w16"))
    full_macs = nas.measure_cost(references["full"], INPUT, 1, BITS, "meta").macs
    study = optuna.create_study(
        study_name=name,
        storage=url,
        directions=["maximize", "minimize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["psnr", "m_sc", "macs"])
    fixed: dict[int, tuple[str, nas.ArchConfig]] = {}

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        if trial.number in fixed:
            ref, arch = fixed[trial.number]
            trial.set_user_attr(schema.ATTR_REFERENCE, ref)
        else:
            ref, arch = None, sample_arch(trial)
        trial.set_user_attr(schema.ATTR_ARCH, arch.to_dict())
        trial.set_user_attr(schema.ATTR_PROXY_ARCH, arch.to_dict())
        trial.set_user_attr(schema.ATTR_DESIGN, design_label(arch))
        try:
            cost = nas.measure_cost(arch, INPUT, 1, BITS, "meta")
        except nas.ConfigError as exc:
            trial.set_user_attr(schema.ATTR_STATUS, schema.STATUS_FAILED)
            trial.set_user_attr("error", str(exc))
            raise
        for key in schema.COST_KEYS:
            trial.set_user_attr(key, getattr(cost, key))
        trial.set_user_attr("m_sc_timeline", [list(x) for x in cost.m_sc_timeline])
        trial.set_user_attr("bits", BITS)
        trial.set_user_attr("input_size", list(INPUT))
        trial.set_user_attr("seconds_cost", cost.seconds)
        trial.set_constraint("m_sc", cost.m_sc_bytes - M_SC_LIMIT)
        if cost.m_sc_bytes > M_SC_LIMIT and ref is None:
            trial.set_user_attr(schema.ATTR_STATUS, schema.STATUS_INFEASIBLE)
            return 0.0, float(cost.m_sc_bytes), float(cost.macs)
        psnr = fake_psnr(cost.m_sc_bytes, cost.macs, full_macs)
        stopped = ref is None and trial.number % 5 == 4
        if stopped:  # partial score, made better than any complete one (see module docstring)
            psnr += 6.0
        trial.set_user_attr("psnr", psnr)
        trial.set_user_attr("ssim", round(psnr / 40.0, 4))
        trial.set_user_attr("curve", [[100, psnr - 2.0], [200, psnr]])
        trial.set_user_attr("seconds_train", 0.0)
        trial.set_user_attr("seconds", cost.seconds)
        status = schema.STATUS_STOPPED if stopped else schema.STATUS_COMPLETE
        trial.set_user_attr(schema.ATTR_STATUS, status)
        return psnr, float(cost.m_sc_bytes), float(cost.macs)

    for i, (ref, arch) in enumerate(references.items()):
        fixed[i] = (ref, arch)
    study.optimize(objective, n_trials=n_trials + len(fixed), catch=(nas.ConfigError,))
    return BuiltStudy(path, url, name, M_SC_LIMIT, n_trials + len(fixed))


@pytest.fixture(scope="session", autouse=True)
def _cost_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    old = os.environ.get("UNETMM_CACHE_DIR")
    os.environ["UNETMM_CACHE_DIR"] = str(tmp_path_factory.mktemp("cost-cache"))
    yield
    if old is None:
        os.environ.pop("UNETMM_CACHE_DIR", None)
    else:
        os.environ["UNETMM_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def built_study(tmp_path_factory: pytest.TempPathFactory) -> BuiltStudy:
    return build_study(tmp_path_factory.mktemp("study") / "study.db")


# -- headless Chromium ------------------------------------------------------------------------

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
console.error=function(){rec.errors.push('console.error: '+Array.from(arguments).join(' '));return ce.apply(console,arguments);};
console.warn=function(){rec.warnings.push(Array.from(arguments).join(' '));return cw.apply(console,arguments);};
window.addEventListener('load',function(){setTimeout(function(){
  var plots={};
  document.querySelectorAll('.plotly-graph-div').forEach(function(d){plots[d.id]={
    svg:d.querySelectorAll('svg.main-svg').length, points:d.querySelectorAll('path.point').length,
    canvas:d.querySelectorAll('canvas').length, traces:(d.data||[]).length};});
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
            pytest.fail("chromium is not on PATH and UNETMM_REQUIRE_CHROMIUM=1 (apt-get install chromium)")
        pytest.skip("chromium not on PATH (apt-get install chromium); set UNETMM_REQUIRE_CHROMIUM=1 to fail")
    page = html_file.read_text(encoding="utf-8")
    assert "<head>" in page
    probed = workdir / f"probed-{html_file.name}"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
        "--no-first-run", "--disable-extensions", f"--user-data-dir={workdir / 'chromium-profile'}",
        "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",  # no network
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom",
        probed.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    match = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.S)
    assert match, f"no probe output; chromium rc={done.returncode}, stderr tail:\n{done.stderr[-2000:]}"
    probe = json.loads(html_lib.unescape(match.group(1)))
    console_errors = [line for line in done.stderr.splitlines() if ":CONSOLE" in line
                      and ("Uncaught" in line or "Failed to load resource" in line)]  # fmt: skip
    return BrowserResult(probe, console_errors, done.stdout)
