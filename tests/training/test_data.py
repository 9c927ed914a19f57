from pathlib import Path

import numpy as np
import pytest
import torch

from napari_inter2former.model.build import build_from_config
from napari_inter2former.training.data import (
    FeaturePool,
    RawView,
    build_pool,
    iter_synthetic_views,
    load_real_set,
    random_view,
    synthetic_view,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _view(source="plantseg"):
    rng = np.random.default_rng(0)
    labels = np.zeros((40, 30), np.int32)
    labels[5:15, 5:12] = 1
    labels[20:35, 10:25] = 2
    rgb = (rng.random((40, 30, 3)) * 200).astype(np.uint8)
    return RawView(rgb, labels, source, "toy")


def test_zoom_out_tiles_with_new_ids():
    v = _view()
    out = random_view(v, np.random.default_rng(1), zoom=(0.4, 0.4))
    assert out.rgb.shape[:2] == out.labels.shape
    assert sorted(out.labels.shape) == [75, 100]  # may be turned by 90 degrees
    ids = np.unique(out.labels)
    assert ids.max() > 2  # mirrored copies are separate objects
    np.testing.assert_array_equal(ids, np.arange(ids.max() + 1))


def test_zoom_in_crops_and_keeps_pairs_aligned():
    v = _view()
    v.rgb[v.labels == 2] = 255  # mark object 2 in the image
    for seed in range(8):
        out = random_view(v, np.random.default_rng(seed), zoom=(2.0, 2.0))
        assert sorted(out.labels.shape) == [15, 20]
        marked = (out.rgb == 255).all(-1)
        if marked.any():  # the marked pixels are exactly one object of the view
            k = out.labels[marked][0]
            assert k > 0
            np.testing.assert_array_equal(marked, out.labels == k)


def test_natural_view_keeps_object():
    labels = np.zeros((60, 80), np.int32)
    labels[40:50, 60:70] = 1
    v = RawView(np.zeros((60, 80, 3), np.uint8), labels, "coco_mval", "toy")
    for seed in range(10):
        assert (random_view(v, np.random.default_rng(seed)).labels == 1).any()


def test_build_pool_and_batch(micro, tmp_path):
    torch.manual_seed(0)
    model = build_from_config(micro)
    views = [synthetic_view(s, (48, 96)) for s in range(3)] + [_view()]
    pool = build_pool(model, views, batch_size=2, min_object_area=8)
    assert len(pool) == 4
    t = micro.image_size
    assert pool.images[0].shape == (3, t, t) and pool.images[0].dtype == torch.float16
    assert pool.embeddings[0].shape == (micro.embed_dim, t // 16, t // 16)
    # toy view: 40 x 30 -> 64 x 48 on the grid; objects scaled by 1.6
    rows, cols = pool.valid[3]
    assert (rows, cols) == (64, 48)
    lab = pool.labels[3].numpy()
    assert set(np.unique(lab)) == {0, 1, 2}
    assert (lab[rows:] == 0).all() and (lab[:, cols:] == 0).all()
    assert abs((lab == 2).sum() - 15 * 15 * 1.6**2) < 60
    # the embedding is the encoder's output on the preprocessed image
    x = model.preprocess(views[3].rgb)
    with torch.no_grad():
        expected = model.image_encoder(x)[0]
    torch.testing.assert_close(
        pool.embeddings[3].float(), expected, atol=2e-3, rtol=1e-2
    )
    picks = pool.sample(np.random.default_rng(0), 3)
    image, _, gt, valid = pool.batch(picks, "cpu")
    assert image.shape == (3, 3, t, t) and gt.shape == valid.shape == (3, 1, t, t)
    assert all(gt[b].sum() >= 8 for b in range(3))
    assert not (gt & ~valid).any()
    pool.save(tmp_path / "pool.pt")
    again = FeaturePool.load(tmp_path / "pool.pt")
    assert again.names == pool.names and torch.equal(
        again.embeddings[1], pool.embeddings[1]
    )


def test_sample_follows_source_weights(micro):
    model = build_from_config(micro)
    views = [synthetic_view(0, (48, 96)), _view("plantseg"), _view("bian")]
    pool = build_pool(model, views, min_object_area=8)
    rng = np.random.default_rng(0)
    picks = pool.sample(rng, 200, {"plantseg": 3.0, "bian": 1.0})
    sources = [pool.sources[i] for i, _ in picks]
    assert "synthetic" not in sources  # a source left out is never drawn
    assert 120 < sources.count("plantseg") < 180
    with pytest.raises(ValueError, match="no weight"):
        pool.sample(rng, 2, {"coco_mval": 1.0})
    with pytest.raises(ValueError, match="must be >= 0"):
        pool.sample(rng, 2, {"plantseg": -1.0, "bian": 1.0})
    with pytest.raises(ValueError, match="must be >= 0"):
        pool.sample(rng, 2, {"nuclei": 1.0})


def test_build_pool_limit_and_deadline(micro):
    model = build_from_config(micro)
    views = [_view() for _ in range(5)]
    assert len(build_pool(model, views, limit=2)) == 2
    assert len(build_pool(model, views, deadline=0.0)) == 0


@pytest.mark.slow
def test_real_sets_split_without_overlap():
    if not (DATA / "train").is_dir():
        pytest.skip(f"training data not found at {DATA}")
    for name in ("plantseg", "bian"):
        train = load_real_set(DATA, name, "train")
        val = load_real_set(DATA, name, "val")
        assert train and val
        assert all(
            v.rgb.dtype == np.uint8 and v.rgb.shape[:2] == v.labels.shape
            for v in train + val
        )
    train = load_real_set(DATA, "plantseg", "train")
    val = load_real_set(DATA, "plantseg", "val")
    z_val = {int(v.name.split("z=")[1][:-1]) for v in val if "nuclei" in v.name}
    z_train = {
        int(v.name.split("z=")[1][:-1])
        for v in train
        if "nuclei" in v.name and "z=" in v.name
    }
    assert min(z_val) > max(z_train) + 1  # a gap of at least one plane
    with pytest.raises(ValueError, match="split"):
        load_real_set(DATA, "plantseg", "test")


def test_synthetic_views_take_the_generators_options():
    from napari_inter2former.training.synthetic import synthetic_image
    from napari_inter2former.transforms import to_rgb_uint8

    faint = {"dim_share": (0.5, 0.5), "dim_brightness": (0.05, 0.05)}
    seeds = [1, 2, 3, 4]
    views = list(iter_synthetic_views(seeds, (48, 96), 2, **faint))  # forked workers
    assert [v.name for v in views] == [f"synthetic-{s}" for s in seeds]
    for seed, view in zip(seeds, views):
        expected = synthetic_image(seed, size_range=(48, 96), **faint)
        assert np.array_equal(view.rgb, to_rgb_uint8(expected.image))
        assert np.array_equal(view.labels, expected.labels)
    plain = [synthetic_view(s, (48, 96)) for s in seeds]
    assert any(not np.array_equal(a.rgb, b.rgb) for a, b in zip(plain, views))
