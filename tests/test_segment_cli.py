import numpy as np
import pytest

from napari_inter2former import cli
from napari_inter2former.testing import FakePredictor


def write_csv(path, text):
    path.write_text(text)
    return path


def test_read_clicks_accepts_words_and_numbers(tmp_path):
    path = write_csv(tmp_path / "c.csv", "y,x,positive,object_id\n1,2,positive,3\n4.5,5,0,3\n")
    clicks = cli.read_clicks(path)
    assert [(c["y"], c["x"], c["positive"], c["object_id"], c["z"]) for c in clicks] == [
        (1.0, 2.0, True, 3, None),
        (4.5, 5.0, False, 3, None),
    ]


@pytest.mark.parametrize(
    "text, match",
    [("y,x\n1,2\n", "missing column"), ("y,x,positive\n1,2,maybe\n", "row 1")],
)
def test_read_clicks_bad_files(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        cli.read_clicks(write_csv(tmp_path / "c.csv", text))


def test_segment_2d_two_objects_keep_earlier_labels():
    image = np.zeros((30, 30), np.uint8)
    image[2:10, 2:10] = 200
    image[15:25, 15:25] = 200
    clicks = [
        {"z": None, "y": 5, "x": 5, "positive": True, "object_id": 7},
        {"z": None, "y": 20, "x": 20, "positive": True, "object_id": 2},
    ]
    labels = cli.segment(FakePredictor(), image, clicks)
    assert labels.dtype == np.uint32
    assert (labels == 1).sum() == 64 and (labels == 2).sum() == 100


def test_segment_3d_planes():
    volume = np.zeros((3, 20, 20), np.uint8)
    volume[:, 5:10, 5:10] = 200
    clicks = [
        {"z": 0, "y": 7, "x": 7, "positive": True, "object_id": 1},
        {"z": 2, "y": 7, "x": 7, "positive": True, "object_id": 1},
    ]
    labels = cli.segment(FakePredictor(), volume, clicks)
    assert [(labels[z] == 1).sum() for z in range(3)] == [25, 0, 25]
    with pytest.raises(ValueError, match="z column"):
        cli.segment(FakePredictor(), volume[0], clicks)


def test_main_reports_errors_without_traceback(tmp_path, capsys):
    missing = tmp_path / "nope.tif"
    code = cli.main(["segment", str(missing), "--clicks", str(tmp_path / "c.csv"), "--out", "x.tif"])
    assert code == 2
    assert "inter2former: error:" in capsys.readouterr().err
