"""Distributed training of both models' example scripts on CPU (gloo): 2 ranks of batch b against 1 process of batch
2b with the same seed. The 2-rank runs are real launches (`torchrun` for HSA-Net, `accelerate launch` for
SweetTokenizer); the 1-process references and the resume run in this process (the imports are already paid).

What must hold: the same loss curve and final weights as one process on the same global batches (HSA-Net's GIN
BatchNorm synchronised; SweetTokenizer's discriminator averaged over ranks), the ranks read disjoint halves of each
global batch, evaluation counts every row once, one rank writes checkpoints, and a run resumed from a checkpoint
continues the uninterrupted run's curve."""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
STEPS, SAVE_STEPS, PER_RANK, RANKS = 8, 4, 4, 2
NUM_TRAIN, NUM_EVAL = 48, 21  # 6 global batches of 8 per epoch, so 8 steps cross an epoch; 21 evaluation rows pad
PROPERTY_ARGS = ["--tiny", "--max_steps", str(STEPS), "--save_steps", str(SAVE_STEPS), "--logging_steps", "1",
                 "--eval_strategy", "steps", "--eval_steps", str(SAVE_STEPS), "--per_device_eval_batch_size", "4",
                 "--max_train_samples", str(NUM_TRAIN), "--max_eval_samples", str(NUM_EVAL), "--learning_rate", "1e-2",
                 "--seed", "0", "--disable_tqdm", "true"]
SWEET_CURRICULUM = json.dumps([{"name": "images", "start_step": 0, "quantize": False, "train_temporal": False,
                                "media": "images"}, {"name": "both", "start_step": 4, "media": "both"}])
SWEET_ARGS = ["--tiny", "--max_steps", str(STEPS), "--save_steps", str(SAVE_STEPS), "--logging_steps", "1",
              "--max_train_samples", "32", "--learning_rate", "2e-3", "--discriminator_start_step", "2",
              "--ema_decay", "0.9", "--curriculum_stages", SWEET_CURRICULUM, "--seed", "0", "--disable_tqdm", "true"]


# -- running the scripts ----------------------------------------------------------------------------------------------
def launch(command: list[str], output_dir: str) -> None:
    """Run a 2-rank launch in a subprocess (1 thread per rank), with the output in the failure message."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": ROOT}
    result = subprocess.run(command + ["--output_dir", output_dir], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"


def torchrun(script: str, args: list[str], output_dir: str) -> None:
    launch([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(RANKS),
            os.path.join(EXAMPLES, script), *args], output_dir)


def accelerate_launch(script: str, args: list[str], output_dir: str) -> None:
    # On CPU, `--cpu` runs one process (several need MPI); `--multi_gpu` starts the ranks as torchrun does and the
    # script's `use_cpu` (no CUDA) makes them gloo ranks.
    launch([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(RANKS),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), os.path.join(EXAMPLES, script), *args], output_dir)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _argv(args: list[str]):
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = ["script", *args]
    sys.path.insert(0, EXAMPLES)
    try:
        yield
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


def run_in_process(script: str, args: list[str], output_dir: str) -> None:
    """The script's `main()` in this process: one process, no torch.distributed."""
    spec = importlib.util.spec_from_file_location(f"_example_{script[:-3]}", os.path.join(EXAMPLES, script))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        with _argv([*args, "--output_dir", output_dir]):
            spec.loader.exec_module(module)
            module.main()
    finally:
        del sys.modules[spec.name]


def losses(output_dir: str) -> dict[int, float]:
    with open(os.path.join(output_dir, "log_history.json")) as handle:
        return {entry["step"]: entry["loss"] for entry in json.load(handle) if "loss" in entry}


def log_entries(output_dir: str, key: str) -> list[dict]:
    with open(os.path.join(output_dir, "log_history.json")) as handle:
        return [entry for entry in json.load(handle) if key in entry]


def rank_reports(output_dir: str) -> list[dict]:
    reports = []
    for rank in range(RANKS):
        with open(os.path.join(output_dir, f"rank_{rank}.json")) as handle:
            reports.append(json.load(handle))
    return reports


def assert_same_curve(actual: dict[int, float], expected: dict[int, float]) -> None:
    assert sorted(actual) == sorted(expected) == list(range(1, STEPS + 1))
    np.testing.assert_allclose([actual[s] for s in sorted(actual)], [expected[s] for s in sorted(expected)],
                               rtol=1e-4, atol=1e-6)


def assert_ranks_split_global_batches(reports: list[dict], one_process: list[int], steps: int) -> None:
    """Step k of the ranks reads, between them, exactly the rows of step k of the 1-process run; no row twice."""
    for step in range(steps):
        per_rank = [report["train_rows"][step * PER_RANK : (step + 1) * PER_RANK] for report in reports]
        assert all(len(rows) == PER_RANK for rows in per_rank)
        assert not set(per_rank[0]) & set(per_rank[1]), f"step {step}: both ranks read a row: {per_rank}"
        assert sorted(per_rank[0] + per_rank[1]) == sorted(one_process[step * RANKS * PER_RANK :
                                                                        (step + 1) * RANKS * PER_RANK])


def assert_checkpoints_written_once(output_dir: str, reports: list[dict], extra: set[str] = frozenset()) -> None:
    assert [report["should_save"] for report in reports] == [True, False]  # rank 0 writes, rank 1 does not
    checkpoints = sorted(name for name in os.listdir(output_dir) if name.startswith("checkpoint-"))
    assert checkpoints == [f"checkpoint-{step}" for step in range(SAVE_STEPS, STEPS + 1, SAVE_STEPS)]
    for name in checkpoints:
        files = set(os.listdir(os.path.join(output_dir, name)))
        # one copy of the weights and optimiser; an RNG state per rank (Trainer's resume restores each rank's)
        expected = {"model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.bin",
                    "config.json", "rng_state_0.pth", "rng_state_1.pth"} | set(extra)
        assert expected <= files, f"{name} lacks {expected - files}"
        assert not [f for f in files if f.endswith((".tmp", ".partial")) or "rank_1" in f], files


def assert_same_weights(path: str, reference: str, atol: float) -> None:
    actual, expected = load_file(path), load_file(reference)
    assert actual.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=atol, rtol=1e-4, msg=key)


# -- HSA-Net property prediction under torchrun -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def property_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("property")
    one, two = str(root / "one"), str(root / "two")
    run_in_process("train_property_prediction.py",
                   [*PROPERTY_ARGS, "--per_device_train_batch_size", str(2 * PER_RANK)], one)
    torchrun("train_property_prediction.py", [*PROPERTY_ARGS, "--per_device_train_batch_size", str(PER_RANK)], two)
    return one, two


def test_two_ranks_train_hsanet_as_one_process_on_the_same_global_batch(property_runs):
    one, two = property_runs
    curve = losses(one)
    assert len(set(np.round(list(curve.values()), 4))) > 4  # the curve moves: equality below is not trivial
    assert_same_curve(losses(two), curve)
    # (The weights are not compared: the biases of the Linear layers before a BatchNorm have a gradient of exactly 0
    # up to rounding, which Adam scales to steps of +-lr, so they differ by up to lr per step without changing any
    # output. The evaluation test compares the trained models' predictions.)
    with open(os.path.join(one, "rank_0.json")) as handle:
        one_process_rows = json.load(handle)["train_rows"]
    reports = rank_reports(two)
    steps_per_epoch = NUM_TRAIN // (RANKS * PER_RANK)
    assert_ranks_split_global_batches(reports, one_process_rows, STEPS)
    first_epoch = [row for report in reports for row in report["train_rows"][: steps_per_epoch * PER_RANK]]
    assert sorted(first_epoch) == list(range(NUM_TRAIN))  # every training row once in the epoch


def test_evaluation_counts_every_row_once_and_matches_one_process(property_runs):
    one, two = property_runs
    evaluations = {name: log_entries(path, "eval_rmse") for name, path in (("one", one), ("two", two))}
    assert [e["step"] for e in evaluations["two"]] == [e["step"] for e in evaluations["one"]] == [4, 8, 8]
    for entry in evaluations["one"] + evaluations["two"]:
        assert entry["eval_num_samples"] == NUM_EVAL  # the rows padding the last batch are dropped, none counted twice
    np.testing.assert_allclose([e["eval_rmse"] for e in evaluations["two"]],
                               [e["eval_rmse"] for e in evaluations["one"]], rtol=1e-4)
    assert evaluations["one"][0]["eval_rmse"] != evaluations["one"][1]["eval_rmse"]  # the model changed in between


def test_checkpoints_are_written_once(property_runs):
    _, two = property_runs
    assert_checkpoints_written_once(two, rank_reports(two), extra={"processor_config.json"})
    with open(os.path.join(two, "checkpoint-4", "trainer_state.json")) as handle:
        assert json.load(handle)["global_step"] == 4
    # the saved model is a plain HSA-Net (the synchronised BatchNorm is a training-time class swap)
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(two)
    assert type(model).__name__ == "HSANetForMolecularPropertyPrediction"
    assert {type(m) for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)} == {torch.nn.BatchNorm1d}


def test_resume_from_a_checkpoint_continues_the_uninterrupted_run(property_runs, tmp_path):
    one, two = property_runs
    # the 1-process run from its step-4 checkpoint, to step 8
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(os.path.join(one, "checkpoint-4"), resumed / "checkpoint-4")
    run_in_process("train_property_prediction.py",
                   [*PROPERTY_ARGS, "--per_device_train_batch_size", str(2 * PER_RANK), "--resume_from_checkpoint",
                    "last"], str(resumed))
    curve = losses(str(resumed))
    assert_same_curve(curve, losses(one))  # steps 1-4 from the checkpoint's state, 5-8 trained again
    assert sorted(os.listdir(resumed)).count("checkpoint-8") == 1
    assert_same_weights(str(resumed / "model.safetensors"), os.path.join(one, "model.safetensors"), atol=1e-6)
    with open(resumed / "rank_0.json") as handle:
        rows = json.load(handle)["train_rows"]
    with open(os.path.join(one, "rank_0.json")) as handle:
        uninterrupted = json.load(handle)["train_rows"]
    # the resumed run does not read the rows of steps 1-4 again, and reads the rest in the uninterrupted run's order
    assert rows == uninterrupted[SAVE_STEPS * 2 * PER_RANK :]


# -- SweetTokenizer (curriculum, discriminator, EMA) under accelerate launch ------------------------------------------
@pytest.fixture(scope="module")
def sweet_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweet")
    one, two = str(root / "one"), str(root / "two")
    run_in_process("train_sweet_tokenizer.py", [*SWEET_ARGS, "--per_device_train_batch_size", str(2 * PER_RANK)], one)
    accelerate_launch("train_sweet_tokenizer.py", [*SWEET_ARGS, "--per_device_train_batch_size", str(PER_RANK)], two)
    return one, two


def test_sweet_tokenizer_on_two_ranks_keeps_one_discriminator(sweet_runs):
    one, two = sweet_runs
    reports = rank_reports(two)
    with open(os.path.join(one, "rank_0.json")) as handle:
        reference = json.load(handle)
    # the discriminator is stepped outside DDP: its gradients and LeCam's averages are averaged over the ranks, so
    # both ranks hold the same one, and it is the 1-process one up to LeCam's per-rank update within a step
    np.testing.assert_allclose(reports[1]["discriminator_checksum"], reports[0]["discriminator_checksum"],
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(reports[0]["discriminator_checksum"], reference["discriminator_checksum"], rtol=1e-3,
                               atol=1e-4)
    assert_same_curve(losses(two), losses(one))
    assert reports[0]["curriculum_history"] == reference["curriculum_history"] == [
        [0, "images"], [2, "discriminator on"], [4, "both"]]
    assert_ranks_split_global_batches(reports, reference["train_rows"], STEPS)
    assert_checkpoints_written_once(two, reports, extra={"sweet_recipe_state.pt"})


def test_resume_from_last_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="resume_from_checkpoint last: no checkpoint-\\* folder in"):
        run_in_process("train_property_prediction.py", [*PROPERTY_ARGS, "--resume_from_checkpoint", "last"],
                       str(tmp_path / "empty"))
