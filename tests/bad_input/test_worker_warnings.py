"""A warning a Ray worker raises (an unreadable image it skipped) is said once, in one line, on
the search's own output, and stored on the trial."""

from __future__ import annotations

import numpy as np
import optuna
import skimage.io

from studies.search.driver import run_search
from studies.spec import parse_spec


def test_an_unreadable_image_is_said_once_by_the_driver(tmp_path, local_ray, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        skimage.io.imsave(data / f"img{i}.png", (rng.random((96, 96, 3)) * 255).astype(np.uint8))
    (data / "zz_broken.png").write_bytes(b"\x89PNG garbage")
    spec = parse_spec({
        "name": "warn", "target": {"input_size": 64, "backbone": "nafnet-w16"},
        "proxy": {"data": {"train": str(data), "val": "builtin", "val_limit": 1},
                  "budget": {"steps": 20, "eval_every": 10, "batch": 2, "crop": 32,
                             "val_crop": 48}},
        "space": {"references": ["full", "none"]}, "early_stopping": False, "n_trials": 2,
        "concurrency": 1, "score_cache": False,
    }, "")  # fmt: skip
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_search(spec, url)
    out = capsys.readouterr().out
    said = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert len(said) == 1 and "zz_broken.png" in said[0], out[-3000:]
    trials = optuna.load_study(study_name="warn", storage=url).get_trials()
    assert any("zz_broken.png" in " ".join(t.user_attrs.get("warnings", [])) for t in trials)
