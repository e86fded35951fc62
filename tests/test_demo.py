"""The demo detector's tooling: scenes with exact boxes, training targets equal to GluonCV's, the CLIs."""
import json
import os

import gluoncv  # noqa: F401 (pinned in both stacks: a venv without it is broken, not a reason to skip)
import numpy as np
import pytest

from ssd_tools.demo import scenes


def test_scenes_are_deterministic_and_boxes_are_tight():
    rgb, boxes, ids = scenes.make_scene(123, 500, 300)
    again, boxes_again, ids_again = scenes.make_scene(123, 500, 300)
    assert np.array_equal(rgb, again) and np.array_equal(boxes, boxes_again) and np.array_equal(ids, ids_again)
    assert rgb.shape == (300, 500, 3) and rgb.dtype == np.uint8
    assert scenes.MIN_OBJECTS <= len(ids) <= scenes.MAX_OBJECTS
    assert set(ids.astype(int)) <= set(range(len(scenes.CLASSES)))
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 500).all() and (boxes[:, 3] <= 300).all()
    short = 300
    sides = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    assert (sides >= 0.9 * scenes.MIN_OBJECT_FRACTION * short).all()
    different, _, _ = scenes.make_scene(124, 500, 300)
    assert not np.array_equal(rgb, different)


def test_held_out_scenes_differ_from_training_scenes():
    train_rgb, _, _ = scenes.scene_at(7, 0)
    held_out_rgb, _, _ = scenes.scene_at(1234, 0)
    assert train_rgb.shape != held_out_rgb.shape or not np.array_equal(train_rgb, held_out_rgb)


def test_numpy_targets_equal_gluoncv_target_generator():
    from ssd_tools.demo.train import test_targets as count_target_mismatches
    assert count_target_mismatches(seed=3, count=24) == 0


def test_train_and_evaluate_commands_run_end_to_end(tmp_path, capsys):
    # A few steps only: this checks the commands and the export, not the quality (test_model does that).
    from ssd_tools.demo import evaluate, train
    out = str(tmp_path / "demo")
    assert train.main(["--out", out, "--epochs", "1", "--train-count", "16", "--batch-size", "8",
                       "--max-steps", "2", "--seed", "5"]) == 0
    meta = json.load(open(os.path.join(out, "model-meta.json")))
    assert meta["demo"] is True and meta["classes"] == list(scenes.CLASSES)
    assert meta["weights"]["source"] == "demo-trained" and meta["weights"]["train_seed"] == 5
    assert "--seed 5 --epochs 1" in meta["weights"]["location"]
    capsys.readouterr()
    assert evaluate.main(["--model-dir", out, "--count", "3", "--seed", "6"]) == 0
    printed = capsys.readouterr().out
    assert "mAP=" in printed and "3 held-out scenes from seed 6" in printed
    with pytest.raises(SystemExit):  # refuses to evaluate on the training seed
        evaluate.main(["--model-dir", out, "--count", "3", "--seed", "5"])
    assert evaluate.main(["--model-dir", out, "--count", "3", "--seed", "6", "--require", "1.01"]) == 1
