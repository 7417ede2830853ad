"""Named weights (zoo.pretrained) and their preprocessing (zoo.preprocess): registry entries, shipped files, the
accuracy they reproduce, the preprocessing the training pipeline applies, Keras' modes, and the one-line errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import zoo
from zoo import pretrained
from zoo.preprocess import Preprocessing
from zoo.registry import registry

SHIPPED = [(name, tag) for name in registry().names() for tag, entry in registry().models[name].weights.items()
           if entry.source == "shipped"]
HEAVY = {"densenet_bc100_k12"}  # its sample evaluation takes over 10 s on 2 cores
KERAS_MODE = {"VGG": "caffe", "ResNet": "caffe", "DenseNet": "torch"}


def entry_of(name, tag):
    return registry().models[name].weights[tag]


def sample_split(entry_split: str = "test"):
    from zoo.data.sources import read_idx
    from zoo.data.catalogue import sample_dir

    folder = sample_dir()
    return (read_idx(folder / "t10k-images-idx3-ubyte.gz"), read_idx(folder / "t10k-labels-idx1-ubyte.gz"))


# -- the registry's entries ---------------------------------------------------------------------------------


def test_some_weights_ship():
    assert ("lenet5", "fashion_mnist") in SHIPPED


@pytest.mark.parametrize("name,tag", SHIPPED)
def test_shipped_file_is_small_and_matches_its_sha256(name, tag):
    entry = entry_of(name, tag)
    path = pretrained.PRETRAINED_DIR / entry.file
    assert path.stat().st_size == entry.size_bytes <= 5_000_000
    assert pretrained.sha256_of(path) == entry.sha256
    assert entry.record and (pretrained.PRETRAINED_DIR.parents[1] / entry.record).is_file()
    assert {a.dataset for a in entry.accuracy} == {entry.dataset, f"{entry.dataset}_sample"}


def test_every_keras_twin_has_imagenet_weights_with_keras_mode():
    twins = {name: spec for name, spec in registry().models.items() if spec.keras_twin}
    assert len(twins) == 8
    for name, spec in twins.items():
        entry = spec.weights["imagenet"]
        mode = next(m for prefix, m in KERAS_MODE.items() if spec.keras_twin.startswith(prefix))
        assert (entry.source, entry.preprocessing.mode, entry.classes) == ("keras_applications", mode, 1000), name
        assert entry.file == f"{name}_weights_tf_dim_ordering_tf_kernels.h5"


@pytest.mark.parametrize("name,tag", SHIPPED)
def test_entry_preprocessing_is_the_pipelines(name, tag):
    """What the entry says the weights expect is what the training pipeline fed them. (On the embedded sample the
    pipeline normalises with the sample's own statistics, 73.27/90.28 instead of 72.94/90.02: the next test's
    pipeline is given the weights' mean/std.)"""
    entry = entry_of(name, tag)
    assert pretrained.pipeline_preprocessing(zoo.get_spec(name), entry.dataset) == entry.preprocessing


@pytest.mark.parametrize("name,tag", SHIPPED)
def test_preprocessing_equals_the_eval_pipeline_on_the_sample(name, tag):
    from zoo.data.pipeline import make_dataset

    entry = entry_of(name, tag)
    prep = entry.preprocessing
    images, _ = sample_split()
    ds = make_dataset("fashion_mnist_sample", "test[:64]", image_size=prep.size, channels=prep.channels,
                      batch_size=64, training=False, deterministic=True, mean=prep.mean, std=prep.std)
    expected = next(iter(ds))[0].numpy()
    np.testing.assert_allclose(prep(images[:64]), expected, atol=1e-5)


@pytest.mark.parametrize("name,tag", [pytest.param(n, t, marks=pytest.mark.slow) if n in HEAVY else (n, t)
                                      for n, t in SHIPPED])
def test_shipped_weights_reproduce_the_committed_sample_accuracy(name, tag):
    """`zoo eval NAME --weights TAG --dataset fashion_mnist_sample`: the number in registry.yaml (the images
    prepared as the weights expect: the training set's statistics, not the sample's own)."""
    from zoo.training.evaluate import evaluate

    entry = entry_of(name, tag)
    committed = next(a for a in entry.accuracy if a.dataset.endswith("_sample"))
    result = evaluate(name, tag, dataset=committed.dataset)
    assert result.examples == committed.examples
    assert round(100 * result.top1, 2) == pytest.approx(committed.top1, abs=0.011)


# -- loading ------------------------------------------------------------------------------------------------


def test_build_with_a_tag_equals_build_with_the_file():
    images, _ = sample_split()
    w = zoo.get_weights("lenet5.fashion_mnist")
    by_tag = zoo.build("lenet5", weights="fashion_mnist")
    by_path = zoo.build("lenet5", weights=w.path)
    x = w.preprocess(images[:8])
    np.testing.assert_array_equal(by_tag.predict(x, verbose=0), by_path.predict(x, verbose=0))
    top = w.decode(by_tag.predict(x, verbose=0), top=3)
    assert len(top) == 8 and all(len(t) == 3 for t in top)
    assert top[0][0].label in w.class_names and top[0][0].probability >= top[0][1].probability


def test_a_shipped_file_by_its_path_is_its_entry(tmp_path):
    """Found by sha256 wherever the copy is (even in a run folder): `--weights zoo/pretrained/...h5` == the tag."""
    entry = entry_of("lenet5", "fashion_mnist")
    copy = tmp_path / "copy.weights.h5"
    shutil.copy(pretrained.PRETRAINED_DIR / entry.file, copy)
    w = pretrained.resolve("lenet5", copy)
    assert (w.tag, w.path, w.preprocessing, w.guessed) == ("fashion_mnist", copy, entry.preprocessing, False)
    assert pretrained.resolve("lenet5", "lenet5.fashion_mnist").tag == "fashion_mnist"  # MODEL.TAG


def test_a_path_from_a_run_folder_takes_its_runs_preprocessing(tmp_path):
    """A run's file: the preprocessing its training pipeline fed it (on the sample: the sample's own statistics),
    the run's classes; a file of another model's run names both."""
    import json

    from zoo.data.catalogue import get_dataset

    run = tmp_path / "run"
    run.mkdir()
    zoo.build("lenet5").save_weights(run / "model.weights.h5")
    (run / "config.json").write_text(json.dumps({"model": "lenet5", "dataset": "fashion_mnist_sample",
                                                 "image_size": 32, "classes": 10}))
    w = pretrained.resolve("lenet5", run / "model.weights.h5")
    assert (w.tag, w.dataset, w.classes, w.guessed) == (None, "fashion_mnist_sample", 10, False)
    sample = get_dataset("fashion_mnist_sample")
    assert (w.preprocessing.pad, w.preprocessing.mean, w.preprocessing.std) == (2, sample.mean, sample.std)
    assert w.preprocessing != entry_of("lenet5", "fashion_mnist").preprocessing  # 73.27 / 90.28, not 72.94 / 90.02
    with pytest.raises(pretrained.WeightsError, match=r"a run of lenet5 \(its config.json\), not lenet5_harley"):
        pretrained.resolve("lenet5_harley", run / "model.weights.h5")
    (run / "config.json").unlink()
    assert pretrained.resolve("lenet5", run / "model.weights.h5").guessed  # a bare file: the model's defaults


def test_imagenet_without_keras_file_names_the_file_and_the_keras_call(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        zoo.build("resnet50", weights="imagenet")
    message = str(e.value)
    assert str(tmp_path / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels.h5") in message
    assert "keras.applications.ResNet50(weights='imagenet')" in message and "\n" not in message
    with pytest.raises(FileNotFoundError, match="_notop.h5"):
        pretrained.resolve("densenet121", "imagenet", include_top=False)


# -- bad input: one line naming what is wrong ---------------------------------------------------------------


def test_unknown_tag_lists_the_available_ones():
    with pytest.raises(KeyError) as e:
        zoo.build("lenet5", weights="mnist")
    assert str(e.value) == "unknown weights 'mnist' for lenet5 (available: fashion_mnist)"
    with pytest.raises(KeyError, match="expected MODEL.TAG"):
        zoo.get_weights("lenet5")


def test_another_class_count_names_both():
    with pytest.raises(ValueError, match=r"lenet5.fashion_mnist has 10 classes \(fashion_mnist\); the model was "
                                         r"asked for 5"):
        zoo.build("lenet5", weights="fashion_mnist", classes=5)


def test_weights_of_another_model_name_both():
    path = zoo.get_weights("lenet5.fashion_mnist").path
    with pytest.raises(ValueError, match=f"^{path} holds lenet5.fashion_mnist \\(its sha256\\): weights of lenet5, "
                                         "not lenet5_harley$"):
        zoo.build("lenet5_harley", weights=path)
    with pytest.raises(ValueError, match=r"^lenet5.fashion_mnist are weights of lenet5, not lenet5_harley \(weights "
                                         r"of lenet5_harley: fashion_mnist\)$"):
        zoo.build("lenet5_harley", weights="lenet5.fashion_mnist")


def test_sha256_mismatch_names_the_file(tmp_path, monkeypatch):
    entry = entry_of("lenet5", "fashion_mnist")
    damaged = tmp_path / entry.file
    data = bytearray((pretrained.PRETRAINED_DIR / entry.file).read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(pretrained.ChecksumError, match=f"{damaged}: sha256 .* is not lenet5.fashion_mnist's"):
        zoo.build("lenet5", weights="fashion_mnist")


def test_folder_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        pretrained.resolve("lenet5", tmp_path)
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        pretrained.resolve("lenet5", tmp_path / "x.weights.h5")


# -- Preprocessing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_keras_modes_equal_keras_preprocess_input(mode):
    from keras.applications import imagenet_utils

    x = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype("float32")
    prep = Preprocessing(size=8, channels=3, mode=mode)
    expected = imagenet_utils.preprocess_input(x.copy(), mode=mode)
    np.testing.assert_allclose(prep(x), np.asarray(expected), atol=1e-5)


def test_geometry_any_size_grey_or_colour_numpy_or_tensor():
    import tensorflow as tf

    prep = Preprocessing(size=224, channels=3, resize=256, crop=224, mode="caffe")
    colour = np.random.default_rng(1).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    grey = colour[..., 0]
    assert prep(colour).shape == (1, 224, 224, 3) and prep(grey).shape == (1, 224, 224, 3)
    assert prep([colour, grey[:100, :150]]).shape == (2, 224, 224, 3)
    out = prep(tf.constant(colour))
    assert isinstance(out, tf.Tensor)
    np.testing.assert_allclose(out.numpy(), prep(colour), atol=1e-5)
    exact = np.random.default_rng(2).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    np.testing.assert_allclose(prep(exact)[0], exact[16:240, 16:240, ::-1] - np.array([103.939, 116.779, 123.68]),
                               atol=1e-4)  # shorter side already 256: an exact center crop
    ds = tf.data.Dataset.from_tensor_slices(np.stack([exact, exact])).batch(2).map(prep)
    np.testing.assert_allclose(next(iter(ds)).numpy()[0], prep(exact)[0], atol=1e-5)


def test_preprocessing_schema_errors():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="contradicts mode 'caffe'"):
        Preprocessing(size=224, channels=3, mode="caffe", channel_order="rgb")
    with pytest.raises(ValidationError, match="mean has 2 values"):
        Preprocessing(size=32, channels=3, mean=[1, 2], std=[1])
    with pytest.raises(ValidationError, match="crop needs resize"):
        Preprocessing(size=32, channels=1, crop=28, mean=[0], std=[1])


TRAINED_HERE = [(name, tag) for name in registry().names() for tag, entry in registry().models[name].weights.items()
                if entry.source != "keras_applications"]


@pytest.mark.parametrize("name,tag", TRAINED_HERE)
def test_trained_entries_state_what_zoo_train_resolves(name, tag):
    """Shipped or not, an entry's classes and preprocessing are those of the run its train_command resolves (the
    sample resolves the same recipe and input size as the full dataset, without the data prepared)."""
    from zoo.training.config import resolve_run
    from zoo.training.options import RunOptions

    entry, spec = entry_of(name, tag), zoo.get_spec(name)
    # --recipe is in the command exactly when the entry's recipe is not the model's for its dataset
    recipe = None if entry.recipe in (None, spec.recipe_for(entry.dataset)) else entry.recipe
    config = resolve_run(spec, RunOptions.of(dataset=f"{entry.dataset}_sample", recipe=recipe, max_steps=1)).config
    assert entry.train_command == f"zoo train {name} --dataset {entry.dataset}" + (f" --recipe {recipe}" if recipe
                                                                                   else "")
    assert (entry.recipe, entry.classes) == (config.recipe, config.classes)
    assert entry.preprocessing == pretrained.pipeline_preprocessing(spec, entry.dataset, config.image_size)


def test_weights_not_shipped_say_how_to_make_them():
    with pytest.raises(FileNotFoundError, match=r"alexnet.fashion_mnist is not shipped .* make it with `zoo train "
                                                r"alexnet --dataset fashion_mnist`"):
        zoo.build("alexnet", weights="fashion_mnist")


def test_the_shipped_weights_readme_is_generated_from_the_registry():
    import importlib.util

    path = pretrained.PRETRAINED_DIR.parents[1] / "scripts" / "make_weights.py"
    spec = importlib.util.spec_from_file_location("make_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (pretrained.PRETRAINED_DIR / "README.md").read_text() == module.readme(), \
        "stale: run python scripts/make_weights.py --readme"


def test_variable_size_images_in_tf_data_match_eager():
    """Inside tf.data the image sizes are unknown until run time (the dynamic resize path)."""
    import tensorflow as tf

    prep = Preprocessing(size=64, channels=3, resize=73, crop=64, mode="torch")
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(90, 120, 3), (200, 80, 3)]]
    ds = tf.data.Dataset.from_generator(lambda: iter(images), output_signature=tf.TensorSpec([None, None, 3],
                                                                                             tf.uint8))
    found = np.concatenate([batch.numpy() for batch in ds.map(prep)])
    np.testing.assert_allclose(found, prep(images), atol=1e-4)


# -- weights of a run on an image folder ---------------------------------------------------------------------


def folder_run(tmp_path, names=("cat", "dog", "owl")):
    """A run folder as `zoo train lenet5 --dataset FOLDER` leaves it (config.json as resolved, model.weights.h5),
    with the image folder then removed; returns (run folder, its config)."""
    import json

    from PIL import Image

    from zoo.data import folder
    from zoo.training.config import resolve_run
    from zoo.training.options import RunOptions

    images = tmp_path / "pics"
    for c, name in enumerate(names):
        (images / name).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((24 + i, 30, 3), 40 + 80 * c, np.uint8)).save(images / name / f"{i}.png")
    config = resolve_run("lenet5", RunOptions.of(dataset=str(images), batch_size=4)).config.to_dict()
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config))
    zoo.build("lenet5", classes=len(names)).save_weights(run / "model.weights.h5")
    shutil.rmtree(images)
    folder.scan.cache_clear()
    folder._REGISTERED.clear()  # a new process: the folder's name stands for nothing
    return run, config


def test_a_folder_runs_weights_carry_its_class_names_and_preprocessing_when_the_folder_is_gone(tmp_path):
    import json

    run, config = folder_run(tmp_path)
    assert config["dataset"] == "pics" and config["class_names"] == ["cat", "dog", "owl"]
    w = pretrained.resolve("lenet5", run)  # the run folder: its weights file, as zoo eval --weights RUN_DIR
    assert (w.path, w.dataset, w.classes, w.guessed) == (run / "model.weights.h5", "pics", 3, False)
    assert w.class_names == ["cat", "dog", "owl"] and pretrained.class_names("pics", 3) == ["cat", "dog", "owl"]
    assert w.preprocessing == Preprocessing.model_validate(config["preprocessing"])
    assert (w.preprocessing.resize, w.preprocessing.crop, w.preprocessing.channels) == (37, 32, 1)
    assert 40 < w.preprocessing.mean[0] < 200  # the folder's grey levels (40, 120, 200), measured at the run
    assert [p.label for p in w.decode(np.array([0.1, 0.7, 0.2]), top=2)[0]] == ["dog", "owl"]
    del config["preprocessing"]  # a run from before runs recorded it, its folder gone: one line, what to do
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(pretrained.WeightsError, match=r"image folder .*pics, which is gone.*put the folder back"):
        pretrained.resolve("lenet5", run / "model.weights.h5")
    (run / "model.weights.h5").unlink()
    with pytest.raises(pretrained.WeightsError, match="a run folder without best.weights.h5 or model.weights.h5"):
        pretrained.resolve("lenet5", run)


def test_export_and_explain_take_a_folder_runs_weights(tmp_path):
    """`zoo export` and `zoo explain --weights RUN_DIR` of a run on an image folder (before: 'unknown dataset')."""
    import json

    from click.testing import CliRunner

    from zoo.cli import cli

    run, _ = folder_run(tmp_path)
    out = CliRunner().invoke(cli, ["export", "lenet5", "--weights", str(run), "--format", "savedmodel", "-o",
                                   str(tmp_path / "saved")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "saved" / "saved_model.pb").is_file()
    out = CliRunner().invoke(cli, ["explain", "lenet5", "--weights", str(run), "--methods", "saliency", "-o",
                                   str(tmp_path / "page")])
    assert out.exit_code == 0, out.output
    page = json.loads((tmp_path / "page" / "explain.json").read_text())
    assert page["head"]["class_names"] == ["cat", "dog", "owl"] and page["weights"]["dataset"] == "pics"


@pytest.mark.slow
def test_a_trained_folder_runs_weights_export_and_explain_once_the_folder_is_gone(tmp_path):
    """End to end: zoo train on a generated folder (--max-steps 2), the folder removed, then zoo export and zoo
    explain --weights RUN_DIR in the CLI, the page labelled with the folder's class names."""
    import json

    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli
    from zoo.data import folder

    images = tmp_path / "shapes"
    for c, name in enumerate(("ring", "star")):
        (images / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(np.full((28, 28 + i), 60 + 120 * c, np.uint8)).save(images / name / f"{i}.png")
    run = tmp_path / "run"
    zoo.train("lenet5", dataset=str(images), max_steps=2, batch_size=4, output=str(run), record=False,
              verbose=False)
    assert json.loads((run / "config.json").read_text())["preprocessing"]["size"] == 32
    shutil.rmtree(images)
    folder.scan.cache_clear()
    folder._REGISTERED.clear()
    out = CliRunner().invoke(cli, ["export", "lenet5", "--weights", str(run), "--format", "savedmodel", "-o",
                                   str(tmp_path / "saved")])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(cli, ["explain", "lenet5", "--weights", str(run), "--methods", "saliency", "-o",
                                   str(tmp_path / "page")])
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "page" / "explain.json").read_text())["head"]["class_names"] == ["ring", "star"]
