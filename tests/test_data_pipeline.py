"""The input pipelines: the embedded sample end to end, TFDS datasets through tfds.testing.mock_data (cifar10,
imagenet2012), geometry, augmentation, normalisation, determinism, and the batch-level augmentations."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

import zoo  # noqa: E402
from zoo.data import catalogue as cat  # noqa: E402
from zoo.data import pipeline as pl  # noqa: E402
from zoo.data import sources  # noqa: E402

SAMPLE = "fashion_mnist_sample"
MEAN, STD = cat.get_dataset(SAMPLE).mean[0], cat.get_dataset(SAMPLE).std[0]


def batches(ds, n=None):
    out = []
    for i, (x, y) in enumerate(ds):
        if n is not None and i == n:
            break
        out.append((x.numpy(), y.numpy()))
    return out


def raw_sample(split="train"):
    return sources.read_idx_split(*sources.find_idx_files(cat.sample_dir(), split), image_size=(28, 28),
                                  num_classes=10)


# ---------------------------------------------------------------------------------------------------------------
# The embedded sample


def test_sample_splits_sizes_and_holdout_balance():
    sizes = {}
    for split in ("train", "validation", "train_full", "test", "train[:100]", "test[:10%]", "validation[-50:]"):
        ds = pl.make_dataset(SAMPLE, split, image_size=28, channels=1, batch_size=1000, training=False)
        labels = np.concatenate([y for _, y in batches(ds)])
        sizes[split] = len(labels)
        if split == "validation":
            assert np.bincount(labels).tolist() == [60] * 10  # stratified: 10% of each class
    assert sizes == {"train": 5400, "validation": 600, "train_full": 6000, "test": 1000, "train[:100]": 100,
                     "test[:10%]": 100, "validation[-50:]": 50}
    with pytest.raises(cat.DatasetError, match="unknown split 'dev'"):
        pl.make_dataset(SAMPLE, "dev", image_size=28, channels=1, batch_size=8, training=False)


def test_eval_pipeline_normalises_and_keeps_the_stored_order():
    ds = pl.make_dataset(SAMPLE, "train_full", image_size=28, channels=1, batch_size=2048, training=False)
    (x, y), *rest = batches(ds)
    images = np.concatenate([x] + [b[0] for b in rest])
    assert images.dtype == np.float32 and y.dtype == np.int32 and images.shape == (6000, 28, 28, 1)
    assert images.mean() == pytest.approx(0.0, abs=1e-4) and images.std() == pytest.approx(1.0, abs=1e-4)
    raw_images, raw_labels = raw_sample()
    np.testing.assert_allclose(images, (raw_images - MEAN) / STD, rtol=0, atol=1e-5)
    assert (y == raw_labels[:2048]).all()
    assert images.min() == pytest.approx(-MEAN / STD) and images.max() == pytest.approx((255 - MEAN) / STD)


def test_28_to_32_is_zero_padding_as_lecun_did():
    (x, _), = batches(pl.make_dataset(SAMPLE, "test[:16]", image_size=32, channels=1, batch_size=16,
                                      training=False))
    raw = (raw_sample("test")[0][:16] - MEAN) / STD
    assert x.shape == (16, 32, 32, 1)
    np.testing.assert_allclose(x[:, 2:30, 2:30], raw, atol=1e-5)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    np.testing.assert_allclose(x[:, border], -MEAN / STD, atol=1e-6)  # black, normalised like the background


def test_grey_to_rgb_at_224_and_dataset_info_contract():
    (x, y), = batches(pl.make_dataset(SAMPLE, "test[:4]", image_size=224, channels=3, batch_size=4,
                                      training=False))
    assert x.shape == (4, 224, 224, 3) and y.dtype == np.int32
    assert np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 0], x[..., 2])
    info = pl.dataset_info(SAMPLE)
    assert (info.name, info.num_classes, info.image_shape, info.validation_holdout) == (SAMPLE, 10, (28, 28, 1),
                                                                                        600)
    assert info.class_names[0] == "T-shirt/top" and info.mean == (MEAN,) and info.std == (STD,)


def test_seeded_training_pipeline_is_deterministic_and_reshuffles_each_epoch():
    def make(seed, **kw):
        return pl.make_dataset(SAMPLE, "train", image_size=32, channels=1, batch_size=64, training=True,
                               augment="pad_crop_flip", seed=seed, **kw)

    first, again, other = batches(make(7), 3), batches(make(7, deterministic=True), 3), batches(make(8), 3)
    for (xa, ya), (xb, yb) in zip(first, again):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert not np.array_equal(first[0][1], other[0][1])
    ds = make(7)
    epoch1, epoch2 = batches(ds, 1), batches(ds, 1)
    assert not np.array_equal(epoch1[0][0], epoch2[0][0])
    assert np.array_equal(epoch1[0][0], first[0][0])
    unseeded = pl.make_dataset(SAMPLE, "train", image_size=32, channels=1, batch_size=64, training=True,
                               deterministic=True)
    assert np.array_equal(batches(unseeded, 1)[0][1], batches(pl.make_dataset(
        SAMPLE, "train", image_size=32, channels=1, batch_size=64, training=True, seed=0), 1)[0][1])


def test_pad_crop_flip_is_an_exact_shifted_and_maybe_mirrored_copy():
    # train_full: the stored order (train is the stratified holdout's rest, picked by a permutation)
    ds = pl.make_dataset(SAMPLE, "train_full[:32]", image_size=32, channels=1, batch_size=32, training=True,
                         augment="pad_crop_flip", seed=3, shuffle_buffer=1)
    (x, y), = batches(ds)
    raw, labels = raw_sample()
    assert (y == labels[:32]).all()  # a buffer of 1 keeps the order
    padded = np.pad(raw[:32, :, :, 0], [(0, 0), (6, 6), (6, 6)])  # 2 px to reach 32, then 4 more: 40x40
    normalised = (padded - MEAN) / STD
    flips, shifts = 0, set()
    for i in range(32):
        matches = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)
                   if np.allclose(x[i, :, :, 0], (lambda c: c[:, ::-1] if flip else c)(
                       normalised[i, dy:dy + 32, dx:dx + 32]), atol=1e-5)]
        assert matches, f"image {i} is no crop of its padded original"
        flips += matches[0][2]
        shifts.add(matches[0][:2])
    assert 4 <= flips <= 28 and len(shifts) > 8


def test_every_augmentation_keeps_shape_and_pixel_range():
    low, high = -MEAN / STD, (255 - MEAN) / STD
    for augment in pl.AUGMENTS:
        (x, y), = batches(pl.make_dataset(SAMPLE, "train[:16]", image_size=40, channels=1, batch_size=16,
                                          training=True, augment=augment, seed=1))
        assert x.shape == (16, 40, 40, 1) and y.shape == (16,), augment
        assert low - 1e-4 <= x.min() and x.max() <= high + 1e-4, augment
    with pytest.raises(cat.DatasetError, match="unknown augment 'cutout'"):
        pl.make_dataset(SAMPLE, "train", image_size=32, channels=1, batch_size=8, training=True, augment="cutout")


def model_pipeline(dataset, split, spec, recipe=None, *, data_dir=None, **kw):
    """The harness's translation (zoo.training.inputs): a registry spec and recipe -> the data layer's spec."""
    from zoo.training.inputs import pipeline_spec

    info = cat.dataset_info(dataset, recipe.validation if recipe is not None else None)
    return pl.batches(dataset, split, pipeline_spec(spec, recipe, info, **kw), data_dir=data_dir)


def test_pipeline_takes_size_channels_and_stats_from_the_spec_and_augment_from_the_recipe():
    spec = zoo.get_spec("lenet5")
    recipe = zoo.load_registry().recipe(spec.recipe).model_copy(update={"augment": "flip", "validation": 600})
    ds = model_pipeline(SAMPLE, "validation", spec, recipe, batch_size=600, training=True, seed=0)
    (x, y), = batches(ds)
    assert x.shape == (600, spec.input.size, spec.input.size, spec.input.channels) and len(y) == 600
    custom = spec.model_copy(update={"eval": spec.eval.model_copy(update={"mean": [0.0], "std": [255.0]})})
    (x, _), = batches(model_pipeline(SAMPLE, "test[:8]", custom, batch_size=8, training=False))
    assert 0.0 <= x.min() and x.max() <= 1.0  # the spec's own dataset: its mean/std are used


# ---------------------------------------------------------------------------------------------------------------
# TFDS datasets through mock_data: a data dir with only the real metadata (what a prepared dataset has)


@pytest.fixture(scope="module")
def mock_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds")
    for name in ("cifar10", "imagenet2012"):
        builder = tfds.builder(name, data_dir=str(root))
        builder.data_path.mkdir(parents=True)
        builder.info.write_to_directory(builder.data_path)
    return root


def test_not_prepared_is_one_line_before_any_tfds_call(tmp_path, monkeypatch):
    def no_tfds(*args, **kwargs):
        raise AssertionError("tfds.load must not be called")

    monkeypatch.setattr(tfds, "load", no_tfds)
    with pytest.raises(cat.DatasetNotReadyError) as err:
        pl.make_dataset("cifar10", "train", image_size=32, channels=3, batch_size=8, training=True,
                        data_dir=tmp_path)
    assert str(err.value).startswith(f"dataset 'cifar10' is not prepared in {tmp_path}: run `zoo data prepare "
                                     "cifar10` (downloads it), or `zoo data prepare cifar10 --from DIR`")


def test_cifar10_mock_shapes_transforms_and_holdout(mock_dir):
    with tfds.testing.mock_data(num_examples=12):
        for augment in ("pad_crop_flip", "none"):
            (x, y), = batches(pl.make_dataset("cifar10", "train", image_size=32, channels=3, batch_size=12,
                                              training=True, augment=augment, seed=0, data_dir=mock_dir,
                                              holdout=0))  # the mock's 12 images: no 5000 to hold out
            assert x.shape == (12, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
            assert y.min() >= 0 and y.max() <= 9
        (x, _), = batches(pl.make_dataset("cifar10", "test", image_size=224, channels=3, batch_size=12,
                                          training=False, eval_resize=256, data_dir=mock_dir))
        assert x.shape == (12, 224, 224, 3)
        (x, _), = batches(pl.make_dataset("cifar10", "validation", image_size=32, channels=1, batch_size=12,
                                          training=False, data_dir=mock_dir, holdout=4))
        assert x.shape == (4, 32, 32, 1)  # RGB -> grey for one-channel models; 4 of the 12 held out
    assert pl.resolve_split(cat.get_dataset("cifar10"), "validation", {"train": 50000, "test": 10000}) == (
        "train", 45000, 50000)
    assert pl.resolve_split(cat.get_dataset("cifar10"), "train[:10%]", {"train": 50000, "test": 10000}) == (
        "train", 0, 4500)


def test_imagenet_mock_eval_resize_crop_and_training_crops(mock_dir):
    with tfds.testing.mock_data(num_examples=6):
        (x, y), = batches(pl.make_dataset("imagenet2012", "validation", image_size=224, channels=3, batch_size=6,
                                          training=False, eval_resize=256, data_dir=mock_dir))
        assert x.shape == (6, 224, 224, 3) and y.dtype == np.int32 and 0 <= y.min() and y.max() < 1000
        mean, std = np.array(cat.get_dataset("imagenet2012").mean), np.array(cat.get_dataset("imagenet2012").std)
        assert (x >= -mean / std - 1e-4).all() and (x <= (255 - mean) / std + 1e-4).all()
        for augment in ("inception_crop_flip", "scale_crop_flip", "flip"):
            (x, _), = batches(pl.make_dataset("imagenet2012", "train", image_size=224, channels=3, batch_size=6,
                                              training=True, augment=augment, seed=0, data_dir=mock_dir))
            assert x.shape == (6, 224, 224, 3) and np.isfinite(x).all(), augment
        spec = zoo.get_spec("lenet5").model_copy(update={
            "dataset": "imagenet2012", "input": zoo.get_spec("lenet5").input.model_copy(update={"size": 64})})
        (x, _), = batches(model_pipeline("imagenet2012", "validation", spec, batch_size=6, training=False,
                                         data_dir=mock_dir))
        assert x.shape == (6, 64, 64, 1)


def test_boxes_stay_inside_the_image_with_the_papers_area_and_aspect():
    seed = tf.constant([1, 2], tf.int64)
    boxes = pl.inception_boxes(4000, 300, 400, seed).numpy()
    h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes >= -1e-6).all() and (boxes <= 1 + 1e-6).all()
    area, aspect = h * w, (w * 400) / (h * 300)
    fitted = area < 1 - 1e-6
    assert (area[fitted] >= 0.08 - 1e-4).all()
    assert (aspect[fitted] >= 0.75 - 1e-3).all() and (aspect[fitted] <= 4 / 3 + 1e-3).all()
    scale = pl.scale_boxes(4000, 300, 400, 224, seed).numpy()
    side = (scale[:, 2] - scale[:, 0]) * 300  # crop side in pixels = 224 * 300 / S, S in [256, 480]
    assert side.min() >= 224 * 300 / 480 - 1e-3 and side.max() <= 224 * 300 / 256 + 1e-3


def test_box_crops_resample_like_resizing_the_whole_image_then_cropping():
    x = tf.random.stateless_uniform([2, 32, 32, 3], [0, 1]) * 255
    boxes = tf.constant([[0, 0, 1, 1], [0.25, 0.25, 0.75, 0.75]], tf.float32)
    out = pl._crop_boxes_batch(x, boxes, 32, "bilinear").numpy()
    np.testing.assert_allclose(out[0], x[0], atol=1e-4)  # the whole image at its own size: unchanged
    whole = tf.image.resize(x[1:], [64, 64], method="bilinear").numpy()[0]
    np.testing.assert_allclose(out[1], whole[16:48, 16:48], atol=1e-3)  # the centre half, 2x: no edge shift


# ---------------------------------------------------------------------------------------------------------------
# Batch-level augmentation


def test_mixup_cutmix_random_erasing():
    images = tf.random.stateless_normal([8, 32, 32, 3], [0, 1])
    labels = tf.range(8)
    seed = tf.constant([3, 4], tf.int64)
    mixed, soft = pl.mixup(images, labels, 0.2, num_classes=10, seed=seed)
    assert soft.shape == (8, 10) and np.allclose(soft.numpy().sum(1), 1.0)
    lam = soft.numpy()[0, 0]
    np.testing.assert_allclose(mixed[0], lam * images[0] + (1 - lam) * images[7], atol=1e-5)

    cut, soft = pl.cutmix(images, labels, 1.0, num_classes=10, seed=seed)
    from_partner = np.mean(np.any(cut.numpy()[0] != images.numpy()[0], axis=-1))
    assert soft.numpy()[0, 7] == pytest.approx(from_partner, abs=1e-6)
    assert soft.numpy()[0, 0] == pytest.approx(1 - from_partner, abs=1e-6)

    assert np.array_equal(pl.random_erasing(images, 0.0, seed=seed), images)
    erased = pl.random_erasing(tf.zeros([64, 32, 32, 1]), 1.0, seed=seed).numpy()
    fraction = np.mean(erased != 0, axis=(1, 2, 3))
    assert (fraction >= 0.015).all() and (fraction <= 0.34).all()

    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    runs = [batches(pl.batch_augment(ds, num_classes=10, mixup_alpha=0.2, cutmix_alpha=1.0, erasing=0.25, seed=5))
            for _ in range(2)]
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(*runs))
    assert runs[0][0][1].shape == (4, 10)


def test_zoo_data_bench_reports_images_per_second():
    import json

    from click.testing import CliRunner

    from zoo.commands.data import data

    result = CliRunner().invoke(data, ["bench", "--augment", "pad_crop_flip", "--seconds", "0.3", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["name"] == SAMPLE and row["augment"] == "pad_crop_flip" and row["threads"] == 2
    assert row["images"] > 0 and row["images"] % 128 == 0 and row["images_per_second"] > 0
