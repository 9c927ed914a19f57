import numpy as np
import pytest

from napari_inter2former.annotation import (
    Annotation,
    ClickRecord,
    annotated_planes,
    as_volume,
    changed_indices,
    compose,
    next_label_id,
    records_from_table,
    records_to_table,
    replay,
    run_click_jobs,
    stop_plane,
)
from napari_inter2former.testing import FakePredictor


def two_discs(shape=(48, 64)):
    """Two bright discs (left and right) on a dark background."""
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    left = (rr - 24) ** 2 + (cc - 16) ** 2 <= 8**2
    right = (rr - 24) ** 2 + (cc - 46) ** 2 <= 10**2
    image = np.full(shape, 10, np.uint8)
    image[left | right] = 200
    return image, left, right


def test_next_label_id():
    assert next_label_id(np.zeros((3, 3), np.uint8)) == 1
    assert next_label_id(np.array([[0, 7], [2, 0]])) == 8
    assert next_label_id(np.zeros((0,), np.uint8)) == 1


def test_compose_keep_and_overwrite():
    base = np.array([[0, 3], [0, 0]], np.uint16)
    mask = np.array([[True, True], [False, True]])
    np.testing.assert_array_equal(compose(base, mask, 5), [[5, 3], [0, 5]])
    np.testing.assert_array_equal(compose(base, mask, 5, overwrite=True), [[5, 5], [0, 5]])
    assert compose(base, mask, 5).dtype == np.uint16
    with pytest.raises(ValueError, match="shape"):
        compose(base, mask[:1], 5)


def test_changed_indices():
    old = np.array([[0, 1], [2, 3]])
    new = np.array([[0, 4], [2, 0]])
    idx, values = changed_indices(old, new)
    np.testing.assert_array_equal(idx[0], [0, 1])
    np.testing.assert_array_equal(idx[1], [1, 1])
    np.testing.assert_array_equal(values, [4, 0])


@pytest.mark.parametrize(
    "shape, kwargs, out_shape, is_volume",
    [
        ((5, 6), {}, (1, 5, 6), False),
        ((4, 5, 6), {}, (4, 5, 6), True),
        ((5, 6, 3), {"rgb": True}, (1, 5, 6, 3), False),
        ((2, 5, 6), {"channel": 1}, (1, 5, 6), False),
        ((2, 4, 5, 6), {"channel": 0}, (4, 5, 6), True),
    ],
)
def test_as_volume(shape, kwargs, out_shape, is_volume):
    data = np.arange(np.prod(shape)).reshape(shape)
    vol, flag = as_volume(data, **kwargs)
    assert vol.shape == out_shape
    assert flag is is_volume
    if "channel" in kwargs:
        np.testing.assert_array_equal(vol.reshape(-1), data[kwargs["channel"]].reshape(-1))


def test_as_volume_bad_inputs():
    with pytest.raises(ValueError, match="4-D"):
        as_volume(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="empty"):
        as_volume(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="out of range"):
        as_volume(np.zeros((2, 4, 4)), channel=2)
    with pytest.raises(ValueError, match="not both"):
        as_volume(np.zeros((2, 4, 4, 3)), rgb=True, channel=0)
    with pytest.raises(ValueError, match="2-D image"):
        as_volume(np.zeros((4,)))


def _click(ann, labels, predictor, volume, rec):
    job = ann.click_job(rec, labels[rec.plane])
    oid, plane, mask = run_click_jobs(predictor, volume, [job])
    labels[plane] = ann.apply_mask(oid, plane, mask, labels[plane], overwrite=rec.overwrite)
    return job


def test_click_commit_new_ids_keep_existing():
    image, left, right = two_discs()
    volume = image[None]
    labels = np.zeros(volume.shape, np.uint32)
    labels[0, 24, 40:56] = 9  # an existing label crossing the right disc
    predictor = FakePredictor()
    ann = Annotation()

    ann.start_object(next_label_id(labels))
    _click(ann, labels, predictor, volume, ClickRecord(10, 0, 24, 16))
    np.testing.assert_array_equal(labels[0] == 10, left)
    ann.commit()

    ann.start_object(next_label_id(labels))
    assert ann.current.object_id == 11
    _click(ann, labels, predictor, volume, ClickRecord(11, 0, 24, 46))
    # keep existing: the line of label 9 survives inside the right disc
    assert (labels[0, 24, 40:56] == 9).all()
    np.testing.assert_array_equal(labels[0] == 11, right & (labels[0] != 9))
    ann.commit()
    assert set(np.unique(labels)) == {0, 9, 10, 11}


def test_overwrite_rule_and_clear_restores():
    image, _left, right = two_discs()
    volume = image[None]
    labels = np.zeros(volume.shape, np.uint32)
    labels[0, 24, 40:56] = 9
    before = labels.copy()
    ann = Annotation()
    ann.start_object(12)
    _click(ann, labels, FakePredictor(), volume, ClickRecord(12, 0, 24, 46, overwrite=True))
    np.testing.assert_array_equal(labels[0] == 12, right)
    restored = ann.clear(lambda p: labels[p])
    labels[0] = restored[0]
    np.testing.assert_array_equal(labels, before)
    assert ann.current is None


def test_refine_existing_label_uses_it_as_prior_and_clear_keeps_it():
    image, left, right = two_discs()
    volume = image[None]
    labels = np.zeros(volume.shape, np.uint32)
    labels[0][left] = 4  # e.g. from cellpose
    before = labels.copy()
    predictor = FakePredictor()
    ann = Annotation()
    ann.start_object(4)
    job = _click(ann, labels, predictor, volume, ClickRecord(4, 0, 24, 46))
    assert job.restart
    np.testing.assert_array_equal(job.prior, left)
    np.testing.assert_array_equal(labels[0] == 4, left | right)  # prior kept, click added
    labels[0] = ann.clear(lambda p: labels[p])[0]
    np.testing.assert_array_equal(labels, before)


def test_second_click_continues_and_outside_edit_restarts():
    image, left, right = two_discs()
    volume = image[None]
    labels = np.zeros(volume.shape, np.uint32)
    predictor = FakePredictor()
    ann = Annotation()
    ann.start_object(1)
    first = _click(ann, labels, predictor, volume, ClickRecord(1, 0, 24, 16))
    second = _click(ann, labels, predictor, volume, ClickRecord(1, 0, 24, 46, order=1))
    assert first.restart and not second.restart
    assert predictor.encode_calls == 1
    # an outside edit (napari undo) takes the labels back to the first step
    labels[0][right] = 0
    third = ann.click_job(ClickRecord(1, 0, 5, 5, positive=False, order=2), labels[0])
    assert third.restart
    np.testing.assert_array_equal(third.prior, left)


def test_apply_mask_after_clear_is_dropped():
    ann = Annotation()
    ann.start_object(3)
    ann.sync_plane(0, np.zeros((4, 4), np.uint8))
    ann.clear(lambda p: np.zeros((4, 4), np.uint8))
    assert ann.apply_mask(3, 0, np.ones((4, 4), bool), np.zeros((4, 4), np.uint8)) is None


def test_apply_mask_registers_new_plane():
    ann = Annotation()
    ann.start_object(2)
    plane = np.array([[0, 5], [0, 0]], np.uint8)
    new = ann.apply_mask(2, 3, np.ones((2, 2), bool), plane)
    np.testing.assert_array_equal(new, [[2, 5], [2, 2]])
    assert ann.current.planes == [3]


def test_bad_calls():
    ann = Annotation()
    with pytest.raises(RuntimeError, match="start an object"):
        ann.click_job(ClickRecord(1, 0, 1, 1), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="positive"):
        ann.start_object(0)
    ann.start_object(2)
    with pytest.raises(ValueError, match="current object is 2"):
        ann.click_job(ClickRecord(1, 0, 1, 1), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="no click"):
        run_click_jobs(FakePredictor(), np.zeros((1, 3, 3)), [])


def test_stop_plane_and_annotated_planes():
    recs = [
        ClickRecord(1, 5, 1, 1),
        ClickRecord(1, 9, 1, 1, positive=False),
        ClickRecord(1, 12, 1, 1, positive=False),
        ClickRecord(1, 2, 1, 1, positive=False),
        ClickRecord(1, 7, 1, 1),
        ClickRecord(1, 7, 2, 2, positive=False),  # mixed plane: not a stop
        ClickRecord(2, 6, 1, 1, positive=False),  # other object
    ]
    assert stop_plane(recs, 1, 5, +1) == 9
    assert stop_plane(recs, 1, 5, -1) == 2
    assert stop_plane(recs, 1, 12, +1) is None
    assert annotated_planes(recs, 1) == [5, 7]
    with pytest.raises(ValueError, match="direction"):
        stop_plane(recs, 1, 5, 0)


def test_table_round_trip():
    recs = [
        ClickRecord(1, 0, 3.0, 4.0, True, 0, False, (0.0, 255.0)),
        ClickRecord(2, 3, 5.5, 6.5, False, 1, True, None),
    ]
    assert records_from_table(records_to_table(recs)) == recs
    with pytest.raises(ValueError, match="lacks"):
        records_from_table({"row": [1]})
    bad = records_to_table(recs)
    bad["label"][0] = "maybe"
    with pytest.raises(ValueError, match="click label"):
        records_from_table(bad)


def test_replay_matches_interactive_session():
    image, left, _right = two_discs()
    volume = np.stack([image, np.roll(image, 3, axis=1)])
    start = np.zeros(volume.shape, np.uint32)
    start[1, 24, 40:56] = 9
    recs = [
        ClickRecord(10, 0, 24, 16, order=0),
        ClickRecord(10, 0, 24, 46, order=1),
        ClickRecord(10, 0, 24, 46, positive=False, order=2),
        ClickRecord(11, 1, 24, 49, order=3, overwrite=True),
        ClickRecord(10, 1, 24, 19, order=4),  # back to object 10 on plane 1
    ]
    # the interactive path, one click at a time
    labels = start.copy()
    ann = Annotation()
    predictor = FakePredictor()
    for rec in recs:
        if ann.current is None or ann.current.object_id != rec.object_id:
            ann.commit()
            ann.start_object(rec.object_id)
        _click(ann, labels, predictor, volume, rec)
    replayed = replay(FakePredictor(), volume, records_from_table(records_to_table(recs)), start)
    np.testing.assert_array_equal(replayed, labels)
    np.testing.assert_array_equal(replayed[0] == 10, left)
    assert (replayed[1] == 11).sum() > 0 and (replayed[1] == 9).sum() == 0
    with pytest.raises(ValueError, match="outside"):
        replay(FakePredictor(), volume, [ClickRecord(1, 2, 1, 1)])
