"""Tiles: objects of images larger than the network input segmented at the image's resolution.

The stub model's network input is 128 px: a 300 x 200 image is "large". Its logits
are positive exactly on positive click discs (radius 5 grid px), so the disc's size
in image pixels tells the scale the predictor worked at.
"""

import numpy as np
import pytest
from stub_models import ClickDiscModel

from napari_inter2former.predictor import Click, Predictor, Tiles

SHAPE = (300, 200)
TILES = Tiles(side=128, margin=8, reuse_margin=20)  # stride 64: rows start at 0, 64, 128, 172; columns 0, 64, 72


def make(tiles=TILES):
    model = ClickDiscModel()
    predictor = Predictor(model, tiles=tiles, flip_ensemble=None, refine_boundary=False)
    predictor.set_image(np.zeros(SHAPE, dtype=np.uint8))
    return predictor, model


def test_tile_starts_cover_the_axis():
    assert TILES.starts(300) == [0, 64, 128, 172]
    assert TILES.starts(128) == [0]
    assert TILES.starts(90) == [0]
    assert Tiles(side=128, stride=128, reuse_margin=40).starts(300) == [0, 128, 172]


def test_window_is_the_tile_whose_inner_borders_lie_furthest():
    assert TILES.window(None, [Click(150, 100)], SHAPE) == (64, 192, 64, 192)
    assert TILES.window(None, [Click(5, 195)], SHAPE) == (0, 128, 72, 200)  # image borders: no limit
    assert TILES.window(None, [Click(50, 50)], (128, 100)) is None  # not larger than a tile
    assert TILES.window(None, [], SHAPE) is None
    # the current tile is kept while the object keeps the margin from its inner borders
    assert TILES.window(None, [Click(150, 100)], SHAPE, current=(128, 256, 64, 192)) == (
        128, 256, 64, 192,
    )
    assert TILES.window(None, [Click(131, 100)], SHAPE, current=(128, 256, 64, 192)) == (
        64, 192, 64, 192,
    )
    tall = np.zeros(SHAPE, bool)
    tall[10:290, 90:110] = True  # fits in no tile: the whole image
    assert TILES.window(tall, [], SHAPE) is None
    with pytest.raises(ValueError, match="margin"):
        Tiles(side=128, margin=0)
    with pytest.raises(ValueError, match="stride"):
        Tiles(side=128, stride=200)
    with pytest.raises(ValueError, match="reuse_margin"):
        Tiles(side=128, margin=8)  # the default 128 px of room cannot fit in a 128-px tile


def test_first_click_is_segmented_in_a_tile_at_the_image_resolution():
    whole, _ = make(tiles=None)
    mask = whole.add_click(150, 100)
    assert whole.zoom_box is None
    assert mask[150, 108]  # 5 grid px at 128 / 300: about 12 image px
    predictor, model = make()
    mask = predictor.add_click(150, 100)
    assert predictor.zoom_box == (64, 192, 64, 192)
    assert model.encoded_shapes[-1] == (128, 128)
    assert mask.shape == SHAPE
    assert mask[150, 104] and not mask[150, 108]  # 5 grid px = 5 image px
    # the next object elsewhere: its own tile
    predictor.reset()
    predictor.add_click(10, 10)
    assert predictor.zoom_box == (0, 128, 0, 128)


def test_an_object_that_outgrows_every_tile_moves_to_the_whole_image_and_back_on_undo():
    predictor, model = make()
    first = predictor.add_click(150, 100)
    mask = predictor.add_click(280, 180)  # rows 150-280 fit in no tile
    assert predictor.zoom_box is None
    assert mask[150, 100] and mask[280, 180]
    n_encoded = len(model.encoded_shapes)
    np.testing.assert_array_equal(predictor.undo_click(), first)
    assert predictor.zoom_box == (64, 192, 64, 192)
    predictor.add_click(152, 102)
    assert len(model.encoded_shapes) == n_encoded  # the tile's features came from the cache


def test_a_prior_mask_starts_in_its_tile():
    predictor, _ = make()
    prior = np.zeros(SHAPE, bool)
    prior[200:220, 20:40] = True
    predictor.set_prior_mask(prior)
    assert predictor.zoom_box == (128, 256, 0, 128)
    mask = predictor.add_click(210, 30)
    assert mask[200:220, 20:40].all() and not mask[:150].any()


def test_encode_ahead_of_a_large_image_leaves_the_turned_views_to_the_tiles():
    model = ClickDiscModel()
    predictor = Predictor(model, tiles=TILES, flip_ensemble="first", refine_boundary=False)
    image = np.random.default_rng(0).integers(0, 255, SHAPE, dtype=np.uint8)
    predictor.encode_ahead(image)
    assert model.encoded_shapes == [SHAPE]  # the whole image, not its turn
    predictor.set_image(image)
    predictor.add_click(150, 100)
    assert model.encoded_shapes == [SHAPE, (128, 128), (128, 128)]  # the tile and its turn


def test_the_turned_views_of_the_tiles_visited_stay_cached():
    model = ClickDiscModel()
    predictor = Predictor(model, tiles=TILES, flip_ensemble="first", refine_boundary=False)
    predictor.set_image(np.random.default_rng(0).integers(0, 255, SHAPE, dtype=np.uint8))
    boxes = []
    for row, col in [(30, 30), (270, 170), (150, 100), (40, 40)]:  # the last back in the first tile
        predictor.reset()
        predictor.add_click(row, col)
        boxes.append(predictor.zoom_box)
    assert len(set(boxes[:3])) == 3 and boxes[3] == boxes[0]
    assert model.encoded_shapes.count((128, 128)) == 6  # three tiles and their turns, once each
    assert predictor.flip_cache.max_entries == 4  # the three tiles' turns and the image's
    capped = Predictor(
        ClickDiscModel(), cache_size=4, tiles=TILES, flip_ensemble="first", refine_boundary=False
    )
    capped.set_image(np.zeros(SHAPE, dtype=np.uint8))
    capped.cache.max_entries = 20  # as the widget grows it for a stack
    for row, col in [(30, 30), (270, 170), (150, 100)]:
        capped.reset()
        capped.add_click(row, col)
    assert capped.flip_cache.max_entries == 3  # the starting cache size less one


def test_a_new_object_is_taken_into_a_tile_already_encoded_where_it_fits():
    tiles = TILES
    # alone, a click at row 170 goes to the tile starting at row 128 (room 42 vs 22) ...
    assert tiles.window(None, [Click(170, 100)], SHAPE) == (128, 256, 64, 192)
    # ... but to the encoded tile of rows 64-192 where that holds it with 20 px to spare
    assert tiles.window(None, [Click(170, 100)], SHAPE, encoded=[(64, 192, 64, 192)]) == (
        64, 192, 64, 192,
    )
    assert tiles.window(None, [Click(180, 100)], SHAPE, encoded=[(64, 192, 64, 192)]) == (
        128, 256, 64, 192,
    )
    predictor, model = make(tiles)
    predictor.add_click(150, 100)
    predictor.reset()
    predictor.add_click(170, 100)
    assert predictor.zoom_box == (64, 192, 64, 192)
    assert model.encoded_shapes.count((128, 128)) == 1  # the first object's tile, reused
    predictor.set_image(np.ones(SHAPE, dtype=np.uint8))  # another image: no tile encoded yet
    predictor.add_click(170, 100)
    assert predictor.zoom_box == (128, 256, 64, 192)


def test_propagation_through_large_planes_runs_in_tiles():
    from napari_inter2former.volume import propagate

    volume = np.full((3, *SHAPE), 20, dtype=np.uint8)
    volume[:, 200:220, 20:40] = 200
    start = volume[0] > 100
    predictor, model = make()
    planes = dict(propagate(predictor, volume, 0, start))
    assert sorted(planes) == [1, 2]
    for mask in planes.values():
        assert mask.shape == SHAPE
        assert mask[202:218, 22:38].all() and not mask[:150].any() and not mask[:, 60:].any()
    assert predictor.zoom_box == (128, 256, 0, 128)
    assert (128, 128) in model.encoded_shapes  # the planes' tiles


def test_encode_ahead_around_a_point_encodes_the_tile_a_first_click_there_takes():
    model = ClickDiscModel()
    predictor = Predictor(model, tiles=TILES, flip_ensemble="first", refine_boundary=False)
    image = np.random.default_rng(0).integers(0, 255, SHAPE, dtype=np.uint8)
    predictor.encode_ahead(image, around=(150, 100))
    assert model.encoded_shapes == [SHAPE, (128, 128), (128, 128)]  # the image, a tile, its turn
    predictor.set_image(image)
    predictor.add_click(170, 90)  # near the point: the tile encoded ahead, nothing to encode
    assert predictor.zoom_box == (64, 192, 64, 192)
    assert len(model.encoded_shapes) == 3
    predictor.encode_ahead(image, around=(160, 110))  # the same tile: nothing to do
    assert len(model.encoded_shapes) == 3
    other = np.ascontiguousarray(image[::-1])
    predictor.encode_ahead(other, around=(150, 100), turned=False)  # e.g. a plane to propagate
    assert model.encoded_shapes[3:] == [SHAPE, (128, 128)]


def test_zoom_in_wins_over_the_tile_from_the_second_click_on():
    from napari_inter2former.predictor import ZoomIn

    model = ClickDiscModel()
    zoom = ZoomIn(expansion=4, min_side=16, max_fraction=0.6)
    predictor = Predictor(model, tiles=TILES, zoom_in=zoom, flip_ensemble=None, refine_boundary=False)
    predictor.set_image(np.zeros(SHAPE, dtype=np.uint8))
    predictor.add_click(150, 100)
    assert predictor.zoom_box == (64, 192, 64, 192)  # no mask yet: zoom waits, the tile
    predictor.add_click(152, 102)
    top, bottom, _left, _right = predictor.zoom_box
    assert bottom - top < 64 and top <= 145 and bottom > 152  # a zoom crop around the nucleus
    predictor.undo_click()
    assert predictor.zoom_box == (64, 192, 64, 192)


def test_a_first_click_zoom_starts_from_the_tile():
    from napari_inter2former.predictor import ZoomIn

    model = ClickDiscModel()
    zoom = ZoomIn(expansion=4, min_side=16, max_fraction=0.6, below=0.1, first_click=True)
    predictor = Predictor(model, tiles=TILES, zoom_in=zoom, flip_ensemble=None, refine_boundary=False)
    predictor.set_image(np.zeros(SHAPE, dtype=np.uint8))
    # decoded in the tile (64, 192, 64, 192): the disc spans about 11 px, under 0.1 of the
    # 128-px tile, so the first click is replayed at once in a crop around it
    predictor.add_click(150, 100)
    top, bottom, left, right = predictor.zoom_box
    assert bottom - top < 64 and top <= 145 and bottom > 152
    assert model.encoded_shapes[-2:] == [(128, 128), (bottom - top, right - left)]
