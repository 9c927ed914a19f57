import numpy as np
import pytest
import torch

from napari_inter2former.constants import OUTSIDE_LOGIT
from napari_inter2former.model import ImageFeatures, build_model
from napari_inter2former.model.inter2former import click_tokens
from napari_inter2former.model.build import decoder_state_dict
from napari_inter2former.reference_map import new_reference_map, paint_clicks
from napari_inter2former.transforms import InputGeometry




@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("tiny")


@pytest.fixture(scope="module")
def features(tiny):
    rgb = np.random.RandomState(0).randint(0, 256, (200, 150, 3), dtype=np.uint8)
    with torch.no_grad():
        return tiny.encode(tiny.preprocess(rgb))


def test_preprocess(tiny):
    rgb = np.full((100, 60, 3), 255, dtype=np.uint8)
    x = tiny.preprocess(rgb)
    assert x.shape == (1, 3, 256, 256) and x.dtype == torch.float32
    rows, cols = InputGeometry(100, 60, size=256).resized_shape
    assert (rows, cols) == (256, 154)
    white = (255 - tiny.pixel_mean) / tiny.pixel_std
    torch.testing.assert_close(x[:, :, 10:rows - 10, 10:cols - 10],
                               white.expand(1, 3, rows - 20, cols - 20))  # fmt: skip
    assert float(x[:, :, :, cols:].abs().max()) == 0  # padding: the mean colour


def test_encode_shapes(features):
    assert features.embedding.shape == (1, 64, 16, 16)
    assert [tuple(e.shape) for e in features.edges] == [
        (1, 64, 32, 32), (1, 16, 64, 64), (1, 4, 128, 128), (1, 1, 256, 256)
    ]  # fmt: skip
    assert features[0].embedding.shape == (1, 64, 16, 16)
    assert features.to("cpu", torch.float64).embedding.dtype == torch.float64


def test_decode_eval_path(tiny, features):
    ref = paint_clicks(new_reference_map(256, 256), [(60, 70, True)])
    logits, info = tiny.decode(features, ref, return_info=True)
    assert logits.shape == (1, 1, 256, 256) and logits.dtype == torch.float32
    r0, r1, c0, c1 = info["dlu_box"]
    inside = torch.zeros(256, 256, dtype=torch.bool)
    inside[r0 * 16 : r1 * 16, c0 * 16 : c1 * 16] = True
    assert bool((logits[0, 0][~inside] == OUTSIDE_LOGIT).all())
    assert bool((logits[0, 0][inside] > OUTSIDE_LOGIT).all())
    # first click, all UNKNOWN: the DPE box is the whole map and 'box' sends every token
    # to full attention; 'boundary' only the tokens holding UNKNOWN or a code change
    assert info["box"] == (0, 256, 0, 256) and bool(info["boundary"].all())
    ref2 = torch.where(ref == 2, torch.ones_like(ref), ref)  # background + one disc
    _, info2 = tiny.decode(features, ref2, boundary_rule="boundary", return_info=True)
    # disc rows 55..65, cols 65..75; 7x7 windows flag rows 52..68, cols 62..78: 2 x 2 tokens
    assert int(info2["boundary"].sum()) == 4


def test_click_tokens():
    ref = paint_clicks(new_reference_map(64, 64), [(20, 33, True), (50, 5, False)], radius=2)
    tokens = click_tokens(ref[0, 0])
    assert tokens.shape == (4, 4)
    assert torch.nonzero(tokens).tolist() == [[1, 1], [1, 2]]  # cols 31..35 span two tokens


class _FixedCoarse(torch.nn.Module):
    """A localiser that scores two separate groups of tokens above the threshold."""

    def forward(self, g):
        coarse = torch.full((1, 1) + tuple(g.shape[2:]), -10.0)
        coarse[..., 3:5, 4] = 1.0  # holds the click at pixel (60, 70): token (3, 4)
        coarse[..., 10:13, 10:13] = 1.0  # another object
        return coarse


def test_clicked_dlu_rule_upsamples_only_the_clicked_group(tiny, features):
    ref = paint_clicks(new_reference_map(256, 256), [(60, 70, True)])
    localiser = tiny.upsampler.localiser
    tiny.upsampler.localiser = _FixedCoarse()
    try:
        _, info = tiny.decode(features, ref, return_info=True)
        local, info_local = tiny.decode(features, ref, dlu_rule="clicked", return_info=True)
        negative_only = paint_clicks(new_reference_map(256, 256), [(60, 70, False)])
        _, info_neg = tiny.decode(features, negative_only, dlu_rule="clicked", return_info=True)
    finally:
        tiny.upsampler.localiser = localiser
    assert info["dlu_box"] == (3, 13, 4, 13)
    assert info_local["dlu_box"] == (2, 6, 3, 6)  # the clicked group grown by one token
    outside = torch.ones(256, 256, dtype=torch.bool)
    outside[32:96, 48:96] = False
    assert bool((local[0, 0][outside] == OUTSIDE_LOGIT).all())
    assert bool((local[0, 0][~outside] > OUTSIDE_LOGIT).all())
    assert info_neg["dlu_box"] == info["dlu_box"]  # no positive click: the threshold box
    with pytest.raises(ValueError, match="dlu_rule"):
        tiny.decode(features, ref, dlu_rule="nearby")


def test_boundary_rule_attribute(tiny, features):
    ref = torch.ones(1, 1, 256, 256, dtype=torch.uint8)
    ref[0, 0, 40:120, 40:120] = 3
    box_logits = tiny.decode(features, ref)
    tiny.boundary_rule = "boundary"
    try:
        bnd_logits = tiny.decode(features, ref)
    finally:
        tiny.boundary_rule = "box"
    assert not torch.equal(box_logits, bnd_logits)
    # 'all': every token through full attention, as the dense decoder does
    all_logits, info = tiny.decode(features, ref, boundary_rule="all", return_info=True)
    assert bool(info["boundary"].all()) and not torch.equal(all_logits, box_logits)
    first = paint_clicks(new_reference_map(256, 256), [(60, 70, True)])  # all UNKNOWN
    assert torch.equal(tiny.decode(features, first, boundary_rule="all"), tiny.decode(features, first))
    with pytest.raises(ValueError, match="boundary_rule"):
        tiny.boundary_rule = "variance"


def test_decode_cache_follows_weight_changes(tiny, features):
    ref = paint_clicks(new_reference_map(256, 256), [(60, 70, True)])
    ref = torch.where(ref == 2, torch.ones_like(ref), ref)  # DPE box < map: e_bg used
    other = build_model("tiny")
    torch.manual_seed(5)
    for p in other.parameters():
        torch.nn.init.normal_(p, std=0.2)
    with torch.no_grad():
        before = tiny.decode(features, ref)
        saved = {k: v.clone() for k, v in decoder_state_dict(tiny).items()}
        tiny.load_state_dict(decoder_state_dict(other), strict=False)
        after = tiny.decode(features, ref)
        expected = other.decode(features, ref)
        tiny.load_state_dict(saved, strict=False)
        restored = tiny.decode(features, ref)
    torch.testing.assert_close(after, expected)
    assert not torch.equal(before, after)
    torch.testing.assert_close(restored, before)


def test_forward_train_batch_and_gradients(tiny, features):
    feats = ImageFeatures(
        features.embedding.repeat(2, 1, 1, 1),
        tuple(e.repeat(2, 1, 1, 1) for e in features.edges),
    )
    ref = torch.ones(2, 1, 256, 256, dtype=torch.uint8)  # background: BSQ tokens exist
    paint_clicks(ref, [(60, 70, True)], batch_index=0)
    paint_clicks(ref, [(200, 30, True)], batch_index=1)
    tiny.train()
    try:
        out = tiny.forward_train(feats, ref)
        loss = out["logits"].mean() + out["coarse_logits"].mean() + out["vq_loss"]
        loss.backward()
    finally:
        tiny.eval()
    assert out["logits"].shape == (2, 1, 256, 256)
    assert out["coarse_logits"].shape == (2, 1, 16, 16)
    assert out["vq_loss"].ndim == 0
    grads = {
        n
        for n, p in tiny.named_parameters()
        if p.grad is not None and p.grad.abs().sum() > 0
    }
    assert any(n.startswith("decoder.blocks.0.attn.codebook") for n in grads)
    assert any(n.startswith("upsampler.localiser") for n in grads)
    tiny.zero_grad(set_to_none=True)


def test_forward_local_matches_decode_inside_its_box(tiny, features):
    # eval mode: the local train path is the inference path, crop by crop
    refs = torch.ones(2, 1, 256, 256, dtype=torch.uint8)
    refs[0, 0, 40:120, 40:120] = 3  # a previous mask ...
    paint_clicks(refs, [(60, 70, True), (110, 110, False)], batch_index=0)
    paint_clicks(refs, [(200, 30, True)], batch_index=1)
    feats = ImageFeatures(
        features.embedding.repeat(2, 1, 1, 1),
        tuple(e.repeat(2, 1, 1, 1) for e in features.edges),
    )
    with torch.no_grad():
        out = tiny.forward_local(feats, refs, [None, (0, 2, 0, 2)], margin=0)
    for i in range(2):
        logits, info = tiny.decode(feats[i], refs[i : i + 1], return_info=True)
        r0, r1, c0, c1 = out["boxes"][i]
        if i == 0:
            assert out["boxes"][0] == info["dlu_box"]
        else:  # widened to the target box
            b0, b1, d0, d1 = info["dlu_box"]
            assert (r0, r1, c0, c1) == (min(b0, 0), max(b1, 2), min(d0, 0), max(d1, 2))
        crop = out["crops"][i]
        assert crop.shape == (1, 1, 16 * (r1 - r0), 16 * (c1 - c0))
        if i == 0:
            torch.testing.assert_close(
                crop, logits[:, :, r0 * 16 : r1 * 16, c0 * 16 : c1 * 16],
                atol=1e-4, rtol=1e-4,
            )  # fmt: skip
    assert out["coarse_logits"].shape == (2, 1, 16, 16)


def test_forward_local_follows_the_clicked_dlu_rule(tiny, features):
    ref = paint_clicks(new_reference_map(256, 256), [(60, 70, True)])
    localiser = tiny.upsampler.localiser
    tiny.upsampler.localiser = _FixedCoarse()
    try:
        with torch.no_grad():
            logits, info = tiny.decode(features, ref, dlu_rule="clicked", return_info=True)
            out = tiny.forward_local(features, ref, [None], margin=0, dlu_rule="clicked")
            widened = tiny.forward_local(features, ref, [(7, 8, 1, 2)], margin=0, dlu_rule="clicked")
    finally:
        tiny.upsampler.localiser = localiser
    assert out["boxes"][0] == info["dlu_box"] == (2, 6, 3, 6)
    torch.testing.assert_close(out["crops"][0], logits[:, :, 32:96, 48:96], atol=1e-4, rtol=1e-4)
    assert widened["boxes"][0] == (2, 8, 1, 6)  # joined with the target box


def test_forward_local_gradients(tiny, features):
    ref = torch.ones(1, 1, 256, 256, dtype=torch.uint8)
    paint_clicks(ref, [(60, 70, True)])
    tiny.train()
    try:
        out = tiny.forward_local(features, ref, [(3, 5, 4, 5)])
        loss = out["crops"][0].mean() + out["coarse_logits"].mean() + out["vq_loss"]
        loss.backward()
    finally:
        tiny.eval()
    grads = {
        n
        for n, p in tiny.named_parameters()
        if p.grad is not None and p.grad.abs().sum() > 0
    }
    for prefix in ("decoder.prompt.ref_embed", "decoder.prompt.convs", "upsampler.stages"):
        assert any(n.startswith(prefix) for n in grads), prefix
    tiny.zero_grad(set_to_none=True)


def test_bad_inputs(tiny, features):
    with pytest.raises(ValueError, match="uint8 RGB"):
        tiny.preprocess(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match="shape"):
        tiny.encode(torch.zeros(1, 3, 128, 128))
    with pytest.raises(ValueError, match="ref must have shape"):
        tiny.decode(features, new_reference_map(128, 128))
    two = ImageFeatures(
        features.embedding.repeat(2, 1, 1, 1),
        tuple(e.repeat(2, 1, 1, 1) for e in features.edges),
    )
    with pytest.raises(ValueError, match="batch size 1"):
        tiny.decode(two, new_reference_map(256, 256, batch=2))


def test_predictor_smoke(tiny):
    from napari_inter2former.predictor import Predictor

    predictor = Predictor(tiny)
    image = np.random.RandomState(1).randint(0, 256, (90, 120)).astype(np.uint16)
    predictor.set_image(image)
    mask = predictor.add_click(40, 60, positive=True)
    assert mask.shape == (90, 120) and mask.dtype == bool
    mask2 = predictor.add_click(10, 10, positive=False)
    assert mask2.shape == (90, 120)
    assert predictor.undo_click().shape == (90, 120)


def test_predictor_passes_its_dlu_rule_to_the_decoder(tiny, monkeypatch):
    from napari_inter2former.predictor import Predictor

    with pytest.raises(ValueError, match="dlu_rule"):
        Predictor(tiny, dlu_rule="nearby")
    seen = []
    decode = tiny.decode
    monkeypatch.setattr(tiny, "decode", lambda *a, **k: seen.append(k["dlu_rule"]) or decode(*a, **k))
    predictor = Predictor(tiny, dlu_rule="clicked")
    predictor.set_image(np.random.RandomState(1).randint(0, 256, (90, 120)).astype(np.uint8))
    assert predictor.add_click(40, 60).shape == (90, 120)
    # the first click: the image and its 180-degree turn, decoded twice
    assert seen == ["clicked"] * 4
