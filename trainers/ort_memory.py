"""What ONNX Runtime really allocates for one forward pass: a check of the ``layer`` peak.

``ort_peak_growth(path, shape)`` loads an ONNX file in a fresh Python process (CPU provider, one
thread), makes a zero input of ``shape``, resets the process's peak resident set (Linux:
``/proc/self/clear_refs``), runs the model once and reports by how much the peak resident set
rose over what the process held before the run: the activations ONNX Runtime allocated (its
arena included), the output among them; the weights and the input were resident before.
``nas.measure_cost(..., bits=32)`` predicts the same quantity as its layer-by-layer peak minus
the input's bytes (``predicted_growth``).

``arena`` and ``mem_pattern`` are ONNX Runtime's ``enable_cpu_mem_arena`` and
``enable_mem_pattern`` session options (both on by default): the arena keeps freed blocks for
reuse and grows by chunks; memory patterns plan one block for all intermediates after the
first run of a shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from nas.errors import ConfigError
from nas.extras import require_extra

_CHILD = r"""
import json, sys
import numpy as np
import onnxruntime as ort

path, shape = sys.argv[1], json.loads(sys.argv[2])
arena, pattern = sys.argv[3] == "1", sys.argv[4] == "1"

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(key)

so = ort.SessionOptions()
so.intra_op_num_threads = 1
so.inter_op_num_threads = 1
so.enable_cpu_mem_arena = arena
so.enable_mem_pattern = pattern
session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
x = np.zeros(shape, np.float32)
x += 0  # touch every page: the input is resident before the run
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # peak RSS := current RSS
out = session.run(None, {session.get_inputs()[0].name: x})[0]
peak = status("VmHWM")
print(json.dumps({"rss_before": before, "peak": peak, "growth": peak - before,
                  "output_bytes": int(out.nbytes)}))
"""


def ort_peak_growth(path: str | Path, shape: tuple[int, ...], arena: bool = True,
                    mem_pattern: bool = True, timeout: float = 600) -> dict[str, Any]:  # fmt: skip
    """Run ONNX file ``path`` once on zeros of ``shape`` in a fresh process; returns
    ``{"rss_before", "peak", "growth", "output_bytes"}`` in bytes (``growth``: peak resident
    set during the run minus resident set before it). Linux only (``/proc``)."""
    require_extra("onnx", "ort memory")
    if not Path("/proc/self/clear_refs").exists():
        raise ConfigError("ort memory: needs Linux's /proc/self/clear_refs to reset the peak RSS")
    args = [sys.executable, "-c", _CHILD, str(path), json.dumps(list(shape)),
            "1" if arena else "0", "1" if mem_pattern else "0"]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"onnxruntime run failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def predicted_growth(layer_peak_bytes_fp32: int, shape: tuple[int, ...]) -> int:
    """The layer-by-layer peak (float32) minus the input, which is resident before the run."""
    n = 1
    for d in shape:
        n *= d
    return layer_peak_bytes_fp32 - 4 * n
