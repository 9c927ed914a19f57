"""SAM prompt encoder and mask decoder: shapes, prompt semantics, shipped weights."""

from __future__ import annotations

import pytest
import torch

from napari_inter2former.model.sam_decoder import (
    MaskDecoder,
    PromptEncoder,
    load_mobilesam_prompt_decoder,
)




def tiny_modules():
    torch.manual_seed(0)
    pe = PromptEncoder(
        embed_dim=32, image_embedding_size=(8, 8), input_image_size=(128, 128), mask_in_chans=8
    )
    md = MaskDecoder(transformer_dim=32, num_heads=2, mlp_dim=64, iou_head_hidden_dim=32)
    return pe.eval(), md.eval()


def test_shapes():
    pe, md = tiny_modules()
    g = torch.Generator().manual_seed(1)
    points = torch.rand(2, 3, 2, generator=g) * 128
    labels = torch.tensor([[1, 0, 1], [1, 1, 0]])
    sparse, dense = pe((points, labels))
    assert sparse.shape == (2, 4, 32)  # 3 points + padding token
    assert dense.shape == (2, 32, 8, 8)
    emb = torch.randn(2, 32, 8, 8, generator=g)
    with torch.no_grad():
        masks, iou = md(emb, pe.get_dense_pe(), sparse, dense, multimask_output=True)
        single, iou1 = md(emb, pe.get_dense_pe(), sparse, dense, multimask_output=False)
    assert masks.shape == (2, 3, 32, 32) and iou.shape == (2, 3)
    assert single.shape == (2, 1, 32, 32) and iou1.shape == (2, 1)
    # the single output is a different token from the three multimask ones
    assert not any(torch.allclose(single[:, 0], masks[:, i]) for i in range(3))
    # a mask prompt replaces the no-mask embedding
    _, dense_m = pe((points, labels), masks=torch.randn(2, 1, 32, 32, generator=g))
    assert dense_m.shape == (2, 32, 8, 8)
    assert not torch.allclose(dense_m, dense)


def test_point_embedding_semantics():
    pe, _ = tiny_modules()
    points = torch.tensor([[[10.0, 20.0], [10.0, 20.0]]])
    sparse, _ = pe((points, torch.tensor([[1, 0]])))
    # same position, opposite labels: difference of the two label embeddings
    diff = sparse[0, 0] - sparse[0, 1]
    expected = pe.point_embeddings[1].weight[0] - pe.point_embeddings[0].weight[0]
    torch.testing.assert_close(diff, expected)
    # padding token: no position encoding, only the not-a-point embedding
    torch.testing.assert_close(sparse[0, 2], pe.not_a_point_embed.weight[0])


def test_point_and_grid_position_encodings_agree():
    """A point at the centre of embedding cell (row i, col j) gets that cell's dense encoding."""
    pe, _ = tiny_modules()
    dense_pe = pe.get_dense_pe()[0]  # (C, 8, 8); one cell = 16 input pixels
    i, j = 2, 5
    # pixel (x, y) whose centre (+0.5) is the cell centre
    xy = torch.tensor([[[(j + 0.5) * 16 - 0.5, (i + 0.5) * 16 - 0.5]]])
    point_pe = pe.pe_layer.forward_with_coords(xy + 0.5, pe.input_image_size)[0, 0]
    torch.testing.assert_close(point_pe, dense_pe[:, i, j], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(point_pe, dense_pe[:, j, i], atol=1e-3)  # x/y not swapped


def test_tokens_attend_to_the_image():
    pe, md = tiny_modules()
    sparse, dense = pe((torch.tensor([[[40.0, 60.0]]]), torch.tensor([[1]])))
    g = torch.Generator().manual_seed(2)
    emb = torch.randn(1, 32, 8, 8, generator=g)
    with torch.no_grad():
        a, _ = md(emb, pe.get_dense_pe(), sparse, dense, True)
        b, _ = md(emb.flip(-1), pe.get_dense_pe(), sparse, dense, True)
    assert not torch.allclose(a, b)


def test_default_key_counts_match_checkpoint():
    # MobileSAM's mobile_sam.pt has 17 prompt_encoder.* and 120 mask_decoder.* entries
    assert len(PromptEncoder().state_dict()) == 17
    assert len(MaskDecoder().state_dict()) == 120


@pytest.mark.slow
def test_shipped_weights_load_strict():
    pe, md = PromptEncoder(), MaskDecoder()
    before = md.iou_token.weight.clone()
    load_mobilesam_prompt_decoder(pe, md)  # strict: raises on a missing or extra key
    assert not torch.equal(before, md.iou_token.weight)
    assert torch.isfinite(pe.pe_layer.positional_encoding_gaussian_matrix).all()
