"""Predictors to compare against, and the ``--model`` names of the evaluation tool.

* :class:`RandomWalkerPredictor`: scikit-image's random walker seeded by the
  clicks, the classical "no learned model" baseline (setup of
  ``design/baselines-dev.md``);
* ``mobilesam``: :class:`napari_inter2former.evaluation.mobilesam.MobileSAMPredictor`
  (SAM prompt encoder + mask decoder on the TinyViT embedding), imported lazily;
* :func:`load_predictor`: a ``--model`` value -> a predictor.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..predictor import NOISY_SMALL_IMAGE_SMOOTHING, BasePredictor, Click

__all__ = ["RandomWalkerPredictor", "load_predictor", "MODEL_NAMES"]

# the packaged model with the Predictor's defaults, or with one setting changed
DEFAULT_VARIANTS: dict[str, dict] = {
    "default": {},
    "default-zoom": {"zoom_in": True},
    "default-no-zoom": {"zoom_in": None},
    "default-smooth": {"smooth_noisy": NOISY_SMALL_IMAGE_SMOOTHING},
    "default-no-stretch": {"stretch_faint": None},
    "default-all-regions": {"keep_clicked_regions": False},
    "default-no-cut": {"cut_at_negative_clicks": False},
    "default-no-merge": {"merge_at_click": None},
    "default-merge": {"merge_at_click": "signed"},
    "default-merge-all": {"merge_at_click": "all"},
    "default-box": {"boundary_rule": "box"},
    "default-dlu-clicked": {"dlu_rule": "clicked"},
    "default-dlu-threshold": {"dlu_rule": "threshold"},
    "default-refine": {"refine_boundary": True},
    "default-no-refine": {"refine_boundary": False},
    "default-refine-auto": {"refine_smooth": "auto"},
    "default-refine-noblur": {"refine_smooth": 0.0},
    "default-refine-grow-only": {"refine_shrink_at_negative": False},
    "default-refine-clicks": {"refine_clicks": True},
    "default-refine-no-clicks": {"refine_clicks": False},
    "default-refine-shrink-neg": {"refine_shrink_at_negative": True},
    "default-refine-shrink": {"refine_shrink": True},
    "default-refine-shrink-first": {"refine_shrink": "first"},
    "default-refine-grow": {"refine_shrink": False},
    "default-refine-half-way": {"refine_level": 0.5},
    "default-flip": {"flip_ensemble": "first"},
    "default-no-flip": {"flip_ensemble": None},
    "default-flip-every": {"flip_ensemble": "every"},
    "default-split": {"split_first_click": True},
    "default-no-split": {"split_first_click": False},
    "default-redecode": {"redecode": "first"},
    "default-redecode-2": {"redecode": "first", "redecode_rounds": 2},
    "default-redecode-every": {"redecode": "every"},
    "default-no-redecode": {"redecode": None},
    "default-flip-first-pass": {"flip_passes": "first"},
    "default-flip-last-pass": {"flip_passes": "last"},
    "default-no-tiles": {"tiles": None},
    "default-sam-photo": {"blend_sam": "photo"},
    "default-sam-colour": {"blend_sam": "colour"},
    "default-no-sam": {"blend_sam": None},
    "default-sam-always": {"blend_sam": "always"},
    "default-sam-score": {"sam_agreement": 0.0},
    "default-sam-fixed-weight": {"sam_weight_large": None},
}
MODEL_NAMES = (*DEFAULT_VARIANTS, "mobilesam", "random-walker", "fake")


class RandomWalkerPredictor(BasePredictor):
    """Random walker segmentation seeded by the clicks (scikit-image).

    The walker runs on a crop: the bounding box of all clicks grown on every
    side by ``max(margin, longest side of the box)``. The crop's border and
    discs of radius ``seed_radius`` around negative clicks are background
    seeds, discs around positive clicks foreground seeds; everything outside
    the crop is background. With no positive click the mask is empty. A prior
    mask is returned until the first click and otherwise unused.

    Parameters
    ----------
    beta : float
        Edge penalty of :func:`skimage.segmentation.random_walker`.
    margin : int
        Smallest growth of the crop around the clicks, in pixels.
    seed_radius : int
        Radius of the seed discs, in pixels.
    """

    model_id = "random-walker"

    def __init__(self, beta: float = 130.0, margin: int = 32, seed_radius: int = 3) -> None:
        super().__init__()
        if margin < 1 or seed_radius < 0:
            raise ValueError(f"margin must be >= 1 and seed_radius >= 0, got {margin}, {seed_radius}")
        self.beta = beta
        self.margin = margin
        self.seed_radius = seed_radius
        self._data: np.ndarray | None = None

    def _encode(self, rgb: np.ndarray) -> None:
        data = rgb.astype(np.float64) / 255.0
        grey = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
        self._data = data[..., 0] if grey else data

    def _start(self, prior: np.ndarray | None) -> None:
        pass

    def _predict(self, click: Click) -> np.ndarray:
        from skimage.segmentation import random_walker

        shape = self._data.shape[:2]
        clicks = self._clicks
        mask = np.zeros(shape, dtype=bool)
        if not any(c.positive for c in clicks):
            return mask
        rows = np.array([int(c.row) for c in clicks])
        cols = np.array([int(c.col) for c in clicks])
        grow = max(self.margin, int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1)
        r0, r1 = max(rows.min() - grow, 0), min(rows.max() + grow + 1, shape[0])
        c0, c1 = max(cols.min() - grow, 0), min(cols.max() + grow + 1, shape[1])
        seeds = np.zeros((r1 - r0, c1 - c0), dtype=np.int32)
        seeds[[0, -1], :] = 2
        seeds[:, [0, -1]] = 2
        rr, cc = np.ogrid[r0:r1, c0:c1]
        for c in sorted(clicks, key=lambda c: c.positive):  # positive discs win
            disc = (rr - int(c.row)) ** 2 + (cc - int(c.col)) ** 2 <= self.seed_radius**2
            seeds[disc] = 1 if c.positive else 2
        crop = self._data[r0:r1, c0:c1]
        channel_axis = -1 if crop.ndim == 3 else None
        with warnings.catch_warnings():  # "probability range outside [0, 1]": harmless here
            warnings.simplefilter("ignore", UserWarning)
            labels = random_walker(crop, seeds, beta=self.beta, mode="cg_j",
                                   channel_axis=channel_axis)
        mask[r0:r1, c0:c1] = labels == 1
        return mask


def _set_torch_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(max(1, int(threads)))


def load_predictor(spec: str, *, threads: int | None = 2) -> BasePredictor:
    """The predictor named by a ``--model`` value.

    Parameters
    ----------
    spec : str
        ``default`` (the packaged Inter2Former weights), ``default-zoom`` (the same
        with the session-3 zoom-in, ``ZoomIn()``: any object under 0.6 of the image
        zoomed from its second click on), ``default-no-zoom`` (never zoomed in:
        ``zoom_in=None``, the predictor before session 27), ``default-smooth``
        (noisy grey images of at most 128 px smoothed:
        ``smooth_noisy=NOISY_SMALL_IMAGE_SMOOTHING``, session 28), ``default-all-regions``
        (the same keeping every predicted region: ``keep_clicked_regions=False``),
        ``default-no-cut`` (the same without the cut at negative clicks:
        ``cut_at_negative_clicks=False``), ``default-box`` (the same with the
        decoder's DPE-box rule instead of full attention for every token:
        ``boundary_rule='box'``, the predictor before session 5),
        ``default-dlu-clicked`` / ``default-dlu-threshold`` (local upsampling of the
        localiser's token groups that hold a positive click / of all its tokens:
        ``dlu_rule``), ``default-refine`` / ``default-no-refine`` (with / without
        :func:`~napari_inter2former.predictor.refine_boundary`), ``default-refine-auto`` /
        ``default-refine-noblur`` (the outline step blurring noisy objects first, the
        default, / never: ``refine_smooth``), ``default-refine-grow-only`` /
        ``default-refine-shrink-neg`` (the outline step shrinking the mask only where a
        negative click on the band says so, the default, / after every negative click:
        ``refine_shrink_at_negative``), ``default-refine-shrink`` (after every
        click: ``refine_shrink``), ``default-refine-shrink-first`` /
        ``default-refine-grow`` (after an object's first click only / never:
        ``refine_shrink="first"`` / ``False``), ``default-refine-clicks`` /
        ``default-refine-no-clicks`` (the outline step learning the outline's colour
        from the clicks on it, the default, / not: ``refine_clicks``),
        ``default-refine-half-way`` (the outline at half-way colour instead of 0.35 of
        the way: ``refine_level=0.5``; the session-11 outline step is
        ``default-refine-no-clicks+default-refine-shrink-neg+default-refine-half-way``),
        ``default-flip`` / ``default-no-flip`` / ``default-flip-every`` (the first
        click of an object averaged over the image's flips, the default, / one view
        / every click averaged: ``flip_ensemble``), ``default-split`` /
        ``default-no-split`` (the first mask split at narrow necks / not, the default:
        ``split_first_click``), ``default-redecode`` / ``default-redecode-2`` /
        ``default-redecode-every`` / ``default-no-redecode`` (an object's first click
        decoded again from its own mask, once / twice, every click so, or not, the
        default: ``redecode``, ``redecode_rounds``), ``default-flip-first-pass`` /
        ``default-flip-last-pass`` (the turned view averaged into only the first /
        the last of the first click's decodes: ``flip_passes``), ``default-no-tiles``
        (objects of images larger than the network input segmented on the whole
        image, resized: ``tiles=None``), ``default-sam-photo`` / ``default-sam-colour`` /
        ``default-no-sam`` / ``default-sam-always`` (every click blended with MobileSAM's mask
        decoder on photographs, the default, / on colour images / never / on every image:
        ``blend_sam``), ``default-sam-score`` (SAM's first mask picked by its predicted
        IoU alone: ``sam_agreement=0``), ``default-sam-fixed-weight`` (SAM's weight in the
        blend the same for large masks: ``sam_weight_large=None``), ``mobilesam``,
        ``random-walker``, ``fake`` (:class:`~napari_inter2former.testing.FakePredictor`),
        several variants joined by ``+`` (their settings together, e.g.
        ``default-refine-clicks+default-refine-grow-only``),
        the path of an Inter2Former decoder weight file, or ``VARIANT:PATH``
        (that decoder with a ``default-*`` variant's settings, e.g.
        ``default-dlu-clicked:run.safetensors``).
    threads : int, optional
        torch intra-op threads for the torch models.

    Raises
    ------
    ValueError
        If ``spec`` is neither a known name nor an existing file.
    """
    if spec == "fake":
        from ..testing import FakePredictor

        return FakePredictor()
    if spec == "random-walker":
        return RandomWalkerPredictor()
    if spec == "mobilesam":
        _set_torch_threads(threads)
        from .mobilesam import MobileSAMPredictor

        return MobileSAMPredictor.from_pretrained()
    if _is_variant(spec):
        from ..predictor import Predictor

        return Predictor.from_pretrained(num_threads=threads, **_variant_settings(spec))
    variant, sep, rest = spec.partition(":")
    if sep and _is_variant(variant):
        path, settings = Path(rest), _variant_settings(variant)
    else:
        path, settings = Path(spec), {}
    if not path.is_file():
        raise ValueError(
            f"--model {spec!r} is neither one of {', '.join(MODEL_NAMES)} nor an existing "
            "file (or VARIANT:FILE)"
        )
    from ..predictor import Predictor

    return Predictor.from_pretrained(decoder_weights=str(path), num_threads=threads, **settings)


def _is_variant(name: str) -> bool:
    """Whether ``name`` is a ``default-*`` variant or several joined by ``+``."""
    return all(part in DEFAULT_VARIANTS for part in name.split("+"))


def _variant_settings(name: str) -> dict:
    """Predictor keyword arguments of a ``default-*`` variant (``a+b``: both, b's win)."""
    settings = {}
    for part in name.split("+"):
        settings.update(DEFAULT_VARIANTS[part])
    if settings.get("zoom_in") is True:
        from ..predictor import ZoomIn

        settings["zoom_in"] = ZoomIn()
    return settings
