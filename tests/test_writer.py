import numpy as np
import pytest

from napari_inter2former._writer import (
    load_clicks,
    read_labels,
    save_clicks,
    save_labels,
    write_labels,
)
from napari_inter2former.annotation import ClickRecord


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int32])
@pytest.mark.parametrize("shape", [(20, 30), (4, 20, 30)])
def test_labels_round_trip_bit_exact(tmp_path, dtype, shape):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 200, shape).astype(dtype)
    scale = [2.0, 0.5, 0.25][-len(shape):]
    translate = [1.0, -3.0, 7.5][-len(shape):]
    path = save_labels(tmp_path / "l.tif", labels, scale=scale, translate=translate, name="x")
    data, meta = read_labels(path)
    assert data.dtype == labels.dtype
    np.testing.assert_array_equal(data, labels)
    assert meta["scale"] == scale and meta["translate"] == translate
    assert meta["axes"] == ("YX" if len(shape) == 2 else "ZYX")
    assert meta["name"] == "x"


def test_labels_are_compressed(tmp_path):
    labels = np.zeros((256, 256), np.uint32)
    labels[10:100, 20:80] = 3
    path = save_labels(tmp_path / "c.tif", labels)
    assert (tmp_path / "c.tif").stat().st_size < labels.nbytes / 20
    np.testing.assert_array_equal(read_labels(path)[0], labels)


def test_int64_labels_are_narrowed(tmp_path):
    labels = np.arange(12, dtype=np.int64).reshape(3, 4)
    data, _ = read_labels(save_labels(tmp_path / "n.tif", labels))
    assert data.dtype == np.uint32
    np.testing.assert_array_equal(data, labels)


def test_npe2_writer_adds_extension(tmp_path):
    labels = np.eye(5, dtype=np.uint16)
    (path,) = write_labels(str(tmp_path / "out"), labels, {"scale": (1, 2), "name": "L"})
    assert path.endswith(".tif")
    data, meta = read_labels(path)
    np.testing.assert_array_equal(data, labels)
    assert meta["scale"] == [1.0, 2.0]


def test_bad_labels(tmp_path):
    with pytest.raises(ValueError, match="2-D or 3-D"):
        save_labels(tmp_path / "a.tif", np.zeros((2, 2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="integers"):
        save_labels(tmp_path / "a.tif", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="scale has 3"):
        save_labels(tmp_path / "a.tif", np.zeros((2, 2), np.uint8), scale=(1, 1, 1))


def test_clicks_csv_round_trip(tmp_path):
    recs = [
        ClickRecord(1, 0, 3.0, 4.0, True, 0, False, (100.0, 3000.0)),
        ClickRecord(2, 5, 10.5, 6.25, False, 1, True, None),
    ]
    path = save_clicks(tmp_path / "clicks.csv", recs)
    assert load_clicks(path) == recs
    header = (tmp_path / "clicks.csv").read_text().splitlines()[0]
    assert header.split(",")[:6] == ["order", "object_id", "plane", "row", "col", "label"]
