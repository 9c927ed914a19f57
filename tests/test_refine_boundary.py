"""``refine_boundary``: the mask's outline moves to the half-way colour of a blurred edge."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_inter2former.predictor import refine_boundary


def _disc(radius, shape=(64, 64), centre=(32, 30)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(yy - centre[0], xx - centre[1]) <= radius


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.fixture
def blurred_nucleus():
    truth = _disc(8)
    image = ndi.gaussian_filter(np.where(truth, 220.0, 30.0), 1.2)
    return truth, image


@pytest.mark.parametrize("radius", [7, 9])
def test_a_mask_one_pixel_off_moves_to_the_edge(blurred_nucleus, radius):
    truth, image = blurred_nucleus
    mask = _disc(radius)
    refined = refine_boundary(mask, image, shrink=radius > 8)
    assert _iou(refined, truth) > _iou(mask, truth) + 0.1
    assert _iou(refined, truth) > 0.9


def test_without_shrink_a_mask_only_grows(blurred_nucleus):
    truth, image = blurred_nucleus
    too_large = _disc(9)
    assert np.array_equal(refine_boundary(too_large, image), too_large)
    too_small = _disc(7)
    grown = refine_boundary(too_small, image)
    assert np.array_equal(grown, refine_boundary(too_small, image, shrink=True))
    assert (grown >= too_small).all() and _iou(grown, truth) > 0.9


def test_smoothing_keeps_a_noisy_outline_whole(blurred_nucleus):
    truth, image = blurred_nucleus
    noisy = image + np.random.default_rng(1).normal(0, 45, image.shape)
    mask = _disc(8)
    ragged = refine_boundary(mask, noisy, shrink=True)
    smoothed = refine_boundary(mask, noisy, smooth=1.0, shrink=True)
    assert _iou(smoothed, truth) > _iou(ragged, truth)


@pytest.mark.parametrize("noise, blurs", [(0.0, False), (10.0, False), (80.0, True)])
def test_auto_smoothing_blurs_only_noisy_objects(blurred_nucleus, noise, blurs):
    truth, image = blurred_nucleus
    image = image + np.random.default_rng(1).normal(0, noise, image.shape)
    mask = _disc(7)
    plain, blurred = (refine_boundary(mask, image, smooth=s, shrink=True) for s in (0.0, 1.0))
    assert not np.array_equal(plain, blurred)
    auto = refine_boundary(mask, image, smooth="auto", shrink=True)
    assert np.array_equal(auto, blurred if blurs else plain)
    with pytest.raises(ValueError, match="auto"):
        refine_boundary(mask, image, smooth="sometimes")


def test_only_the_band_changes(blurred_nucleus):
    truth, image = blurred_nucleus
    mask = _disc(6)
    refined = refine_boundary(mask, image, band=1, shrink=True)
    near = ndi.binary_dilation(mask, iterations=1) & ~ndi.binary_erosion(mask, iterations=1)
    assert np.array_equal(refined[~near], mask[~near])
    assert not np.array_equal(refined, mask)


def test_rgb_and_grey_give_the_same_mask(blurred_nucleus):
    _, image = blurred_nucleus
    mask = _disc(7)
    rgb = np.repeat(image[..., None], 3, axis=2)
    assert np.array_equal(refine_boundary(mask, rgb), refine_boundary(mask, image))


def test_nothing_changes_without_contrast():
    rng = np.random.default_rng(0)
    image = rng.normal(100, 20, (64, 64))
    mask = _disc(8)
    assert np.array_equal(refine_boundary(mask, image), mask)


def test_empty_and_tiny_masks_are_returned_unchanged(blurred_nucleus):
    _, image = blurred_nucleus
    empty = np.zeros((64, 64), bool)
    assert not refine_boundary(empty, image).any()
    dot = np.zeros((64, 64), bool)
    dot[32, 30] = True
    assert np.array_equal(refine_boundary(dot, image), dot)


def test_a_mask_at_the_image_border(blurred_nucleus):
    _, image = blurred_nucleus
    truth = _disc(8, centre=(2, 30))
    image = ndi.gaussian_filter(np.where(truth, 220.0, 30.0), 1.2)
    refined = refine_boundary(_disc(7, centre=(2, 30)), image)
    assert refined.shape == (64, 64)
    assert _iou(refined, truth) > 0.85


def test_a_lower_level_puts_the_outline_further_out(blurred_nucleus):
    _, image = blurred_nucleus  # half-way colour at radius 8
    mask = _disc(8)
    half_way = refine_boundary(mask, image, shrink=True)
    lower = refine_boundary(mask, image, level=0.2, shrink=True)
    assert (lower >= half_way).all() and lower.sum() > half_way.sum()
    assert _iou(lower, _disc(9)) > _iou(half_way, _disc(9))
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="level"):
            refine_boundary(mask, image, level=bad)


def test_a_positive_click_on_the_band_moves_the_bar_outwards(blurred_nucleus):
    _, image = blurred_nucleus  # half-way colour at radius 8; the outline drawn at 9
    truth, mask = _disc(9), _disc(8)
    plain = refine_boundary(mask, image)
    assert _iou(plain, truth) < 0.85
    on_band = (23, 30)  # radius 9, just outside the mask
    assert not mask[on_band] and truth[on_band]
    clicked = refine_boundary(mask, image, clicks=[(*on_band, True)])
    assert clicked[on_band] and (clicked >= plain).all()
    assert _iou(clicked, truth) > 0.9


def test_a_negative_click_on_the_band_moves_the_bar_inwards(blurred_nucleus):
    _, image = blurred_nucleus  # half-way colour at radius 8; the outline drawn at 7
    truth, mask = _disc(7), _disc(8)
    on_band = (25, 27)  # radius 7.6, inside the mask, brighter than half-way
    assert mask[on_band] and not truth[on_band]
    shrunk = refine_boundary(mask, image, shrink=True)
    assert shrunk[on_band]
    clicked = refine_boundary(mask, image, clicks=[(*on_band, False)])
    assert not clicked[on_band] and (clicked <= mask).all()
    assert _iou(clicked, truth) > _iou(shrunk, truth) + 0.05


def test_a_negative_click_on_the_background_takes_only_darker_pixels(blurred_nucleus):
    _, image = blurred_nucleus  # half-way colour at radius 8; the outline drawn at 9
    truth = _disc(9)
    mask = truth.copy()
    mask[22, 30] = True  # one background pixel (radius 10) in the mask
    assert image[22, 30] < image[truth].min()
    clicked = refine_boundary(mask, image, clicks=[(22, 30, False)])
    assert np.array_equal(clicked, truth)
    # a shrink at half-way takes the outline's own pixels too
    assert _iou(refine_boundary(mask, image, shrink=True), truth) < 0.85


def test_contradicting_and_distant_clicks(blurred_nucleus):
    _, image = blurred_nucleus
    mask = _disc(8)
    plain = refine_boundary(mask, image, shrink=True)
    # the same colour clicked both ways: the bar stays, each click keeps its pixel
    inside_pixel, outside_pixel = (24, 30), (40, 30)
    both = refine_boundary(
        mask, image, clicks=[(*inside_pixel, False), (*outside_pixel, True)], shrink=True
    )
    assert not both[inside_pixel] and both[outside_pixel]
    differ = both != plain
    differ[inside_pixel] = differ[outside_pixel] = False
    assert not differ.any()
    # clicks far from the outline change nothing
    far = [(32, 30, False), (5, 5, True)]
    assert np.array_equal(refine_boundary(mask, image, clicks=far), refine_boundary(mask, image))


def _stub_predictor(image, **settings):
    """A Predictor on ``image`` whose stub decoder predicts the positive click discs (radius 5)."""
    from napari_inter2former.predictor import Predictor
    from stub_models import ClickDiscModel

    predictor = Predictor(ClickDiscModel(), **settings)
    predictor.set_image(image)
    return predictor


def test_the_predictor_refines_its_masks_when_asked():
    """A stub decoder predicts the click disc (radius 5); the nucleus has radius 6."""
    truth = _disc(6, shape=(128, 128), centre=(60, 70))
    image = ndi.gaussian_filter(np.where(truth, 220.0, 30.0), 1.0).astype(np.uint8)
    masks = {}
    for refine in (False, True):
        masks[refine] = _stub_predictor(image, refine_boundary=refine).add_click(60, 70)
    assert masks[True].sum() > masks[False].sum()
    assert _iou(masks[True], truth) > _iou(masks[False], truth) + 0.1


def test_the_predictor_blurs_noisy_objects_by_default():
    """A noisy nucleus: the default predictor's mask is the blurred outline step's."""
    from napari_inter2former.predictor import Predictor
    from stub_models import ClickDiscModel

    truth = _disc(6, shape=(128, 128), centre=(60, 70))
    clean = ndi.gaussian_filter(np.where(truth, 200.0, 60.0), 1.0)
    noisy = np.clip(clean + np.random.default_rng(2).normal(0, 60, clean.shape), 0, 255)
    masks = {}
    for smooth in ("auto", 0.0, 1.0):
        predictor = _stub_predictor(noisy.astype(np.uint8), refine_smooth=smooth)
        masks[smooth] = predictor.add_click(60, 70)
    assert Predictor(ClickDiscModel()).refine_smooth == "auto"
    assert not np.array_equal(masks[0.0], masks[1.0])
    assert np.array_equal(masks["auto"], masks[1.0])
    with pytest.raises(ValueError, match="refine_smooth"):
        Predictor(ClickDiscModel(), refine_smooth="sometimes")


def test_after_a_negative_click_the_outline_may_also_shrink():
    """The stub predicts the click disc (radius 5) around a nucleus of radius 4."""
    from napari_inter2former.predictor import Predictor
    from stub_models import ClickDiscModel

    truth = _disc(4, shape=(128, 128), centre=(60, 70))
    image = ndi.gaussian_filter(np.where(truth, 220.0, 30.0), 0.7).astype(np.uint8)
    masks = {}
    for shrink in (False, True):
        predictor = _stub_predictor(image, refine_shrink=False, refine_shrink_at_negative=shrink)
        first = predictor.add_click(60, 70)
        masks[shrink] = predictor.add_click(20, 20, positive=False)
        if not shrink:  # growing only: the negative click far away changes nothing
            assert np.array_equal(masks[shrink], first)
    assert not Predictor(ClickDiscModel()).refine_shrink_at_negative
    assert (masks[True] <= masks[False]).all()
    assert _iou(masks[True], truth) > _iou(masks[False], truth) + 0.1


def test_the_predictor_gives_the_outline_step_the_objects_clicks(monkeypatch):
    from napari_inter2former import predictor as predictor_module
    from napari_inter2former.predictor import Predictor
    from stub_models import ClickDiscModel

    seen = []

    def spy(mask, image, **kwargs):
        seen.append(list(kwargs["clicks"]))
        return mask

    monkeypatch.setattr(predictor_module, "refine_boundary", spy)
    image = np.zeros((128, 128), np.uint8)
    for refine_clicks in (False, True):
        predictor = _stub_predictor(image, refine_clicks=refine_clicks)
        predictor.add_click(60, 70)
        predictor.add_click(62.4, 75.6, positive=False)
    assert Predictor(ClickDiscModel()).refine_clicks
    assert seen[:2] == [[], []]
    assert seen[2:] == [[(60, 70, True)], [(60, 70, True), (62.4, 75.6, False)]]


@pytest.mark.parametrize("setting", [{"refine_level": 1.0}, {"refine_level": 0}, {"refine_band": 0}])
def test_the_predictor_rejects_bad_outline_settings(setting):
    from napari_inter2former.predictor import Predictor
    from stub_models import ClickDiscModel

    with pytest.raises(ValueError, match=next(iter(setting))):
        Predictor(ClickDiscModel(), **setting)


def test_in_a_zoom_crop_the_outline_step_gets_the_clicks_in_crop_pixels(monkeypatch):
    from napari_inter2former import predictor as predictor_module
    from napari_inter2former.predictor import ZoomIn

    seen = []

    def spy(mask, image, **kwargs):
        seen.append((image.shape, list(kwargs["clicks"])))
        return mask

    monkeypatch.setattr(predictor_module, "refine_boundary", spy)
    predictor = _stub_predictor(np.zeros((512, 512), np.uint8), zoom_in=ZoomIn())
    predictor.add_click(300, 310)
    predictor.add_click(304, 312, positive=False)
    box = predictor.zoom_box
    assert box is not None
    top, _, left, _ = box
    shape, clicks = seen[-1]
    assert shape[:2] == (box[1] - box[0], box[3] - box[2])
    assert clicks == [(300 - top, 310 - left, True), (304 - top, 312 - left, False)]


def test_the_outline_may_shrink_after_the_first_click_only():
    """The stub predicts click discs (radius 5) around nuclei of radius 4."""
    from napari_inter2former.predictor import Predictor
    from stub_models import ClickDiscModel

    truth = _disc(4, shape=(128, 128), centre=(60, 70)) | _disc(4, shape=(128, 128), centre=(60, 100))
    image = ndi.gaussian_filter(np.where(truth, 220.0, 30.0), 0.7).astype(np.uint8)
    masks = {}
    for shrink in (False, "first", True):
        predictor = _stub_predictor(image, refine_shrink=shrink)
        first = predictor.add_click(60, 70)
        masks[shrink] = first, predictor.add_click(60, 100)
    near = np.zeros(truth.shape, bool)
    near[:, :85] = True
    # the first mask shrinks to the nucleus with "first" as with True
    assert np.array_equal(masks["first"][0], masks[True][0])
    assert _iou(masks["first"][0], truth & near) > _iou(masks[False][0], truth & near) + 0.1
    # the second click's disc only grows with "first", as with False
    second = ~near
    assert np.array_equal(masks["first"][1] & second, masks[False][1] & second)
    assert (masks[True][1] & second).sum() < (masks[False][1] & second).sum()
    predictor = _stub_predictor(image, refine_shrink="first")
    predictor.set_prior_mask(masks[False][0])  # an object started from a prior mask: no shrink
    assert np.array_equal(predictor.add_click(60, 70), masks[False][0])
    with pytest.raises(ValueError, match="refine_shrink"):
        Predictor(ClickDiscModel(), refine_shrink="always")
