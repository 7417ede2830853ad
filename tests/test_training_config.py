"""The harness's pure parts: config resolution, lr scaling, schedules, the results store, bad-input errors."""

import dataclasses
import json
import math

import pytest

import zoo
from zoo import results
from zoo.choices import PRECISIONS
from zoo.registry import InputSpec, Schedule, registry
from zoo.training import config as C


# ---------------------------------------------------------------------------------------------------------------
# Config resolution


def test_lenet5_defaults_come_from_the_registry():
    cfg = C.resolve("lenet5")
    assert (cfg.dataset, cfg.recipe, cfg.image_size, cfg.classes) == ("fashion_mnist_sample", "lenet_fmnist", 32, 10)
    # validation by default: the sample's stratified 10% (600) is held out, 5400 train, the test split is touched
    # once at the end
    assert (cfg.train_split, cfg.validation_split, cfg.train_examples) == ("train", "validation", 5400)
    rec = registry().recipe("lenet_fmnist")
    assert cfg.batch_size == rec.batch_size
    assert cfg.steps_per_epoch == 5400 // rec.batch_size
    assert cfg.total_steps == round(rec.epochs * cfg.steps_per_epoch)
    assert cfg.lr == rec.lr


def test_lr_scales_linearly_with_the_global_batch():
    rec = registry().recipe("lenet_fmnist")
    assert C.scaled_lr(0.1, 128, 512) == pytest.approx(0.4)
    cfg = C.resolve("lenet5", batch_size=4 * rec.batch_size)
    assert cfg.lr == pytest.approx(4 * rec.lr)
    assert cfg.steps_per_epoch == 5400 // (4 * rec.batch_size)
    explicit = C.resolve("lenet5", batch_size=4 * rec.batch_size, lr=0.0123)
    assert explicit.lr == 0.0123  # --lr is used as given


def test_holdout_recipe_trains_on_the_rest_and_validates():
    cfg = C.resolve("resnet20", "fashion_mnist_sample", "resnet_cifar", max_steps=10)
    assert (cfg.train_split, cfg.validation_split, cfg.holdout) == ("train", "validation", 5000)
    assert cfg.train_examples == 1000
    assert cfg.weight_decay_mode == "l2" and cfg.total_steps == 10


def test_length_overrides():
    assert C.resolve("lenet5", epochs=2).total_steps == 2 * 42  # 5400 training images, batch 128
    assert C.resolve("lenet5", epochs=0.5).total_steps == 21
    assert C.resolve("lenet5", max_steps=7, epochs=3).total_steps == 7  # max_steps wins
    cfg = C.resolve("lenet5", steps_per_epoch=10, epochs=3)
    assert (cfg.steps_per_epoch, cfg.total_steps) == (10, 30)
    # an epoch is a whole number of executions: 42 steps at 8 per execution -> 48
    assert C.resolve("lenet5", steps_per_execution=8).steps_per_epoch == 48


def test_image_size_rules():
    lenet = zoo.get_spec("lenet5")
    rec = registry().recipe("lenet_fmnist")
    assert C.resolve_image_size(lenet, rec, (28, 28, 1)) == (32, None)
    assert C.resolve_image_size(lenet, rec, (28, 28, 1), 48) == (48, None)
    big = lenet.model_copy(update={"input": InputSpec(size=224, min_size=32, channels=3)})
    size, note = C.resolve_image_size(big, rec, (28, 28, 1))  # 224 is 8x 28: the smallest sensible size instead
    assert size == 32 and "image size 32" in note
    assert C.resolve_image_size(big, rec, (28, 28, 1), 224) == (224, None)  # asked for explicitly: allowed
    assert C.resolve_image_size(big, rec, (None, None, 3)) == (224, None)  # variable-size images: model's size
    huge_min = lenet.model_copy(update={"input": InputSpec(size=227, min_size=150, channels=3)})
    with pytest.raises(C.TrainError, match=r"needs at least 150x150 input, over 4x the 28x28 images"):
        C.resolve_image_size(huge_min, rec, (28, 28, 1))
    with pytest.raises(C.TrainError, match="minimum input size is 32x32"):
        C.resolve("lenet5_original", image_size=20)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="lenet6"), "unknown model 'lenet6'; did you mean lenet5"),
    (dict(name="lenet5", dataset="fashion_mnst"), "unknown dataset 'fashion_mnst'; did you mean fashion_mnist"),
    (dict(name="lenet5", recipe="lenet_fmnst"), "unknown recipe 'lenet_fmnst'; did you mean lenet_fmnist"),
    (dict(name="lenet5", batch_size=7000), "batch size 7000 is larger than the 5400 training images"),
    (dict(name="lenet5", precision="float16"), "precision must be one of float32, mixed_bfloat16, mixed_float16"),
    (dict(name="lenet5", epochs=-1), "--epochs must be positive"),
])
def test_bad_requests_are_one_line_errors(kwargs, message):
    with pytest.raises(zoo.ZooError) as info:
        C.resolve(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_options_are_declared_once_and_make_the_cli_flags():
    from zoo.commands.train import train
    from zoo.training.options import RunOptions

    params = {p.name: p for p in train.params}
    assert set(RunOptions.model_fields) <= set(params)  # one click option per field, generated
    assert tuple(params["precision"].type.choices) == PRECISIONS
    assert params["xla"].secondary_opts == ["--no-xla"] and params["xla"].default is None
    with pytest.raises(C.TrainError) as info:
        RunOptions.of(batch_size=0)
    assert str(info.value) == "--batch-size must be positive, got 0"
    with pytest.raises(C.TrainError, match="unknown training option 'epoch'"):
        RunOptions.of(epoch=3)
    assert RunOptions.of(RunOptions.of(epochs=2), lr=None, seed=1).given() == {"epochs": 2.0, "seed": 1}


def test_resume_rules_come_from_the_options():
    from zoo.training.options import RunOptions

    saved = C.resolve("lenet5")
    assert set(C.RunConfig.VOLATILE) == {"xla", "strategy", "data_dir", "steps_per_execution", "notes"}
    same = RunOptions.of(xla=True, strategy="default", steps_per_execution=4, epochs=saved.epochs,
                         batch_size=saved.batch_size, max_steps=saved.total_steps, lr=saved.lr)
    assert C.overrides_conflict(saved, same) is None
    assert C.overrides_conflict(saved, RunOptions.of(epochs=3)) == f"epochs {saved.epochs:g} there, 3 asked"
    assert C.overrides_conflict(saved, RunOptions.of(max_steps=5)) == (f"max_steps {saved.total_steps} there, "
                                                                       "5 asked")
    assert C.overrides_conflict(saved, RunOptions.of(dataset="mnist")) == ("dataset 'fashion_mnist_sample' there, "
                                                                           "'mnist' asked")


def test_a_run_is_resolved_once_with_its_spec_recipe_and_dataset_facts():
    run = C.resolve_run("lenet5")
    assert run.spec is zoo.get_spec("lenet5") and run.recipe.name == run.config.recipe == "lenet_fmnist"
    assert run.data.name == run.config.dataset and run.data.num_classes == run.config.classes
    again = C.run_of(C.RunConfig.from_dict(run.config.to_dict()))
    assert again.recipe == run.recipe and again.data == run.data and again.channels == 1


def test_replicas_must_divide_the_batch():
    C.check_replicas(128, 4)
    with pytest.raises(C.TrainError, match="batch size 130 does not divide across 4 replicas; use a multiple of 4"):
        C.check_replicas(130, 4)


# ---------------------------------------------------------------------------------------------------------------
# Schedules: exact rates at given optimizer steps (step 0 is the first update)


def lr_at(schedule, step) -> float:
    return float(schedule(step))


def test_constant_and_step_schedules():
    from zoo.training.schedules import RecipeSchedule, from_recipe

    constant = RecipeSchedule(0.1, total_steps=100)
    assert [lr_at(constant, s) for s in (0, 50, 99)] == pytest.approx([0.1, 0.1, 0.1])
    # ResNet on CIFAR: /10 at steps 32k and 48k
    step = from_recipe(Schedule(type="step", unit="steps", boundaries=[32000, 48000]), 0.1, 391, 64000)
    assert [lr_at(step, s) for s in (0, 31999, 32000, 47999, 48000, 63999)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rel=1e-6)
    # boundaries in epochs, and as fractions of the run (DenseNet: 50% and 75%)
    epochs = from_recipe(Schedule(type="step", unit="epochs", boundaries=[2, 5], gamma=0.5), 0.01, 10, 100)
    assert [lr_at(epochs, s) for s in (19, 20, 49, 50)] == pytest.approx([0.01, 0.005, 0.005, 0.0025])
    fractions = from_recipe(Schedule(type="step", unit="epochs", boundaries=[0.5, 0.75]), 0.1, 10, 300)
    assert fractions.boundaries == [150, 225]
    assert [lr_at(fractions, s) for s in (149, 150, 224, 225)] == pytest.approx([0.1, 0.01, 0.01, 0.001])


def test_cosine_linear_and_warmup():
    from zoo.training.schedules import RecipeSchedule, from_recipe

    cosine = RecipeSchedule(0.2, total_steps=100, kind="cosine")
    assert [lr_at(cosine, s) for s in (0, 25, 50, 75, 100)] == pytest.approx(
        [0.2, 0.1 * (1 + math.cos(math.pi / 4)), 0.1, 0.1 * (1 - math.cos(math.pi / 4)), 0.0], abs=1e-7)
    linear = RecipeSchedule(1.0, total_steps=10, kind="linear", min_lr=0.1)
    assert [lr_at(linear, s) for s in (0, 5, 10)] == pytest.approx([1.0, 0.55, 0.1])
    # one epoch (10 steps) of linear warm-up, then cosine over the remaining 90 steps
    warm = from_recipe(Schedule(type="cosine", unit="epochs", warmup=1), 0.1, 10, 100)
    assert warm.warmup_steps == 10
    assert [lr_at(warm, s) for s in (0, 4, 9, 10, 55, 100)] == pytest.approx(
        [0.01, 0.05, 0.1, 0.1, 0.05, 0.0], abs=1e-7)
    with pytest.raises(ValueError, match="leaves no room to decay"):
        RecipeSchedule(0.1, total_steps=10, kind="cosine", warmup_steps=10)
    # a smoke test of a recipe with a long warm-up: the warm-up is cut to half the run
    short = from_recipe(Schedule(type="cosine", unit="epochs", warmup=1), 0.1, 10, 4)
    assert short.warmup_steps == 2
    assert [lr_at(short, s) for s in (0, 1, 2, 3)] == pytest.approx([0.05, 0.1, 0.1, 0.05], abs=1e-7)


def test_schedule_survives_keras_serialization():
    import keras

    from zoo.training.schedules import RecipeSchedule

    schedule = RecipeSchedule(0.1, 1000, "step", [300, 600], 0.2, 50, 0.0)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert again.get_config() == schedule.get_config()
    assert lr_at(again, 700) == pytest.approx(0.1 * 0.04)


# ---------------------------------------------------------------------------------------------------------------
# The results store


def test_results_store_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_RESULTS_DIR", str(tmp_path / "env"))
    assert results.store_dir() == tmp_path / "env"
    assert results.store_dir(tmp_path / "given") == tmp_path / "given"
    a = {"run_id": "a", "model": "lenet5", "dataset": "fashion_mnist", "test_accuracy": 0.9, "finished": "2026-01-02"}
    b = {"run_id": "b", "model": "resnet20", "dataset": "fashion_mnist", "finished": "2026-01-01", "extra": 1}
    results.save(a)
    path = results.save(b)
    assert path == tmp_path / "env" / "b.json"
    saved = json.loads(path.read_text())
    assert list(saved)[:len(results.FIELDS)] == list(results.FIELDS) and saved["extra"] == 1
    assert results.FIELDS == tuple(f.name for f in dataclasses.fields(results.RunRecord))
    (tmp_path / "env" / "junk.json").write_text("{not json")
    (tmp_path / "env" / ".b.json.x.tmp").write_text("partial")
    with pytest.warns(UserWarning, match="junk.json"):
        loaded = results.load()
    assert [r["run_id"] for r in loaded] == ["b", "a"]  # oldest finished first
    (tmp_path / "env" / "junk.json").unlink()
    assert [r["run_id"] for r in results.load(model="lenet5")] == ["a"]
    assert results.load(dataset="cifar10", store=tmp_path / "env") == []
    assert results.load(store=tmp_path / "nowhere") == []
    with pytest.raises(ValueError, match="run_id"):
        results.save({"model": "x", "dataset": "y"})


def test_summary_puts_the_published_number_beside_the_result():
    from zoo.training.run import RunResult, published, summary_lines

    [paper] = [p for p in published("lenet5", "mnist")]
    assert (paper["metric"], paper["value"], paper["accuracy"]) == ("error", 0.95, pytest.approx(99.05))
    result = RunResult(run_id="r", model_name="lenet5", dataset="mnist", recipe="lenet_paper", output_dir="runs/r",
                       test_accuracy=0.9912, test_top5=0.9999, test_loss=0.031, best_val_accuracy=None, epochs=20,
                       steps=37500, wall_time_s=754.0, train_images_per_s=1650.0,
                       record={"device": "CPU", "precision": "float32", "xla": False})
    text = "\n".join(summary_lines(result))
    assert "test accuracy   99.12%   top-5 99.99%   loss 0.0310" in text
    assert "published       99.05% top-1 (error 0.95%, no distortions; sec. III.C, Fig. 9)" in text
    assert "wall time       12m34s   training 1,650 images/s   20 epochs, 37,500 steps" in text
    assert published("lenet5_harley", "fashion_mnist") == []


def test_resume_without_output_finds_the_newest_interrupted_run(tmp_path):
    from zoo.training.rundir import latest_run_path

    runs = tmp_path / "runs"
    for stamp in ("20260101-120000", "20260102-080000"):
        (runs / f"lenet5-fashion_mnist-{stamp}" / "checkpoint").mkdir(parents=True)
        (runs / f"lenet5-fashion_mnist-{stamp}" / "checkpoint" / "state.json").write_text("{}")
    (runs / "lenet5-fashion_mnist-20260103-000000").mkdir()  # newer, but no checkpoint: not resumable
    for other in ("lenet5-mnist-20260104-000000", "lenet5-fashion_mnist_sample-20260105-000000"):  # other data
        (runs / other / "checkpoint").mkdir(parents=True)
        (runs / other / "checkpoint" / "state.json").write_text("{}")
    assert latest_run_path("lenet5", "fashion_mnist", runs) == runs / "lenet5-fashion_mnist-20260102-080000"
    assert latest_run_path("resnet20", "fashion_mnist", runs) is None
