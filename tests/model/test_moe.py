import torch
import torch.nn.functional as F

from napari_inter2former.model.moe import HybridMoE




def _per_token(moe, x, boundary):
    """Reference: the documented formula, one token at a time."""
    out = []
    for t in range(x.shape[0]):
        xt = x[t]
        h = F.silu(moe.shared_w1(xt)) * moe.shared_w2(xt)
        shared = moe.shared_w3(moe.shared_ln(h))
        if not boundary[t]:
            out.append(shared)
            continue
        gates = torch.sigmoid(moe.expert_gate(xt))
        e = int(torch.argmax(gates + moe.exp_bias))
        h = F.silu(moe.expert_w1[e] @ xt + moe.expert_b1[e]) * (
            moe.expert_w2[e] @ xt + moe.expert_b2[e]
        )
        routed = moe.expert_w3[e] @ moe.expert_ln(h) + moe.expert_b3[e]
        g = torch.stack([torch.sigmoid(moe.shared_gate(xt))[0], gates[e]])
        w = torch.softmax(g, 0)
        out.append(w[0] * shared + w[1] * routed)
    return torch.stack(out)


def test_grouped_equals_per_token_loop():
    torch.manual_seed(0)
    moe = HybridMoE(embed_dim=16, hidden_dim=32, num_experts=4).eval()
    with torch.no_grad():
        moe.exp_bias.copy_(torch.tensor([0.3, -0.2, 0.0, 0.1]))
    x = torch.randn(50, 16)
    boundary = torch.rand(50) < 0.6
    with torch.no_grad():
        out = moe(x, boundary)
        ref = _per_token(moe, x, boundary)
        choice = moe.route(x[boundary])[0]
    assert len(set(choice.tolist())) >= 3  # several experts really used
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_batched_input_and_gradients():
    torch.manual_seed(1)
    moe = HybridMoE(embed_dim=16, hidden_dim=32, num_experts=4).eval()
    x = torch.randn(2, 10, 16, requires_grad=True)
    boundary = torch.rand(2, 10) < 0.5
    out = moe(x, boundary)
    with torch.no_grad():
        torch.testing.assert_close(out[1], moe(x[1], boundary[1]))
    out.sum().backward()
    assert moe.expert_w1.grad.abs().sum() > 0 and x.grad.abs().sum() > 0


def test_load_balancing_bias_update():
    moe = HybridMoE(embed_dim=8, hidden_dim=16, num_experts=4)
    with torch.no_grad():
        moe.expert_gate.weight.zero_()
        moe.expert_gate.bias.copy_(
            torch.tensor([5.0, 0.0, 0.0, 0.0])
        )  # all to expert 0
    x = torch.randn(12, 8)
    boundary = torch.ones(12, dtype=torch.bool)
    moe.eval()
    moe(x, boundary)
    assert torch.equal(moe.exp_bias, torch.zeros(4))  # no update in eval mode
    moe.train()
    moe(x, boundary)
    torch.testing.assert_close(moe.exp_bias, torch.tensor([-1e-3, 1e-3, 1e-3, 1e-3]))
    assert "exp_bias" in moe.state_dict()
