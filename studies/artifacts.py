"""A trial's bulky data (``schema.BULKY_KEYS``) as Optuna artifacts, kept in the study's database.

Why artifacts: the arch JSON, the M_sc timeline and the validation curve made every row of
``optuna trials`` (which prints each user attribute in full) hundreds of characters wide, while
Optuna's artifact API is its public home for per-trial data that is not a short attribute (the
trial lists them; optuna-dashboard shows them). Why in the database: an artifact store in a
folder would be a second place to configure, copy and lose (and a PostgreSQL study runs on
several machines); ``SQLArtifactStore`` keeps each artifact as one row of ``unetmm_artifacts`` in
the same SQLite file or PostgreSQL database as the study, so a study stays one thing.
``unetmm dashboard`` serves the store, so optuna-dashboard can show the JSON files; other tools
open it with ``artifact_store(storage)``.

``attach`` uploads one JSON file to a running trial (``arch.json`` when it starts,
``results.json`` when it ends); ``trial_data`` reads a trial back as one dict (user attributes
and artifacts, current keys: ``schema.current``); ``study_data`` does that for every trial with
one query.
"""

from __future__ import annotations

import io
import json
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import optuna
import sqlalchemy as sa
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial

from studies import compat, schema

TABLE = "unetmm_artifacts"
ATTR_PREFIX = "artifacts:"  # where Optuna keeps an artifact's metadata (trial system attribute)
_META = sa.MetaData()
_ROWS = sa.Table(
    TABLE,
    _META,
    sa.Column("artifact_id", sa.String(64), primary_key=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
)


class SQLArtifactStore:
    """An Optuna ``ArtifactStore`` whose artifacts are rows of ``unetmm_artifacts`` in ``engine``'s
    database (created on the first write)."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine
        self._ready = False

    def _create(self) -> None:
        """Create the table unless it exists. Drivers starting together on a new database race
        between the check and the CREATE (PostgreSQL: a unique violation in ``pg_type``; SQLite:
        "already exists"): the loser finds the winner's table and goes on."""
        if self._ready:
            return
        try:
            _META.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:
            if not sa.inspect(self.engine).has_table(TABLE):
                raise  # not that race: a storage that does not answer, a read-only one, ...
        self._ready = True

    def open_reader(self, artifact_id: str) -> BinaryIO:
        found = self.read_many([artifact_id])
        if artifact_id not in found:
            raise ArtifactNotFound(f"artifact {artifact_id} is not in {TABLE}")
        return io.BytesIO(found[artifact_id])

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.write_many({artifact_id: content_body.read()})

    def write_many(self, bodies: Mapping[str, bytes]) -> None:
        """Store several artifacts in one transaction (replacing any with the same id)."""
        self._create()
        with self.engine.begin() as conn:
            conn.execute(_ROWS.delete().where(_ROWS.c.artifact_id.in_(list(bodies))))
            conn.execute(_ROWS.insert(), [{"artifact_id": k, "body": v} for k, v in bodies.items()])

    def remove(self, artifact_id: str) -> None:
        with self.engine.begin() as conn:
            if not conn.execute(_ROWS.delete().where(_ROWS.c.artifact_id == artifact_id)).rowcount:
                raise ArtifactNotFound(f"artifact {artifact_id} is not in {TABLE}")

    def read_many(self, artifact_ids: Sequence[str]) -> dict[str, bytes]:
        """``{artifact id: bytes}`` of those that exist (one query per 500 ids)."""
        if not artifact_ids or not sa.inspect(self.engine).has_table(TABLE):
            return {}
        out: dict[str, bytes] = {}
        ids = list(artifact_ids)
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                query = sa.select(_ROWS.c.artifact_id, _ROWS.c.body).where(
                    _ROWS.c.artifact_id.in_(ids[i : i + 500])
                )
                out.update({row.artifact_id: bytes(row.body) for row in conn.execute(query)})
        return out


def artifact_store(storage: optuna.storages.BaseStorage) -> SQLArtifactStore | None:
    """The artifact store of a study storage (None: not an SQL storage, e.g. in memory)."""
    engine = compat.storage_engine(storage)
    return SQLArtifactStore(engine) if engine is not None else None


def attach(
    trial: optuna.Trial,
    filename: str,
    data: Mapping[str, Any],
    store: SQLArtifactStore | None = None,
) -> None:
    """Upload ``data`` as the JSON artifact ``filename`` of the running ``trial`` into ``store``
    (default: the trial's own database); nothing when ``data`` is empty or there is no store
    (a study in memory)."""
    store = store or artifact_store(trial.storage)
    if not data or store is None:
        return
    with tempfile.TemporaryDirectory(prefix="unetmm-artifact-") as tmp:
        path = Path(tmp) / filename
        path.write_text(json.dumps(dict(data), separators=(",", ":")), encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.artifacts.upload_artifact(
                artifact_store=store, file_path=str(path), study_or_trial=trial,
                mimetype="application/json",
            )  # fmt: skip


def _artifact_ids(trial: FrozenTrial) -> list[str]:
    """The trial's JSON artifacts, oldest name first (``arch.json`` before ``results.json``)."""
    metas = []
    for key, raw in trial.system_attrs.items():
        if key.startswith(ATTR_PREFIX):
            meta = json.loads(raw) if isinstance(raw, str) else raw
            if str(meta.get("filename", "")).endswith(".json"):
                metas.append((meta["filename"] != "arch.json", meta["artifact_id"]))
    return [artifact_id for _, artifact_id in sorted(metas)]


def _merge(trial: FrozenTrial, bodies: Mapping[str, bytes]) -> dict[str, Any]:
    data = dict(trial.user_attrs)
    for artifact_id in _artifact_ids(trial):
        if artifact_id in bodies:
            data.update(json.loads(bodies[artifact_id]))
    return schema.current(data)


def study_data(study: optuna.Study, trials: Sequence[FrozenTrial]) -> dict[int, dict[str, Any]]:
    """Trial number -> everything the trial stored (user attributes and artifacts, current
    keys), for ``trials`` of ``study``."""
    store = artifact_store(compat.study_storage(study))
    wanted = [a for t in trials for a in _artifact_ids(t)]
    bodies = store.read_many(wanted) if store is not None and wanted else {}
    return {t.number: _merge(t, bodies) for t in trials}


def trial_data(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """Everything ``trial`` stored, as one dict of current keys (see ``study_data``)."""
    return study_data(study, [trial])[trial.number]
