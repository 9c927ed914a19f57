"""Zoom-in on small objects: the crop window, replay in the crop, undo, prior masks,
the size gate and the first-click zoom of the default.

A stub model stands in for the network: its "logits" are positive exactly on
positive click discs (code 4) and on possibly-foreground pixels (code 3), so
every mask is predictable from the clicks and the view the predictor works in.
"""

import numpy as np
import pytest

from napari_inter2former.predictor import SMALL_OBJECT_ZOOM, Click, Predictor, ZoomIn
from stub_models import ClickDiscModel


def make(zoom=ZoomIn(expansion=4, min_side=16, max_fraction=0.6)):
    model = ClickDiscModel()
    predictor = Predictor(model, zoom_in=zoom, flip_ensemble=None)  # counts encodes of crops
    predictor.set_image(np.zeros((256, 256), dtype=np.uint8))
    return predictor, model


def test_window_is_a_clipped_square_around_mask_and_clicks():
    zoom = ZoomIn(expansion=4, min_side=16, max_fraction=0.6)
    mask = np.zeros((256, 256), bool)
    mask[100:110, 50:56] = True
    assert zoom.window(mask, [], (256, 256)) == (85, 125, 33, 73)  # side 4 * 10
    # a click widens the box it is taken around
    top, bottom, left, right = zoom.window(mask, [Click(120, 52)], (256, 256))
    assert bottom - top == right - left == 84 and top <= 100 and bottom > 120
    # clipped to the image, the side kept where it fits
    corner = np.zeros((256, 256), bool)
    corner[0:8, 250:256] = True
    assert zoom.window(corner, [], (256, 256)) == (0, 32, 224, 256)
    assert zoom.window(np.zeros((256, 256), bool), [], (256, 256)) is None
    big = np.zeros((256, 256), bool)
    big[50:100, 50:100] = True  # 4 * 50 > 0.6 * 256: large enough already
    assert zoom.window(big, [], (256, 256)) is None


def test_second_click_zooms_and_replays_the_clicks_in_the_crop():
    predictor, model = make()
    first = predictor.add_click(100, 100)
    assert predictor.zoom_box is None
    # a disc of radius 5 px on the 128 grid of a 256 image: about 10 px radius
    assert first[100, 100] and first[100, 109] and not first[100, 112]
    second = predictor.add_click(104, 104)
    box = predictor.zoom_box
    assert box is not None and box[1] - box[0] < 256
    assert model.encoded_shapes[-1] == (box[1] - box[0], box[3] - box[2])
    # in the crop, the same grid disc covers fewer image pixels
    assert second[100, 100] and second[104, 104] and not second[100, 109]
    assert second.shape == (256, 256) and not second[: box[0]].any()


def test_undo_returns_to_the_whole_image_and_reuses_cached_features():
    predictor, model = make()
    first = predictor.add_click(100, 100)
    predictor.add_click(104, 104)
    n_encoded = len(model.encoded_shapes)
    np.testing.assert_array_equal(predictor.undo_click(), first)
    assert predictor.zoom_box is None
    predictor.add_click(104, 104)
    assert len(model.encoded_shapes) == n_encoded  # crop features came from the cache


def test_click_outside_the_crop_moves_the_window_or_leaves_zoom():
    predictor, _ = make(ZoomIn(expansion=2, min_side=16, max_fraction=0.6))
    predictor.add_click(100, 100)
    predictor.add_click(104, 104)
    box = predictor.zoom_box
    mask = predictor.add_click(110, box[3] + 5)  # just right of the crop
    new_box = predictor.zoom_box
    assert new_box is not None and new_box[3] > box[3]
    assert mask[110, box[3] + 5] and mask[104, 104]
    mask = predictor.add_click(250, 250)  # far away: the window would be too large
    assert predictor.zoom_box is None
    assert mask[250, 250] and mask[100, 100]


def test_prior_mask_starts_zoomed_and_stays_where_it_was():
    predictor, model = make()
    prior = np.zeros((256, 256), bool)
    prior[60:70, 60:70] = True
    predictor.set_prior_mask(prior)
    assert predictor.zoom_box is not None
    mask = predictor.add_click(65, 65)
    np.testing.assert_array_equal(mask[50:80, 50:80], prior[50:80, 50:80] | mask[50:80, 50:80])
    assert mask[prior].all() and not mask[80:].any()


def test_no_zoom_keeps_the_whole_image():
    predictor, model = make(zoom=None)
    predictor.add_click(100, 100)
    predictor.add_click(104, 104)
    assert predictor.zoom_box is None and model.encoded_shapes == [(256, 256)]


def test_below_gates_the_window_by_the_objects_share_of_its_view():
    zoom = ZoomIn(expansion=4, min_side=16, max_fraction=0.6, below=0.05)
    mask = np.zeros((256, 256), bool)
    mask[100:110, 50:56] = True  # spans 10 px: 0.039 of the image's side
    assert zoom.window(mask, [], (256, 256)) == (85, 125, 33, 73)
    assert zoom.window(mask, [], (256, 256), view_side=128) is None  # 0.078 of a 128-px view
    mask[100:114] = True  # 14 px: 0.055
    assert zoom.window(mask, [], (256, 256)) is None


def test_first_click_zooms_a_small_object_at_once():
    predictor, model = make(ZoomIn(expansion=4, min_side=16, max_fraction=0.6, below=0.1, first_click=True))
    mask = predictor.add_click(100, 100)
    box = predictor.zoom_box
    assert box is not None and box[1] - box[0] < 256
    assert model.encoded_shapes[-1] == (box[1] - box[0], box[3] - box[2])
    # the first click replayed in the crop: the grid disc covers fewer image pixels
    # (radius 5 of 128 grid px in a crop of about 80 px: 3 px; on the whole image 10 px)
    assert mask[100, 100] and mask[100, 102] and not mask[100, 106]
    assert predictor.undo_click() is None and predictor.zoom_box is None


def test_first_click_leaves_an_object_above_below_unzoomed():
    # the first disc spans about 20 px, 0.078 of the 256-px image
    predictor, model = make(ZoomIn(expansion=4, min_side=16, max_fraction=0.6, below=0.05, first_click=True))
    predictor.add_click(100, 100)
    predictor.add_click(104, 104)
    assert predictor.zoom_box is None and model.encoded_shapes == [(256, 256)]


def test_without_prior_an_object_started_from_a_prior_mask_stays_unzoomed():
    zoom = ZoomIn(expansion=4, min_side=16, max_fraction=0.6, below=0.1, first_click=True, prior=False)
    predictor, model = make(zoom)
    prior = np.zeros((256, 256), bool)
    prior[60:70, 60:70] = True
    predictor.set_prior_mask(prior)
    predictor.add_click(65, 65)
    assert predictor.zoom_box is None and model.encoded_shapes == [(256, 256)]
    predictor.reset()  # a fresh object: zoomed at its first click again
    predictor.add_click(65, 65)
    assert predictor.zoom_box is not None


def test_the_default_zooms_objects_under_three_tokens_from_their_first_click():
    assert Predictor(ClickDiscModel()).zoom_in == SMALL_OBJECT_ZOOM
    zoom = SMALL_OBJECT_ZOOM
    assert zoom.first_click and not zoom.prior and zoom.below * 1024 == 48
    mask = np.zeros((256, 256), bool)
    mask[100:111, 50:56] = True  # 11 px of a 256-px image: 44 px of the 1024-px input
    assert zoom.window(mask, [], (256, 256)) == (58, 154, 5, 101)  # at least 96 px
    mask[100:112] = True  # 12 px: 48 px of the input
    assert zoom.window(mask, [], (256, 256)) is None
    assert zoom.window(mask[:100, :100], [], (100, 100)) is None  # 96 px > 0.6 of the image


@pytest.mark.parametrize(
    "bad", [dict(expansion=0.5), dict(min_side=0), dict(max_fraction=0), dict(below=0), dict(below=1.5)]
)
def test_zoom_settings_are_checked(bad):
    with pytest.raises(ValueError):
        ZoomIn(**bad)


def test_turning_zoom_off_mid_object_finishes_it_on_the_whole_image():
    predictor, _ = make()
    predictor.add_click(100, 100)
    predictor.add_click(104, 104)
    assert predictor.zoom_box is not None
    predictor.zoom_in = None
    mask = predictor.add_click(200, 30)  # outside the crop
    assert predictor.zoom_box is None
    assert mask[200, 30] and mask[100, 100]
