"""Progressive merge: a click changes the mask only in the changed region it lies in."""

import numpy as np
import torch

from napari_inter2former.constants import DEFINITELY_FOREGROUND, POSSIBLY_FOREGROUND
from napari_inter2former.predictor import Predictor, merge_at_click


def as_logits(mask):
    return torch.where(torch.from_numpy(mask)[None, None], 10.0, -10.0)


def squares(*boxes, size=64):
    mask = np.zeros((size, size), bool)
    for r0, r1, c0, c1 in boxes:
        mask[r0:r1, c0:c1] = True
    return mask


def test_only_the_change_at_the_click_is_taken():
    previous = squares((10, 20, 10, 20))
    # the new prediction grows the object at the click and, far from it, drops it
    new = squares((40, 50, 40, 50))
    merged = merge_at_click(as_logits(new), as_logits(previous), (45, 45)) > 0
    assert torch.equal(merged[0, 0], torch.from_numpy(squares((10, 20, 10, 20), (40, 50, 40, 50))))
    # a click in the dropped square takes the drop only
    merged = merge_at_click(as_logits(new), as_logits(previous), (15, 15)) > 0
    assert not merged.any()


def test_a_change_within_the_click_disc_counts():
    previous = squares((10, 20, 10, 20))
    new = squares((10, 20, 10, 20), (30, 34, 30, 34))
    merged = merge_at_click(as_logits(new), as_logits(previous), (27, 27), radius=5) > 0
    assert merged[0, 0, 31, 31]
    merged = merge_at_click(as_logits(new), as_logits(previous), (27, 27), radius=2)
    assert merged is not None and (merged > 0)[0, 0, 31, 31]  # nothing reached: all new taken


def test_signed_growth_is_taken_anywhere_removal_only_at_the_click():
    previous = squares((10, 20, 10, 20), (40, 50, 40, 50))
    # grown far from the click, one square dropped far from it, new part at the click
    new = squares((8, 22, 8, 22), (30, 34, 30, 34))
    merged = merge_at_click(as_logits(new), as_logits(previous), (32, 32), grow_anywhere=True) > 0
    expected = squares((8, 22, 8, 22), (30, 34, 30, 34), (40, 50, 40, 50))
    assert torch.equal(merged[0, 0], torch.from_numpy(expected))


def test_unknown_merge_rule_is_refused():
    import pytest

    with pytest.raises(ValueError, match="merge_at_click"):
        make(merge_at_click="sometimes")


def test_no_change_near_the_click_takes_the_whole_prediction():
    previous, new = as_logits(squares((10, 20, 10, 20))), as_logits(squares((30, 40, 30, 40)))
    assert merge_at_click(new, previous, (60, 2)) is new
    assert merge_at_click(previous, previous, (15, 15)) is previous


class EchoModel(torch.nn.Module):
    """Foreground: positive click discs, and the prior only while the map says so.

    The decoder "forgets" the previous mask once it holds two clicks, as a
    decoder whose later predictions undo earlier corrections.
    """

    image_size = 64
    model_id = "echo"

    def preprocess(self, rgb):
        return torch.from_numpy(rgb).permute(2, 0, 1)[None].float()

    def encode(self, rgb):
        return None

    def decode(self, features, ref, boundary_rule=None, dlu_rule="threshold"):
        fg = ref == DEFINITELY_FOREGROUND
        if int((ref == DEFINITELY_FOREGROUND).sum()) < 100:
            fg = fg | (ref == POSSIBLY_FOREGROUND)
        return torch.where(fg, 10.0, -10.0)


def make(**kwargs):
    predictor = Predictor(EchoModel(), **kwargs)
    predictor.set_image(np.zeros((64, 64), dtype=np.uint8))
    return predictor


def test_predictor_keeps_earlier_corrections_and_undo_restores():
    prior = squares((5, 25, 5, 25))
    for merge in ("signed", "all", None):
        predictor = make(merge_at_click=merge, keep_clicked_regions=False)
        predictor.set_prior_mask(prior)
        first = predictor.add_click(15, 15)
        assert first[5:25, 5:25].all()
        second = predictor.add_click(45, 45)
        assert second[43:48, 43:48].all()
        # without the merge the prior is forgotten; with it the prior stays
        assert second[5:25, 5:25].all() == (merge is not None)
        assert np.array_equal(predictor.undo_click(), first)
        assert np.array_equal(predictor.add_click(45, 45), second)
