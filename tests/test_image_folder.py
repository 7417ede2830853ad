"""Image folders as datasets (zoo/data/folder.py): the scan, the catalogue-like entry, the tf.data stream, the TFDS
import, and every kind of bad folder as one line."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.data import folder
from zoo.data.catalogue import DatasetError, dataset_info, get_dataset, is_ready

RNG = np.random.default_rng(0)
MODES = ("L", "RGB", "RGBA", "P", "LA")
FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF"}
SAVEABLE = {"JPEG": ("L", "RGB"), "BMP": ("L", "RGB", "P"), "GIF": ("L", "P", "RGB")}  # the modes Pillow writes


def image(path, size=(20, 30), mode="RGB", fmt=None, value=None):
    """A random (or constant `value`) image saved at `path`, in the format its suffix names (or `fmt`)."""
    pixels = RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) if value is None else \
        np.full((size[1], size[0], 3), value, np.uint8)
    fmt = fmt or FORMATS[path.suffix[1:]]
    picture = Image.fromarray(pixels).convert(mode)
    if mode not in SAVEABLE.get(fmt, MODES):
        picture = picture.convert("L" if mode.startswith("L") else "RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, format=fmt)
    return path


def classes_folder(root, per_class=10, names=("cat", "dog", "owl"), split=None):
    """root/[split/]<name>/<i>.<ext>: images of several sizes, modes and formats; each class its own grey level."""
    for c, name in enumerate(names):
        for i in range(per_class):
            ext = list(FORMATS)[i % len(FORMATS)]
            mode = MODES[i % len(MODES)]
            base = root / split if split else root
            image(base / name / f"{i:03d}.{ext}", size=(16 + 3 * i, 20 + i), mode=mode, value=40 + 80 * c)
    return root


@pytest.fixture(autouse=True)
def _fresh_folder_cache():
    folder.scan.cache_clear()
    folder._REGISTERED.clear()
    folder._DATA_DIRS.clear()
    yield
    folder._DATA_DIRS.clear()


def test_classes_folder_becomes_a_dataset_with_a_stratified_holdout(tmp_path):
    root = classes_folder(tmp_path / "pets", per_class=10)
    entry = get_dataset(str(root))
    assert entry.name == "pets" and entry.folder == str(root.resolve())
    assert entry.class_names == ["cat", "dog", "owl"]  # sorted folder names
    assert entry.splits == {"train": 27, "validation": 3} and entry.eval_split == "validation"
    found = folder.scan(root)
    assert sorted(np.bincount(found.labels["validation"])) == [1, 1, 1]  # one of each class held out
    assert found.paths["train"] == tuple(sorted(found.paths["train"]))  # stored order: class, then path
    assert get_dataset("pets") is not None and dataset_info(str(root)).name == "pets"
    assert is_ready("pets") and entry.image_shape == (None, None, 3)
    # the statistics are the images' own: grey levels 40, 120, 200 (JPEG and palette rounding aside)
    assert 100 < entry.mean[0] < 140 and 50 < entry.std[0] < 80


def test_holdout_is_the_same_in_every_scan(tmp_path):
    root = classes_folder(tmp_path / "a", per_class=12)
    first = folder.scan(root).paths["validation"]
    folder.scan.cache_clear()
    assert folder.scan(root).paths["validation"] == first


def test_split_folders(tmp_path):
    root = tmp_path / "split"
    classes_folder(root, per_class=10, split="train")
    classes_folder(root, per_class=2, split="val")
    entry = get_dataset(str(root))
    assert entry.splits == {"train": 30, "validation": 6} and entry.holdout is None
    assert entry.eval_split == "validation"
    classes_folder(root, per_class=3, split="test")
    folder.scan.cache_clear()
    entry = get_dataset(str(root))
    assert entry.eval_split == "test" and entry.splits["test"] == 9


def test_train_and_test_only_hold_out_ten_percent_of_train(tmp_path):
    root = tmp_path / "tt"
    classes_folder(root, per_class=10, split="train")
    classes_folder(root, per_class=2, split="test")
    info = dataset_info(str(root))
    assert info.entry.holdout == 3 and info.num_examples["train"] == 27 and info.num_examples["validation"] == 3
    assert info.eval_split == "test"


def test_scan_is_cached_until_the_folder_changes(tmp_path):
    root = classes_folder(tmp_path / "c", per_class=4)
    assert folder.scan(root) is folder.scan(root)
    image(root / "cat" / "new.png")
    os.utime(root / "cat", (1e9, 1e9))  # a new modification time even within the file system's resolution
    assert sum(folder.scan(root).sizes.values()) == 13


def test_non_images_are_skipped_and_counted(tmp_path):
    root = classes_folder(tmp_path / "n", per_class=4)
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / "fake.jpg").write_bytes(b"not a jpeg at all")
    (root / "README.md").write_text("a file beside the class folders")
    (root / ".DS_Store").write_bytes(b"\0")  # hidden: ignored
    Image.new("1", (8, 8)).save(root / "owl" / "one_bit.bmp")  # 1-bit BMP: TensorFlow cannot decode it
    found = folder.scan(root)
    assert len(found.skipped) == 4 and sum(found.sizes.values()) == 12
    note = folder.skipped_note(found)
    assert note.startswith("skipped 4 files") and "not a JPEG, PNG, BMP or GIF" in note
    assert get_dataset(str(root)).obtain.note == note


@pytest.mark.parametrize("make, message", [
    (lambda r: r.mkdir(), "no class folders"),
    (lambda r: (r / "cat").mkdir(parents=True), "a class folder without images"),
    (lambda r: image(r / "cat" / "a.png") and image(r / "cat" / "b.png"), "only one class ('cat')"),
    (lambda r: (classes_folder(r, 2), (r / "dog" / "gone.png").symlink_to(r / "nowhere.png")), "cannot read it"),
    (lambda r: (classes_folder(r, 2, split="train"), classes_folder(r, 1, names=("cow",), split="val")),
     "not a class of"),
    (lambda r: (classes_folder(r, 2, split="val")), "but no train/ folder"),
    (lambda r: (classes_folder(r, 2, split="train"), (r / "extra").mkdir()), "not a split folder"),
], ids=["empty", "class-without-images", "one-class", "unreadable", "unknown-val-class", "no-train", "stray"])
def test_bad_folders_are_one_line_naming_the_place(tmp_path, make, message):
    root = tmp_path / "bad"
    make(root)
    with pytest.raises(DatasetError) as error:
        get_dataset(str(root))
    text = str(error.value)
    assert message in text and "\n" not in text and str(tmp_path) in text


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        get_dataset(str(tmp_path / "nope"))
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match="is a file"):
        get_dataset(str(tmp_path / "file.png"))


def test_catalogue_names_win_and_folder_names_do_not_clash(tmp_path):
    root = classes_folder(tmp_path / "mnist", per_class=3)
    assert get_dataset(str(root)).name == "folder_mnist"
    assert get_dataset("mnist").tfds is not None


def test_image_format_reads_first_bytes():
    assert folder.image_format(b"\xff\xd8\xff\xe0") == "jpeg"
    assert folder.image_format(b"\x89PNG\r\n\x1a\n....") == "png"
    assert folder.image_format(b"GIF89a") == "gif"
    bmp = b"BM" + bytes(26)
    assert folder.image_format(bmp + (24).to_bytes(2, "little")) == "bmp"
    assert folder.image_format(bmp + (1).to_bytes(2, "little")) is None
    assert folder.image_format(b"hello") is None


def test_pipeline_decodes_every_format_and_mode_to_the_model_input(tmp_path):
    from zoo.data.pipeline import PipelineSpec, batches

    root = classes_folder(tmp_path / "mixed", per_class=8)
    spec = PipelineSpec(image_size=32, channels=1, batch_size=8, training=False)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in batches(str(root), "train", spec)])
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (22, 32, 32, 1) and x.dtype == np.float32  # 24 images, 2 held out (10%, rounded)
    assert sorted(np.bincount(y)) == [7, 7, 8]
    # each class is one grey level: after normalisation, one value per class (to JPEG's rounding)
    for c in range(3):
        assert np.ptp(x[y == c].mean(axis=(1, 2, 3))) < 0.05
    rgb = PipelineSpec(image_size=40, channels=3, batch_size=5, training=True, augment="pad_crop_flip", seed=1)
    first = [b[1].numpy().tolist() for b in batches("mixed", "train", rgb)]
    again = [b[1].numpy().tolist() for b in batches("mixed", "train", rgb)]
    assert first == again and sorted(sum(first, [])) == sorted(y.tolist())  # seeded, a permutation of train


def test_import_into_tfds_streams_the_same_images(tmp_path, monkeypatch):
    from zoo.data.pipeline import PipelineSpec, batches

    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "data"))
    root = classes_folder(tmp_path / "imp", per_class=6)
    result = folder.import_folder(root, "imp_tfds")
    assert result.counts == {"train": 16, "validation": 2} and (result.path / "dataset_info.json").is_file()
    entry = get_dataset("imp_tfds")
    assert entry.tfds.name == "imp_tfds" and entry.class_names == ["cat", "dog", "owl"]
    spec = PipelineSpec(image_size=32, channels=3, batch_size=4, training=False)
    direct = sorted(np.concatenate([y for _, y in batches(str(root), "validation", spec)]).tolist())
    imported = sorted(np.concatenate([y for _, y in batches("imp_tfds", "validation", spec)]).tolist())
    assert direct == imported and len(direct) == 2 and len(set(direct)) == 2  # stratified: two classes
    assert folder.import_folder(root, "imp_tfds").already
    with pytest.raises(DatasetError, match="catalogue dataset"):
        folder.import_folder(root, "mnist")
    with pytest.raises(DatasetError, match="lower-case letters"):
        folder.import_folder(root, "Bad-Name")


def test_an_import_into_another_data_dir_is_found_through_it(tmp_path, monkeypatch):
    from zoo.training.config import resolve_run
    from zoo.training.options import RunOptions

    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "default"))
    folder.import_folder(classes_folder(tmp_path / "elsewhere", per_class=6), "other_tfds", tmp_path / "other")
    with pytest.raises(KeyError, match="unknown dataset 'other_tfds'"):
        get_dataset("other_tfds")
    run = resolve_run("lenet5", RunOptions.of(dataset="other_tfds", data_dir=str(tmp_path / "other"),
                                              batch_size=4))
    assert run.config.dataset == "other_tfds" and run.config.classes == 3 and get_dataset("other_tfds").tfds


def test_import_names_a_damaged_image(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "data"))
    root = classes_folder(tmp_path / "dmg", per_class=3)
    good = (root / "dog" / "000.png").read_bytes()
    (root / "dog" / "000.png").write_bytes(good[:40])  # a PNG signature, then truncated
    with pytest.raises(DatasetError, match="000.png: not a decodable image"):
        folder.import_folder(root, "dmg_tfds")
    assert not (tmp_path / "data" / "dmg_tfds").exists()  # nothing half-written is left


def test_cli_bad_folder_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-c", "import sys, cli; sys.exit(cli.main())", "data", "bench",
                           str(tmp_path / "empty"), "--epochs", "1"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"zoo: error: {tmp_path / 'empty'}: no class folders; expected one "
                                                "sub-folder of images per class (PATH/<class>/<image>), or train/ "
                                                "and val/"]


def test_the_numpy_input_path_refuses_a_folder_in_one_line(tmp_path):
    from zoo.data import arrays

    root = classes_folder(tmp_path / "np", per_class=3)
    with pytest.raises(DatasetError) as error:
        arrays.require_ready(str(root))
    assert "needs the tf.data pipeline" in str(error.value) and "\n" not in str(error.value)


def test_resume_accepts_the_folder_by_path_or_name(tmp_path):
    from zoo.training.config import overrides_conflict, resolve_run
    from zoo.training.options import RunOptions

    root = classes_folder(tmp_path / "res", per_class=6)
    saved = resolve_run("lenet5", RunOptions.of(dataset=str(root), batch_size=4)).config
    assert overrides_conflict(saved, RunOptions.of(dataset=str(root))) is None
    assert overrides_conflict(saved, RunOptions.of(dataset="res")) is None
    assert "dataset" in overrides_conflict(saved, RunOptions.of(dataset="fashion_mnist_sample"))


@pytest.mark.parametrize("spelling", ["./pics", "pics/", "ABS"])
def test_resume_looks_up_a_folders_runs_by_its_name(tmp_path, monkeypatch, spelling):
    """--resume without --output looks for runs/<model>-<dataset>-*: a folder's runs are named by its name, so any
    spelling of its path finds them (before: the path itself was globbed, and nothing was found)."""
    from zoo.training.options import RunOptions
    from zoo.training.run import _resume_path

    monkeypatch.chdir(tmp_path)
    classes_folder(tmp_path / "pics", per_class=6)
    older, newer = (tmp_path / "runs" / f"lenet5-pics-2026120{i}-000000-0000000{i}" for i in (1, 2))
    for run in (older, newer):
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "state.json").write_text("{}")
    asked = str(tmp_path / "pics") if spelling == "ABS" else spelling
    assert RunOptions.of(dataset=asked).dataset == "pics"
    assert _resume_path("lenet5", RunOptions.of(dataset=asked), None).resolve() == newer.resolve()


def test_a_path_that_is_not_a_dataset_folder_stays_a_path(tmp_path):
    from zoo.training.options import RunOptions

    (tmp_path / "empty").mkdir()
    assert RunOptions.of(dataset=str(tmp_path / "empty")).dataset == str(tmp_path / "empty")  # resolve names it
    assert RunOptions.of(dataset="fashion_mnist_sample").dataset == "fashion_mnist_sample"


def test_a_catalogue_name_stays_the_catalogue_dataset_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    from zoo.training.options import RunOptions

    monkeypatch.chdir(tmp_path)
    classes_folder(tmp_path / "mnist", per_class=3)
    assert RunOptions.of(dataset="mnist").dataset == "mnist"
    assert RunOptions.of(dataset="./mnist").dataset == "folder_mnist"


@pytest.mark.slow
def test_resume_without_output_finds_the_newest_run_of_the_folder(tmp_path, monkeypatch):
    """`zoo train lenet5 --dataset ./pics --resume` (no --output): the run was named by the folder's name
    (runs/lenet5-pics-*), and --resume finds it whether the folder is given by a relative or absolute path."""
    import signal

    import zoo
    from zoo.errors import Interrupted
    from zoo.training.callbacks import StepMonitor

    original_begin = StepMonitor.on_epoch_begin

    def stop_before_epoch_2(self, epoch, logs=None):
        if epoch == 1:
            raise Interrupted("stopped by the test", signal.SIGTERM)
        return original_begin(self, epoch, logs)

    monkeypatch.chdir(tmp_path)
    classes_folder(tmp_path / "pics", per_class=6)
    options = dict(epochs=2, steps_per_epoch=2, batch_size=4, xla=False, results=tmp_path / "results")
    monkeypatch.setattr(StepMonitor, "on_epoch_begin", stop_before_epoch_2)
    with pytest.raises(Interrupted):
        zoo.train("lenet5", dataset="./pics", verbose=False, **options)
    (interrupted,) = (tmp_path / "runs").iterdir()
    assert interrupted.name.startswith("lenet5-pics-") and (interrupted / "checkpoints" / "state.json").is_file()
    monkeypatch.setattr(StepMonitor, "on_epoch_begin", original_begin)
    result = zoo.train("lenet5", dataset=str(tmp_path / "pics"), resume=True, verbose=False, **options)
    assert Path(result.output_dir).resolve() == interrupted.resolve() and result.epochs == 2
    assert list((tmp_path / "runs").iterdir()) == [interrupted]  # resumed, not started afresh


def test_a_damaged_image_met_mid_stream_is_named_after_the_fact(tmp_path):
    """TensorFlow's decode failure names no file; damaged_image_error finds it (post mortem: only on failure) in
    the folders this process read, names the first and counts the others, as one line."""
    import tensorflow as tf

    from zoo.data.pipeline import PipelineSpec, batches

    root = classes_folder(tmp_path / "dmg", per_class=10)
    for name in ("dog/000.png", "owl/001.jpg"):  # a PNG cut after its header; a JPEG cut in half
        data = (root / name).read_bytes()
        (root / name).write_bytes(data[:40] if name.endswith(".png") else data[:len(data) // 2])
    spec = PipelineSpec(image_size=32, channels=1, batch_size=4, training=False)
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        for _ in batches(str(root), "train", spec):
            pass
    assert "dmg" not in str(raised.value)  # what the user saw before: no file named
    assert folder.damaged_images(root) == [str(root.resolve() / "dog/000.png"), str(root.resolve() / "owl/001.jpg")]
    error = folder.damaged_image_error(raised.value)
    assert isinstance(error, DatasetError) and "\n" not in str(error)
    assert str(error).startswith(f"{root.resolve() / 'dog' / '000.png'}: not a decodable image (Invalid PNG")
    assert str(error).endswith(f"; 1 other image of {root.resolve()} cannot be decoded either (e.g. owl/001.jpg)")
    assert folder.damaged_image_error(ValueError("Invalid PNG")) is None  # not TensorFlow's decode failure


def test_no_damaged_image_means_the_error_is_another_one(tmp_path):
    import tensorflow as tf

    folder.folder_entry(classes_folder(tmp_path / "fine", per_class=4))
    failure = tf.errors.InvalidArgumentError(None, None, "Detected at node decode_image/DecodeImage: Invalid PNG")
    assert folder.is_decode_failure(failure) and folder.damaged_image_error(failure) is None


def test_python_callers_get_the_damaged_image_named_too(tmp_path):
    """zoo.train and zoo.evaluate raise the FolderError the CLI prints, TensorFlow's error chained behind it."""
    import zoo

    root = classes_folder(tmp_path / "bad", per_class=4)
    options = dict(dataset=str(root), epochs=1, batch_size=4, record=False, verbose=False, xla=False)
    trained = zoo.train("lenet5", output=tmp_path / "good", **options)
    data = (root / "dog" / "000.png").read_bytes()
    (root / "dog" / "000.png").write_bytes(data[:40])
    damaged = f"{root.resolve() / 'dog' / '000.png'}: not a decodable image (Invalid PNG"
    with pytest.raises(DatasetError, match=re.escape(damaged)) as raised:
        zoo.train("lenet5", output=tmp_path / "run", **options)
    assert type(raised.value.__cause__).__name__ == "InvalidArgumentError"
    with pytest.raises(DatasetError, match=re.escape(damaged)):
        zoo.evaluate("lenet5", Path(trained.output_dir) / "model.weights.h5", dataset=str(root), split="train")


@pytest.mark.parametrize("command", [["data", "bench", "{root}", "--epochs", "1"],
                                     ["train", "lenet5", "--dataset", "{root}", "--epochs", "1", "--batch-size", "4",
                                      "--no-record", "--output", "{run}"]])
def test_cli_names_a_damaged_image_of_the_folder(tmp_path, command):
    root = classes_folder(tmp_path / "bad", per_class=4)
    data = (root / "dog" / "000.png").read_bytes()
    (root / "dog" / "000.png").write_bytes(data[:40])
    args = [a.format(root=root, run=tmp_path / "run") for a in command]
    proc = subprocess.run([sys.executable, "-c", "import sys, cli; sys.exit(cli.main())", *args],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    damaged = root.resolve() / "dog" / "000.png"
    assert proc.stderr.strip().splitlines() == [f"zoo: error: {damaged}: not a decodable image (Invalid PNG. Failed "
                                                "to initialize decoder); repair or remove it"]


def test_weights_are_evaluated_on_a_folder_by_class_name_not_folder_order(tmp_path):
    """Fashion-MNIST's label 0 is 'T-shirt/top'; as a folder ('T-shirt_top') it sorts eighth. zoo eval on such a
    folder must score the weights' real predictions (matched by name), here equal to predicting the same images."""
    import zoo
    from zoo.data.arrays import load_split
    from zoo.training.evaluate import evaluate

    weights = zoo.get_weights("lenet5.fashion_mnist")
    images, labels = load_split("fashion_mnist_sample", "test")
    images, labels = images[:60], labels[:60]
    root = tmp_path / "fm"
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / "test" / weights.class_names[label].replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.squeeze()).save(folder / f"{i:03d}.png")
    for i in range(10):  # a train/ split, so the test split is the one evaluated
        folder = root / "train" / weights.class_names[i].replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i].squeeze()).save(folder / "000.png")
    model = weights.build()
    predicted = np.argmax(model.predict(weights.preprocess(images), verbose=0), axis=-1)
    # the default batch (128) is larger than the 10 training images: an evaluation takes no training step
    result = evaluate("lenet5", "fashion_mnist", dataset=str(root), split="test")
    assert result.examples == 60
    assert result.top1 == pytest.approx(float(np.mean(predicted == labels)), abs=1e-6)
    assert result.top1 > 0.8  # by folder order it would be near chance
    assert "matched by name" in result.classes
