"""Background work for the widget: one napari thread worker at a time.

* clicks: a function worker runs a batch of clicks (one object, one plane) and
  returns the last mask; clicks made meanwhile wait and go in the next batch,
  so only the latest result of a burst is drawn ("latest click wins");
* planes: a generator worker (propagation, fill between, precompute) yields
  one plane at a time and stops between planes on ``cancel()``.

Every run gets a token; callbacks of a cancelled or superseded run are
dropped, so nothing a cancelled run yields afterwards reaches the layers.
The predictor is created lazily inside the first worker (loading weights does
not block the viewer).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from napari.qt.threading import create_worker

from ..annotation import ClickJob, run_click_jobs

__all__ = ["ModelRunner", "default_predictor_factory", "fit_feature_cache"]

logger = logging.getLogger(__name__)

CACHE_BUDGET_BYTES = 1_500_000_000  # encoder features kept for the slices of a stack


def default_predictor_factory():
    """The packaged Inter2Former, leaving one CPU core to the GUI."""
    from ..predictor import Predictor

    return Predictor.from_pretrained(num_threads=max(1, (os.cpu_count() or 2) - 1))


def fit_feature_cache(predictor, n_planes: int, budget: int = CACHE_BUDGET_BYTES) -> int | None:
    """Let the predictor's feature cache hold up to ``n_planes`` within ``budget`` bytes.

    Returns the new cache size, or None if the predictor has no feature cache.
    """
    cache = getattr(predictor, "cache", None)
    if not hasattr(cache, "grow_to"):
        return None
    return cache.grow_to(n_planes, budget)


class ModelRunner:
    """Owns the predictor and the single running worker.

    Parameters
    ----------
    predictor_factory : callable
        Returns a predictor (``BasePredictor``); called once, in a worker.

    on_idle : callable, optional
        Called (GUI thread) whenever the worker has ended, also a cancelled one.
    """

    def __init__(
        self,
        predictor_factory: Callable[[], Any] | None = None,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._factory = predictor_factory or default_predictor_factory
        self.on_idle = on_idle
        self.predictor = None
        # predictor attributes (zoom_in, keep_clicked_regions, cut_at_negative_clicks) set
        # from the widget's check boxes; handed to the predictor at each job, in the
        # worker that owns it
        self.predictor_settings: dict[str, Any] = {}
        self.worker = None
        self.kind: str | None = None
        self._token = 0

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def _ensure_predictor(self):
        if self.predictor is None:
            self.predictor = self._factory()
        for name, value in self.predictor_settings.items():
            if hasattr(self.predictor, name):
                setattr(self.predictor, name, value)
        return self.predictor

    def _start(self, worker, kind, on_done, on_error, on_finished) -> int:
        self._token += 1
        token = self._token
        current = lambda: token == self._token

        def returned(value):
            if current() and on_done is not None:
                on_done(value)

        def errored(exc):
            if current() and on_error is not None:
                on_error(exc)

        def finished():
            # a cancelled worker still holds the predictor until it ends: only
            # now may the next job start
            self.worker = None
            self.kind = None
            if current() and on_finished is not None:
                on_finished()
            if self.on_idle is not None:
                self.on_idle()

        worker.returned.connect(returned)
        worker.errored.connect(errored)
        worker.finished.connect(finished)
        self.worker = worker
        self.kind = kind
        worker.start()
        return token

    def is_current(self, token: int) -> bool:
        return token == self._token and self.worker is not None

    @property
    def cancelling(self) -> bool:
        """A cancelled job is still winding down (the predictor is not free yet)."""
        return self.worker is not None and self.kind == "cancelled"

    def run_clicks(
        self,
        volume,
        jobs: list[ClickJob],
        *,
        rgb: bool,
        on_done: Callable[[tuple], None],
        on_error: Callable[[Exception], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> int:
        """Run clicks of one object on one plane; ``on_done((object_id, plane, mask))``."""
        if self.busy:
            raise RuntimeError("the model is busy; wait for the running job or cancel it")

        def work():
            return run_click_jobs(self._ensure_predictor(), volume, jobs, rgb=rgb)

        worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        return self._start(worker, "clicks", on_done, on_error, on_finished)

    def run_planes(
        self,
        make_planes: Callable[[Any], Iterator[tuple[int, Any]]],
        *,
        kind: str,
        on_plane: Callable[[tuple[int, Any]], None],
        on_error: Callable[[Exception], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> int:
        """Run ``make_planes(predictor)`` in a generator worker; ``on_plane`` per item."""
        if self.busy:
            raise RuntimeError("the model is busy; wait for the running job or cancel it")

        def work():
            yield from make_planes(self._ensure_predictor())

        worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        token = self._token + 1

        def yielded(item):
            if token == self._token:
                on_plane(item)

        worker.yielded.connect(yielded)
        return self._start(worker, kind, None, on_error, on_finished)

    def cancel(self) -> bool:
        """Stop the running job; its remaining results are dropped. True if one ran."""
        worker = self.worker
        if worker is None or self.kind == "cancelled":
            return False
        self._token += 1  # every callback of the old run is now stale
        self.kind = "cancelled"
        if hasattr(worker, "quit"):
            worker.quit()
        return True

    def shut_down(self, *_args) -> None:
        """Cancel the running job and call nobody back: the widget is gone."""
        self.on_idle = None
        self.cancel()

    def wait(self, timeout_ms: int = 10_000) -> None:
        """Block until a cancelled worker's thread is done (for closing and tests)."""
        from qtpy.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(timeout_ms)
