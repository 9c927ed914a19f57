"""Save labels to compressed TIFF (with scale metadata) and clicks to CSV.

``write_labels`` is the npe2 writer contribution (File > Save Selected Layer(s)
with a ``.tif`` name). No napari import here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .annotation import ClickRecord, records_from_table, records_to_table

__all__ = ["load_clicks", "read_labels", "save_clicks", "save_labels", "write_labels"]

_AXES = {2: "YX", 3: "ZYX"}


def save_labels(
    path: str | Path,
    labels: np.ndarray,
    *,
    scale: Sequence[float] | None = None,
    translate: Sequence[float] | None = None,
    name: str | None = None,
) -> str:
    """Write a 2-D or 3-D label image to a zlib-compressed TIFF.

    Parameters
    ----------
    path : str or Path
        Output file (``.tif`` or ``.tiff``).
    labels : ndarray of shape (M, N) or (P, M, N), integer
    scale, translate : sequence of float, optional
        Pixel size and origin per axis (napari's ``scale``/``translate``), stored in
        the TIFF description (JSON) and as the X/Y resolution.
    name : str, optional
        Layer name, stored with the metadata.

    Returns
    -------
    str
        The path written.
    """
    import tifffile

    labels = np.asarray(labels)
    if labels.ndim not in _AXES:
        raise ValueError(f"labels must be 2-D or 3-D, got shape {labels.shape}")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.dtype == np.int64 or labels.dtype == np.uint64:
        if labels.size and int(labels.max()) < 2**32 and int(labels.min()) >= 0:
            labels = labels.astype(np.uint32)
    scale = [1.0] * labels.ndim if scale is None else [float(s) for s in scale]
    translate = [0.0] * labels.ndim if translate is None else [float(t) for t in translate]
    for arg, values in (("scale", scale), ("translate", translate)):
        if len(values) != labels.ndim:
            raise ValueError(f"{arg} has {len(values)} values for {labels.ndim}-D labels")
    metadata = {"axes": _AXES[labels.ndim], "scale": scale, "translate": translate}
    if name is not None:
        metadata["name"] = str(name)
    path = str(path)
    tifffile.imwrite(
        path,
        labels,
        photometric="minisblack",
        compression="zlib",
        compressionargs={"level": 6},
        metadata=metadata,
        resolution=(1.0 / scale[-1], 1.0 / scale[-2]),
        bigtiff=labels.nbytes > 2**32 - 2**25,
    )
    return path


def read_labels(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a TIFF written by :func:`save_labels`: the array and its metadata."""
    import tifffile

    with tifffile.TiffFile(str(path)) as tif:
        data = tif.asarray()
        meta = dict(tif.shaped_metadata[0]) if tif.shaped_metadata else {}
    meta.pop("shape", None)
    return data, meta


def write_labels(path: str, data: Any, attributes: dict) -> list[str]:
    """npe2 writer for one Labels layer."""
    if not str(path).lower().endswith((".tif", ".tiff")):
        path = f"{path}.tif"
    return [
        save_labels(
            path,
            np.asarray(data),
            scale=attributes.get("scale"),
            translate=attributes.get("translate"),
            name=attributes.get("name"),
        )
    ]


def save_clicks(path: str | Path, records: Sequence[ClickRecord]) -> str:
    """Write click records as CSV (one row per click, columns ``CLICK_COLUMNS``)."""
    import pandas as pd

    pd.DataFrame(records_to_table(records)).to_csv(str(path), index=False)
    return str(path)


def load_clicks(path: str | Path) -> list[ClickRecord]:
    """Read click records written by :func:`save_clicks`, in click order."""
    import pandas as pd

    table = pd.read_csv(str(path))
    return records_from_table({c: table[c].tolist() for c in table.columns})

