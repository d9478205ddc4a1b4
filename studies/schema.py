"""What a unetmm trial stores in Optuna (the contract between search, report and export).

Objective values are in the order of ``StudySpec.objectives`` (study.directions match); the study's
user attributes hold ``objectives`` (names), ``spec`` (the StudySpec it was created with, as
JSON-able data), ``fingerprint`` (``StudySpec.fingerprint``) and ``comparable`` (what it hashes:
a run whose spec differs there is refused, see ``studies.run.prepare_study``).
User attributes of every trial (``trial.user_attrs``), set as soon as they are known (a RUNNING
trial already shows its arch in optuna-dashboard):

- ``ATTR_ARCH``: the target ArchConfig as a dict (``ArchConfig.from_dict`` rebuilds it);
- ``ATTR_DESIGN``: a short human label of the design (e.g. "unetmm t=4 A=256 c=[2,4,8,32] d=1");
- ``ATTR_REFERENCE``: name of the reference point ("full", "none", "unetmm", "point0", ...) or
  absent;
- ``ATTR_DRIVER``: "host:pid:start" of the search process that ran it (crash recovery);
- ``ATTR_FINGERPRINT``: the study's fingerprint when the trial ran (``StudySpec.fingerprint``:
  target costs and proxy training settings); only trials with the same one are compared or copied;
- ``ATTR_RETRY_OF``: number of the failed trial (left RUNNING by a dead search) this one re-runs;
- cost keys (target model at the study's input size and bit width): the key of every cost
  metric of ``studies.metrics`` (``m_sc_bytes``, ``macs`` (fvcore), ``macs_paper``, ``params``,
  ``peak_activation_bytes``), and ``m_sc_timeline`` (list of [label, bytes]), ``bits``,
  ``input_size`` ([h, w]), ``cost_engine``;
- ``ATTR_PROXY_ARCH``: the proxy ArchConfig the accuracy was measured on (if trained);
- score keys: the key of every score metric (``psnr``, ``ssim``: final proxy validation scores;
  absent if not trained),
  ``input_psnr`` (the degraded validation inputs' own PSNR, the do-nothing baseline),
  ``steps`` (proxy steps trained);
- ``curve``: list of [step, psnr] of the proxy's validation evaluations (also for stopped trials);
- time keys: ``seconds_cost``, ``seconds_train``, ``seconds`` (whole trial, in the worker),
  ``cpu_seconds`` (CPU time of the worker process in the trial, all its threads),
  ``t_start``, ``t_end`` (unix times in the worker: trials that overlap ran in parallel);
- ``ATTR_STATUS``: one of ``STATUS_*`` below; ``ATTR_ERROR``: the reason of a failed trial;
  ``ATTR_BROKEN``: names of the hard constraints an infeasible trial broke;
- ``ATTR_COPY_OF``: number of the earlier trial whose results a trial of the same design copied
  (a design already fully trained, or infeasible, is not evaluated again);
- ``ATTR_SCORE_CACHED``: true when the scores came from the persistent score cache
  (``studies.search.score_cache``: the same design, proxy, task, data, budget, seed and code
  trained before, in any study) instead of a training run; absent when trained.

Optuna states: ``complete`` -> COMPLETE (values = objectives); ``stopped`` and ``infeasible`` ->
PRUNED (no values, so neither can enter ``study.best_trials``); ``failed`` -> FAIL.
Constraints are stored with ``Trial.set_constraint(name, value)`` (feasible when every value
is <= 0): ``value = measured - limit`` in the constraint's unit (``limit - measured`` for >=).
Cost constraints are hard (checked before training); accuracy constraints (psnr, ssim) are
checked after training, so a trained trial can be COMPLETE and still infeasible: Optuna's
``study.best_trials`` leaves it out.

Confirmation studies (``unetmm confirm``, ``studies.search.confirm``): a study's front re-trained
at a higher fidelity is a *linked study* in the same storage, ``<study>.confirm`` by default, one
trial per (design, seed), value = the confirmed PSNR (maximize). Its user attributes:
``STUDY_ATTR_CONFIRM_OF`` (the source study's name), ``STUDY_ATTR_FIDELITY`` (what was trained:
``backbone`` proxy/target, the trained backbone config, task, data, budget, the source study's
fingerprint), ``STUDY_ATTR_FINGERPRINT`` (a hash of the fidelity: a re-run at another fidelity is
refused) and ``STUDY_ATTR_CONFIRM_SUMMARY`` (per design: proxy and confirmed PSNR, ranks; Kendall
tau and Spearman; ``studies.results.confirm.Confirmation.to_json``). Each trial stores
``ATTR_SOURCE_TRIAL`` (the number of the source study's trial it confirms), ``ATTR_JOB`` (design
hash and seed: what makes a job done), ``ATTR_SEED``, ``ATTR_PROXY_PSNR`` (the source trial's
proxy PSNR; ``ATTR_PROXY_PARTIAL`` true when the source was stopped early and this is its last
validation), ``ATTR_ARCH``, ``ATTR_DESIGN``, ``ATTR_REFERENCE``, the source's cost keys, the
trained run's score keys as above (``ATTR_PROXY_ARCH`` = the architecture trained), ``status``,
``error``, ``driver`` and ``score_cached``.
"""

from __future__ import annotations

ATTR_ARCH = "arch"
ATTR_PROXY_ARCH = "proxy_arch"
ATTR_STATUS = "status"
ATTR_REFERENCE = "reference"
ATTR_DESIGN = "design"
ATTR_DRIVER = "driver"
ATTR_ERROR = "error"
ATTR_BROKEN = "broken"
ATTR_COPY_OF = "copy_of"
ATTR_FINGERPRINT = "fingerprint"
ATTR_RETRY_OF = "retry_of"
ATTR_SCORE_CACHED = "score_cached"
STUDY_ATTR_OBJECTIVES = "objectives"
STUDY_ATTR_SPEC = "spec"
STUDY_ATTR_FINGERPRINT = "fingerprint"
STUDY_ATTR_COMPARABLE = "comparable"

# confirmation studies (see the module docstring)
CONFIRM_SUFFIX = ".confirm"
STUDY_ATTR_CONFIRM_OF = "confirm_of"
STUDY_ATTR_FIDELITY = "fidelity"
STUDY_ATTR_CONFIRM_SUMMARY = "summary"
ATTR_SOURCE_TRIAL = "source_trial"
ATTR_JOB = "job"
ATTR_SEED = "seed"
ATTR_PROXY_PSNR = "proxy_psnr"
ATTR_PROXY_PARTIAL = "proxy_partial"

# Attribute keys besides the metrics' own (``studies.metrics``: ``m_sc_bytes``, ``psnr``, ...).
COST_EXTRA_KEYS = ("m_sc_timeline", "bits", "input_size", "cost_engine")
METRIC_EXTRA_KEYS = ("input_psnr", "steps", "curve")
TIME_KEYS = ("seconds_cost", "seconds_train", "seconds", "cpu_seconds", "t_start", "t_end")

STATUS_COMPLETE = "complete"  # trained for the full proxy budget
STATUS_STOPPED = "stopped"  # stopped early by the scheduler: partial score, never in the front
STATUS_INFEASIBLE = "infeasible"  # broke a hard constraint: costs only, not trained
STATUS_FAILED = "failed"  # raised or diverged (NaN loss); the reason is in ``error``
