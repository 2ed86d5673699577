"""Label Studio's ML-backend API over the workspace's current reward model.

Connected in Label Studio (Settings -> Model -> Connect model, URL
``http://HOST:PORT/ml``), a project shows, on any pairwise task, which response the
current reward model prefers, as a prediction of the ``Choices`` control.

Label Studio 1.23 calls ``GET /health``, ``POST /setup``, ``POST /predict`` and
``POST /webhook`` under the URL it was given; :func:`mount` adds them to the service app
under a prefix (default ``/ml``). The endpoints only translate: the model is
:class:`CurrentRewardModel`, the choice and confidence come from :func:`preferences`.
``/setup`` refuses (HTTP 422, so Label Studio does not connect) a label config the
backend cannot answer in: one without the texts and an A/B answer control under the
workspace's ``[label_studio] map`` (Label Studio's ``<Pairwise>`` is answered too).

The prediction is symmetric: the margin ``r(A) - r(B)`` of a per-response reward is
antisymmetric, and the calibration has no position term, so the prediction for (A, B) is
the mirror of the one for (B, A) and the answer is the reward model's own preference.
The score is the probability of the predicted answer: the margin through Platt scaling fit
on both orders of the human labels so far (:mod:`rlthf_plugin.loop.workspace_calibration`);
the model version names the calibration (``...-platt-n40``). Before enough human labels,
or when the fit is not monotone, there is no score (``...-uncalibrated``):
``sigmoid(margin)`` of an unscaled margin is overconfident. Without a label config the
answer uses the workspace's ``[label_studio] map`` names (``label=`` for the control,
``prompt=`` for the text it annotates).

The reward model is the one the next iteration would train first: the loop's training
labels (:func:`rlthf_plugin.loop.pool.training_labels`: AI labels, kept and flipped by the
latest selected iteration, human labels weighted by their amplification), fit on all of
them once. It is cached in memory and refit when a newer iteration has been selected or
the count of human labels changed. Texts come from the task's data (``prompt``,
``response_a``, ``response_b``), so a task that is not in the ledger is predicted too.
"""

from __future__ import annotations

import logging
import threading
import xml.etree.ElementTree as ET
from typing import Any, Sequence

import numpy as np

from ..backends.label_studio_template import LabelControl, check_label_config
from ..backends.mapping import parse_map, pairwise_value
from ..config import Config, ground_truth_platforms
from ..errors import IncompatibleProjectError, RlthfError
from ..loop.workspace_calibration import current_calibration
from ..selection.calibration import Calibration
from ..loop.pool import make_factory, training_set_after
from ..models.reward import RewardModel
from ..models.vectors import ReadOnlyVectors, VectorStore
from ..pairs import A, B
from ..store import iterations as iterations_db
from ..store.labels import count_labels
from ..store.ledger import Ledger

log = logging.getLogger(__name__)

PREFIX = "/ml"
MODEL_CLASS = "RlthfRewardModel"
#: The control names of ``templates/label_studio/pairwise.xml``, used when the request
#: carries no label config (or one without an A/B ``Choices``).
DEFAULT_FROM_NAME, DEFAULT_TO_NAME = "preference", "prompt"


def preferences(margins: np.ndarray, calibration: Calibration | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The preferred response and its calibrated probability per pair.

    Parameters
    ----------
    margins : ndarray of float, shape (N,)
        ``r(response_a) - r(response_b)``.
    calibration : Calibration or None, default None
        Platt scaling fit on human labels; None: no probability.

    Returns
    -------
    choices : ndarray of {"A", "B"}, shape (N,)
        "A" where the calibrated P(A better) is >= 0.5 (where the margin is >= 0 without
        a calibration).
    scores : ndarray of float in [0.5, 1], shape (N,), or None
        The calibrated probability that the chosen response is the better one; None
        without a calibration.
    """
    m = np.asarray(margins, dtype=np.float64)
    if m.ndim != 1 or not np.isfinite(m).all():
        raise ValueError(f"margins must be a finite (N,) array, got shape {m.shape}")
    if calibration is None:
        return np.where(m >= 0, A, B), None
    p_a = calibration.probability(m)
    return np.where(p_a >= 0.5, A, B), np.maximum(p_a, 1.0 - p_a)


def choice_control(label_config: str | None) -> tuple[str, str]:
    """``(from_name, to_name)`` of the first ``Choices`` offering both "A" and "B" in a
    Label Studio label config; the pairwise template's names when there is none."""
    if label_config:
        try:
            root = ET.fromstring(label_config)
        except ET.ParseError as e:
            log.warning("unreadable label config (%s); using the template's control names", e)
            return DEFAULT_FROM_NAME, DEFAULT_TO_NAME
        for el in root.iter("Choices"):
            values = {c.get("value") for c in el.iter("Choice")}
            if {A, B} <= values and el.get("name") and el.get("toName"):
                return el.get("name"), el.get("toName")
    return DEFAULT_FROM_NAME, DEFAULT_TO_NAME


class CurrentRewardModel:
    """The workspace's current reward model, fit lazily and cached per :meth:`version`.

    Serving never writes the ledger: the texts of a fit and of the tasks scored are
    embedded through :class:`~rlthf_plugin.models.vectors.ReadOnlyVectors` (the ledger's
    cached vectors are read; new ones stay in memory, bounded), and the texts a scoring
    adds to the model's table are dropped again past ``max_novel``. When the version
    changes, requests are answered from the last good fit while one refit runs in its own
    thread; a failed fit is remembered (per version), not retried on every request.
    """

    def __init__(self, workspace: Any, *, max_novel: int = 20_000):
        self.workspace = workspace
        self.vectors = ReadOnlyVectors(workspace.ledger.vector_store, capacity=max_novel)
        self.max_novel = max_novel
        self._lock = threading.RLock()  # the state below and calibrations
        self._score_lock = threading.Lock()  # one scoring at a time: the text table is not thread-safe
        self._fit_lock = threading.Lock()  # one fit at a time
        self._cached: tuple[str, RewardModel, Calibration | None, int] | None = None
        self._cal: tuple[str, Calibration | None] | None = None
        self._failed: tuple[str, str] | None = None
        self._refit: threading.Thread | None = None

    def _state(self) -> tuple[int | None, int]:
        """(latest selected iteration or None, count of human labels that train)."""
        ledger = self.workspace.ledger
        truth = ground_truth_platforms(self.workspace.config)
        return iterations_db.latest_selected(ledger), count_labels(ledger, exclude_platforms=truth)

    def version(self) -> str:
        """``rlthf-MODEL-itN-hH+CALIBRATION``: the model's training state and the calibration."""
        base = self._base_version()
        return f"{base}+{self._calibration(base)[1].tag if self._calibration(base)[1] else 'uncalibrated'}"

    def _base_version(self) -> str:
        it, humans = self._state()
        return f"rlthf-{self.workspace.config.selection.reward_model}-it{'none' if it is None else it}-h{humans}"

    def _calibration(self, base: str) -> tuple[str, Calibration | None]:
        """The calibration for the training state ``base``, refit when that changes."""
        with self._lock:
            if self._cal is None or self._cal[0] != base:
                self._cal = base, current_calibration(self.workspace.ledger, self.workspace.config)
            return self._cal

    def model(self) -> tuple[str, RewardModel]:
        """``(model_version, fitted model)``; the last good fit while a newer one is fit."""
        version, model, _, _ = self._current()
        return version, model

    def _fit(self, version: str) -> tuple[str, RewardModel, Calibration | None, int]:
        with self._fit_lock:
            with self._lock:
                if self._cached is not None and self._cached[0] == version:
                    return self._cached
            it, _ = self._state()
            log.info("fitting the reward model %s", version)
            try:
                model = fit_current(self.workspace.ledger, self.workspace.config, it, vectors=self.vectors)
            except RlthfError as e:
                with self._lock:
                    self._failed = version, e.message
                raise
            except Exception as e:
                log.exception("fitting the reward model %s failed", version)
                with self._lock:
                    self._failed = version, f"fitting the reward model failed ({type(e).__name__})"
                raise RlthfError(self._failed[1]) from e
            table = getattr(model, "table", None)
            fitted = version, model, self._calibration(self._base_version())[1], len(table) if table is not None else 0
            with self._lock:
                self._cached, self._failed = fitted, None
            return fitted

    def _refit_in_background(self, version: str) -> None:
        def run() -> None:
            try:
                self._fit(version)
            except RlthfError as e:
                log.error("refitting the reward model %s failed; serving %s: %s", version,
                          self._cached[0] if self._cached else "nothing", e.message)

        with self._lock:
            if self._refit is not None and self._refit.is_alive():
                return
            self._refit = threading.Thread(target=run, name="rlthf-ml-refit", daemon=True)
            self._refit.start()

    def _current(self) -> tuple[str, RewardModel, Calibration | None, int]:
        version = self.version()
        with self._lock:
            cached, failed = self._cached, self._failed
        if cached is not None and cached[0] == version:
            return cached
        if failed is not None and failed[0] == version:
            if cached is not None:
                return cached
            raise RlthfError(failed[1])
        if cached is not None:  # serve the last good fit; the new one comes in its own thread
            self._refit_in_background(version)
            return cached
        return self._fit(version)

    def predict(self, prompts: Sequence[str], response_a: Sequence[str],
                response_b: Sequence[str]) -> tuple[str, np.ndarray, Calibration | None]:
        """``(model_version, margins (N,), calibration)``."""
        version, model, calibration, base = self._current()
        if not prompts:
            return version, np.zeros(0), calibration
        with self._score_lock:  # the embedding text table is not thread-safe
            try:
                margins = np.asarray(model.margins(list(prompts), list(response_a), list(response_b)), dtype=float)
            finally:
                table = getattr(model, "table", None)
                if table is not None and len(table) > base + self.max_novel:
                    table.truncate(base)  # the tasks' texts are not kept past the bound
        return version, margins, calibration


def fit_current(ledger: Ledger, config: Config, iteration: int | None, *,
                vectors: VectorStore | None = None) -> RewardModel:
    """One reward model fit on the training set the iteration after ``iteration`` starts
    from (None: the AI labels, as in the first iteration). ``vectors``: where texts'
    embeddings are cached (default the ledger; the ML backend passes a read-only view)."""
    pool, labels, weights = training_set_after(ledger, config, iteration)
    train = np.flatnonzero(labels != "")
    if train.size == 0:
        raise RlthfError("no training labels in the workspace: import pairs with AI or human labels first")
    prompts = [pool.pairs[i].prompt for i in train]
    a = [pool.pairs[i].response_a for i in train]
    b = [pool.pairs[i].response_b for i in train]
    chosen = [a[k] if labels[i] == A else b[k] for k, i in enumerate(train)]
    rejected = [b[k] if labels[i] == A else a[k] for k, i in enumerate(train)]
    factory = make_factory(vectors if vectors is not None else ledger, config)
    return factory().fit(prompts, chosen, rejected, weights=weights[train])


def _warm(current: CurrentRewardModel) -> None:
    try:
        current.version()
    except Exception as e:  # noqa: BLE001 - a warm-up only; the first request says what is wrong
        log.info("ML backend warm-up: %s", e)


def mount(app: Any, workspace: Any, *, prefix: str = PREFIX) -> CurrentRewardModel:
    """Add Label Studio's ML-backend endpoints under ``prefix`` to the FastAPI ``app``.

    ``/predict`` takes at most ``[serve] ml_max_tasks`` tasks (more: 413) and runs in the
    backend's own threads, so a fit never holds the thread pool the webhooks and
    ``/health`` share.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from fastapi import Body
    from fastapi.responses import JSONResponse

    current = CurrentRewardModel(workspace)
    # Label Studio gives /setup 3 s: read the calibration (scikit-learn's import, the ledger)
    # now, in the background, rather than on its first call.
    threading.Thread(target=_warm, args=(current,), name="rlthf-ml-warm", daemon=True).start()
    executor = ThreadPoolExecutor(2, thread_name_prefix="rlthf-ml")
    max_tasks = workspace.config.serve.ml_max_tasks

    @app.get(f"{prefix}/health")
    def ml_health() -> Any:
        return {"status": "UP", "model_class": MODEL_CLASS}

    def control(label_config: str | None) -> LabelControl | None:
        """The answer's control under the workspace's mapping; raises when there is none."""
        if not label_config:
            return None
        return check_label_config(label_config, where="this Label Studio project",
                                  field_map=parse_map(workspace.config.label_studio.map, where="[label_studio] map"))

    @app.post(f"{prefix}/setup")
    def ml_setup(body: dict | None = Body(None)) -> Any:
        try:  # Label Studio connects only when /setup answers 200
            control((body or {}).get("schema") or (body or {}).get("label_config"))
        except IncompatibleProjectError as e:
            return JSONResponse({"detail": f"the rlthf ML backend cannot serve it: {e.message}"}, status_code=422)
        return {"model_version": current.version()}

    @app.post(f"{prefix}/predict")
    async def ml_predict(body: dict = Body(...)) -> Any:
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            return JSONResponse({"detail": "the body needs 'tasks', a list of Label Studio tasks"}, status_code=400)
        if len(tasks) > max_tasks:
            return JSONResponse({"detail": f"at most {max_tasks} tasks per request ([serve] ml_max_tasks)"},
                                status_code=413)
        return await asyncio.wrap_future(executor.submit(answer, body, tasks))

    def answer(body: dict, tasks: list) -> Any:
        try:
            ctl = control(body.get("label_config"))
        except IncompatibleProjectError:
            ctl = None  # /setup refused it already; answer with the template's names as before
        fm = parse_map(workspace.config.label_studio.map, where="[label_studio] map")
        if ctl is None and not body.get("label_config"):  # no config: the workspace map's names
            ctl = LabelControl("choices", fm.label or DEFAULT_FROM_NAME, fm.prompt, {A: A, B: B})
        if ctl is None:
            from_name, to_name = choice_control(body.get("label_config"))
            ctl = LabelControl("choices", from_name, to_name, {A: A, B: B})
        keys = [fm.prompt, fm.response_a, fm.response_b]
        rows = []
        for t in tasks:
            data = t.get("data") if isinstance(t, dict) else None
            texts = [data.get(k) for k in keys] if isinstance(data, dict) else []
            rows.append(texts if len(texts) == 3 and all(isinstance(x, str) for x in texts) else None)
        usable = [r for r in rows if r is not None]
        columns = [list(col) for col in zip(*usable)] or [[], [], []]
        try:
            version, margins, calibration = current.predict(*columns)
        except RlthfError as e:
            return JSONResponse({"detail": e.message}, status_code=409)
        choices, scores = preferences(margins, calibration)
        results, k = [], 0
        for r in rows:
            if r is None:  # not a pairwise task: an empty prediction keeps the order
                results.append({"result": [], "score": 0.0, "model_version": version})
                continue
            if ctl.kind == "pairwise":
                value, kind = {"selected": pairwise_value(str(choices[k]))}, "pairwise"
            else:
                value, kind = {"choices": [ctl.choices.get(str(choices[k]), str(choices[k]))]}, "choices"
            prediction = {"result": [{"from_name": ctl.name, "to_name": ctl.to_name, "type": kind, "value": value}],
                          "model_version": version}
            if scores is not None:
                prediction["score"] = float(scores[k])
            results.append(prediction)
            k += 1
        return {"results": results, "model_version": version}

    @app.post(f"{prefix}/webhook")
    def ml_webhook(body: dict | None = Body(None)) -> Any:
        return {"status": "ok"}  # labels reach the loop through /webhooks/label-studio

    return current
