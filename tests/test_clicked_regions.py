"""Predictor(keep_clicked_regions=True): only predicted regions that hold a positive click stay.

A stub model stands in for the network: its "logits" are positive on positive click discs
and on possibly-foreground pixels (the prior mask, then the previous prediction).
"""

import numpy as np
import torch

from napari_inter2former.constants import (
    DEFINITELY_FOREGROUND,
    OUTSIDE_LOGIT,
    POSSIBLY_FOREGROUND,
)
from napari_inter2former.predictor import Predictor, keep_regions_at


class StubModel(torch.nn.Module):
    image_size = 128
    model_id = "stub"

    def preprocess(self, rgb):
        return rgb

    def encode(self, rgb):
        return rgb.shape[:2]

    def decode(self, features, ref):
        fg = (ref == DEFINITELY_FOREGROUND) | (ref == POSSIBLY_FOREGROUND)
        return torch.where(fg, 10.0, -10.0)


def two_blobs():
    prior = np.zeros((128, 128), bool)
    prior[20:40, 20:40] = True
    prior[80:100, 80:100] = True
    return prior


def make(**kwargs):
    predictor = Predictor(StubModel(), **kwargs)
    predictor.set_image(np.zeros((128, 128), dtype=np.uint8))
    return predictor


def test_regions_without_a_positive_click_are_dropped_and_stay_background():
    predictor = make()
    predictor.set_prior_mask(two_blobs())
    mask = predictor.add_click(30, 30)
    assert mask[20:40, 20:40].all() and not mask[80:100, 80:100].any()
    # the dropped blob is background in the reference map too: it does not come back
    mask = predictor.add_click(30, 32)
    assert not mask[80:100, 80:100].any()
    # a positive click on it brings it back (a second part of the object)
    mask = predictor.add_click(90, 90)
    assert mask[20:40, 20:40].all() and mask[85:95, 85:95].any()
    # undo restores the state before that click
    assert not predictor.undo_click()[80:100, 80:100].any()


def test_switched_off_or_without_positive_click_every_region_stays():
    predictor = make(keep_clicked_regions=False)
    predictor.set_prior_mask(two_blobs())
    mask = predictor.add_click(30, 30)
    assert mask[20:40, 20:40].all() and mask[80:100, 80:100].all()
    predictor = make()
    predictor.set_prior_mask(two_blobs())
    mask = predictor.add_click(60, 60, positive=False)  # no positive click yet
    assert mask[20:40, 20:40].all() and mask[80:100, 80:100].all()


def test_keep_regions_at_reaches_a_region_within_the_click_disc():
    logits = torch.full((1, 1, 64, 64), -5.0)
    logits[0, 0, 10:20, 10:20] = 5.0
    logits[0, 0, 40:50, 40:50] = 5.0
    kept = keep_regions_at(logits, [(22, 15)], radius=3)  # 3 px below the first square
    assert (kept[0, 0, 10:20, 10:20] > 0).all()
    assert (kept[0, 0, 40:50, 40:50] == OUTSIDE_LOGIT).all()
    # no region reached: nothing to choose by, logits unchanged
    assert keep_regions_at(logits, [(30, 30)], radius=3) is logits
    assert keep_regions_at(logits, [], radius=3) is logits
