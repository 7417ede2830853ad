"""`zoo eval MODEL --weights TAG|PATH|imagenet`: the weights resolved as zoo.build resolves them, the images
prepared as those weights expect (never the registry's protocol of another convention): the shipped weights
reproduce their committed number, keras.applications' ImageNet weights are fed Keras' own preprocess_input,
bad weights are one line."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from zoo import cli
from zoo.registry import registry
from zoo.training.evaluate import evaluate, prepare

tfds = pytest.importorskip("tensorflow_datasets")


def zoo_cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def sample_measured(name: str, tag: str):
    entry = registry().models[name].weights[tag]
    return next(a for a in entry.accuracy if a.dataset.endswith("_sample"))


# -- the shipped weights reproduce the committed number ------------------------------------------------------


def test_eval_tag_reproduces_the_committed_sample_accuracy(capsys):
    committed = sample_measured("lenet5", "fashion_mnist")
    code, out, err = zoo_cli(capsys, "eval", "lenet5", "--weights", "fashion_mnist", "--dataset", committed.dataset,
                             "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["weights"], result["dataset"], result["split"], result["examples"]) == (
        "lenet5.fashion_mnist", committed.dataset, committed.split, committed.examples)
    assert round(100 * result["top1"], 2) == pytest.approx(committed.top1, abs=0.011)
    assert round(100 * result["top5"], 2) == pytest.approx(committed.top5, abs=0.011)
    assert result["preprocessing"] == registry().models["lenet5"].weights["fashion_mnist"].preprocessing.describe()
    assert result["committed_top1"] == committed.top1


def test_tag_path_and_run_folder_are_the_same_evaluation(tmp_path):
    """The shipped file by its path (the registry's command) is its entry; a run folder stands for its
    model.weights.h5: both are evaluated exactly as the tag (evaluate() uses nothing but what prepare() says)."""
    import shutil

    from zoo import get_weights

    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(get_weights("lenet5.fashion_mnist").path, folder / "model.weights.h5")
    found = [prepare("lenet5", weights, dataset="fashion_mnist_sample")
             for weights in ("fashion_mnist", "lenet5.fashion_mnist", get_weights("lenet5.fashion_mnist").path,
                             folder)]
    expected = ("lenet5.fashion_mnist", get_weights("lenet5.fashion_mnist").preprocessing, "fashion_mnist_sample",
                "test", 1000)
    assert [(e.weights.name, e.preprocessing, e.run.config.dataset, e.split, e.examples) for e in found] == [
        expected] * len(found)
    assert found[-1].weights.path == folder / "model.weights.h5"


def test_a_bare_file_gets_the_registrys_protocol_on_the_dataset_asked(tmp_path):
    import zoo

    path = tmp_path / "w.weights.h5"
    zoo.build("lenet5", classes=10).save_weights(path)
    evaluation = prepare("lenet5", path, dataset="fashion_mnist_sample")
    assert evaluation.weights.guessed and evaluation.preprocessing is None
    assert evaluation.run.config.dataset == "fashion_mnist_sample"


# -- keras.applications' ImageNet weights: Keras' own preprocess_input ---------------------------------------

KERAS_FAMILY = {"resnet50": "resnet", "densenet121": "densenet", "vgg16": "vgg16"}  # caffe, torch, caffe


@pytest.fixture(scope="module")
def imagenet_dir(tmp_path_factory):
    """A data dir holding only ImageNet's real metadata (what a prepared dataset has); tfds.testing.mock_data
    serves its examples (JPEG-encoded random images of random sizes)."""
    root = tmp_path_factory.mktemp("tfds")
    builder = tfds.builder("imagenet2012", data_dir=str(root))
    builder.data_path.mkdir(parents=True)
    builder.info.write_to_directory(builder.data_path)
    return root


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return models


def mock_validation_images(root, count: int) -> list[np.ndarray]:
    """The first `count` validation images as the pipeline decodes them (the mock's JPEG bytes, decoded)."""
    import tensorflow as tf

    ds = tfds.load("imagenet2012", split=f"validation[:{count}]", data_dir=str(root), as_supervised=True,
                   download=False, decoders={"image": tfds.decode.SkipDecoding()})
    return [tf.io.decode_image(encoded, channels=3, expand_animations=False).numpy() for encoded, _ in ds]


def keras_preprocessed(name: str, images: list[np.ndarray]) -> np.ndarray:
    """keras.applications.<family>.preprocess_input of the images after ImageNet's geometry (shorter side 256,
    center crop 224; no normalisation: Preprocessing with mean 0, std 1, RGB)."""
    from zoo.preprocess import Preprocessing

    geometry = Preprocessing(size=224, channels=3, resize=256, crop=224, mean=[0.0], std=[1.0])
    crops = np.concatenate([geometry(image) for image in images])
    keras_module = importlib.import_module(f"keras.applications.{KERAS_FAMILY[name]}")
    return np.asarray(keras_module.preprocess_input(crops.copy()))


@pytest.mark.parametrize("name", list(KERAS_FAMILY))
def test_imagenet_eval_feeds_keras_preprocess_input(name, imagenet_dir, keras_home):
    """The eval stream of `--weights imagenet` is Keras' preprocess_input (caffe: BGR minus the mean; torch:
    RGB / 255 minus mean over std), not the registry's RGB mean/std protocol. prepare() reads no weights: a file
    under Keras' name is enough here (the next test loads real ones)."""
    spec = registry().models[name]
    (keras_home / spec.weights["imagenet"].file).write_bytes(b"placeholder")
    with tfds.testing.mock_data(num_examples=4):
        evaluation = prepare(name, "imagenet", data_dir=imagenet_dir, split="validation", limit=4, batch_size=4)
        (images, _), = list(evaluation.stream().as_numpy_iterator())
        raw = mock_validation_images(imagenet_dir, 4)
    assert evaluation.preprocessing.mode == {"densenet121": "torch"}.get(name, "caffe")
    assert images.shape == (4, 224, 224, 3)
    np.testing.assert_allclose(images, keras_preprocessed(name, raw), atol=2e-3)


def test_imagenet_eval_equals_keras_own_model_on_its_preprocess_input(imagenet_dir, keras_home):
    """End to end with Keras' file (random weights, non-trivial BatchNorm statistics, conv biases): zoo eval's
    loss and top-5 equal Keras' own model's on preprocess_input of the same images."""
    from test_predict import keras_file_with_random_weights

    twin = keras_file_with_random_weights("resnet50", keras_home)
    with tfds.testing.mock_data(num_examples=4):
        result = evaluate("resnet50", "imagenet", data_dir=imagenet_dir, split="validation", limit=4,
                          batch_size=4)
        examples = tfds.load("imagenet2012", split="validation[:4]", data_dir=str(imagenet_dir),
                             as_supervised=True, download=False, decoders={"image": tfds.decode.SkipDecoding()})
        labels = np.array([int(label) for _, label in examples])
        raw = mock_validation_images(imagenet_dir, 4)
    probabilities = twin.predict(keras_preprocessed("resnet50", raw), verbose=0)
    # -log p unclipped (Keras' crossentropy on probabilities clips p at 1e-7; zoo's is computed from the logits)
    loss = float(np.mean(-np.log(probabilities[np.arange(len(labels)), labels].astype(np.float64))))
    top5 = float(np.mean([label in np.argsort(-row)[:5] for row, label in zip(probabilities, labels)]))
    assert (result.weights, result.examples) == ("resnet50.imagenet", 4)
    assert result.loss == pytest.approx(loss, rel=1e-4)
    assert result.top5 == pytest.approx(top5)


def test_the_numpy_path_feeds_the_same_preprocessing():
    """Keras on JAX (no TensorFlow) evaluates through zoo.data.arrays: the same PipelineSpec (fit-and-pad, BGR,
    per-channel mean/std in BGR order) gives what Preprocessing gives."""
    from zoo.data import arrays
    from zoo.preprocess import Preprocessing
    from zoo.training.inputs import weights_pipeline_spec

    prep = Preprocessing(size=24, channels=3, pad=2, mode="caffe")
    images = np.random.default_rng(5).integers(0, 256, (6, 20, 20, 3), dtype=np.uint8)
    spec = weights_pipeline_spec(prep, batch_size=6)
    data = arrays.ArrayBatches(images, np.zeros(6, np.int32), spec, mean=prep.mean, std=prep.std, seed=0,
                               prefetch=0)
    x, _ = data[0]
    np.testing.assert_allclose(x, prep(images), atol=1e-4)
    assert x[0, 0, 0].tolist() == pytest.approx([-103.939, -116.779, -123.68])  # the zero pad, minus BGR's mean


# -- bad input: one line, non-zero exit ----------------------------------------------------------------------


@pytest.mark.parametrize("args, line", [
    (["lenet5", "--weights", "mnist"], "unknown weights 'mnist' for lenet5 (available: fashion_mnist)"),
    (["lenet5", "--weights", "imagenet"], "unknown weights 'imagenet' for lenet5 (available: fashion_mnist)"),
    (["lenet5_harley", "--weights", "lenet5.fashion_mnist"],
     "lenet5.fashion_mnist are weights of lenet5, not lenet5_harley (weights of lenet5_harley: fashion_mnist)"),
    (["lenet5_harley", "--weights", "{shipped}"],
     "{shipped} holds lenet5.fashion_mnist (its sha256): weights of lenet5, not lenet5_harley"),
    (["lenet5", "--weights", "fashion_mnist", "--dataset", "cifar100"],
     "lenet5.fashion_mnist has 10 classes (fashion_mnist); cifar100 has 100: evaluate it on a dataset with its "
     "classes"),
    (["lenet5", "--weights", "fashion_mnist", "--image-size", "64"],
     "--image-size 64: lenet5.fashion_mnist expects 32x32 inputs (its preprocessing: 28x28 padded by 2 to 32, "
     "grey, (x - 72.9404) / 90.0212 on 0-255)"),
    (["lenet5", "--weights", "{tmp}"], "{tmp} is a folder; weights must be a .weights.h5 or .keras file (or a "
                                       "tag: fashion_mnist)"),
])
def test_bad_weights_are_one_line(args, line, capsys, tmp_path):
    from zoo import get_weights

    shipped = str(get_weights("lenet5.fashion_mnist").path)
    fill = {"{shipped}": shipped, "{tmp}": str(tmp_path)}
    args = [fill.get(a, a) for a in args]
    for key, value in fill.items():
        line = line.replace(key, value)
    code, out, err = zoo_cli(capsys, "eval", *args)
    assert (code, out, err) == (1, "", f"zoo: error: {line}\n")
