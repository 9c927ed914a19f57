"""The core (predictor, annotation, volume, writer, demo --headless) works without napari or Qt."""

import subprocess
import sys
import textwrap

import numpy as np

from napari_inter2former._writer import read_labels

BLOCK = textwrap.dedent(
    """
    import sys

    class Block:
        blocked = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui",
                   "vispy", "superqt")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    """
)


def _run(code, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", BLOCK + textwrap.dedent(code)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_core_imports_without_napari_or_qt(tmp_path):
    out = _run(
        """
        import napari_inter2former
        from napari_inter2former import annotation, predictor, testing, transforms, volume
        from napari_inter2former import _sample_data, _writer, demo
        try:
            import napari
        except ImportError:
            print("napari blocked")
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("napari", "qtpy", "PyQt6")))
        """,
        tmp_path,
    )
    assert "napari blocked" in out
    assert out.strip().endswith("[]")


def test_demo_headless_runs_without_qt(tmp_path):
    out = _run(
        """
        from napari_inter2former.demo import main
        sys.exit(main(["--headless", "--fake", "--out", "res/labels.tif", "-n", "3"]))
        """,
        tmp_path,
    )
    assert "3 clicks" in out and "IoU" in out
    labels, _meta = read_labels(tmp_path / "res" / "labels.tif")
    assert labels.shape == (256, 256)
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    assert (tmp_path / "res" / "labels_clicks.csv").read_text().startswith("order,object_id")


def test_demo_without_display_falls_back_to_headless(tmp_path, monkeypatch, capsys):
    from napari_inter2former import demo

    monkeypatch.setattr(demo.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "labels.tif"
    assert demo.main(["--fake", "--out", str(out)]) == 0
    assert "running the headless demo" in capsys.readouterr().out
    assert out.is_file()
