import torch

from napari_inter2former.constants import OUTSIDE_LOGIT
from napari_inter2former.model.upsampling import DynamicLocalUpsampling, stage_channels




def _inputs(up, side, seed=0):
    rng = torch.Generator().manual_seed(seed)
    g = torch.randn(1, 64, side, side, generator=rng)
    edges = [
        torch.randn(1, c, side * 2 ** (j + 1), side * 2 ** (j + 1), generator=rng)
        for j, c in enumerate(up.edge_channels)
    ]
    return g, edges


def _crop_edges(edges, box):
    r0, r1, c0, c1 = box
    return [e[:, :, r0 * 2 ** (j + 1) : r1 * 2 ** (j + 1), c0 * 2 ** (j + 1) : c1 * 2 ** (j + 1)]
            for j, e in enumerate(edges)]  # fmt: skip


def test_stage_channels():
    assert stage_channels(256) == (256, 64, 16, 4, 1)
    assert stage_channels(64) == (64, 16, 4, 1, 1)


def test_roi():
    up = DynamicLocalUpsampling(64)
    coarse = torch.full((10, 12), -5.0)
    coarse[2, 3] = coarse[6, 8] = -1.0
    assert up.roi(coarse) == (2, 7, 3, 9)
    assert up.roi(torch.full((10, 12), -3.0)) == (0, 10, 0, 12)  # none above -2: all


def test_roi_of_the_clicked_groups():
    up = DynamicLocalUpsampling(64)
    coarse = torch.full((10, 12), -5.0)
    coarse[2:4, 3:5] = 0.0  # the clicked nucleus
    coarse[4, 5] = 0.0  # touches it diagonally: the same group
    coarse[7:9, 9:11] = 0.0  # another nucleus
    seeds = torch.zeros(10, 12, dtype=torch.bool)
    seeds[3, 3] = True
    assert up.roi(coarse, seeds) == (1, 6, 2, 7)  # (2, 5, 3, 6) grown by one token
    seeds[8, 10] = True  # a positive click on the other nucleus too
    assert up.roi(coarse, seeds) == (1, 10, 2, 12)
    off = torch.zeros(10, 12, dtype=torch.bool)
    off[0, 11] = True  # a click the localiser missed: the whole threshold box
    assert up.roi(coarse, off) == up.roi(coarse) == (2, 9, 3, 11)
    edge = torch.zeros(10, 12, dtype=torch.bool)
    edge[8, 10] = True
    assert up.roi(coarse, edge) == (6, 10, 8, 12)  # clipped at the grid


def test_crop_equals_full_with_the_same_normalisation():
    """With GroupNorm statistics taken from the crop, crop and full runs agree except
    within 4 tokens of a crop side inside the image (bicubic taps and 3x3 convs grow
    the border zone to ~60 px over the 4 stages); at the image border they are exact."""
    torch.manual_seed(0)
    up = DynamicLocalUpsampling(64).eval()
    g, edges = _inputs(up, 24)
    box = (5, 19, 0, 14)  # touches the left image border
    r0, r1, c0, c1 = box
    with torch.no_grad():
        local, stats = up.upsample(g[:, :, r0:r1, c0:c1], _crop_edges(edges, box))
        full, _ = up.upsample(g, edges, stats)
        full_own, _ = up.upsample(g, edges)
    diff = (full[0, 0, r0 * 16 : r1 * 16, c0 * 16 : c1 * 16] - local[0, 0]).abs()
    m = 4 * 16
    assert (
        float(diff[m:-m, : diff.shape[1] - m].max()) < 1e-5
    )  # left side: image border
    assert float(diff[:, -8:].max()) > 1e-3  # the crop border really differs
    # with its own statistics the full run differs everywhere (different GroupNorm)
    own = (full_own[0, 0, r0 * 16 : r1 * 16, c0 * 16 : c1 * 16] - local[0, 0]).abs()
    assert float(own[m:-m, : own.shape[1] - m].max()) > 1e-3


def test_forward_pastes_crop_into_outside_canvas():
    torch.manual_seed(1)
    up = DynamicLocalUpsampling(64).eval()
    g, edges = _inputs(up, 8, seed=1)
    box = (2, 5, 3, 7)
    up.roi = lambda coarse, seeds=None: box  # force the localiser's box
    with torch.no_grad():
        out, used = up(g, edges)
        local, _ = up.upsample(g[:, :, 2:5, 3:7], _crop_edges(edges, box))
    assert used == box and out.shape == (1, 1, 128, 128)
    inside = torch.zeros(128, 128, dtype=torch.bool)
    inside[32:80, 48:112] = True
    assert bool((out[0, 0][~inside] == OUTSIDE_LOGIT).all())
    torch.testing.assert_close(out[0, 0, 32:80, 48:112], local[0, 0])
    with torch.no_grad():
        dense, dense_box = up(g, edges, dense=True)
    assert dense_box == (0, 8, 0, 8) and bool((dense > OUTSIDE_LOGIT).all())


def test_train_path_detaches_localiser_input():
    up = DynamicLocalUpsampling(64)
    g, edges = _inputs(up, 6, seed=2)
    g.requires_grad_(True)
    logits, coarse = up.forward_train(g, edges)
    assert logits.shape == (1, 1, 96, 96) and coarse.shape == (1, 1, 6, 6)
    coarse.sum().backward()
    assert g.grad is None  # the coarse loss trains only the localiser
    assert up.localiser[0].weight.grad.abs().sum() > 0
