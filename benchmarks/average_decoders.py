"""Average decoder weight files (a "model soup"), or step past one along the line to another.

    python benchmarks/average_decoders.py OUT.safetensors A.safetensors B.safetensors --weights 0.5 0.5

Every floating tensor of OUT is ``sum(w_i * tensor_i)`` over the input files (``shipped`` =
the packaged decoder); the weights sum to 1 and may be negative (``--weights 1.5 -0.5`` steps
past A, away from B). The files must hold the same keys and shapes: decoders fine-tuned from
one another. Judge the result as any other decoder (``benchmarks/compare_decoders.py`` and
the tuning sets, never data/eval).
"""

import argparse

from napari_inter2former.model.build import DECODER_FILE
from napari_inter2former.model.weights import (
    WEIGHTS_DIR,
    average_state_dicts,
    load_weights,
    save_weights,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="decoder .safetensors file to write (fp16)")
    parser.add_argument("decoders", nargs="+", help="decoder files or 'shipped'")
    parser.add_argument("--weights", nargs="+", type=float, help="default: equal weights")
    args = parser.parse_args()
    paths = [WEIGHTS_DIR / DECODER_FILE if d == "shipped" else d for d in args.decoders]
    weights = args.weights or [1.0 / len(paths)] * len(paths)
    averaged = average_state_dicts([load_weights(p) for p in paths], weights)
    print(f"{args.out}: sha256 {save_weights(averaged, args.out)}")


if __name__ == "__main__":
    main()
