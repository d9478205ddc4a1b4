"""The run folder's logs, BasicSR style: ``train.log``, ``metrics.csv`` and TensorBoard events.

In ``out_dir``:

- ``train.log``: what happened, for people: the config, device and workers, the checkpoint a
  run started from (``init``), a line every ``log_every`` steps and at every validation, the final
  scores. A fresh run starts the file, a resumed one appends to it;
- ``metrics.csv``: one row every ``log_every`` steps, at every validation and at the last step,
  with the columns ``COLUMNS``: ``loss`` is the mean training loss of the last ``log_every``
  steps (NAFNet's PSNR loss: minus the batch PSNR in dB; matting: L1), ``val_psnr_db`` and
  ``val_ssim`` are empty unless the row's step was validated, ``lr`` is the learning rate the
  step used, ``seconds`` the training time so far;
- TensorBoard event files (``tensorboard --logdir runs/`` shows each run folder as a run):
  ``train/loss``, ``train/lr`` and ``val/<score>`` for every validation score (``val/psnr``,
  ``val/ssim``, matting's ``val/sad`` ...), stepped by training step.

A resume keeps what the checkpoint covers: CSV rows after the resumed step are dropped and
TensorBoard is told to purge later events (``purge_step``), so both read as one uninterrupted
run. A fresh run removes the folder's old event files.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from nas.files import write_text_atomic

COLUMNS = ("step", "loss", "val_psnr_db", "val_ssim", "lr", "seconds")
LOG_NAME, CSV_NAME = "train.log", "metrics.csv"
EVENTS_GLOB = "events.out.tfevents.*"


def _kept_rows(path: Path, last_step: int) -> list[list[str]]:
    """The rows of ``path`` (without its header) up to ``last_step``; none if it is unreadable."""
    try:
        rows = list(csv.reader(path.open(newline="")))
    except OSError:
        return []
    if not rows or tuple(rows[0]) != COLUMNS:
        return []
    return [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= last_step]


class RunLog:
    """The three logs of one training run in ``out_dir``, from step ``resumed_from`` on (0: a
    fresh run); ``close`` flushes and releases the files."""

    def __init__(self, out_dir: Path, resumed_from: int) -> None:
        self.out_dir = out_dir
        csv_path = out_dir / CSV_NAME
        kept = _kept_rows(csv_path, resumed_from) if resumed_from else []
        text = io.StringIO()
        csv.writer(text).writerows([COLUMNS, *kept])
        write_text_atomic(csv_path, text.getvalue())
        self._csv = csv_path.open("a", newline="")
        self._rows = csv.writer(self._csv)
        if not resumed_from:
            for old in out_dir.glob(EVENTS_GLOB):
                old.unlink()
        self.tb = SummaryWriter(str(out_dir), purge_step=resumed_from + 1 if resumed_from else None)
        self.logger = logging.getLogger(f"unetmm.train.{id(self)}")
        self.logger.propagate = False  # the console has the progress bar
        self.logger.setLevel(logging.INFO)
        self._handler = logging.FileHandler(out_dir / LOG_NAME, mode="a" if resumed_from else "w")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
        self.logger.addHandler(self._handler)

    def info(self, message: str) -> None:
        self.logger.info(message)

    def row(self, step: int, total: int, loss: float, lr: float, seconds: float,
            scores: dict[str, float] | None = None) -> None:  # fmt: skip
        """One metrics row (CSV, TensorBoard and a ``train.log`` line); ``scores``: the
        validation scores measured at ``step``, if any."""
        scores = scores or {}
        psnr, ssim = scores.get("psnr"), scores.get("ssim")
        self._rows.writerow([step, repr(float(loss)), "" if psnr is None else repr(float(psnr)),
                             "" if ssim is None else repr(float(ssim)), repr(float(lr)),
                             f"{seconds:.3f}"])  # fmt: skip
        self._csv.flush()
        self.tb.add_scalar("train/loss", loss, step)
        self.tb.add_scalar("train/lr", lr, step)
        for name, value in scores.items():
            self.tb.add_scalar(f"val/{name}", value, step)
        line = f"step {step}/{total}  loss {loss:.4f}  lr {lr:.3e}  {seconds:.1f} s"
        if scores:
            line += "  | val " + "  ".join(f"{k} {v:.4f}" for k, v in scores.items())
        self.info(line)

    def close(self) -> None:
        self.tb.close()
        self._csv.close()
        self.logger.removeHandler(self._handler)
        self._handler.close()
