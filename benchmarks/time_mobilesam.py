"""Time MobileSAM on this machine: encoder per 1024x1024 image and decoder per click.

Usage::

    python benchmarks/time_mobilesam.py [--threads 2] [--repeats 5] [--clicks 20]

Encoder: fp32 TinyViT forward on a (1, 3, 1024, 1024) input (shipped fp16 weights loaded as
fp32). Decoder per click: prompt encoder + mask decoder + upsampling to a 1024x1024 image and
thresholding, through ``MobileSAMPredictor.add_click`` (clicks 2.. use the mask input).
Prints medians, the process CPU time and the load average, since shared machines make
wall-clock timings noisy (with one thread, CPU time ~ the time on a dedicated core).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from napari_inter2former.evaluation.mobilesam import MobileSAMPredictor


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clicks", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    predictor = MobileSAMPredictor.from_pretrained()
    x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0))
    enc, enc_cpu = [], []
    with torch.inference_mode():
        predictor.image_encoder(x)  # warm-up
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            emb = predictor.image_encoder(x)
            enc.append(time.perf_counter() - t0)
            enc_cpu.append(time.process_time() - c0)
    print(f"threads={torch.get_num_threads()} load average (1, 5, 15 min) = {os.getloadavg()}")
    print(
        f"encoder 1024x1024 fp32: median {statistics.median(enc):.3f} s over {len(enc)} "
        f"(min {min(enc):.3f}, max {max(enc):.3f}); output {tuple(emb.shape)}; "
        f"process CPU time median {statistics.median(enc_cpu):.3f} s"
    )

    rng = np.random.RandomState(0)
    image = (rng.rand(1024, 1024) * 255).astype(np.uint8)
    predictor.set_image(image)
    dec = []
    for i in range(args.clicks + 1):
        row, col = rng.randint(0, 1024, size=2)
        t0 = time.perf_counter()
        predictor.add_click(row, col, positive=bool(i % 3 != 2))
        if i:  # click 1 (multimask) is counted separately below
            dec.append(time.perf_counter() - t0)
        else:
            first = time.perf_counter() - t0
    print(
        f"decoder per click (prompt enc + mask dec + upsample to 1024x1024): median "
        f"{1000 * statistics.median(dec):.1f} ms over {len(dec)} clicks "
        f"(min {1000 * min(dec):.1f}, max {1000 * max(dec):.1f}); first click (multimask, "
        f"cold) {1000 * first:.1f} ms"
    )


if __name__ == "__main__":
    main()
