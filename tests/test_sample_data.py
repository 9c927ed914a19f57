import numpy as np
from scipy import ndimage as ndi

from napari_inter2former._sample_data import (
    nuclei_2d,
    nuclei_3d,
    sample_nuclei_2d,
    sample_nuclei_3d,
)


def test_nuclei_2d_content():
    image, labels = nuclei_2d()
    assert image.shape == labels.shape == (256, 256) and image.dtype == np.uint16
    assert labels.max() == 40
    # objects do not touch, so each label is one connected component of the mask
    assert ndi.label(labels > 0)[1] == 40
    # nuclei are brighter than the background
    assert image[labels > 0].mean() > 3 * image[labels == 0].mean()


def test_nuclei_3d_content():
    image, labels = nuclei_3d()
    assert image.shape == labels.shape == (32, 128, 128) and image.dtype == np.uint16
    assert labels.max() >= 8
    assert ndi.label(labels > 0)[1] == labels.max()
    # each nucleus spans several planes, so propagation has something to follow
    for obj in ndi.find_objects(labels):
        assert obj[0].stop - obj[0].start >= 4
    assert image[labels > 0].mean() > 3 * image[labels == 0].mean()


def test_samples_are_seeded_and_small():
    a, _ = nuclei_2d()
    b, _ = nuclei_2d()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, nuclei_2d(seed=1)[0])
    ((data2, _meta2, kind2),) = sample_nuclei_2d()
    ((data3, meta3, kind3),) = sample_nuclei_3d()
    assert kind2 == kind3 == "image"
    assert data2.ndim == 2 and data3.ndim == 3 and len(meta3["scale"]) == 3
    assert data2.nbytes + data3.nbytes < 4 * 2**20
