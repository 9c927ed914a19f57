"""The Inter2Former model (pure torch): encoder, edge net, decoder, upsampler, builder."""

from .build import (
    CONFIGS,
    ModelConfig,
    build_model,
    decoder_state_dict,
    load_decoder_state_dict,
)
from .decoder import Inter2FormerDecoder
from .edge_net import EdgeNet
from .inter2former import ImageFeatures, Inter2Former
from .upsampling import DynamicLocalUpsampling

__all__ = [
    "CONFIGS",
    "DynamicLocalUpsampling",
    "EdgeNet",
    "ImageFeatures",
    "Inter2Former",
    "Inter2FormerDecoder",
    "ModelConfig",
    "build_model",
    "decoder_state_dict",
    "load_decoder_state_dict",
]
