"""MobileSAM baseline predictor: prompt bookkeeping (tiny random model), real weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_inter2former.evaluation.mobilesam import MobileSAMPredictor
from napari_inter2former.model.image_encoder import TinyViT
from napari_inter2former.model.sam_decoder import MaskDecoder, PromptEncoder, SamMaskHead
from napari_inter2former.testing import encoder_test_pattern


class SpyPromptEncoder(PromptEncoder):
    """Records the point prompts and whether a mask input was given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def forward(self, points, masks=None):
        self.calls.append(
            (
                points[0].clone(),
                points[1].clone(),
                None if masks is None else masks.clone(),
            )
        )
        return super().forward(points, masks)


class SpyMaskDecoder(MaskDecoder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.multimask = []

    def forward(self, *args):
        self.multimask.append(args[-1])
        return super().forward(*args)


def tiny_predictor(**kwargs) -> MobileSAMPredictor:
    torch.manual_seed(0)
    encoder = TinyViT(
        img_size=64, embed_dims=(8, 16, 16, 32), depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 2),
        window_sizes=(7, 4, 4, 4), out_chans=32,
    )  # fmt: skip
    pe = SpyPromptEncoder(
        embed_dim=32,
        image_embedding_size=(4, 4),
        input_image_size=(64, 64),
        mask_in_chans=8,
    )
    md = SpyMaskDecoder(
        transformer_dim=32, num_heads=2, mlp_dim=64, iou_head_hidden_dim=32
    )
    return MobileSAMPredictor(encoder, SamMaskHead(pe, md), **kwargs)


def grey_image(shape=(50, 100), seed=0):
    return np.random.RandomState(seed).randint(0, 256, size=shape).astype(np.uint8)


def test_masks_have_image_shape_and_points_are_xy_in_resized_frame():
    p = tiny_predictor()
    p.set_image(grey_image((50, 100)))  # resized to 32 x 64 inside the 64 x 64 frame
    mask = p.add_click(10, 50, positive=True)
    assert mask.shape == (50, 100) and mask.dtype == bool
    mask = p.add_click(40, 5, positive=False)
    assert mask.shape == (50, 100)
    coords, labels, _ = p.mask_head.prompt_encoder.calls[-1]
    torch.testing.assert_close(coords, torch.tensor([[[32.0, 6.4], [3.2, 25.6]]]))
    assert labels.tolist() == [[1, 0]]


def test_first_click_best_score_then_single_with_mask_input():
    p = tiny_predictor()
    p.set_image(grey_image())
    p.add_click(20, 30)
    p.add_click(25, 60, positive=False)
    assert p.mask_head.mask_decoder.multimask == [True, False]
    first_mask_input, second_mask_input = (c[2] for c in p.mask_head.prompt_encoder.calls)
    assert first_mask_input is None
    assert second_mask_input.shape == (1, 1, 16, 16)
    assert len(p.last_scores) == 1


def test_first_click_single_mode():
    p = tiny_predictor(first_click="single")
    p.set_image(grey_image())
    p.add_click(20, 30)
    assert p.mask_head.mask_decoder.multimask == [False]


def test_bad_first_click_mode_raises():
    with pytest.raises(ValueError, match="first_click"):
        tiny_predictor(first_click="best")


def test_undo_restores_mask_input():
    p = tiny_predictor()
    p.set_image(grey_image())
    m1 = p.add_click(20, 30)
    p.add_click(25, 60, positive=False)
    state_after_first = p.mask_head.prompt_encoder.calls[1][
        2
    ]  # mask input given to click 2 = click-1 logits
    restored = p.undo_click()
    assert np.array_equal(restored, m1)
    assert len(p.clicks) == 1
    p.add_click(10, 80)
    torch.testing.assert_close(p.mask_head.prompt_encoder.calls[-1][2], state_after_first)
    assert p.mask_head.prompt_encoder.calls[-1][0].shape == (1, 2, 2)  # the undone click is gone


def test_embedding_is_cached_per_image():
    p = tiny_predictor()
    calls = []
    p.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    a, b = grey_image(seed=1), grey_image(seed=2)
    p.set_image(a)
    p.set_image(b)
    p.set_image(a)
    assert len(calls) == 2
    assert len(p.cache) == 2


def test_prior_mask_is_used_as_mask_input():
    p = tiny_predictor()
    p.set_image(grey_image((50, 100)))
    prior = np.zeros((50, 100), bool)
    prior[:, :50] = True  # left half
    p.set_prior_mask(prior)
    p.add_click(10, 10)
    mask_input = p.mask_head.prompt_encoder.calls[-1][2]
    assert p.mask_head.mask_decoder.multimask == [False]
    # left half of the resized image (cols < 32 of 64, rows < 32) on the 16 x 16 grid
    assert (mask_input[0, 0, :8, :8] > 0).all()
    assert (mask_input[0, 0, :8, 8:] < 0).all()
    assert (mask_input[0, 0, 8:] < 0).all()  # padding


# ----- real weights -----


@pytest.fixture(scope="module")
def mobilesam():
    return MobileSAMPredictor.from_pretrained()


def disc_image(shape=(240, 320), center=(110, 170), radius=50, seed=0):
    rng = np.random.RandomState(seed)
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    mask = (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= radius**2
    image = 20 + 15 * rng.rand(*shape)
    image[mask] += 180
    return image.astype(np.uint8), mask


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.mark.slow
def test_one_click_segments_a_bright_disc_and_undo_works(mobilesam):
    image, truth = disc_image()
    mobilesam.set_image(image)
    m1 = mobilesam.add_click(110, 170)
    assert iou(m1, truth) > 0.8
    m2 = mobilesam.add_click(20, 20, positive=False)
    assert iou(m2, truth) > 0.8
    restored = mobilesam.undo_click()
    assert np.array_equal(restored, m1)
    assert len(mobilesam.clicks) == 1
    assert np.array_equal(mobilesam.add_click(20, 20, positive=False), m2)


@pytest.mark.slow
def test_matches_reference_scores_on_synthetic_image(mobilesam):
    # Official MobileSAM code, fp32 checkpoint, point (x=460, y=512): multimask predicted
    # IoUs [1.0221, 1.0106, 0.6903], best mask IoU with the disc 0.990.
    image, disc = encoder_test_pattern()
    mobilesam.set_image(image, channel_axis=2)
    mask = mobilesam.add_click(512, 460)
    np.testing.assert_allclose(
        mobilesam.last_scores, [1.0221, 1.0106, 0.6903], atol=0.02
    )
    assert iou(mask, disc) > 0.97
