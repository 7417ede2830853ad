"""`zoo data prepare --from`: IDX, CIFAR pickles and image folders imported into real TFDS datasets that a plain
`tfds.load` reads offline; corrupt input gives one clear error naming the file and leaves nothing behind."""

import gzip
import hashlib
import pickle
import socket
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

from zoo.commands.data import data as data_group  # noqa: E402
from zoo.data import catalogue as cat  # noqa: E402
from zoo.data import prepare as prep  # noqa: E402
from zoo.data import sources  # noqa: E402

tfds.disable_progress_bar()

RNG = np.random.default_rng(1234)
FASHION_NAMES = cat.get_dataset("fashion_mnist").names()
CIFAR10_NAMES = cat.get_dataset("cifar10").names()


def write_idx(path, array, magic, gz=True, header_dims=None):
    dims = array.shape if header_dims is None else header_dims
    raw = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in dims) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def idx_folder(folder, n_train=30, n_test=10):
    """A small Fashion-MNIST-like release: train gzipped, test not (both are accepted)."""
    folder.mkdir()
    data = {}
    for split, n, gz in (("train", n_train, True), ("t10k", n_test, False)):
        images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images, sources.IMAGES_MAGIC, gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", labels, sources.LABELS_MAGIC, gz)
        data["train" if split == "train" else "test"] = (images, labels)
    return data


def leftovers(data_dir):
    """Anything an import left in the data dir other than finished datasets: staging folders, version folders."""
    return sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else []


def fingerprints(images, labels):
    return sorted(hashlib.md5(np.asarray(i).tobytes() + bytes([int(l)])).hexdigest() for i, l in zip(images, labels))


def test_idx_import_then_plain_tfds_load_offline(tmp_path):
    raw = idx_folder(tmp_path / "raw")
    data_dir = tmp_path / "data"
    result = prep.prepare("fashion_mnist", tmp_path / "raw", data_dir)
    assert result.counts == {"train": 30, "test": 10}
    assert result.path == data_dir / "fashion_mnist" / "3.0.1"
    assert leftovers(data_dir) == ["fashion_mnist"]  # no staging folder left
    assert cat.is_ready("fashion_mnist", data_dir)

    for split in ("train", "test"):
        ds, info = tfds.load("fashion_mnist", split=split, data_dir=str(data_dir), as_supervised=True,
                             with_info=True, download=False)
        images, labels = zip(*ds.as_numpy_iterator())
        assert fingerprints([i[..., 0] for i in images], labels) == fingerprints(*raw[split])
    assert info.features["label"].names == FASHION_NAMES
    assert info.features["image"].shape == (28, 28, 1) and info.features["image"].dtype == tf.uint8
    assert info.version == "3.0.1" and info.module_name == "tensorflow_datasets.image_classification.mnist"

    again = prep.prepare("fashion_mnist", tmp_path / "raw", data_dir)
    assert again.already and again.counts == {"train": 30, "test": 10}

    from zoo.data.pipeline import make_dataset  # the pipeline reads it, cached in memory or streamed alike

    def labels(split, cache):
        ds = make_dataset("fashion_mnist", split, image_size=32, channels=1, batch_size=8, training=False,
                          data_dir=data_dir, holdout=6, cache=cache)
        return np.concatenate([y.numpy() for _, y in ds])

    assert len(labels("train", True)) == 24 and len(labels("validation", True)) == 6
    assert (labels("train_full", True) == labels("train_full", False)).all()
    assert sorted(labels("test", False).tolist()) == sorted(raw["test"][1].tolist())


def test_cli_prepare_reports_counts_and_force_rebuilds(tmp_path):
    idx_folder(tmp_path / "raw", n_train=20)
    args = ["prepare", "mnist", "--from", str(tmp_path / "raw"), "--data-dir", str(tmp_path / "data")]
    first = CliRunner().invoke(data_group, args)
    assert first.exit_code == 0, first.output
    assert f"mnist 3.0.1 prepared in {tmp_path}/data/mnist/3.0.1 (train 20, test 10)" in first.output
    assert "note: the official release has train 60,000, test 10,000" in first.output
    assert "already prepared" in CliRunner().invoke(data_group, args).output
    idx_folder(tmp_path / "raw2", n_train=40)
    forced = CliRunner().invoke(data_group, args[:3] + [str(tmp_path / "raw2")] + args[4:] + ["--force"])
    assert forced.exit_code == 0, forced.output
    assert "(train 40, test 10)" in forced.output
    assert leftovers(tmp_path / "data") == ["mnist"]


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


def _bad_magic(path):
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[3] = 1  # 0x00000801: a labels magic number on the images file
    path.write_bytes(gzip.compress(bytes(raw)))


def _fewer_labels(path):
    write_idx(path, np.zeros(29, np.uint8), sources.LABELS_MAGIC)


def _wrong_size(path):
    write_idx(path, np.zeros((30, 27, 28), np.uint8), sources.IMAGES_MAGIC)


def _short_body(path):
    write_idx(path, np.zeros((30, 28, 28), np.uint8)[:, :, :20], sources.IMAGES_MAGIC, header_dims=(30, 28, 28))


def _bad_label(path):
    write_idx(path, np.full(30, 12, np.uint8), sources.LABELS_MAGIC)


@pytest.mark.parametrize("corrupt, target, message", [
    (_truncate, "train-images-idx3-ubyte.gz", "corrupt or truncated gzip file"),
    (_bad_magic, "train-images-idx3-ubyte.gz", "wrong magic number 2049 (expected 2051: images)"),
    (_fewer_labels, "train-labels-idx1-ubyte.gz", "29 labels for 30 images"),
    (_wrong_size, "train-images-idx3-ubyte.gz", "images are 27x28, expected 28x28"),
    (_short_body, "train-images-idx3-ubyte.gz", "truncated: 16816 bytes for an array of shape (30, 28, 28)"),
    (_bad_label, "train-labels-idx1-ubyte.gz", "label 12 out of range (expected 0..9)"),
])
def test_corrupt_idx_gives_one_line_naming_the_file_and_writes_nothing(tmp_path, corrupt, target, message):
    idx_folder(tmp_path / "raw")
    corrupt(tmp_path / "raw" / target)
    data_dir = tmp_path / "data"
    with pytest.raises(sources.CorruptDataError) as err:
        prep.prepare("fashion_mnist", tmp_path / "raw", data_dir)
    text = str(err.value)
    assert "\n" not in text and str(tmp_path / "raw" / target) in text and message in text
    assert not cat.is_ready("fashion_mnist", data_dir) and leftovers(data_dir) == []


def test_missing_raw_files_are_named(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(sources.RawFilesNotFoundError, match=r"raw: no train-images-idx3-ubyte\.gz \(or "):
        prep.prepare("mnist", tmp_path / "raw", tmp_path / "data")
    with pytest.raises(sources.RawFilesNotFoundError, match="no such file or directory"):
        prep.prepare("mnist", tmp_path / "nowhere", tmp_path / "data")


def test_interrupted_import_leaves_no_dataset(tmp_path, monkeypatch):
    idx_folder(tmp_path / "raw")
    real = prep._READERS["idx"]

    def interrupted(entry, source):
        examples, names = real(entry, source)

        def dies():
            for i, example in enumerate(examples["train"]()):
                if i == 10:
                    raise KeyboardInterrupt
                yield example
        return {**examples, "train": dies}, names

    monkeypatch.setitem(prep._READERS, "idx", interrupted)
    data_dir = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        prep.prepare("fashion_mnist", tmp_path / "raw", data_dir)
    assert leftovers(data_dir) == [] and not cat.is_ready("fashion_mnist", data_dir)


# ---------------------------------------------------------------------------------------------------------------
# CIFAR python pickles


def cifar10_release(folder, per_batch=3):
    release = folder / "cifar-10-batches-py"
    release.mkdir(parents=True)
    images, labels = {"train": [], "test": []}, {"train": [], "test": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = RNG.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        batch_labels = [int(v) for v in RNG.integers(0, 10, per_batch)]
        pickle.dump({b"batch_label": name.encode(), b"data": rows, b"labels": batch_labels},
                    open(release / name, "wb"))
        split = "test" if name == "test_batch" else "train"
        images[split].append(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels[split] += batch_labels
    pickle.dump({b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_vis": 3072},
                open(release / "batches.meta", "wb"))
    return {split: (np.concatenate(images[split]), labels[split]) for split in images}


def test_cifar10_pickles_from_folder_and_from_tar_gz(tmp_path):
    expected = cifar10_release(tmp_path / "raw")
    result = prep.prepare("cifar10", tmp_path / "raw", tmp_path / "data")
    assert result.counts == {"train": 15, "test": 3}
    ds, info = tfds.load("cifar10", split="train", data_dir=str(tmp_path / "data"), with_info=True, download=False)
    examples = list(ds.as_numpy_iterator())
    assert info.features["label"].names == CIFAR10_NAMES
    assert sorted(e["id"].decode() for e in examples) == [f"train_{i:05d}" for i in range(15)]
    by_id = {e["id"].decode(): e for e in examples}
    for i in range(15):  # channel-planar rows became HWC images: pixel (0, 0) is (data[0], data[1024], data[2048])
        assert (by_id[f"train_{i:05d}"]["image"] == expected["train"][0][i]).all()
        assert by_id[f"train_{i:05d}"]["label"] == expected["train"][1][i]

    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "raw" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    from_tar = prep.prepare("cifar10", tmp_path / "cifar-10-python.tar.gz", tmp_path / "data2")
    assert from_tar.counts == {"train": 15, "test": 3}


def test_cifar100_fine_and_coarse_labels(tmp_path):
    release = tmp_path / "cifar-100-python"
    release.mkdir()
    entry = cat.get_dataset("cifar100")
    for split, n in (("train", 6), ("test", 2)):
        pickle.dump({b"data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8),
                     b"fine_labels": list(range(90, 90 + n)), b"coarse_labels": list(range(n))},
                    open(release / split, "wb"))
    pickle.dump({b"fine_label_names": [n.encode() for n in entry.names()],
                 b"coarse_label_names": [n.encode() for n in entry.coarse_class_names]}, open(release / "meta", "wb"))
    result = prep.prepare("cifar100", tmp_path, tmp_path / "data")
    assert result.counts == {"train": 6, "test": 2}
    ds, info = tfds.load("cifar100", split="test", data_dir=str(tmp_path / "data"), with_info=True, download=False)
    assert sorted((int(e["label"]), int(e["coarse_label"])) for e in ds.as_numpy_iterator()) == [(90, 0), (91, 1)]
    assert info.features["coarse_label"].names == entry.coarse_class_names
    assert info.features["label"].names[90:92] == ["train", "trout"]


class _Exploit:
    def __reduce__(self):
        return (socket.socket, ())


@pytest.mark.parametrize("content, message", [
    (b"this is not a pickle", "not a readable CIFAR pickle"),
    (pickle.dumps({b"data": _Exploit(), b"labels": [1]}), "refusing to load socket.socket"),
    (pickle.dumps({b"data": np.zeros((2, 3000), np.uint8), b"labels": [1, 2]}),
     "'data' is uint8 (2, 3000), expected uint8 (N, 3072)"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}), "1 labels for 2 images"),
    (pickle.dumps([1, 2, 3]), "expected a pickled dict, got list"),
])
def test_bad_cifar_pickle_is_named(tmp_path, content, message):
    cifar10_release(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(content)
    with pytest.raises(sources.CorruptDataError) as err:
        prep.prepare("cifar10", tmp_path, tmp_path / "data")
    assert str(bad) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)
    assert leftovers(tmp_path / "data") == []


# ---------------------------------------------------------------------------------------------------------------
# ImageNet-style folders


def test_image_folder_import_with_a_png_in_disguise(tmp_path):
    classes = cat.get_dataset("imagenette").names()[:2]
    for split, n in (("train", 2), ("val", 1)):
        for c in classes:
            (tmp_path / "raw" / split / c).mkdir(parents=True)
            for j in range(n):
                image = RNG.integers(0, 256, (20 + j, 30, 3), dtype=np.uint8)
                encode = tf.io.encode_png if j else tf.io.encode_jpeg
                (tmp_path / "raw" / split / c / f"{c}_{split}{j}.JPEG").write_bytes(encode(image).numpy())
    result = prep.prepare("imagenette", tmp_path / "raw", tmp_path / "data")
    assert result.counts == {"train": 4, "validation": 2}
    assert result.path == tmp_path / "data" / "imagenette" / "320px-v2" / "1.0.0"
    ds = tfds.load("imagenette/320px-v2", split="train", data_dir=str(tmp_path / "data"), as_supervised=True,
                   download=False)
    shapes = sorted((image.shape, int(label)) for image, label in ds.as_numpy_iterator())
    assert shapes == [((20, 30, 3), 0), ((20, 30, 3), 1), ((21, 30, 3), 0), ((21, 30, 3), 1)]

    (tmp_path / "raw" / "train" / "cats").mkdir()
    with pytest.raises(sources.CorruptDataError, match=r"train/cats: 'cats' is not a class of this dataset"):
        prep.prepare("imagenette", tmp_path / "raw", tmp_path / "data2")


# ---------------------------------------------------------------------------------------------------------------
# Online paths, without touching the network


def test_offline_download_fails_fast_with_one_line(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(prep.PrepareError) as err:
        prep.prepare("cifar10", None, tmp_path)
    assert str(err.value) == ("cannot download cifar10: www.cs.toronto.edu is unreachable (offline?); use "
                              "`zoo data prepare cifar10 --from DIR` with DIR holding cifar-10-python.tar.gz")
    assert leftovers(tmp_path) == []


def test_imagenet_without_its_manual_files_says_where_they_go(tmp_path):
    with pytest.raises(cat.DatasetNotReadyError) as err:
        prep.prepare("imagenet2012", None, tmp_path)
    assert (f"put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in {tmp_path}/downloads/manual/ and run this "
            "again") in str(err.value)


def test_embedded_dataset_needs_no_preparing(tmp_path):
    with pytest.raises(cat.DatasetError, match="embedded in the package"):
        prep.prepare("fashion_mnist_sample", None, tmp_path)


def test_idx_reader_accepts_uncompressed_and_rejects_trailing_bytes(tmp_path):
    labels = np.arange(5, dtype=np.uint8)
    write_idx(tmp_path / "l", labels, sources.LABELS_MAGIC, gz=False)
    assert sources.read_idx(tmp_path / "l").tolist() == [0, 1, 2, 3, 4]
    (tmp_path / "l").write_bytes((tmp_path / "l").read_bytes() + b"\0")
    with pytest.raises(sources.CorruptDataError, match="has trailing bytes: 14 bytes for an array of shape"):
        sources.read_idx(tmp_path / "l")
    (tmp_path / "e").write_bytes(b"\0\0")
    with pytest.raises(sources.CorruptDataError, match="truncated IDX file"):
        sources.read_idx(tmp_path / "e")


def test_an_image_that_is_neither_jpeg_nor_png_is_named_and_nothing_is_left(tmp_path):
    folder = tmp_path / "raw" / "train" / cat.get_dataset("imagenette").names()[0]
    folder.mkdir(parents=True)
    (folder / "good.JPEG").write_bytes(tf.io.encode_jpeg(np.zeros((8, 8, 3), np.uint8)).numpy())
    (folder / "bad.JPEG").write_bytes(b"GIF89a not an image we take")
    with pytest.raises(sources.CorruptDataError) as err:
        prep.prepare("imagenette", tmp_path / "raw", tmp_path / "data")
    assert str(err.value) == f"{folder / 'bad.JPEG'}: neither a JPEG nor a PNG image"
    assert leftovers(tmp_path / "data") == []
