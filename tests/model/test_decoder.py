import pytest
import torch

from napari_inter2former.constants import POSSIBLY_BACKGROUND, POSSIBLY_FOREGROUND
from napari_inter2former.model.decoder import Inter2FormerDecoder
from napari_inter2former.reference_map import new_reference_map, paint_clicks




def _decoder(seed=0):
    torch.manual_seed(seed)
    return Inter2FormerDecoder(
        embed_dim=32,
        depth=2,
        attn_dim=16,
        code_size=8,
        num_experts=4,
        prompt_dims=(8, 16, 16),
    ).eval()


def _fg_with_bg_hole():
    """Foreground everywhere but a background square: the DPE box is the whole map."""
    ref = torch.full((1, 1, 192, 192), POSSIBLY_FOREGROUND, dtype=torch.uint8)
    ref[0, 0, 48:144, 48:144] = POSSIBLY_BACKGROUND
    return ref


def test_eval_shapes_and_info():
    dec = _decoder()
    emb = torch.randn(1, 32, 16, 16)
    ref = torch.full((1, 1, 256, 256), POSSIBLY_BACKGROUND, dtype=torch.uint8)
    ref = paint_clicks(ref, [(100, 60, True)])
    with torch.no_grad():
        g, info = dec(emb, ref)
        g_dense, info_dense = dec(emb, ref, dense=True)
    assert g.shape == (1, 32, 16, 16)
    assert info["box"] == (64, 128, 32, 96)  # disc rows 95..105, cols 55..65
    assert int(info["boundary"].sum()) == 4 * 4
    assert info_dense["box"] == (0, 256, 0, 256) and bool(info_dense["boundary"].all())
    assert not torch.allclose(g, g_dense)


@pytest.mark.parametrize("rule", ["box", "boundary"])
def test_eval_equals_train_when_dpe_box_is_whole_map(rule):
    """Same DPE (whole map), same boundary tokens: the two paths must agree.

    With the 'boundary' rule most tokens take BSQ attention and the shared expert
    only, so this compares the O(N) BSQ path and grouped experts with the train path.
    """
    dec = _decoder(1)
    # the same dense DPE on both paths (its uniform-field shortcut is pinned in
    # test_prompt_embedding.py): this test is about attention and experts
    dec.prompt._embed_box = dec.prompt.embed
    emb = torch.randn(1, 32, 12, 12)
    ref = _fg_with_bg_hole()
    with torch.no_grad():
        g_eval, info = dec(emb, ref, rule)
        g_train, vq = dec.forward_train(emb, ref, rule)
    assert info["box"] == (0, 192, 0, 192)
    n_boundary = int(info["boundary"].sum())
    # boundary rule: the ring of tokens 2..9 around the hole edges at pixels 48 and 144
    assert n_boundary == (144 if rule == "box" else 8 * 8 - 4 * 4)
    torch.testing.assert_close(g_eval, g_train, atol=1e-4, rtol=1e-4)
    assert vq > 0


def test_train_batch_is_per_sample_and_differentiable():
    dec = _decoder(2).train()
    emb = torch.randn(2, 32, 12, 12, requires_grad=True)
    ref = torch.cat([_fg_with_bg_hole(), new_reference_map(192, 192)])
    g, vq = dec.forward_train(emb, ref)
    dec.eval()  # freeze the load-balancing bias for the comparison
    with torch.no_grad():
        g1, _ = dec.forward_train(emb[1:], ref[1:])
        g1b, _ = dec.forward_train(emb, ref)
    torch.testing.assert_close(g1b[1:], g1, atol=1e-5, rtol=1e-5)
    (g.square().mean() + vq).backward()
    assert emb.grad.abs().sum() > 0
    assert dec.prompt.ref_embed.weight.grad.abs().sum() > 0


def test_bad_rule():
    dec = _decoder()
    with pytest.raises(ValueError, match="boundary_rule"):
        dec(torch.zeros(1, 32, 4, 4), new_reference_map(64, 64), "variance")
