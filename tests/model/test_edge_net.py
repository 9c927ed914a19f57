import pytest
import torch

from napari_inter2former.constants import PIXEL_MEAN, PIXEL_STD
from napari_inter2former.model.edge_net import CannyFrontEnd, EdgeNet, count_parameters




def _normalise(img255):
    mean = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
    return (img255 - mean) / std


def test_canny_vertical_step():
    img = torch.zeros(1, 3, 32, 32)
    img[..., 16:] = 200.0  # step between columns 15 and 16
    maps = CannyFrontEnd()(_normalise(img))
    assert maps.shape == (1, 5, 32, 32)
    # every non-zero map has unit L2 norm over the image
    norms = maps.flatten(2).norm(dim=2)[0]
    torch.testing.assert_close(norms, torch.ones(5))
    mag, thin = maps[0, 0], maps[0, 2]
    inner = slice(4, 28)  # away from the zero-padded top and bottom rows
    # magnitude peaks on the two columns next to the step; thin edges only there
    # (columns 4..27: the zero padding of the blur makes an edge at the bright border)
    assert set(mag[inner, 4:28].argmax(1).add(4).tolist()) <= {15, 16}
    cols = (torch.nonzero(thin[inner, 4:28].sum(0)).flatten() + 4).tolist()
    assert cols and set(cols) <= {15, 16}
    # flat areas have no gradient
    assert mag[inner, :10].abs().max() == 0


def test_shapes_coarsest_first_and_zero_init():
    net = EdgeNet(out_channels=(1, 4, 16, 64))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outs = net(x)
    assert [tuple(o.shape) for o in outs] == [
        (2, 64, 8, 8),
        (2, 16, 16, 16),
        (2, 4, 32, 32),
        (2, 1, 64, 64),
    ]
    assert all(float(o.abs().max()) == 0 for o in outs)  # zero-initialised laterals
    torch.nn.init.normal_(net.laterals[0].weight)
    with torch.no_grad():
        assert float(net(x)[-1].abs().max()) > 0


def test_official_layout_parameter_count():
    net = EdgeNet((4, 16, 64, 256), widths=(4, 16, 64, 256), depth=4)
    assert count_parameters(net) == 5_269_260  # learnable part of the official CannyNet
    slim = EdgeNet((4, 16, 64, 256))
    assert count_parameters(slim) < 60_000


def test_bad_inputs():
    with pytest.raises(ValueError, match="4 entries"):
        EdgeNet((4, 16, 64))
    with pytest.raises(ValueError, match="multiples of 8"):
        EdgeNet((1, 4, 16, 64))(torch.zeros(1, 3, 20, 20))
