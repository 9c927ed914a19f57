"""The click bookkeeping shared by all predictors, pinned with the deterministic fake."""

import numpy as np
import pytest

from napari_inter2former.predictor import Click, _FeatureCache, image_key
from napari_inter2former.testing import FakePredictor


def two_blobs():
    image = np.zeros((40, 60), dtype=np.uint8)
    image[5:15, 5:15] = 200
    image[20:35, 30:50] = 200
    return image


def test_click_undo_reset():
    p = FakePredictor()
    p.set_image(two_blobs())
    m1 = p.add_click(10, 10)
    assert m1.sum() == 100 and p.clicks == [Click(10.0, 10.0, True)]
    m2 = p.add_click(25, 40)
    assert m2.sum() == 100 + 300
    m3 = p.add_click(10, 10, positive=False)
    assert m3.sum() == 300
    np.testing.assert_array_equal(p.undo_click(), m2)
    np.testing.assert_array_equal(p.undo_click(), m1)
    assert p.undo_click() is None and p.clicks == []
    with pytest.raises(RuntimeError, match="no click"):
        p.undo_click()


def test_prior_mask_starts_the_object():
    p = FakePredictor()
    p.set_image(two_blobs())
    prior = np.zeros((40, 60), bool)
    prior[20:35, 30:50] = True
    p.set_prior_mask(prior)
    np.testing.assert_array_equal(p.mask, prior)
    mask = p.add_click(10, 10)
    assert mask.sum() == 400
    p.set_prior_mask(None)
    assert p.mask is None and p.clicks == []


def test_bad_calls():
    p = FakePredictor()
    with pytest.raises(RuntimeError, match="set_image"):
        p.add_click(0, 0)
    p.set_image(two_blobs())
    for row, col in [(-1, 0), (40, 0), (0, 60), (np.nan, 3)]:
        with pytest.raises(ValueError):
            p.add_click(row, col)
    with pytest.raises(ValueError, match="shape"):
        p.set_prior_mask(np.zeros((3, 3), bool))
    assert p.clicks == []


def test_feature_cache_is_bounded_and_keyed_by_content():
    cache = _FeatureCache(max_entries=2)
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    ka, kb = image_key(a, "m"), image_key(b, "m")
    assert ka != kb and ka != image_key(a, "other-model")
    assert ka == image_key(a.copy(), "m")
    cache.put(ka, 1)
    cache.put(kb, 2)
    cache.get(ka)
    cache.put("c", 3)  # evicts the least recently used: kb
    assert cache.get(kb) is None and cache.get(ka) == 1 and len(cache) == 2


def test_feature_cache_grows_to_fit_a_byte_budget():
    from collections import namedtuple

    import torch

    Features = namedtuple("Features", "embedding edges")
    cache = _FeatureCache(max_entries=2)
    assert cache.grow_to(50, budget_bytes=10**9) == 2  # empty: nothing to measure yet
    entry = Features(torch.zeros(1, 256, 8, 8), (np.zeros((16, 16), np.float32),))
    cache.put("a", entry)
    assert cache.entry_nbytes() == 256 * 64 * 4 + 256 * 4
    assert cache.grow_to(50, budget_bytes=10 * cache.entry_nbytes()) == 10
    assert cache.grow_to(50, budget_bytes=10**9) == 50
    assert cache.grow_to(5, budget_bytes=10**9) == 50  # never shrinks


def _flip_predictor(model, **settings):
    from napari_inter2former.predictor import Predictor

    settings.setdefault("redecode", None)  # one decode per view unless a test asks for more
    predictor = Predictor(model, refine_boundary=False, **settings)
    rng = np.random.default_rng(0)  # not symmetric: the turned view is its own cache entry
    predictor.set_image(rng.integers(0, 255, (96, 160), dtype=np.uint8))
    return predictor


def test_flip_ensemble_maps_the_flipped_views_back():
    from stub_models import ClickDiscModel

    single = _flip_predictor(ClickDiscModel(), flip_ensemble=None).add_click(30, 41)
    model = ClickDiscModel()
    predictor = _flip_predictor(model, flip_ensemble="first")
    assert len(model.encoded_shapes) == 1  # the turned view is encoded on the first click
    np.testing.assert_array_equal(predictor.add_click(30, 41), single)
    assert model.encoded_shapes == [(96, 160)] * 2 and model.decode_calls == 2
    predictor.reset()
    np.testing.assert_array_equal(predictor.add_click(30, 41), single)
    assert len(model.encoded_shapes) == 2  # cached


def test_flipped_views_do_not_push_images_out_of_the_feature_cache():
    from stub_models import ClickDiscModel

    model = ClickDiscModel()
    predictor = _flip_predictor(model, flip_ensemble="first", cache_size=1)
    image = predictor._rgb
    predictor.add_click(30, 41)
    assert len(model.encoded_shapes) == 2
    predictor.set_image(image[..., 0])  # the image is still the one entry of the cache
    predictor.add_click(30, 41)  # and its turned view is in its own
    assert len(model.encoded_shapes) == 2
    assert len(predictor.cache) == 1 and len(predictor.flip_cache) == 1


def test_encode_ahead_leaves_the_object_alone_and_spares_the_first_click_encoding():
    from stub_models import ClickDiscModel

    model = ClickDiscModel()
    predictor = _flip_predictor(model, flip_ensemble="first")
    image = predictor._rgb[..., 0]
    before = predictor.add_click(30, 41)
    other = np.ascontiguousarray(image[::-1])
    predictor.encode_ahead(other)  # the next image and its turned view, while an object is open
    assert len(model.encoded_shapes) == 4
    np.testing.assert_array_equal(predictor.mask, before)
    predictor.add_click(60, 100, positive=False)  # the object goes on, on its own image
    assert len(model.encoded_shapes) == 4 and predictor.image_shape == image.shape
    predictor.set_image(other)
    predictor.add_click(30, 41)
    assert len(model.encoded_shapes) == 4  # nothing left to encode at the first click


def test_zoom_crop_is_not_flip_averaged_and_keeps_the_image_turned_view_cached():
    from stub_models import ClickDiscModel

    from napari_inter2former.predictor import ZoomIn

    model = ClickDiscModel()
    zoom = ZoomIn(expansion=4, min_side=16, max_fraction=0.6, below=0.5, first_click=True)
    predictor = _flip_predictor(model, zoom_in=zoom)
    predictor.add_click(40, 60)  # the image and its turn, then the first click again in a crop
    box = predictor.zoom_box
    assert box is not None and len(model.encoded_shapes) == 3
    assert model.encoded_shapes[-1] == (box[1] - box[0], box[3] - box[2])  # the crop, once
    predictor.reset()
    predictor.add_click(70, 130)  # the next object's first click on the whole image again
    assert len(model.encoded_shapes) == 4  # only its crop: the image's turned view is cached


def test_flip_ensemble_averages_the_views_on_the_first_click_only():
    from stub_models import ClickDiscModel, CornerBlockModel

    plain = _flip_predictor(
        CornerBlockModel(), keep_clicked_regions=False, flip_ensemble=None
    ).add_click(50, 100)
    disc = _flip_predictor(ClickDiscModel(), flip_ensemble=None).add_click(50, 100)
    np.testing.assert_array_equal(plain[10:], disc[10:])
    assert plain[:10, :10].all()  # the 8 x 8 grid corner: 10 x 10 image pixels
    model = CornerBlockModel()
    predictor = _flip_predictor(model, flip_ensemble="first", keep_clicked_regions=False)
    # the weak corner is foreground in one view of two at opposite corners of the image: dropped
    np.testing.assert_array_equal(predictor.add_click(50, 100), disc)
    predictor.add_click(60, 100)
    assert model.decode_calls == 3  # two views on click 1, one on click 2
    predictor.set_prior_mask(disc)
    predictor.add_click(50, 100)
    assert model.decode_calls == 4  # an object started from a prior mask: one view


def test_flip_ensemble_on_every_click():
    from stub_models import ClickDiscModel, CornerBlockModel

    from napari_inter2former.predictor import Predictor

    single = _flip_predictor(ClickDiscModel(), flip_ensemble=None)
    model = CornerBlockModel()
    predictor = _flip_predictor(model, flip_ensemble="every", keep_clicked_regions=False)
    for row, col, positive in [(50, 100, True), (60, 104, True), (55, 102, False)]:
        np.testing.assert_array_equal(
            predictor.add_click(row, col, positive), single.add_click(row, col, positive)
        )
    assert model.decode_calls == 6
    with pytest.raises(ValueError, match="flip_ensemble"):
        Predictor(model, flip_ensemble=True)


def _square_side(mask) -> int:
    rows = np.flatnonzero(mask.any(1))
    return int(rows[-1] - rows[0] + 1)


def test_redecode_feeds_the_first_mask_back_without_the_regions_away_from_the_click():
    from stub_models import GrowingModel

    from napari_inter2former.constants import POSSIBLY_FOREGROUND
    from napari_inter2former.predictor import Predictor

    once = _flip_predictor(GrowingModel(), flip_ensemble=None).add_click(48, 80)
    model = GrowingModel()
    predictor = _flip_predictor(model, flip_ensemble=None, redecode="first", redecode_rounds=2)
    mask = predictor.add_click(48, 80)
    assert model.decode_calls == 3
    # each decode grows the square by 2 grid pixels a side (grid scale 128 / 160 = 0.8)
    assert _square_side(mask) - _square_side(once) == pytest.approx(8 / 0.8, abs=2)
    assert not mask[-10:, -10:].any()  # the unclicked corner block stays out
    for ref in model.refs[1:]:  # ... of the masks fed back as well
        assert not (ref[0, 0, -8:, -8:] == POSSIBLY_FOREGROUND).any()
        assert (ref[0, 0] == POSSIBLY_FOREGROUND).any()
    predictor.add_click(50, 84)
    assert model.decode_calls == 4  # "first": the next click is decoded once
    with pytest.raises(ValueError, match="redecode"):
        Predictor(model, redecode="all")
    with pytest.raises(ValueError, match="redecode_rounds"):
        Predictor(model, redecode_rounds=-1)


@pytest.mark.parametrize(
    "flip_passes, turned_calls",
    [("all", (1, 3, 5)), ("first", (1,)), ("last", (3,))],
)
def test_flip_passes_picks_the_decodes_averaged_with_the_turned_view(flip_passes, turned_calls):
    from stub_models import GrowingModel

    from napari_inter2former.constants import DEFINITELY_FOREGROUND
    from napari_inter2former.predictor import Predictor

    model = GrowingModel()
    predictor = _flip_predictor(
        model, flip_ensemble="first", redecode="first", redecode_rounds=2, flip_passes=flip_passes
    )
    predictor.add_click(20, 30)  # grid (16, 24); turned: near (60, 103)
    assert model.decode_calls == 3 + len(turned_calls)
    turned = [
        i for i, ref in enumerate(model.refs)
        if (ref[0, 0, 55:66, 98:109] == DEFINITELY_FOREGROUND).any()
    ]
    assert turned == list(turned_calls)
    with pytest.raises(ValueError, match="flip_passes"):
        Predictor(model, flip_passes="middle")


def test_redecode_every_click_with_the_flip_average():
    from stub_models import GrowingModel

    model = GrowingModel()
    predictor = _flip_predictor(model, flip_ensemble="first", redecode="every")
    predictor.add_click(48, 80)
    assert model.decode_calls == 4  # two views, twice
    predictor.add_click(50, 84)
    assert model.decode_calls == 6  # one view, twice
