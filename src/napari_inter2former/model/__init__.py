"""The Inter2Former model (pure torch): encoder, edge net, decoder, upsampler, builder."""

from .build import CONFIGS, ModelConfig, build_model, decoder_state_dict, load_decoder_state_dict
from .decoder import Inter2FormerDecoder
from .edge_net import EdgeNet
from .inter2former import ImageFeatures, Inter2Former
from .upsampling import DynamicLocalUpsampling

__all__ = [
    "CONFIGS",
    "ModelConfig",
    "build_model",
    "decoder_state_dict",
    "load_decoder_state_dict",
    "Inter2Former",
    "ImageFeatures",
    "Inter2FormerDecoder",
    "EdgeNet",
    "DynamicLocalUpsampling",
]
