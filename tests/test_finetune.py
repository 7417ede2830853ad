"""Fine-tuning (zoo/training/finetune.py): the backbone by the family contract, the head kept or replaced, frozen or
trained second, the options checked before any TensorFlow work, and a run on an image folder end to end."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.data import folder
from zoo.pretrained import PRETRAINED_DIR
from zoo.training import finetune
from zoo.training.config import resolve_run
from zoo.training.options import RunOptions, TrainError

SHIPPED = PRETRAINED_DIR / "lenet5.fashion_mnist.weights.h5"


def make_folder(root, names=("a", "b", "c"), per_class=8, size=28):
    rng = np.random.default_rng(0)
    for c, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(60 + 60 * c, 30, (size, size)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture(autouse=True)
def _fresh_folders():
    folder.scan.cache_clear()
    folder._REGISTERED.clear()
    yield


def run_of(tmp_path, **options):
    data = make_folder(tmp_path / "shapes")
    return resolve_run("lenet5", RunOptions.of(dataset=str(data), **{"batch_size": 8, **options}))


def weights_of(path):
    model = zoo.build("lenet5", weights=str(path), classifier_activation=None)
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def test_backbone_is_the_headless_build():
    model = zoo.build("lenet5")
    names = finetune.backbone_layer_names("lenet5", model)
    assert {"conv1", "conv2"} <= names and not names & {"fc1", "fc2", "predictions"}
    resnet = zoo.build("resnet20", classes=3)
    head = [layer.name for layer in resnet.layers
            if layer.weights and layer.name not in finetune.backbone_layer_names("resnet20", resnet)]
    assert head == ["predictions"]


def test_new_classes_keep_the_backbone_and_replace_the_whole_head(tmp_path):
    from zoo.training import setup

    run = run_of(tmp_path, weights="fashion_mnist")
    config = run.config
    assert config.recipe == "finetune" and config.classes == 3 and config.weights == "fashion_mnist"
    assert config.dataset == "shapes" and config.dataset_path == str((tmp_path / "shapes").resolve())
    assert config.class_names == ["a", "b", "c"]
    model = setup.build_model(run)
    shipped = weights_of(SHIPPED)
    for name in ("conv1", "conv2"):
        assert all(np.array_equal(a, b) for a, b in zip(model.get_layer(name).get_weights(), shipped[name]))
    for name in ("fc1", "fc2"):  # same shapes, but trained for Fashion-MNIST's classes: started afresh
        assert not np.array_equal(model.get_layer(name).get_weights()[0], shipped[name][0])
    assert model.get_layer("predictions").get_weights()[0].shape == (84, 3)
    assert any("fc1, fc2, predictions initialised afresh" in note for note in config.notes)


def test_the_same_classes_keep_the_head(tmp_path):
    from zoo.training import setup

    run = resolve_run("lenet5", RunOptions.of(dataset="fashion_mnist_sample", weights="fashion_mnist"))
    model = setup.build_model(run)
    shipped = weights_of(SHIPPED)
    assert all(np.array_equal(a, b) for layer in shipped for a, b in zip(model.get_layer(layer).get_weights(),
                                                                         shipped[layer]))
    assert any("its head is for the run's classes" in note for note in run.config.notes)


def test_the_same_classes_in_a_folders_order_keep_the_head_reordered(tmp_path):
    """Fashion-MNIST as an image folder: its sorted folder names ('Ankle boot', 'Bag', ..., 'T-shirt_top', ...)
    are the shipped weights' classes in another order. The head stays, its classifier's columns put in the
    folder's label order: the fine-tuned model starts out predicting exactly what the shipped one does."""
    from zoo.pretrained import class_names
    from zoo.training import setup

    names = [name.replace("/", "_") for name in class_names("fashion_mnist", 10)]
    data = make_folder(tmp_path / "fashion", names=names, per_class=2)
    run = resolve_run("lenet5", RunOptions.of(dataset=str(data), weights="fashion_mnist", batch_size=4))
    assert run.config.class_names == sorted(names) != names
    model = setup.build_model(run)
    shipped = zoo.build("lenet5", weights="fashion_mnist", classifier_activation=None)
    x = np.random.default_rng(3).normal(0, 1, (4, 32, 32, 1)).astype("float32")
    order = [names.index(name) for name in run.config.class_names]  # each folder label's Fashion-MNIST class
    np.testing.assert_allclose(model.predict(x, verbose=0), shipped.predict(x, verbose=0)[:, order], rtol=1e-5,
                               atol=1e-5)
    for layer in ("fc1", "fc2"):  # the rest of the head as it was
        assert np.array_equal(model.get_layer(layer).get_weights()[0], shipped.get_layer(layer).get_weights()[0])
    assert any("its outputs put in the run's label order by class name" in note for note in run.config.notes)


def test_a_bare_file_with_another_head_still_gives_its_backbone(tmp_path):
    from zoo.training import setup

    other = zoo.build("lenet5", classes=5)
    other.save_weights(tmp_path / "five.weights.h5")  # no config.json beside it: its class count is unknown
    model = setup.build_model(run_of(tmp_path, weights=str(tmp_path / "five.weights.h5")))
    assert np.array_equal(model.get_layer("conv2").get_weights()[0], other.get_layer("conv2").get_weights()[0])


def test_weights_of_another_model_are_one_line_naming_both(tmp_path):
    from zoo.training import setup

    shutil.copy(PRETRAINED_DIR / "resnet20.fashion_mnist.weights.h5", tmp_path / "mystery.weights.h5")
    with pytest.raises(Exception) as error:  # zoo.pretrained's WeightsError or finetune's: both one line
        setup.build_model(run_of(tmp_path, weights=str(tmp_path / "mystery.weights.h5")))
    text = str(error.value)
    assert "\n" not in text and "lenet5" in text and ("mystery.weights.h5" in text or "resnet20" in text)


def test_freeze_backbone(tmp_path):
    from zoo.training import setup

    model = setup.build_model(run_of(tmp_path, weights="fashion_mnist", freeze_backbone=True))
    assert not model.get_layer("conv1").trainable and not model.get_layer("conv2").trainable
    assert model.get_layer("fc1").trainable and model.get_layer("predictions").trainable


def test_head_epochs_hold_the_backbone_then_train_everything(tmp_path):
    import keras

    from zoo.training import setup

    run = run_of(tmp_path, weights="fashion_mnist", head_epochs=1, epochs=3, steps_per_epoch=2, batch_size=4)
    config = run.config
    model = setup.build_model(run)
    setup.compile_model(model, config, run.recipe, setup.make_optimizer(config, run.recipe, model))
    assert type(model.optimizer).__name__ == "HeadFirstAdam"
    x = np.random.default_rng(1).normal(size=(8, 32, 32, 1)).astype("float32")
    y = np.arange(8) % 3
    conv, fc = (model.get_layer(n).get_weights()[0].copy() for n in ("conv1", "fc1"))
    keras.utils.set_random_seed(0)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)  # steps 0, 1: phase one
    assert np.array_equal(model.get_layer("conv1").get_weights()[0], conv)
    assert not np.array_equal(model.get_layer("fc1").get_weights()[0], fc)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)  # steps 2, 3: every layer
    assert not np.array_equal(model.get_layer("conv1").get_weights()[0], conv)


@pytest.mark.parametrize("options, message", [
    (dict(freeze_backbone=True), "--freeze-backbone needs --weights"),
    (dict(head_epochs=2), "--head-epochs needs --weights"),
    (dict(weights="fashion_mnist", freeze_backbone=True, head_epochs=2), "exclude each other"),
    (dict(weights="fashion_mnist", head_epochs=20, epochs=5), "leaves nothing"),
    (dict(weights="fashion_mnist", classes=2), "--classes 2 is fewer than the 3 classes of shapes"),
    (dict(weights="no_such_tag"), "unknown weights 'no_such_tag' for lenet5"),
    (dict(weights="/no/such/file.weights.h5"), "weights file not found"),
])
def test_bad_fine_tuning_options_are_one_line_before_any_work(tmp_path, options, message):
    with pytest.raises(Exception) as error:
        run_of(tmp_path, **options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_classes_widens_the_head(tmp_path):
    assert run_of(tmp_path, weights="fashion_mnist", classes=5).config.classes == 5


def test_predict_labels_come_from_the_run(tmp_path):
    from zoo.commands.predict import Answer, recorded_names, relabelled
    from zoo.pretrained import Prediction

    (tmp_path / "config.json").write_text(json.dumps({"class_names": ["ant", "bee"]}))
    names = recorded_names(str(tmp_path / "model.weights.h5"))
    assert names == ["ant", "bee"] and recorded_names(None) is None
    answer = relabelled([Answer("x.png", [Prediction("1", 1, 0.9), Prediction("0", 0, 0.1)])], names)[0]
    assert [p.label for p in answer.top] == ["bee", "ant"]


def test_fine_tune_on_a_folder_end_to_end(tmp_path, monkeypatch):
    """zoo.train from the shipped weights on a folder, then zoo predict labels a file with the folder's names."""
    from click.testing import CliRunner

    import cli

    monkeypatch.chdir(tmp_path)
    data = make_folder(tmp_path / "shapes", per_class=10)
    result = zoo.train("lenet5", dataset=str(data), weights="fashion_mnist", epochs=1, batch_size=8,
                       output=str(tmp_path / "run"), record=False, verbose=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["dataset"] == "shapes" and saved["class_names"] == ["a", "b", "c"]
    assert saved["weights"] == "fashion_mnist" and saved["recipe"] == "finetune"
    assert any(note.startswith("started from lenet5.fashion_mnist") for note in saved["notes"])
    assert 0.0 <= result.test_accuracy <= 1.0
    folder._REGISTERED.clear()  # a new process knows the folder only from the run's config.json
    out = CliRunner().invoke(cli.cli, ["predict", "lenet5", str(data / "c" / "0.png"), "--weights",
                                       str(tmp_path / "run" / "model.weights.h5"), "--top-k", "3", "--json"])
    assert out.exit_code == 0, out.output
    labels = [p["label"] for p in json.loads(out.output)[0]["top"]]
    assert sorted(labels) == ["a", "b", "c"]


def test_finetune_recipe_is_in_the_registry():
    from zoo.registry import registry

    recipe = registry().recipe(finetune.FINETUNE_RECIPE)
    assert recipe.optimizer == "adam" and recipe.augment == "none"
    with pytest.raises(TrainError):
        finetune.check_options(RunOptions.of(freeze_backbone=True), 10)


# -- the two-phase schedule as a recipe (Recipe.head_epochs) --------------------------------------------------


def two_phase_recipe(head_epochs=3, epochs=15, name="two_phase_test"):
    from zoo.registry import Recipe, registry

    base = registry().recipe(finetune.FINETUNE_RECIPE).model_dump(exclude_none=True)
    return Recipe.model_validate({**base, "name": name, "head_epochs": head_epochs, "epochs": epochs})


@pytest.fixture
def with_recipe(monkeypatch):
    """Put a recipe into the registry for one test."""
    from zoo.registry import registry

    def add(recipe):
        monkeypatch.setitem(registry().recipes, recipe.name, recipe)
        return recipe.name

    return add


def test_a_recipes_head_epochs_make_a_fine_tuning_run_two_phase(tmp_path, with_recipe):
    name = with_recipe(two_phase_recipe(head_epochs=3))
    run = run_of(tmp_path, weights="fashion_mnist", recipe=name)
    assert run.config.head_epochs == 3 and run.config.recipe_details["head_epochs"] == 3
    assert run_of(tmp_path / "b", weights="fashion_mnist", recipe=name, head_epochs=2).config.head_epochs == 2
    scratch = run_of(tmp_path / "c", recipe=name)  # no backbone to hold: every layer from the start, said so
    assert scratch.config.head_epochs is None
    assert any("head_epochs (3) apply when fine-tuning" in note for note in scratch.config.notes)


@pytest.mark.parametrize("options, message", [
    (dict(freeze_backbone=True), "--freeze-backbone and recipe 'two_phase_test''s head_epochs 3 exclude each "
                                 "other"),
    (dict(epochs=2), "recipe 'two_phase_test''s head_epochs 3 leaves nothing of the 2-epoch run"),
    (dict(epochs=2, head_epochs=1), None),  # the option wins over the recipe
])
def test_a_recipes_head_epochs_are_checked_as_the_option_is(tmp_path, with_recipe, options, message):
    name = with_recipe(two_phase_recipe(head_epochs=3))
    if message is None:
        assert run_of(tmp_path, weights="fashion_mnist", recipe=name, **options).config.head_epochs == 1
        return
    with pytest.raises(TrainError) as error:
        run_of(tmp_path, weights="fashion_mnist", recipe=name, **options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_recipe_schema_refuses_head_epochs_that_leave_no_second_phase():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="head_epochs 15 leaves nothing of the 15 epochs"):
        two_phase_recipe(head_epochs=15, epochs=15)
    with pytest.raises(ValidationError, match="greater than 0"):
        two_phase_recipe(head_epochs=0)


def test_the_registrys_two_phase_recipe():
    from zoo.registry import registry

    recipe, plain = registry().recipe("finetune_two_phase"), registry().recipe(finetune.FINETUNE_RECIPE)
    assert recipe.head_epochs and recipe.head_epochs < recipe.epochs and plain.head_epochs is None
    same = {k: v for k, v in recipe.model_dump().items() if k not in ("name", "description", "head_epochs")}
    assert same == {k: v for k, v in plain.model_dump().items() if k not in ("name", "description", "head_epochs")}


def test_a_run_folder_as_weights_is_its_weights_file_recorded_absolute(tmp_path, monkeypatch):
    """--weights RUN_DIR (as zoo eval takes it): the run's weights file; config.json names the folder absolute."""
    monkeypatch.chdir(tmp_path)
    previous = tmp_path / "previous"
    previous.mkdir()
    shutil.copy(SHIPPED, previous / "model.weights.h5")
    (previous / "config.json").write_text(json.dumps({"model": "lenet5", "dataset": "fashion_mnist", "classes": 10,
                                                      "image_size": 32}))
    run = run_of(tmp_path, weights="previous")
    assert run.config.weights == str(previous)
    assert finetune.resolve_weights(run.spec, run.config.weights).path == previous / "model.weights.h5"
