import numpy as np
import pytest
import tifffile

from napari_inter2former import cli
from napari_inter2former.annotation import ClickRecord
from napari_inter2former.testing import FakePredictor


def write_csv(path, text):
    path.write_text(text)
    return path


def test_read_clicks_accepts_words_and_numbers(tmp_path):
    path = write_csv(tmp_path / "c.csv", "y,x,positive,object_id\n1,2,positive,3\n4.5,5,0,3\n")
    clicks = cli.read_clicks(path)
    assert [(c.row, c.col, c.positive, c.object_id, c.plane, c.order) for c in clicks] == [
        (1.0, 2.0, True, 3, 0, 0),
        (4.5, 5.0, False, 3, 0, 1),
    ]


@pytest.mark.parametrize(
    "text, match",
    [("y,x\n1,2\n", "missing column"), ("y,x,positive\n1,2,maybe\n", "row 1")],
)
def test_read_clicks_bad_files(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        cli.read_clicks(write_csv(tmp_path / "c.csv", text))


def test_segment_2d_two_objects_keep_their_ids():
    image = np.zeros((30, 30), np.uint8)
    image[2:10, 2:10] = 200
    image[15:25, 15:25] = 200
    clicks = [ClickRecord(7, 0, 5, 5, True, 0), ClickRecord(2, 0, 20, 20, True, 1)]
    labels = cli.segment(FakePredictor(), image, clicks)
    assert labels.shape == (30, 30)
    assert (labels == 7).sum() == 64 and (labels == 2).sum() == 100


def test_main_on_a_3d_stack_with_a_fake_model(tmp_path, monkeypatch):
    volume = np.zeros((3, 20, 20), np.uint8)
    volume[:, 5:10, 5:10] = 200
    tifffile.imwrite(tmp_path / "stack.tif", volume)
    write_csv(tmp_path / "c.csv", "z,y,x,positive\n0,7,7,1\n2,7,7,1\n")
    monkeypatch.setattr(
        "napari_inter2former.predictor.Predictor.from_pretrained", lambda **k: FakePredictor()
    )
    out = tmp_path / "labels.tif"
    assert cli.main(["segment", str(tmp_path / "stack.tif"), "--clicks", str(tmp_path / "c.csv"), "--out", str(out)]) == 0
    labels = tifffile.imread(out)
    assert [(labels[z] == 1).sum() for z in range(3)] == [25, 0, 25]


def test_main_reports_errors_without_traceback(tmp_path, capsys):
    missing = tmp_path / "nope.tif"
    code = cli.main(["segment", str(missing), "--clicks", str(tmp_path / "c.csv"), "--out", "x.tif"])
    assert code == 2
    assert "inter2former: error:" in capsys.readouterr().err
