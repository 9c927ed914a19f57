"""Annotation state for click-based segmentation: objects, ids, commit rules, click records.

Pure numpy: no napari, no Qt. The napari widget (``_qt/``) and :func:`replay`
(re-running a saved click table) share this logic, so a saved annotation
replays to the same labels.

Every image is handled as a volume of planes: a 2-D image is a volume of one
plane (plane 0). Coordinates are (plane, row, col) in pixels.

How the labels are edited
-------------------------
The current object is written into the labels array under the id it will
keep (a new id, ``labels.max() + 1``, or the id of an existing label being
refined), so what is shown is what a commit keeps. For each plane the object
touches we remember the plane as it was (``original``) and the plane without
the object (``base``); a model step composes ``base`` and the new mask with
the commit rule:

* keep existing (default): the object only takes background pixels;
* overwrite: the object takes every pixel of its mask.

If the labels changed behind our back (napari's undo, a brush stroke) the
plane is re-read and the predictor restarts from what is there now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CLICK_COLUMNS",
    "NEGATIVE",
    "POSITIVE",
    "Annotation",
    "ClickJob",
    "ClickRecord",
    "ObjectState",
    "annotated_planes",
    "as_volume",
    "changed_indices",
    "compose",
    "next_label_id",
    "records_from_table",
    "records_to_table",
    "replay",
    "run_click_jobs",
    "stop_plane",
]

POSITIVE = "positive"
NEGATIVE = "negative"
CLICK_COLUMNS = (
    "order",
    "object_id",
    "plane",
    "row",
    "col",
    "label",
    "overwrite",
    "contrast_low",
    "contrast_high",
)


@dataclass(frozen=True)
class ClickRecord:
    """One click as saved and replayed.

    Parameters
    ----------
    object_id : int
        Label id of the object the click belongs to.
    plane, row, col : int, float, float
        Position in pixels; ``plane`` is 0 for a 2-D image.
    positive : bool
        Positive (add) or negative (remove) click.
    order : int
        Position of the click in the session (replay order).
    overwrite : bool
        Commit rule in force: overwrite other labels or keep them.
    contrast_limits : (float, float), optional
        Intensities mapped to black and white for the model.
    """

    object_id: int
    plane: int
    row: float
    col: float
    positive: bool = True
    order: int = 0
    overwrite: bool = False
    contrast_limits: tuple[float, float] | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.object_id, self.plane)


@dataclass(frozen=True)
class ClickJob:
    """A click and how the predictor must start before it.

    ``restart`` means: set the plane's image and start from ``prior`` (a bool
    mask, possibly empty); otherwise continue the predictor's current object.
    """

    record: ClickRecord
    prior: np.ndarray | None
    restart: bool


@dataclass
class ObjectState:
    """The object being edited: its id and, per plane touched, the labels around it."""

    object_id: int
    original: dict[int, np.ndarray] = field(default_factory=dict)
    base: dict[int, np.ndarray] = field(default_factory=dict)
    written: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def planes(self) -> list[int]:
        """Planes where the object has pixels (as last written), sorted."""
        return sorted(p for p, m in self.written.items() if m.any())


def next_label_id(labels: np.ndarray) -> int:
    """The smallest id above every id in ``labels`` (1 for an empty array)."""
    labels = np.asarray(labels)
    return int(labels.max()) + 1 if labels.size else 1


def compose(
    base: np.ndarray, mask: np.ndarray, object_id: int, *, overwrite: bool = False
) -> np.ndarray:
    """Paint ``mask`` into a copy of ``base`` under ``object_id``.

    Parameters
    ----------
    base : ndarray of shape (M, N), integer
        Labels without the object.
    mask : ndarray of shape (M, N), bool
        The object.
    object_id : int
        Its id.
    overwrite : bool
        If False, pixels of other labels are kept; if True the object covers them.

    Returns
    -------
    ndarray of shape (M, N), dtype of ``base``
    """
    base = np.asarray(base)
    mask = np.asarray(mask, dtype=bool)
    if base.shape != mask.shape:
        raise ValueError(f"mask has shape {mask.shape}, the labels have shape {base.shape}")
    out = base.copy()
    out[mask if overwrite else mask & (base == 0)] = object_id
    return out


def changed_indices(old: np.ndarray, new: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Indices where ``new`` differs from ``old`` and the new values there."""
    indices = np.nonzero(np.asarray(old) != np.asarray(new))
    return indices, np.asarray(new)[indices]


def as_volume(
    data: np.ndarray, *, rgb: bool = False, channel: int | None = None
) -> tuple[np.ndarray, bool]:
    """Bring image data to planes: (P, M, N) grey or (P, M, N, C) RGB.

    Parameters
    ----------
    data : array of shape (M, N), (P, M, N), (M, N, C) with ``rgb``, (P, M, N, C)
        with ``rgb``, or with ``channel``: (C, M, N) or (C, P, M, N)
        Image data (numpy or any array supporting ``__getitem__``).
    rgb : bool
        The last axis holds RGB(A) channels.
    channel : int, optional
        Take this index of the first axis (a channel axis).

    Returns
    -------
    volume : array of shape (P, M, N) or (P, M, N, C)
        A view where possible (lazy arrays stay lazy).
    is_volume : bool
        Whether the input had a plane axis (False for a 2-D image).
    """
    ndim = len(data.shape)
    if channel is not None:
        if rgb:
            raise ValueError("pick a channel or use RGB data, not both")
        if ndim not in (3, 4):
            raise ValueError(
                f"a channel can only be picked from 3-D (C, M, N) or 4-D (C, P, M, N) data, "
                f"got shape {tuple(data.shape)}"
            )
        if not 0 <= channel < data.shape[0]:
            raise ValueError(f"channel {channel} is out of range for {data.shape[0]} channels")
        data = data[channel]
        ndim -= 1
    spatial = ndim - (1 if rgb else 0)
    if spatial not in (2, 3):
        raise ValueError(
            f"expected a 2-D image or a 3-D stack (planes, rows, cols); got data of shape "
            f"{tuple(data.shape)}{' (RGB)' if rgb else ''}. For 4-D or time-lapse data, "
            "pick a channel or take one volume first."
        )
    if any(s == 0 for s in data.shape):
        raise ValueError(f"the image is empty (shape {tuple(data.shape)})")
    if spatial == 2:
        return data[None], False
    return data, True


def _plane_image(volume, plane: int) -> np.ndarray:
    return np.asarray(volume[plane])


def run_click_jobs(
    predictor,
    volume,
    jobs: Sequence[ClickJob],
    *,
    rgb: bool = False,
) -> tuple[int, int, np.ndarray]:
    """Run clicks of one object on one plane through the predictor (worker side).

    Parameters
    ----------
    predictor : BasePredictor
    volume : array of shape (P, M, N) or (P, M, N, C)
    jobs : sequence of ClickJob
        Clicks sharing one (object_id, plane), in order.
    rgb : bool
        The volume's last axis holds channels.

    Returns
    -------
    object_id, plane, mask : int, int, ndarray of shape (M, N), bool
    """
    if not jobs:
        raise ValueError("no click to run")
    key = jobs[0].record.key
    if any(job.record.key != key for job in jobs):
        raise ValueError("all clicks of one run must share the object and the plane")
    mask = None
    for job in jobs:
        rec = job.record
        if job.restart:
            predictor.set_image(
                _plane_image(volume, rec.plane),
                channel_axis=-1 if rgb else None,
                contrast_limits=rec.contrast_limits,
            )
            predictor.set_prior_mask(job.prior)
        mask = predictor.add_click(rec.row, rec.col, positive=rec.positive)
    return key[0], key[1], mask


class Annotation:
    """Objects and commit rules over a labels volume of shape (P, M, N).

    The caller owns the labels array (the napari layer, or a numpy array in
    :func:`replay`), hands in the current plane's labels and writes back what
    these methods return.
    """

    def __init__(self) -> None:
        self.current: ObjectState | None = None
        # (object_id, plane) whose clicks the predictor holds; None: restart next time
        self.predictor_key: tuple[int, int] | None = None

    # ----- objects -----
    def start_object(self, object_id: int) -> ObjectState:
        """Make ``object_id`` the current object (a new id, or an existing label to refine)."""
        object_id = int(object_id)
        if object_id <= 0:
            raise ValueError(f"object ids must be positive, got {object_id}")
        self.current = ObjectState(object_id)
        self.predictor_key = None
        return self.current

    def commit(self) -> ObjectState | None:
        """Close the current object; its pixels stay as written. Returns it."""
        obj, self.current = self.current, None
        self.predictor_key = None
        return obj

    def clear(self, read_plane: Callable[[int], np.ndarray]) -> dict[int, np.ndarray]:
        """Drop the current object: the planes it touched, restored.

        ``read_plane(p)`` returns the labels of plane ``p`` as they are now.
        Pixels of other ids edited since are kept.
        """
        obj = self.commit()
        if obj is None:
            return {}
        restored = {}
        for plane, original in obj.original.items():
            now = np.asarray(read_plane(plane))
            ours = (now == obj.object_id) | (original == obj.object_id)
            restored[plane] = np.where(ours, original, now).astype(now.dtype, copy=False)
        return restored

    def sync_plane(self, plane: int, plane_labels: np.ndarray) -> tuple[np.ndarray, bool]:
        """Register a plane of the current object; re-read it if edited outside.

        Returns
        -------
        mask : ndarray of shape (M, N), bool
            The object's pixels on the plane now (the prior for the predictor).
        changed : bool
            True if the plane is new to the object or was edited outside.
        """
        obj = self._require_object()
        plane_labels = np.asarray(plane_labels)
        mask = plane_labels == obj.object_id
        if plane not in obj.base:
            obj.original[plane] = plane_labels.copy()
            obj.base[plane] = np.where(mask, 0, plane_labels).astype(plane_labels.dtype)
            changed = True
        elif not np.array_equal(mask, obj.written[plane]):
            obj.base[plane] = np.where(mask, obj.base[plane], plane_labels).astype(
                plane_labels.dtype
            )
            changed = True
        else:
            changed = False
        obj.written[plane] = mask
        return mask, changed

    def click_job(self, record: ClickRecord, plane_labels: np.ndarray) -> ClickJob:
        """The job for one click on the current object (GUI side, before the worker)."""
        obj = self._require_object()
        if record.object_id != obj.object_id:
            raise ValueError(
                f"click for object {record.object_id} but the current object is {obj.object_id}"
            )
        prior, changed = self.sync_plane(record.plane, plane_labels)
        restart = changed or self.predictor_key != record.key
        self.predictor_key = record.key
        return ClickJob(record, prior if restart else None, restart)

    def apply_mask(
        self,
        object_id: int,
        plane: int,
        mask: np.ndarray,
        plane_labels: np.ndarray,
        *,
        overwrite: bool = False,
    ) -> np.ndarray | None:
        """The plane's new labels for a model result, or None if the object is gone.

        A plane the object has not touched yet (propagation) is registered first.
        """
        obj = self.current
        if obj is None or obj.object_id != object_id:
            return None
        if plane not in obj.base or not np.array_equal(
            np.asarray(plane_labels) == object_id, obj.written[plane]
        ):
            self.sync_plane(plane, plane_labels)
        new = compose(obj.base[plane], mask, object_id, overwrite=overwrite)
        obj.written[plane] = new == object_id
        return new

    def _require_object(self) -> ObjectState:
        if self.current is None:
            raise RuntimeError("start an object (start_object) before clicking")
        return self.current


# ----- click tables -----
def stop_plane(
    records: Iterable[ClickRecord], object_id: int, start: int, direction: int
) -> int | None:
    """The nearest plane beyond ``start`` holding only negative clicks of the object.

    Such a plane is a "stop here" marker for propagation.
    """
    if direction not in (-1, 1):
        raise ValueError(f"direction must be +1 or -1, got {direction}")
    by_plane: dict[int, list[bool]] = {}
    for rec in records:
        if rec.object_id == object_id:
            by_plane.setdefault(rec.plane, []).append(rec.positive)
    stops = [
        p
        for p, pol in by_plane.items()
        if not any(pol) and (p - start) * direction > 0
    ]
    if not stops:
        return None
    return min(stops, key=lambda p: abs(p - start))


def annotated_planes(records: Iterable[ClickRecord], object_id: int) -> list[int]:
    """Planes with at least one positive click of the object, sorted."""
    return sorted({r.plane for r in records if r.object_id == object_id and r.positive})


def records_to_table(records: Sequence[ClickRecord]) -> dict[str, list]:
    """Columns (``CLICK_COLUMNS``) for a CSV file."""
    table = {name: [] for name in CLICK_COLUMNS}
    for r in records:
        low, high = r.contrast_limits if r.contrast_limits is not None else (np.nan, np.nan)
        values = (
            r.order,
            r.object_id,
            r.plane,
            r.row,
            r.col,
            POSITIVE if r.positive else NEGATIVE,
            bool(r.overwrite),
            low,
            high,
        )
        for name, value in zip(CLICK_COLUMNS, values):
            table[name].append(value)
    return table


def records_from_table(table) -> list[ClickRecord]:
    """Click records from columns (a dict of sequences or a DataFrame), in click order."""
    missing = [c for c in ("object_id", "row", "col", "label") if c not in table]
    if missing:
        raise ValueError(f"the click table lacks the column(s) {', '.join(missing)}")
    n = len(table["row"])
    col = lambda name, default: list(table[name]) if name in table else [default] * n
    records = []
    for order, oid, plane, row, c, label, over, low, high in zip(
        col("order", None),
        col("object_id", 0),
        col("plane", 0),
        col("row", 0.0),
        col("col", 0.0),
        col("label", POSITIVE),
        col("overwrite", False),
        col("contrast_low", np.nan),
        col("contrast_high", np.nan),
    ):
        label = str(label)
        if label not in (POSITIVE, NEGATIVE):
            raise ValueError(f"click label must be {POSITIVE!r} or {NEGATIVE!r}, got {label!r}")
        limits = None
        if low is not None and high is not None and np.isfinite(low) and np.isfinite(high):
            limits = (float(low), float(high))
        if isinstance(over, str):
            over = over.strip().lower() in ("true", "1", "yes")
        records.append(
            ClickRecord(
                object_id=int(oid),
                plane=int(plane),
                row=float(row),
                col=float(c),
                positive=label == POSITIVE,
                order=len(records) if order is None else int(order),
                overwrite=bool(over),
                contrast_limits=limits,
            )
        )
    return sorted(records, key=lambda r: r.order)


def replay(
    predictor,
    volume,
    records: Sequence[ClickRecord],
    labels: np.ndarray | None = None,
    *,
    rgb: bool = False,
) -> np.ndarray:
    """Re-run saved clicks and return the labels they produce.

    Parameters
    ----------
    predictor : BasePredictor
    volume : array of shape (P, M, N) or (P, M, N, C)
        The image as planes (see :func:`as_volume`).
    records : sequence of ClickRecord
        Clicks; run in ``order``. A change of ``object_id`` commits the object.
    labels : ndarray of shape (P, M, N), optional
        Starting labels (objects refined by the clicks); default all zeros.
    rgb : bool
        The volume's last axis holds channels.

    Returns
    -------
    ndarray of shape (P, M, N), uint32 or the dtype of ``labels``
    """
    spatial = tuple(volume.shape[:3])
    if labels is None:
        labels = np.zeros(spatial, dtype=np.uint32)
    else:
        labels = np.array(labels, copy=True)
        if labels.shape != spatial:
            raise ValueError(f"labels have shape {labels.shape}, the image has {spatial}")
    annotation = Annotation()
    for rec in sorted(records, key=lambda r: r.order):
        if not 0 <= rec.plane < spatial[0]:
            raise ValueError(f"click {rec} lies outside the {spatial[0]} plane(s)")
        if annotation.current is None or annotation.current.object_id != rec.object_id:
            annotation.commit()
            annotation.start_object(rec.object_id)
        job = annotation.click_job(rec, labels[rec.plane])
        oid, plane, mask = run_click_jobs(predictor, volume, [job], rgb=rgb)
        new = annotation.apply_mask(oid, plane, mask, labels[plane], overwrite=rec.overwrite)
        labels[plane] = new
    return labels
