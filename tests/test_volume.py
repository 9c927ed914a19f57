import numpy as np
import pytest

from napari_inter2former.predictor import BasePredictor
from napari_inter2former.testing import FakePredictor
from napari_inter2former.volume import (
    MIN_START_CONTRAST,
    affected_planes,
    fill_between,
    propagate,
    segment_from_anchors,
    strongest_contrast,
)

SHAPE = (10, 32, 32)


def disc(radius, center=(16, 12), shape=SHAPE[1:]):
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    return (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= radius**2


def cylinder_volume(seed=0):
    """A bright cylinder (radius 5) on planes 2..7, a bright neighbour ball apart from it."""
    rng = np.random.default_rng(seed)
    volume = 20 + rng.integers(0, 6, SHAPE)
    obj = np.zeros(SHAPE, bool)
    obj[2:8] = disc(5)
    neighbour = np.zeros(SHAPE, bool)
    neighbour[3:6] = disc(4, center=(16, 26))
    volume[obj | neighbour] = 200
    return volume.astype(np.uint8), obj


def run(gen):
    """All yielded (plane, mask) pairs and the stop reason."""
    out = []
    while True:
        try:
            out.append(next(gen))
        except StopIteration as stop:
            return out, stop.value


def test_propagate_follows_cylinder_and_stops_where_it_ends():
    volume, obj = cylinder_volume()
    predictor = FakePredictor()
    steps, reason = run(propagate(predictor, volume, 4, obj[4], direction=+1))
    assert [p for p, _ in steps] == [5, 6, 7]
    for plane, mask in steps:
        np.testing.assert_array_equal(mask, obj[plane])
    assert reason == "vanished"  # plane 8 is dark: no plausible click
    assert predictor.encode_calls == 3  # set_image on planes 5, 6, 7 only

    steps, reason = run(propagate(FakePredictor(), volume, 4, obj[4], direction=-1))
    assert [p for p, _ in steps] == [3, 2]


def test_propagate_stop_plane_inclusive_and_volume_end():
    volume, obj = cylinder_volume()
    steps, reason = run(propagate(FakePredictor(), volume, 2, obj[2], stop_plane=4))
    assert [p for p, _ in steps] == [3, 4] and reason == "stop_plane"
    volume[:] = np.where(disc(5)[None], 200, 20)  # the object fills every plane
    steps, reason = run(propagate(FakePredictor(), volume, 6, disc(5), direction=+1))
    assert [p for p, _ in steps] == [7, 8, 9] and reason == "end"


def test_propagate_stops_on_merge_with_neighbour():
    volume, obj = cylinder_volume()
    volume[6, 14:19, 12:27] = 200  # a bright bridge joins the object and the neighbour
    volume[6][disc(4, center=(16, 26))] = 200
    steps, reason = run(propagate(FakePredictor(), volume, 4, obj[4], direction=+1))
    assert [p for p, _ in steps] == [5]
    assert reason == "growth"


def test_propagate_stops_on_dim_out_of_focus_halo():
    volume, obj = cylinder_volume()
    halo = np.full(SHAPE[1:], 20, np.uint8)
    halo[disc(5)] = 56  # 0.2 of the object's contrast over the prior's disc
    halo[disc(2)] = 146  # a brighter core (0.7): a plausible click exists
    volume[8] = halo
    steps, reason = run(propagate(FakePredictor(), volume, 4, obj[4], direction=+1))
    assert [p for p, _ in steps] == [5, 6, 7]
    assert reason == "contrast"


class ShiftPredictor(BasePredictor):
    """Returns its prior mask shifted ``shift`` columns right (or a fixed mask)."""

    def __init__(self, shift=0, fixed=None):
        super().__init__()
        self.shift, self.fixed, self._prior_mask = shift, fixed, None

    def _encode(self, rgb):
        pass

    def _start(self, prior):
        self._prior_mask = prior

    def _predict(self, click):
        if self.fixed is not None:
            return self.fixed
        return np.roll(self._prior_mask, self.shift, axis=1)


def test_propagate_stops_on_low_overlap_and_on_vanishing():
    volume, obj = cylinder_volume()
    steps, reason = run(propagate(ShiftPredictor(shift=8), volume, 4, obj[4]))
    assert steps == [] and reason == "overlap"
    tiny = np.zeros(SHAPE[1:], bool)
    tiny[16, 12] = True
    steps, reason = run(propagate(ShiftPredictor(fixed=tiny), volume, 4, obj[4]))
    assert steps == [] and reason == "vanished"


def test_propagate_uses_whole_volume_contrast_limits():
    volume, obj = cylinder_volume()
    steps8, _ = run(propagate(FakePredictor(), volume, 4, obj[4]))
    volume16 = volume.astype(np.uint16) * 200  # same data, another dtype
    steps16, _ = run(propagate(FakePredictor(), volume16, 4, obj[4]))
    assert [p for p, _ in steps16] == [p for p, _ in steps8] == [5, 6, 7]


class LazyVolume:
    """A volume that hands out planes only (like a dask or zarr array) and counts the reads."""

    def __init__(self, data):
        self.data, self.reads = data, []
        self.shape, self.ndim, self.dtype = data.shape, data.ndim, data.dtype

    def __getitem__(self, index):
        self.reads.append(index)
        return self.data[index]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole lazy volume was read")


def test_propagate_reads_a_lazy_volume_plane_by_plane():
    volume, obj = cylinder_volume()
    deep = np.concatenate([volume] * 4).astype(np.uint16) * 200  # 40 planes, not uint8
    lazy = LazyVolume(deep)
    steps, _ = run(propagate(FakePredictor(), lazy, 4, obj[4]))
    assert [p for p, _ in steps] == [5, 6, 7]
    assert all(isinstance(i, int) for i in lazy.reads)
    assert len(set(lazy.reads)) <= 16 + 5  # contrast-limit sample + the planes visited
    eager, _ = run(propagate(FakePredictor(), deep, 4, obj[4]))
    assert [p for p, _ in eager] == [5, 6, 7]


def test_fill_between_meets_in_the_middle():
    volume, obj = cylinder_volume()
    steps = list(fill_between(FakePredictor(), volume, 2, obj[2], 7, obj[7]))
    assert [p for p, _ in steps] == [3, 6, 4, 5]  # alternating ends, each plane once
    for plane, mask in steps:
        np.testing.assert_array_equal(mask, obj[plane])
    assert list(fill_between(FakePredictor(), volume, 3, obj[3], 4, obj[4])) == []


def test_fill_between_one_end_empty_other_fills_alone():
    volume, obj = cylinder_volume()
    empty = np.zeros(SHAPE[1:], bool)
    steps = list(fill_between(FakePredictor(), volume, 7, obj[7], 2, empty))
    assert [p for p, _ in steps] == [6, 5, 4, 3]


def test_segment_from_anchors_and_affected_planes():
    volume, obj = cylinder_volume()
    steps = list(segment_from_anchors(FakePredictor(), volume, {4: obj[4]}))
    assert [p for p, _ in steps] == [3, 2, 5, 6, 7]
    # an empty anchor cuts the range: nothing propagates from it
    steps = list(segment_from_anchors(FakePredictor(), volume,
                                      {4: obj[4], 6: np.zeros(SHAPE[1:], bool)}, around=6))
    assert [p for p, _ in steps] == [5]
    assert affected_planes([2, 5, 8], 5, 10) == range(3, 8)
    assert affected_planes([2, 5, 8], 2, 10) == range(0, 5)
    assert affected_planes([2, 5, 8], 8, 10) == range(6, 10)
    assert affected_planes([5], 5, 10) == range(0, 10)


def test_a_dim_anchor_keeps_the_object_contrast_of_the_others():
    """An anchor on a faint plane past the object's end (contrast under MIN_START_CONTRAST
    on its own) is measured against the strongest anchor's contrast: it does not leak on."""
    volume, obj = cylinder_volume()
    volume[8:10][:, disc(5)] = 30  # a faint halo above the object (background 20-25)
    halo = disc(5)
    copy = ShiftPredictor(shift=0)  # follows its prior mask anywhere, like a leak
    steps, reason = run(propagate(copy, volume, 8, halo, direction=+1))
    assert [p for p, _ in steps] == [9]  # alone, the faint start switches the rules off
    steps, reason = run(propagate(copy, volume, 8, halo, direction=+1,
                                  reference_contrast=strongest_contrast(volume, {4: obj[4]})))
    assert steps == [] and reason == "vanished"
    steps = list(segment_from_anchors(copy, volume, {4: obj[4], 8: halo}, around=8))
    assert sorted(p for p, _ in steps) == [5, 6, 7]
    strong = strongest_contrast(volume, {4: obj[4]})
    assert strong > 100 and abs(strongest_contrast(volume, {8: halo})) < MIN_START_CONTRAST
    assert strongest_contrast(volume, {4: obj[4], 8: halo, 0: np.zeros(SHAPE[1:], bool)}) == strong


def test_bad_inputs():
    volume, obj = cylinder_volume()
    p = FakePredictor()
    with pytest.raises(ValueError, match="volume"):
        propagate(p, volume[0], 0, obj[0])
    with pytest.raises(ValueError, match="direction"):
        propagate(p, volume, 4, obj[4], direction=0)
    with pytest.raises(ValueError, match="start_plane"):
        propagate(p, volume, 10, obj[4])
    with pytest.raises(ValueError, match="stop_plane"):
        propagate(p, volume, 4, obj[4], stop_plane=-1)
    with pytest.raises(ValueError, match="start_mask"):
        propagate(p, volume, 4, obj[4][:5])
    with pytest.raises(ValueError, match="differ"):
        fill_between(p, volume, 3, obj[3], 3, obj[3])
    with pytest.raises(ValueError, match="anchor"):
        list(segment_from_anchors(p, volume, {4: obj[4]}, around=5))


def test_propagated_planes_use_the_propagation_outline_settings():
    from napari_inter2former.volume import PROPAGATION_OUTLINE

    class OutlineSpy(FakePredictor):
        refine_level = 0.35
        refine_shrink = False
        seen: list = []

        def _predict(self, click):
            self.seen.append({name: getattr(self, name) for name in PROPAGATION_OUTLINE})
            return super()._predict(click)

    volume, obj = cylinder_volume()
    predictor = OutlineSpy()
    steps, _ = run(propagate(predictor, volume, 4, obj[4], direction=+1))
    assert len(steps) == 3 and predictor.seen == [PROPAGATION_OUTLINE] * 3
    assert predictor.refine_level == 0.35 and predictor.refine_shrink is False
    # a predictor without an outline step is propagated as it is
    steps, _ = run(propagate(FakePredictor(), volume, 4, obj[4], direction=+1))
    assert len(steps) == 3


def test_propagated_outlines_follow_a_tapering_nucleus(monkeypatch):
    """The stub decoder copies its prior (the previous plane's mask) on every plane of
    a nucleus whose radius falls from 8 to 3: the outline step moves it inwards as well."""
    from scipy import ndimage as ndi
    from stub_models import ClickDiscModel

    import napari_inter2former.volume as volume_module
    from napari_inter2former.predictor import Predictor

    radii = [8, 7, 6, 5, 4, 3]
    truth = np.stack([disc(r, center=(32, 32), shape=(64, 64)) for r in radii])
    volume = np.stack([ndi.gaussian_filter(np.where(t, 200.0, 40.0), 0.7) for t in truth])
    volume = volume.astype(np.uint8)
    areas = {}
    for shrink in (False, True):
        monkeypatch.setitem(volume_module.PROPAGATION_OUTLINE, "refine_shrink", shrink)
        predictor = Predictor(ClickDiscModel(), refine_shrink=False)
        steps, _ = run(propagate(predictor, volume, 0, truth[0], direction=+1))
        areas[shrink] = {plane: int(mask.sum()) for plane, mask in steps}
        assert predictor.refine_shrink is False  # restored after propagation
    # growing only, the stub's copy of the previous mask never shrinks
    assert min(areas[False].values()) >= truth[0].sum()
    # both ways, each outline moves to its own plane's
    assert list(areas[True]) == [1, 2, 3, 4, 5]
    for plane, area in areas[True].items():
        assert abs(area - truth[plane].sum()) <= 0.25 * truth[plane].sum(), (plane, area)
