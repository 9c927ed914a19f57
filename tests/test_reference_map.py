import numpy as np
import pytest
import torch

from napari_inter2former.constants import (
    DEFINITELY_BACKGROUND as DB,
    DEFINITELY_FOREGROUND as DF,
    POSSIBLY_BACKGROUND as PB,
    POSSIBLY_FOREGROUND as PF,
    UNKNOWN as U,
)
from napari_inter2former.reference_map import (
    new_reference_map,
    paint_clicks,
    reference_from_mask,
    update_by_prediction,
)


def test_new_map_is_unknown():
    ref = new_reference_map(8, 9, batch=2)
    assert ref.shape == (2, 1, 8, 9) and ref.dtype == torch.uint8
    assert (ref == U).all()


def test_click_disc_has_81_pixels_of_radius_5():
    ref = paint_clicks(new_reference_map(40, 40), [(20, 20, True)])
    assert int((ref == DF).sum()) == 81
    assert ref[0, 0, 20, 25] == DF and ref[0, 0, 20, 26] == U
    assert ref[0, 0, 24, 23] == DF and ref[0, 0, 24, 24] == U  # 16+9=25 in, 16+16=32 out


def test_later_click_wins_and_border_clipping():
    ref = paint_clicks(new_reference_map(20, 20), [(0, 0, True), (0, 3, False)])
    assert ref[0, 0, 0, 0] == DB  # inside both discs: the later, negative click wins
    assert ref[0, 0, 4, 0] == DB  # 16 + 9 = 25 from the negative: still its disc
    assert ref[0, 0, 5, 0] == DF  # 25 from the positive, 25 + 9 from the negative


def test_update_rules_table():
    ref = torch.tensor([[[[DB, PB, U, PF, DF], [DB, PB, U, PF, DF]]]], dtype=torch.uint8)
    pred = torch.tensor([[[[1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]]], dtype=torch.bool)
    out = update_by_prediction(ref, pred)
    assert out[0, 0, 0].tolist() == [DB, U, PF, PF, DF]
    assert out[0, 0, 1].tolist() == [DB, PB, PB, U, DF]
    assert ref[0, 0, 0, 2] == U  # input untouched


def test_flip_is_unknown_for_one_step():
    ref = torch.full((1, 1, 1, 1), U, dtype=torch.uint8)
    fg = torch.ones((1, 1, 1, 1), dtype=torch.bool)
    ref = update_by_prediction(ref, fg)
    assert ref.item() == PF
    ref = update_by_prediction(ref, ~fg)
    assert ref.item() == U
    ref = update_by_prediction(ref, ~fg)
    assert ref.item() == PB


def test_reference_from_mask():
    mask = torch.from_numpy(np.array([[True, False]]))[None, None]
    assert reference_from_mask(mask)[0, 0, 0].tolist() == [PF, PB]


@pytest.mark.parametrize("click", [(-20, 5, True), (5, 100, False)])
def test_clicks_outside_are_ignored(click):
    ref = paint_clicks(new_reference_map(10, 10), [click])
    assert (ref == U).all()
