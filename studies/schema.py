"""What a unetmm trial stores in Optuna (the contract between search, report and export).

Objective values are in the order of ``StudySpec.objectives`` (study.directions match).
User attributes of every finished trial (``trial.user_attrs``):

- ``ATTR_ARCH``: the target ArchConfig as a dict (``ArchConfig.from_dict`` rebuilds it);
- ``ATTR_PROXY_ARCH``: the proxy ArchConfig the accuracy was measured on;
- cost keys (target model at the study's input size and bit width): ``m_sc_bytes``, ``macs``
  (fvcore), ``macs_paper``, ``params``, ``peak_activation_bytes``, ``m_sc_timeline``
  (list of [label, bytes]), ``bits``, ``input_size`` ([h, w]);
- metric keys: ``psnr``, ``ssim`` (final proxy validation scores; absent if not trained);
- ``curve``: list of [step, psnr] of the proxy's validation evaluations;
- time keys: ``seconds_cost``, ``seconds_train``, ``seconds`` (whole trial);
- ``ATTR_STATUS``: one of ``STATUS_*`` below;
- ``ATTR_REFERENCE``: name of the reference point ("full", "none", "unetmm") or absent;
- ``ATTR_DESIGN``: a short human label of the design (e.g. "unetmm t=4 A=256 r=[2,4,8,32] d=1").

Constraints are stored with ``Trial.set_constraint(name, value)`` (feasible when every value
is <= 0): ``value = measured - limit`` in the constraint's unit.
"""

from __future__ import annotations

ATTR_ARCH = "arch"
ATTR_PROXY_ARCH = "proxy_arch"
ATTR_STATUS = "status"
ATTR_REFERENCE = "reference"
ATTR_DESIGN = "design"

COST_KEYS = ("m_sc_bytes", "macs", "macs_paper", "params", "peak_activation_bytes")
METRIC_KEYS = ("psnr", "ssim")

STATUS_COMPLETE = "complete"  # trained for the full proxy budget
STATUS_STOPPED = "stopped"  # stopped early by the scheduler: partial score, never in the front
STATUS_INFEASIBLE = "infeasible"  # broke a hard constraint: costs only, not trained
STATUS_FAILED = "failed"  # raised or diverged (NaN loss); the reason is in ``error``

# Objective name -> (user-attr key, Optuna direction).
OBJECTIVES = {
    "psnr": ("psnr", "maximize"),
    "ssim": ("ssim", "maximize"),
    "m_sc": ("m_sc_bytes", "minimize"),
    "macs": ("macs", "minimize"),
    "params": ("params", "minimize"),
    "peak_memory": ("peak_activation_bytes", "minimize"),
}
