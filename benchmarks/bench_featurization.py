"""Featurization benchmark (`make bench`, or `.venv/bin/python benchmarks/bench_featurization.py`).

Prints two markdown tables, each measured side by side in one run:

a. HSA-Net featurization (`HSANetProcessor`: OGB features, BRICS fragments, structure-aware order, bounded distances,
   85 functional-group counts, collation; batches of 32 and 256, a batch featurized together) vs
   `torch_geometric.utils.from_smiles` (the 9+3 feature graph a plain PyG user would build) on the same c-Met
   ligands, one process: molecules per CPU-second and their ratio. Also the processor with the garbage collector
   running (`featurization_hsanet.collector_paused` off) and one molecule at a time (`smiles_to_graph`, what the
   stacked batch replaced). Time is the process's CPU time (`time.process_time`, so other programs on a shared
   machine do not count), best of N passes after `gc.collect()`, the candidates' passes interleaved so that a slow
   spell hits them alike.
b. Time and peak memory of featurizing one chain of ~1k, 5k, 10k and 20k atoms (`"CCO" * k`), each in its own
   subprocess (so a crash is reported, not fatal): this package's featurizer against the previous one (commit
   `PREVIOUS_COMMIT`, read with `git show`; a canonical-SMILES round trip and all-pairs Dijkstra), with ratios to the
   1k row. Peak memory: the subprocess's peak resident set while featurizing (reset through /proc/self/clear_refs
   first, Linux) minus its resident set before, so RDKit's C++ allocations count. The new featurizer's RDKit canonical
   ranking is also timed alone: it is the one step whose time grows faster than the atoms (about atoms x graph
   diameter on a chain).
c. Parallel featurization on the c-Met ligands, 1 process vs N worker processes side by side (N = `--workers`,
   default `os.cpu_count()`): `HSANetProcessor.featurize_dataset(num_proc=...)` (`datasets.map`, nothing cached) and
   the `molecular-feature-extraction` pipeline end to end (`num_workers=0` vs N, batches of 64; the model is the
   default `HSANetConfig()` on a GPU, a tiny one on CPU so that featurization is what is measured: `--pipeline-model`).
d. Length bucketing in the pipeline (same model, N workers): padded atom positions per real atom and molecules/s,
   batches in input order vs `bucket_by_size=True`.

Options: `--quick` (200 molecules, chains up to 10k atoms), `--threads N` (torch intra-op threads), `--workers N`,
`--pipeline-model tiny|default`, `--tables abcd` (which tables to print).
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest.mock

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rdkit  # noqa: E402
from bench_hsanet import benchmark_parser, markdown_table, parse_benchmark_args  # noqa: E402
from torch_geometric.utils import from_smiles  # noqa: E402

from modeling_hsanet import HSANetConfig, HSANetModel, HSANetProcessor, featurization_hsanet  # noqa: E402
from modeling_hsanet.data_hsanet import load_cmet_ligands  # noqa: E402
from modeling_hsanet.pipeline_hsanet import size_sorted_order  # noqa: E402
from modeling_hsanet.processing_hsanet import collate_graphs  # noqa: E402

PREVIOUS_COMMIT = "3e8c574"  # the last featurizer with the SMILES round trip and all-pairs Dijkstra
CHAIN_UNITS = (333, 1667, 3333, 6666)  # "CCO" * k: 999, 5,001, 9,999 and 19,998 atoms
SUBPROCESS_TIMEOUT_S = 300
PIPELINE_BATCH_SIZE = 64
# The tiny model of table c on CPU (the tests' size): its forward is cheap beside featurization.
TINY_MODEL = dict(hidden_size=32, num_gnn_layers=2, num_attention_heads=2, num_query_tokens=4, mamba_d_state=4,
                  fusion_intermediate_size=64, num_motif_tokens=2)

CHAIN_SCRIPT = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {repo!r})
    module_path, units = sys.argv[1], int(sys.argv[2])
    import importlib.util
    from rdkit import Chem
    spec = importlib.util.spec_from_file_location("featurizer_under_test", module_path)
    featurizer = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(featurizer)
    smiles = "CCO" * units
    featurizer.smiles_to_graph("CCO")  # warm-up: imports and RDKit's pattern caches

    def status_kb(field):
        with open("/proc/self/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith(field))

    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak resident set (VmHWM) to the current one
    before = status_kb("VmRSS:")
    start = time.perf_counter()
    graph = featurizer.smiles_to_graph(smiles)
    seconds = time.perf_counter() - start
    peak_kb = status_kb("VmHWM:") - before
    mol = Chem.MolFromSmiles(smiles)
    start = time.perf_counter()
    Chem.CanonicalRankAtoms(mol, breakTies=True)
    ranking = time.perf_counter() - start
    print(json.dumps({{"atoms": graph.num_atoms, "seconds": seconds, "peak_mb": peak_kb / 1024, "ranking": ranking}}))
""")


def load_module(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def featurization_throughput(smiles: list[str], repeats: int, previous: str | None) -> list[list[str]]:
    """Table a: molecules per CPU-second of the featurizers on the same molecules (best of `repeats` interleaved
    passes, the cyclic garbage collector's work from earlier passes done before each: `gc.collect()`)."""
    processor = HSANetProcessor()

    def batches(size: int, featurize=processor):
        return lambda: [featurize(smiles[i:i + size]) for i in range(0, len(smiles), size)]

    def collector_running():  # the stacked featurizer without its pause of the cyclic garbage collector
        with unittest.mock.patch.object(featurization_hsanet, "collector_paused", contextlib.nullcontext):
            batches(32)()

    candidates = {
        "HSA-Net `HSANetProcessor` (batches of 32)": batches(32),
        "HSA-Net `HSANetProcessor` (batches of 256)": batches(256),
        "HSA-Net `HSANetProcessor` (batches of 32), garbage collector not paused": collector_running,
        "HSA-Net one molecule at a time (`smiles_to_graph`) + same collation": batches(
            32, lambda chunk: collate_graphs([featurization_hsanet.smiles_to_graph(s) for s in chunk])),
        "PyG `from_smiles` (one graph per molecule)": lambda: [from_smiles(s) for s in smiles],
    }
    if previous is not None:
        old = load_module(previous, "featurization_previous")
        candidates[f"previous featurizer ({PREVIOUS_COMMIT}) + same collation"] = lambda: [
            collate_graphs(old.smiles_batch_to_graphs(smiles[i:i + 32])) for i in range(0, len(smiles), 32)]
    for run in candidates.values():
        run()  # warm-up
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(repeats):  # interleaved passes: a slow spell of a shared machine hits every candidate alike
        for name, run in candidates.items():
            gc.collect()
            best[name] = min(best[name], _cpu_seconds(run))
    rates = {name: len(smiles) / seconds for name, seconds in best.items()}
    baseline = rates["PyG `from_smiles` (one graph per molecule)"]
    return [[name, f"{len(smiles)}", f"{rate:,.0f}", f"{rate / baseline:.2f}x"] for name, rate in rates.items()]


def _cpu_seconds(fn) -> float:
    """CPU seconds of this process while `fn()` runs (table a: one process, no workers)."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def chain_run(module_path: str, units: int) -> dict | str:
    """Featurize `"CCO" * units` in a fresh subprocess; a dict of measurements, or why there is none."""
    try:
        result = subprocess.run([sys.executable, "-c", CHAIN_SCRIPT.format(repo=REPO_ROOT), module_path, str(units)],
                                capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        return f"no answer in {SUBPROCESS_TIMEOUT_S} s"
    if result.returncode < 0:
        return f"crashed (signal {-result.returncode})"
    if result.returncode != 0:
        return f"failed: {result.stderr.strip().splitlines()[-1][:80]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def previous_featurizer(directory: str) -> str | None:
    """The featurizer file of `PREVIOUS_COMMIT`, written into `directory`; None where git cannot give it."""
    try:
        source = subprocess.run(["git", "show", f"{PREVIOUS_COMMIT}:modeling_hsanet/featurization_hsanet.py"],
                                capture_output=True, text=True, check=True, cwd=REPO_ROOT).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = os.path.join(directory, "featurization_previous.py")
    with open(path, "w") as handle:
        handle.write(source)
    return path


def chain_rows(units_list: tuple[int, ...], previous: str | None) -> list[list[str]]:
    """Table b: one row per chain size, new and previous featurizer side by side, ratios to the first row."""
    current = os.path.join(REPO_ROOT, "modeling_hsanet", "featurization_hsanet.py")
    runs = [(chain_run(current, units), chain_run(previous, units) if previous else "git unavailable")
            for units in units_list]
    rows, first = [], {}
    for units, (new, old) in zip(units_list, runs):
        row = [f"{3 * units:,}"]
        for key, run in (("new", new), ("old", old)):
            if isinstance(run, str):
                row += [run, "", "", ""] + ([""] if key == "new" else [])
                continue
            first.setdefault(key, run)
            base = first[key]
            row += [f"{run['seconds']:.2f}", f"{run['seconds'] / base['seconds']:.1f}x",
                    f"{run['peak_mb']:.1f}", f"{run['peak_mb'] / max(base['peak_mb'], 0.1):.1f}x"]
            if key == "new":
                row.append(f"{run['ranking']:.2f} / {max(run['seconds'] - run['ranking'], 0):.2f}")
        rows.append(row)
    return rows


def best_rate(count: int, run, repeats: int) -> float:
    """Molecules/s of `run()` over `count` molecules, best of `repeats`."""
    return count / min(_seconds(run) for _ in range(repeats))


def feature_pipeline(directory: str, model_size: str):
    """A `molecular-feature-extraction` pipeline on a saved model of `model_size` (`tiny` or `default`), on the GPU
    when there is one."""
    import torch
    from transformers import pipeline

    torch.manual_seed(0)
    config = HSANetConfig(**TINY_MODEL) if model_size == "tiny" else HSANetConfig()
    HSANetModel(config).eval().save_pretrained(directory)
    HSANetProcessor().save_pretrained(directory)
    device = 0 if torch.cuda.is_available() else -1
    return pipeline("molecular-feature-extraction", model=directory, device=device)


def parallel_rows(smiles: list[str], workers: int, extractor, repeats: int) -> list[list[str]]:
    """Table c: 1 process vs `workers` processes, featurize_dataset and the pipeline, side by side."""
    import datasets

    datasets.disable_progress_bars()
    processor = HSANetProcessor()
    dataset = datasets.Dataset.from_dict({"smiles": smiles})  # in memory: datasets caches nothing

    def featurize(num_proc):
        return lambda: processor.featurize_dataset(dataset, num_proc=num_proc, load_from_cache_file=False)

    def extract(num_workers):
        return lambda: extractor(smiles, batch_size=PIPELINE_BATCH_SIZE, num_workers=num_workers)

    extractor(smiles[:8], batch_size=4)  # warm-up
    rows = []
    for name, make, serial in (("`processor.featurize_dataset(num_proc=...)`", featurize, 1),
                               (f"pipeline `molecular-feature-extraction` ({extractor.device}), `num_workers=`",
                                extract, 0)):
        one, many = best_rate(len(smiles), make(serial), repeats), best_rate(len(smiles), make(workers), repeats)
        rows.append([name, f"{len(smiles)}", f"{serial}: {one:,.0f}", f"{workers}: {many:,.0f}",
                     f"{many / one:.2f}x"])
    return rows


def bucketing_rows(smiles: list[str], workers: int, extractor, repeats: int) -> list[list[str]]:
    """Table d: padding and molecules/s of the pipeline, batches in input order vs bucketed by size."""
    atoms = [graph.num_atoms for graph in HSANetProcessor().feature_extractor.featurize(smiles)]
    rows = []
    for name, order in (("input order", list(range(len(smiles)))),
                        ("`bucket_by_size=True`", size_sorted_order(atoms, PIPELINE_BATCH_SIZE))):
        batches = [[atoms[i] for i in order[start:start + PIPELINE_BATCH_SIZE]]
                   for start in range(0, len(order), PIPELINE_BATCH_SIZE)]
        padding = sum(max(batch) * len(batch) - sum(batch) for batch in batches)
        rate = best_rate(len(smiles), lambda: extractor(smiles, batch_size=PIPELINE_BATCH_SIZE, num_workers=workers,
                                                        bucket_by_size=name != "input order"), repeats)
        rows.append([name, f"{len(smiles)}", f"{padding / sum(atoms):.3f}", f"{rate:,.0f}"])
    return rows


def main() -> None:
    parser = benchmark_parser(__doc__.splitlines()[0], "200 molecules, chains up to 10k atoms (smoke run)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="N of tables c and d (default: CPUs)")
    parser.add_argument("--pipeline-model", choices=("tiny", "default"), default=None,
                        help="model of tables c and d (default: `default` on a GPU, `tiny` on CPU)")
    parser.add_argument("--tables", default="abcd", help="which tables to print, e.g. `cd`")
    args = parse_benchmark_args(parser)
    smiles = [m.smiles for m in load_cmet_ligands()]
    smiles = smiles[:200] if args.quick else smiles
    units = CHAIN_UNITS[:3] if args.quick else CHAIN_UNITS

    machine = platform.processor() or platform.machine()
    print(f"# Featurization benchmark — {datetime.date.today().isoformat()}, {machine}, {os.cpu_count()} CPUs,"
          f" Python {platform.python_version()}, RDKit {rdkit.__version__}\n")
    directory = tempfile.TemporaryDirectory()
    previous = previous_featurizer(directory.name)
    if "a" in args.tables:
        print("### a. Featurization throughput on the c-Met ligands (one process)\n")
        print(markdown_table(["featurizer", "molecules", "molecules per CPU-second", "vs from_smiles"],
                             featurization_throughput(smiles, 3 if args.quick else 5, previous)))
        print("\nHSA-Net also computes BRICS fragments, the structure-aware order, bounded distances and 85 "
              "functional-group counts; `from_smiles` gives OGB-like atom/bond features only.\n")
    if "b" in args.tables:
        print("### b. One chain molecule (`\"CCO\" * k`), each run in its own subprocess\n")
        headers = ["atoms", "new s", "new time vs 1k", "new peak MB", "new memory vs 1k", "RDKit ranking s / rest s",
                   "previous s", "previous time vs 1k", "previous peak MB", "previous memory vs 1k"]
        print(markdown_table(headers, chain_rows(units, previous)))
        print("\nPeak MB: peak resident set while featurizing minus the resident set before. RDKit ranking: "
              "`Chem.CanonicalRankAtoms` timed alone in the same process; rest: the new total minus it (noisy). The "
              "ranking grows with atoms x diameter on a chain; read the rest's growth off the rows above.\n")
    if "c" in args.tables or "d" in args.tables:
        import torch

        if args.workers < 1:
            parser.error("--workers must be >= 1")
        model_size = args.pipeline_model or ("default" if torch.cuda.is_available() else "tiny")
        extractor = feature_pipeline(os.path.join(directory.name, "model"), model_size)
        repeats = 1 if args.quick else 2
        if "c" in args.tables:
            print(f"### c. Parallel featurization on the c-Met ligands: 1 process vs {args.workers} workers\n")
            print(markdown_table(["path", "molecules", "1 process: molecules/s", "N workers: molecules/s",
                                  "speed-up"], parallel_rows(smiles, args.workers, extractor, repeats)))
            print(f"\nPipeline model: `{model_size}` HSANetConfig, batches of {PIPELINE_BATCH_SIZE}; the pipeline row "
                  "includes the model's forward, run in the main process beside the workers. Best of "
                  f"{repeats}; worker start-up is included.\n")
        if "d" in args.tables:
            print(f"### d. Length bucketing in the pipeline ({args.workers} workers, batches of "
                  f"{PIPELINE_BATCH_SIZE})\n")
            print(markdown_table(["batches", "molecules", "padded positions per atom", "molecules/s"],
                                 bucketing_rows(smiles, args.workers, extractor, repeats)))
            print("\nPadded positions: what the model's dense (batch, max_atoms) layout adds, summed over batches, "
                  "divided by the real atoms.")
    directory.cleanup()


if __name__ == "__main__":
    main()
