"""Evaluation of interactive segmentation: simulated clicks, metrics, the click loop.

Model-independent: every predictor implementing
:class:`napari_inter2former.predictor.BasePredictor` can be evaluated. The
command line tool is ``inter2former-eval`` (:mod:`.__main__`).
"""

from .clicker import Click, Clicker, depth_map, next_click
from .datasets import Sample, load_dataset, object_views_2d
from .loop import (
    evaluate_dataset,
    evaluate_dataset_3d,
    evaluate_object,
    evaluate_volume_object,
    summarize,
)
from .metrics import boundary_iou, iou, noc, summarize_ious

__all__ = [
    "Click",
    "Clicker",
    "depth_map",
    "next_click",
    "Sample",
    "load_dataset",
    "object_views_2d",
    "evaluate_dataset",
    "evaluate_dataset_3d",
    "evaluate_object",
    "evaluate_volume_object",
    "summarize",
    "boundary_iou",
    "iou",
    "noc",
    "summarize_ious",
]
