"""Knowledge distillation (zoo/training/distill.py): the soft term against a hand computation (value and gradient),
the teacher checked against the run before any TensorFlow work, the training loss the cross-entropy plus the
weighted soft term (validation: the cross-entropy alone), and a distilled run whose files are the student's."""

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import cli
import zoo
from zoo.registry import Recipe
from zoo.training import distill
from zoo.training.config import resolve_run
from zoo.training.options import RunOptions

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "lenet_fmnist_distill"  # registry.yaml: LeNet-5 distilled from the shipped resnet20.fashion_mnist


def recipe_with(**distill_fields):
    base = {"name": "kd", "description": "test", "optimizer": "adam", "lr": 1e-3, "batch_size": 8, "epochs": 1}
    return Recipe.model_validate({**base, "distill": {"teacher": "resnet20.fashion_mnist", **distill_fields}})


def layer_variables(path) -> list:
    """The model variables a weights file holds (its optimizer's aside)."""
    stored = []
    with h5py.File(path) as f:
        f.visititems(lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None)
    return sorted(name for name in stored if name.startswith("layers/"))


def as_teacher_input(x, run):
    """The student's normalised batch back to 0-255 pixels (the run's mean/std: the sample's own statistics), then
    normalised as the teacher's weights expect (the full training set's)."""
    from zoo.pretrained import get_weights, pipeline_preprocessing

    student = pipeline_preprocessing(run.spec, run.config.dataset, run.config.image_size)
    teacher = get_weights(run.recipe.distill.teacher).preprocessing
    pixels = x * student.std[0] + student.mean[0]
    return ((pixels - teacher.mean[0]) / teacher.std[0]).astype("float32")


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_soft_term_is_t_squared_kl_at_temperature_t_and_its_gradient_t_times_q_minus_p():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    t, s, T = rng.normal(0, 3, (5, 10)), rng.normal(0, 3, (5, 10)), 4.0
    log_p, log_q = log_softmax(t / T), log_softmax(s / T)
    by_hand = T * T * np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1))
    student = tf.Variable(s, dtype=tf.float32)
    with tf.GradientTape() as tape:
        value = distill.soft_loss(tf.constant(t, tf.float32), student, T)
    assert float(value) == pytest.approx(by_hand, rel=1e-5)
    # d/ds_i of T^2 KL(p || q), q = softmax(s/T), averaged over the batch of 5: T (q_i - p_i) / 5
    expected = T * (np.exp(log_q) - np.exp(log_p)) / len(s)
    np.testing.assert_allclose(tape.gradient(value, student).numpy(), expected, atol=1e-6)
    assert float(distill.soft_loss(tf.constant(t, tf.float32), tf.constant(t, tf.float32), T)) == pytest.approx(
        0.0, abs=1e-6)  # the student that matches the teacher pays nothing


def test_soft_term_equals_keras_own_logits_distillation():
    """Keras' keras.distillation.LogitsDistillation given a KLDivergence instance (its softmax and T^2 branch) gives
    the same number in float32 on logits of a moderate range (its KL clips probabilities at 1e-7; ours is
    log-softmax, exact further out). Its default, loss="kl_divergence", resolves to a function its branch does not
    recognise (Keras 3.15): see docs/training.md, Distillation."""
    import keras

    if not hasattr(keras, "distillation"):
        pytest.skip(f"Keras {keras.__version__} has no keras.distillation")
    rng = np.random.default_rng(4)
    t, s = rng.normal(0, 2, (6, 10)).astype("float32"), rng.normal(0, 2, (6, 10)).astype("float32")
    theirs = keras.distillation.LogitsDistillation(temperature=3.0, loss=keras.losses.KLDivergence()).compute_loss(
        t, s)
    assert float(distill.soft_loss(t, s, 3.0)) == pytest.approx(float(theirs), rel=1e-4)


def test_the_teacher_is_checked_when_the_run_is_resolved():
    run = resolve_run("lenet5", RunOptions.of(dataset="fashion_mnist_sample", recipe=RECIPE))
    assert "distilled from resnet20.fashion_mnist (temperature 4, soft-term weight 9)" in run.config.notes
    original = resolve_run("lenet5_original", RunOptions.of(dataset="fashion_mnist_sample", recipe=RECIPE))
    assert original.config.notes[-1].startswith("distilled from")  # its fixed scaling is converted, not refused
    with pytest.raises(distill.DistillError, match="expects size 32 where the run's pipeline has 67"):
        resolve_run("alexnet", RunOptions.of(dataset="fashion_mnist_sample", recipe=RECIPE))


def test_a_bad_teacher_is_one_line_naming_the_recipe_and_the_weights():
    with pytest.raises(distill.DistillError, match=r"recipe 'kd': distill.teacher: unknown weights 'nope' for "
                                                   r"resnet20 \(available: fashion_mnist, fashion_mnist_long\)"):
        distill.teacher_weights(recipe_with(teacher="resnet20.nope"))
    with pytest.raises(distill.DistillError, match="expected MODEL.TAG"):
        distill.teacher_weights(recipe_with(teacher="resnet20"))
    with pytest.raises(distill.DistillError, match="alexnet.fashion_mnist is not shipped"):
        distill.teacher_weights(recipe_with(teacher="alexnet.fashion_mnist"))
    with pytest.raises(distill.DistillError, match="resnt20"):
        distill.teacher_weights(recipe_with(teacher="resnt20.fashion_mnist"))
    with pytest.raises(ValueError, match="greater than 0"):
        recipe_with(temperature=0)


def test_a_teacher_of_other_classes_is_refused(tmp_path):
    from PIL import Image

    for c, name in enumerate(("a", "b")):
        (tmp_path / "two" / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((28, 28), 60 * c, np.uint8)).save(tmp_path / "two" / name / f"{i}.png")
    with pytest.raises(distill.DistillError, match="predicts the 10 classes of fashion_mnist; the run's dataset "
                                                   "two has 2 others"):
        resolve_run("lenet5", RunOptions.of(dataset=str(tmp_path / "two"), recipe=RECIPE, batch_size=2))


def test_the_cli_says_it_in_one_line(capsys):
    code = cli.main(["train", "alexnet", "--dataset", "fashion_mnist_sample", "--recipe", RECIPE])
    out, err = capsys.readouterr()
    assert code != 0 and len(err.strip().splitlines()) == 1 and "expects size 32" in err, err


def test_training_loss_is_the_cross_entropy_plus_the_weighted_soft_term():
    import keras

    from zoo.training import setup

    run = resolve_run("lenet5", RunOptions.of(dataset="fashion_mnist_sample", recipe=RECIPE, batch_size=8))
    model = setup.build_model(run)
    setup.compile_model(model, run.config, run.recipe, setup.make_optimizer(run.config, run.recipe, model))
    x = np.random.default_rng(1).normal(0, 1, (8, 32, 32, 1)).astype("float32")
    y = np.arange(8) % 10
    logits = model(x, training=False)
    teacher = zoo.build("resnet20", weights="fashion_mnist", classifier_activation=None)
    t = teacher(np.repeat(as_teacher_input(x, run), 3, axis=-1), training=False)
    hard = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits))
    soft = float(distill.soft_loss(t, logits, 4.0))
    assert soft > 0.01
    trained = float(model.compute_loss(x, y, logits, training=True))
    assert trained == pytest.approx(hard + 9 * soft, rel=1e-4)
    assert float(model.compute_loss(x, y, logits, training=False)) == pytest.approx(hard, rel=1e-5)
    assert not any("resnet" in v.path or "conv1_1" in v.path for v in model.weights)  # the teacher is not saved


def test_a_distilled_run_keeps_the_students_files(tmp_path):
    out = tmp_path / "run"
    result = zoo.train("lenet5", dataset="fashion_mnist_sample", recipe=RECIPE, epochs=1, steps_per_epoch=6,
                       output=out, results=tmp_path / "results", xla=False, verbose=False)
    config = json.loads((out / "config.json").read_text())
    assert config["recipe_details"]["distill"] == {"teacher": "resnet20.fashion_mnist", "temperature": 4.0,
                                                   "weight": 9.0}
    plain = zoo.build("lenet5", classifier_activation=None)
    plain.save_weights(tmp_path / "plain.weights.h5")
    assert layer_variables(out / "model.weights.h5") == layer_variables(tmp_path / "plain.weights.h5")
    assert layer_variables(out / "best.weights.h5") == layer_variables(tmp_path / "plain.weights.h5")
    evaluated = zoo.evaluate("lenet5", out / "model.weights.h5", dataset="fashion_mnist_sample")
    assert evaluated.top1 == pytest.approx(result.test_accuracy, abs=1e-6)
    row = next(csv.DictReader((out / "history.csv").open()))
    assert float(row["loss"]) > float(row["xent"])  # the training loss carries the soft term; xent does not


def test_the_run_s_normalisation_becomes_the_teacher_s_exactly():
    from zoo.preprocess import Preprocessing

    teacher = Preprocessing(size=32, channels=3, pad=2, mean=[72.9404], std=[90.0212])
    student = Preprocessing(size=32, channels=1, pad=2, mean=[20.0], std=[200.0])  # LeNet-5's fixed scaling
    assert distill.preprocessing_difference(teacher, student) is None
    scale, shift = distill.input_conversion(teacher, student)
    raw = np.random.default_rng(2).uniform(0, 255, (4, 4))
    converted = ((raw - 20.0) / 200.0)[..., None] * np.array(scale) + np.array(shift)
    np.testing.assert_allclose(converted, np.repeat(((raw - 72.9404) / 90.0212)[..., None], 3, axis=-1), atol=1e-9)
    grey_teacher = Preprocessing(size=32, channels=1, pad=2, mean=[72.9], std=[90.0])
    colour = Preprocessing(size=32, channels=3, pad=2, mean=[72.9], std=[90.0])
    assert distill.preprocessing_difference(grey_teacher, colour) == \
        "1 channel(s) where the run's batches have 3"
    assert distill.preprocessing_difference(teacher, Preprocessing(size=32, channels=1, mean=[0], std=[1])) == \
        "pad 2 where the run's pipeline has 0"


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -e '.[test]')")
def test_the_loss_is_the_same_on_jax_without_tensorflow(tmp_path):
    """The GPU machines run the zoo on JAX with no TensorFlow: the distilled loss there is the hand-made one."""
    from zoo import backend

    env = backend.block_tensorflow(tmp_path / "no-tf", dict(os.environ, KERAS_BACKEND="jax"))
    script = f"""
import sys, numpy as np, zoo
from zoo.training import distill, setup
from zoo.training.config import resolve_run
from zoo.training.options import RunOptions
run = resolve_run("lenet5", RunOptions.of(dataset="fashion_mnist_sample", recipe={RECIPE!r}, batch_size=8))
model = setup.build_model(run)
setup.compile_model(model, run.config, run.recipe, setup.make_optimizer(run.config, run.recipe, model))
x = np.random.default_rng(1).normal(0, 1, (8, 32, 32, 1)).astype("float32"); y = np.arange(8) % 10
s = np.asarray(model(x, training=False), np.float64)
from zoo.pretrained import get_weights, pipeline_preprocessing
st = pipeline_preprocessing(run.spec, run.config.dataset, run.config.image_size)
te = get_weights(run.recipe.distill.teacher).preprocessing
x_t = ((x * st.std[0] + st.mean[0] - te.mean[0]) / te.std[0]).astype("float32")
t = np.asarray(zoo.build("resnet20", weights="fashion_mnist", classifier_activation=None)(
    np.repeat(x_t, 3, axis=-1), training=False), np.float64)
def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
hard = -np.mean(log_softmax(s)[np.arange(8), y])
p, q = log_softmax(t / 4), log_softmax(s / 4)
soft = 16 * np.mean(np.sum(np.exp(p) * (p - q), axis=-1))
got = float(model.compute_loss(x, y, model(x, training=False), training=True))
assert abs(got - (hard + 9 * soft)) < 1e-4 * got, (got, hard, soft)
assert "tensorflow" not in sys.modules
print("ok", got)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]
