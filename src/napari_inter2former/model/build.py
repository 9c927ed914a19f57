"""Model variants and the builder.

>>> model = build_model("tiny")                      # random weights, for tests
>>> model = build_model("default", pretrained=True)  # doctest: +SKIP

Variants (``CONFIGS``):

- ``"default"``: MobileSAM TinyViT encoder, T = 1024, C = 256, slim edge net,
  2 decoder blocks, 8 experts, 8-bit BSQ codes.
- ``"official-edges"``: the same with the official CannyNet layout
  (widths (4, 16, 64, 256), 4 residual blocks per stage).
- ``"tiny"``: a stand-in patch encoder, T = 256, C = 64; random weights, fast.

The decoder weight file holds the edge net, decoder and upsampler
(:func:`decoder_state_dict`); the encoder has its own file.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .common import PatchEncoder
from .decoder import Inter2FormerDecoder
from .edge_net import EdgeNet
from .inter2former import Inter2Former
from .upsampling import DynamicLocalUpsampling, stage_channels

__all__ = [
    "CONFIGS",
    "DECODER_FILE",
    "ModelConfig",
    "build_from_config",
    "build_model",
    "decoder_state_dict",
    "load_decoder_state_dict",
]

DECODER_FILE = "inter2former_decoder.safetensors"
ENCODER_FILE = "mobilesam_image_encoder.safetensors"
DECODER_PREFIXES = ("edge_net.", "decoder.", "upsampler.")


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of one model variant."""

    encoder: str = "tinyvit"  # "tinyvit" (MobileSAM) or "patch" (stand-in for tests)
    image_size: int = 1024  # network input side T
    embed_dim: int = 256  # encoder output and decoder token width C
    depth: int = 2  # decoder blocks
    attn_dim: int = 32  # single attention head width (official: C / 8)
    code_size: int = 8  # BSQ code bits (2**8 quantised keys from 16 basis vectors)
    mlp_ratio: float = 2.0  # expert hidden width, summed over experts, / C
    num_experts: int = 8  # routed experts
    prompt_dims: tuple[int, int, int] = (32, 64, 128)  # DPE conv widths before C
    edge_widths: tuple[int, int, int, int] = (4, 8, 16, 32)  # edge CNN stage widths
    edge_depth: int = 1  # residual blocks per edge CNN stage

    def to_dict(self) -> dict:
        return asdict(self)


CONFIGS: dict[str, ModelConfig] = {
    "default": ModelConfig(),
    "official-edges": ModelConfig(edge_widths=(4, 16, 64, 256), edge_depth=4),
    "tiny": ModelConfig(
        encoder="patch",
        image_size=256,
        embed_dim=64,
        attn_dim=16,
        prompt_dims=(8, 16, 32),
    ),
}


def build_from_config(
    config: ModelConfig, model_id: str = "random", boundary_rule: str = "box"
) -> Inter2Former:
    """Build a randomly initialised model (eval mode) from a config."""
    c = config.embed_dim
    if config.encoder == "tinyvit":
        from .image_encoder import TinyViT

        encoder: nn.Module = TinyViT(img_size=config.image_size, out_chans=c)
    elif config.encoder == "patch":
        encoder = PatchEncoder(c)
    else:
        raise ValueError(
            f"unknown encoder {config.encoder!r}; use 'tinyvit' or 'patch'"
        )
    upsampler = DynamicLocalUpsampling(c)
    edge_out = stage_channels(c)[:4][::-1]  # finest first: (C/64, C/16, C/4, C)
    model = Inter2Former(
        image_encoder=encoder,
        edge_net=EdgeNet(edge_out, config.edge_widths, config.edge_depth),
        decoder=Inter2FormerDecoder(
            embed_dim=c,
            depth=config.depth,
            attn_dim=config.attn_dim,
            code_size=config.code_size,
            mlp_ratio=config.mlp_ratio,
            num_experts=config.num_experts,
            prompt_dims=config.prompt_dims,
        ),
        upsampler=upsampler,
        image_size=config.image_size,
        model_id=model_id,
        boundary_rule=boundary_rule,
    )
    return model.eval()


def decoder_state_dict(model: Inter2Former) -> dict[str, torch.Tensor]:
    """State dict of the trained parts: edge net, decoder and upsampler (keys keep their prefix)."""
    return {
        k: v for k, v in model.state_dict().items() if k.startswith(DECODER_PREFIXES)
    }


def load_decoder_state_dict(
    model: Inter2Former, state_dict: dict[str, torch.Tensor]
) -> None:
    """Load edge net + decoder + upsampler weights; every key must match (shapes checked).

    Raises
    ------
    ValueError
        If keys are missing or unexpected, or a shape differs.
    """
    expected = decoder_state_dict(model)
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"decoder weights do not fit this model: missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''}"
        )
    for key, value in state_dict.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"decoder weight {key!r} has shape {tuple(value.shape)}, "
                f"the model expects {tuple(expected[key].shape)}"
            )
    model.load_state_dict(state_dict, strict=False)


def build_model(
    name: str = "default",
    pretrained: bool = False,
    decoder_weights: str | os.PathLike | None = None,
    boundary_rule: str = "box",
) -> Inter2Former:
    """Build a model variant, optionally with weights.

    Parameters
    ----------
    name : str
        A key of ``CONFIGS``.
    pretrained : bool
        Load the shipped encoder (``weights/mobilesam_image_encoder.safetensors``)
        and decoder (``weights/inter2former_decoder.safetensors``), sha256-checked
        against ``weights/weights.json``.
    decoder_weights : path, optional
        A decoder weight file to load instead of the shipped one (also without
        ``pretrained``; then the encoder stays random unless ``pretrained``).
    boundary_rule : {'box', 'boundary', 'all'}
        Initial ``model.boundary_rule``.

    Returns
    -------
    Inter2Former
        In eval mode. ``model_id`` is ``name`` + "-" + the first 12 hex digits of the
        decoder weight sha256, or ``name + "-random"`` without decoder weights.

    Raises
    ------
    ValueError
        Unknown name or boundary rule.
    FileNotFoundError
        ``pretrained`` without ``decoder_weights`` while the decoder file is not shipped.
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(CONFIGS)}")
    config = CONFIGS[name]
    if pretrained and config.encoder != "tinyvit":
        raise ValueError(f"model {name!r} has no pretrained weights (stand-in encoder)")
    model = build_from_config(config, f"{name}-random", boundary_rule)
    if not (pretrained or decoder_weights is not None):
        return model
    from .weights import WEIGHTS_DIR, load_weights, sha256_of, weights_json

    if decoder_weights is not None:
        path = Path(decoder_weights)
        sha = sha256_of(path) if path.is_file() else None
        state = load_weights(path)
    else:
        path = WEIGHTS_DIR / DECODER_FILE
        entry = weights_json().get(DECODER_FILE)
        if entry is None or not path.is_file():
            raise FileNotFoundError(
                f"the Inter2Former decoder has not been trained/shipped yet: {path} "
                f"{'is missing' if not path.is_file() else 'is not listed in weights.json'}. "
                "Pass decoder_weights=<path to a trained decoder .safetensors>."
            )
        sha = entry["sha256"]
        state = load_weights(path, expected_sha256=sha)
    load_decoder_state_dict(model, state)
    if pretrained:
        from .image_encoder import load_mobilesam_encoder

        load_mobilesam_encoder(model.image_encoder)
    model.model_id = f"{name}-{sha[:12]}"
    return model.eval()
