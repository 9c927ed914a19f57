import pytest
import torch

from napari_inter2former.constants import POSSIBLY_BACKGROUND, POSSIBLY_FOREGROUND
from napari_inter2former.model.prompt_embedding import (
    DynamicPromptEmbedding,
    prompt_box,
)
from napari_inter2former.reference_map import new_reference_map, paint_clicks




def _bg(size=256):
    return torch.full((1, 1, size, size), POSSIBLY_BACKGROUND, dtype=torch.uint8)


def test_prompt_box():
    ref = paint_clicks(_bg(), [(50, 70, True)])  # disc rows 45..55, cols 65..75
    assert prompt_box(ref[0, 0]) == (16, 80, 48, 96)
    assert prompt_box(_bg()[0, 0]) == (0, 256, 0, 256)  # nothing but background
    corner = paint_clicks(_bg(), [(2, 250, False)])
    assert prompt_box(corner[0, 0]) == (0, 32, 224, 256)  # clipped to the map
    assert prompt_box(new_reference_map(64, 64)[0, 0]) == (0, 64, 0, 64)  # all UNKNOWN


def test_background_is_infinite_background_response():
    torch.manual_seed(0)
    dpe = DynamicPromptEmbedding(32, (8, 16, 16))
    with torch.no_grad():
        full = dpe.embed(_bg(128))[0]  # (32, 8, 8)
        e_bg = dpe.background()
    # tokens 1.. have no zero padding in their receptive field
    torch.testing.assert_close(full[:, 1:, 1:], e_bg[:, None, None].expand(-1, 7, 7))
    assert (
        float((full[:, 0, 0] - e_bg).abs().max()) > 0
    )  # the padded corner token differs


def test_crop_equals_whole_image_away_from_box_start():
    torch.manual_seed(1)
    dpe = DynamicPromptEmbedding(32, (8, 16, 16))
    ref = _bg(256)
    ref[0, 0, 100:130, 90:140] = POSSIBLY_FOREGROUND
    ref = paint_clicks(ref, [(115, 110, True), (40, 200, False)])
    box = prompt_box(ref[0, 0])
    r0, c0 = box[0] // 16, box[2] // 16
    with torch.no_grad():
        cropped = dpe(ref)[0]
        full = dpe.embed(ref)[0]
    keep = torch.ones(16, 16, dtype=torch.bool)
    keep[0, :] = keep[:, 0] = False  # image border: zero padding in the full run
    keep[r0, :] = keep[:, c0] = False  # first box row/col: crop padding
    diff = (cropped - full).abs().amax(0)
    assert float(diff[keep].max()) < 1e-5
    assert float(diff[r0, c0 + 1 :].max()) > 0  # the documented approximation is real


def test_background_cache_follows_weights():
    dpe = DynamicPromptEmbedding(16, (4, 8, 8))
    with torch.no_grad():
        a = dpe.uniform_fields()
        assert dpe.uniform_fields() is a  # cached
        dpe.convs[-2].bias.add_(1.0)  # in-place weight change
        b = dpe.uniform_fields()
    assert b is not a
    torch.testing.assert_close(b, dpe._compute_fields().detach())
    torch.testing.assert_close(dpe.background(), b[POSSIBLY_BACKGROUND])
    assert dpe.background().requires_grad  # with autograd on: computed, not cached


def test_bad_inputs():
    with pytest.raises(ValueError, match="hidden_dims"):
        DynamicPromptEmbedding(16, (4, 8))
    dpe = DynamicPromptEmbedding(16, (4, 8, 8))
    with pytest.raises(ValueError, match="one map"):
        dpe(torch.ones(2, 1, 64, 64, dtype=torch.uint8))


def test_first_click_map_convolves_only_around_the_disc():
    """An UNKNOWN map with one disc: uniform tokens get e_UNKNOWN, the rest is convolved."""
    torch.manual_seed(2)
    dpe = DynamicPromptEmbedding(32, (8, 16, 16))
    ref = paint_clicks(new_reference_map(256, 256), [(120, 150, True)])
    calls = []
    dpe.convs.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape[-2:])))
    with torch.no_grad():
        fast = dpe(ref)[0]
        full = dpe.embed(ref)[0]
    assert calls[0] == (48, 48)  # the disc's snapped box (112..128 +- 16, 144..160 +- 16)
    keep = torch.ones(16, 16, dtype=torch.bool)
    keep[0, :] = keep[:, 0] = False  # image border: zero padding in the full run
    keep[-1, :] = keep[:, -1] = False
    keep[112 // 16 - 1, :] = keep[:, 144 // 16 - 1] = False  # first row/col of the conv box
    diff = (fast - full).abs().amax(0)
    assert float(diff[keep].max()) < 1e-5
