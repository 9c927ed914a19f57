"""Predictor post-processing of the decoder's logits.

``keep_clicked_regions``: only predicted regions that hold a positive click stay.
``cut_at_negative_clicks``: a negative click inside the mask removes its part of the mask
(the whole region when no positive click is given and it lands near the region's middle).

A stub model stands in for the network: its "logits" are positive on positive click discs
and on possibly-foreground pixels (the prior mask, then the previous prediction).
"""

import numpy as np
import torch
from stub_models import ClickDiscModel

from napari_inter2former.constants import (
    DEFINITELY_BACKGROUND,
    DEFINITELY_FOREGROUND,
    OUTSIDE_LOGIT,
    POSSIBLY_FOREGROUND,
)
from napari_inter2former.predictor import (
    Predictor,
    cut_at_negative_clicks,
    edge_landscape,
    keep_regions_at,
)


def two_blobs():
    prior = np.zeros((128, 128), bool)
    prior[20:40, 20:40] = True
    prior[80:100, 80:100] = True
    return prior


def make(**kwargs):
    predictor = Predictor(ClickDiscModel(), **kwargs)
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


def two_touching_nuclei():
    """A dim and a bright square sharing a border, the second one textured."""
    image = np.zeros((128, 128), np.uint8)
    image[30:70, 20:60] = 90
    image[30:70, 60:100] = 200
    image[30:70:4, 60:100] += 40  # stripes: edges inside the bright square
    both = np.zeros((128, 128), bool)
    both[30:70, 20:100] = True
    return image, both


def test_cut_drops_the_part_a_negative_click_floods():
    image, both = two_touching_nuclei()
    landscape = edge_landscape(image, sigma=1.0)
    logits = torch.where(torch.from_numpy(both), 5.0, -5.0)[None, None]
    cut = cut_at_negative_clicks(logits, [(50, 40)], [(50, 80)], landscape)[0, 0].numpy()
    assert (cut[32:68, 22:58] > 0).all()  # the clicked dim square stays
    assert (cut[30:70, 62:100] == OUTSIDE_LOGIT).all()  # the textured bright one goes whole
    # the other way round: the bright square stays although its stripes are edges
    cut = cut_at_negative_clicks(logits, [(50, 80)], [(50, 40)], landscape)[0, 0].numpy()
    assert (cut[30:70, 62:100] > 0).all() and (cut[30:70, 20:58] == OUTSIDE_LOGIT).all()


def test_no_cut_unless_both_signs_are_inside_the_mask():
    image, both = two_touching_nuclei()
    logits = torch.where(torch.from_numpy(both), 5.0, -5.0)[None, None]

    def landscape():
        raise AssertionError("the landscape is computed only for a cut")

    assert cut_at_negative_clicks(logits, [(50, 40)], [(10, 10)], landscape) is logits
    assert cut_at_negative_clicks(logits, [(10, 10)], [(50, 80)], landscape) is logits
    assert cut_at_negative_clicks(logits, [], [(10, 10)], landscape) is logits


def test_without_a_positive_click_a_central_negative_click_drops_its_region():
    image, both = two_touching_nuclei()
    blobs = both.copy()
    blobs[100:120, 100:120] = True  # a separate region, not clicked
    logits = torch.where(torch.from_numpy(blobs), 5.0, -5.0)[None, None]

    def landscape():
        raise AssertionError("dropping a whole region needs no watershed")

    cut = cut_at_negative_clicks(logits, [], [(50, 58)], landscape)[0, 0].numpy()
    assert (cut[30:70, 20:100] == OUTSIDE_LOGIT).all()
    assert (cut[100:120, 100:120] > 0).all()


def test_without_a_positive_click_an_off_centre_negative_click_cuts_its_part():
    image = np.zeros((128, 128), np.uint8)
    image[45:65, 10:50] = 90  # a thin dim appendix ...
    image[20:100, 50:110] = 200  # ... of a large bright square: the region's middle
    region = image > 0
    logits = torch.where(torch.from_numpy(region), 5.0, -5.0)[None, None]
    cut = cut_at_negative_clicks(logits, [], [(55, 20)], edge_landscape(image, 1.0))[0, 0].numpy()
    assert (cut[45:65, 10:48] == OUTSIDE_LOGIT).all()  # the clicked appendix goes
    assert (cut[22:98, 52:108] > 0).all()  # the middle of the region stays


class NegativeBlindModel(ClickDiscModel):
    """Like the shipped decoder on a leak: the negative disc stays foreground."""

    def decode(self, features, ref, boundary_rule=None, dlu_rule="threshold"):
        fg = (ref == DEFINITELY_FOREGROUND) | (ref == POSSIBLY_FOREGROUND)
        return torch.where(fg | (ref == DEFINITELY_BACKGROUND), 10.0, -10.0)


def test_a_negative_click_on_a_leak_removes_the_neighbour_and_undo_restores_it():
    image, both = two_touching_nuclei()
    for cut in (True, False):
        predictor = Predictor(NegativeBlindModel(), cut_at_negative_clicks=cut)
        predictor.set_image(image)
        predictor.set_prior_mask(both)
        predictor.add_click(50, 40)
        mask = predictor.add_click(50, 80, positive=False)
        assert mask[32:68, 22:58].all()
        assert mask[30:70, 62:100].any() != cut
    predictor = Predictor(NegativeBlindModel())
    predictor.set_image(image)
    predictor.set_prior_mask(both)
    predictor.add_click(50, 40)
    predictor.add_click(50, 80, positive=False)
    # the cut part is background in the reference map: it stays away on the next click
    assert not predictor.add_click(52, 40)[30:70, 62:100].any()
    assert not predictor.undo_click()[30:70, 62:100].any()
    assert predictor.undo_click()[30:70, 62:100].all()


def test_a_negative_click_in_the_middle_of_a_propagated_mask_removes_it():
    image, both = two_touching_nuclei()
    predictor = Predictor(NegativeBlindModel())
    predictor.set_image(image)
    predictor.set_prior_mask(both)  # e.g. leaked onto this plane by propagation
    assert not predictor.add_click(50, 60, positive=False).any()
    # a positive click afterwards starts from the emptied mask
    assert not predictor.add_click(50, 40)[30:70, 62:100].any()


def _logits(mask):
    return torch.where(torch.from_numpy(mask), 5.0, -5.0)[None, None].float()


def test_split_at_necks_keeps_the_clicked_blob_of_two_touching_ones():
    from stub_models import DumbbellModel

    from napari_inter2former.predictor import split_at_necks

    left, right = DumbbellModel.dumbbell()
    logits = _logits(left | right)
    far_left, far_right = left.copy(), right.copy()  # each disc beyond the waist
    far_left[:, 48:] = False
    far_right[:, :58] = False
    for seed, mine, other in (((60, 40), left, far_right), ((60, 70), right, far_left)):
        kept = split_at_necks(logits, seed)[0, 0].numpy() > 0
        assert (kept & mine).sum() >= 0.9 * mine.sum() and not (kept & other).any()
        assert not (kept & ~(left | right)).any()


def test_split_at_necks_leaves_wide_waists_elongated_shapes_and_misses_alone():
    from napari_inter2former.predictor import split_at_necks

    rr, cc = np.ogrid[:128, :128]
    wide = ((rr - 60) ** 2 + (cc - 40) ** 2 <= 15**2) | ((rr - 60) ** 2 + (cc - 62) ** 2 <= 12**2)
    ellipse = ((rr - 60) / 10) ** 2 + ((cc - 64) / 45) ** 2 <= 1
    for mask, seed in ((wide, (60, 40)), (ellipse, (60, 30)), (ellipse, (0, 0))):
        logits = _logits(mask)
        assert split_at_necks(logits, seed) is logits


def test_the_first_click_only_is_split_at_necks():
    from stub_models import DumbbellModel

    left, right = DumbbellModel.dumbbell()
    predictor = Predictor(
        DumbbellModel(), flip_ensemble=None, refine_boundary=False, split_first_click=True
    )
    predictor.set_image(np.zeros((128, 128), dtype=np.uint8))
    first = predictor.add_click(60, 40)
    assert (first & left).sum() >= 0.9 * left.sum() and not first[50:70, 66:78].any()
    second = predictor.add_click(60, 70)  # the user wants both: a later click is not split
    np.testing.assert_array_equal(second, left | right)
    predictor.split_first_click = False
    predictor.reset()
    np.testing.assert_array_equal(predictor.add_click(60, 40), left | right)


def test_a_region_cut_by_the_image_edge_is_as_deep_as_if_it_went_on():
    from napari_inter2former.predictor import _depth

    rr, cc = np.ogrid[:21, :41]
    half_disc = rr**2 + (cc - 20) ** 2 <= 20**2  # the lower half of a disc of radius 20
    assert abs(_depth(half_disc, (True, False, False, False)).max() - 21) <= 1
    assert _depth(half_disc, (False,) * 4).max() <= 11  # its box's top taken as background
