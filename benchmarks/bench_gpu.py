"""GPU benchmark rows of HSA-Net (`python benchmarks/bench_gpu.py` on a machine with CUDA; `make bench` runs it there).

Prints three markdown tables, each measured side by side in one run on one GPU:

a. The selective scan at batch 32, width 512, state 16, lengths 64, 1,024 and 4,096, forward (`torch.no_grad()`) and
   forward + backward: the eager sequential loop (`bench_scan.sequential_scan`, what a user would write), the
   package's pure-PyTorch `ChunkedSelectiveScan` (`selective_scan_pytorch`, what runs on CUDA without `mamba_ssm`),
   and mamba_ssm's CUDA kernel when it is importable (`selective_scan`). Time: median wall time of `--repeats` calls
   after a warm-up, synchronised; peak: `torch.cuda.max_memory_allocated` during one call minus what was allocated
   before it (the inputs).
b. The projectors and the whole encoder on the GPU: one Graph-Mamba projector (one direction, the default) vs one
   cross-attention projector of the default config on the same 256 c-Met molecules, and `HSANetModel` forward at
   the default config for each `projector_mode`, in molecules/s (batches of 256, pre-featurized, on the GPU).
c. End to end with parallel featurization: the `molecular-feature-extraction` pipeline (default config, batches of
   256) over the c-Met ligands with `num_workers` 0 and N, against the model's forward alone on the same batches
   (what the GPU could take) and featurization alone in one process.

Options: `--quick` (fewer repeats, lengths 64 and 1,024), `--repeats N`, `--molecules N`, `--copies N`, `--device cpu`
(a smoke run of the same code), `--workers N,N` (table c, default `4,8,<CPUs - 1>`), `--sections abc`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from bench_featurization import feature_pipeline  # noqa: E402
from bench_hsanet import load_cmet_smiles, markdown_table, projector_inputs  # noqa: E402
from bench_scan import BATCH, LENGTHS, STATE, WIDTH, scan_inputs, sequential_scan  # noqa: E402

from modeling_hsanet import HSANetConfig, HSANetModel, HSANetProcessor  # noqa: E402
from modeling_hsanet import modeling_hsanet as hsanet_modeling  # noqa: E402
from modeling_hsanet.modeling_hsanet import selective_scan, selective_scan_pytorch  # noqa: E402

MODEL_BATCH = 256
DEVICE = "cuda"  # `--device cpu`: a smoke run of the same code on the CPU (no peak memory)


def synchronize() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def cuda_seconds(run, repeats: int) -> float:
    """Median synchronised wall time of `run()` over `repeats` calls, after one warm-up call."""
    run()
    synchronize()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def cuda_peak_mb(run) -> float:
    """Peak GPU memory one call of `run()` adds to what is allocated before it, in MB (NaN on the CPU)."""
    if DEVICE != "cuda":
        run()
        return float("nan")
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def scan_rows(lengths, repeats: int) -> tuple[list[str], list[list[str]]]:
    """Table a."""
    methods = {"loop": sequential_scan, "PyTorch chunked": selective_scan_pytorch}
    if hsanet_modeling._mamba_selective_scan_fn is not None:
        methods["mamba_ssm kernel"] = selective_scan
    rows = []
    for length in lengths:
        for mode in ("forward", "forward + backward"):
            inputs, grad_y = scan_inputs(BATCH, length, WIDTH, STATE, requires_grad=mode != "forward")
            inputs = [x.detach().to(DEVICE).requires_grad_(x.requires_grad) for x in inputs]
            grad_y = grad_y.to(DEVICE)
            results = {}
            for name, scan in methods.items():

                def run(scan=scan):
                    if mode == "forward":
                        with torch.no_grad():
                            return scan(*inputs)
                    return torch.autograd.grad(scan(*inputs), inputs, grad_y)

                try:
                    reps = max(1, repeats // 3) if name == "loop" and length > 1024 else repeats
                    results[name] = (cuda_seconds(run, reps), cuda_peak_mb(run))
                except Exception as error:  # noqa: BLE001 - an out-of-memory is a result too
                    results[name] = f"{type(error).__name__}"
                if DEVICE == "cuda":
                    torch.cuda.empty_cache()
            row = [f"{length:,}", mode]
            for name in methods:
                result = results[name]
                row += [result, ""] if isinstance(result, str) else [f"{result[0] * 1e3:,.2f}", f"{result[1]:,.0f}"]
            loop = results["loop"]
            for name in list(methods)[1:]:
                fast = results[name]
                both = not isinstance(fast, str) and not isinstance(loop, str)
                row.append(f"**{loop[0] / fast[0]:.1f}x**" if both else "")
            rows.append(row)
    headers = ["length", "pass"]
    for name in methods:
        headers += [f"{name} ms", f"{name} peak MB"]
    headers += [f"loop / {name}" for name in list(methods)[1:]]
    return headers, rows


def encoder_inputs(smiles: list[str]) -> list[dict]:
    processor = HSANetProcessor()
    batches = [smiles[start:start + MODEL_BATCH] for start in range(0, len(smiles), MODEL_BATCH)]
    return [{key: value.to(DEVICE) for key, value in processor(batch).items()} for batch in batches]


def projector_and_encoder_rows(smiles: list[str], repeats: int) -> tuple[list, list, tuple[int, int]]:
    """Table b: the two projectors on one batch, and the encoder forward per projector mode over all batches."""
    batches = encoder_inputs(smiles)
    with torch.no_grad():
        torch.manual_seed(0)
        model = HSANetModel(HSANetConfig(projector_mode="adaptive")).eval().to(DEVICE)
        node_states, layout, structure = projector_inputs(model, batches[0])
        mamba, attention = model.projector.graph_mamba[0], model.projector.cross_attention[0]
        mamba_s = cuda_seconds(lambda: mamba(node_states, layout, **structure), repeats)
        attention_s = cuda_seconds(lambda: attention(node_states, layout), repeats)
    atoms = (len(batches[0]["num_atoms"]), int(batches[0]["num_atoms"].sum()))
    projector = [["GraphMambaProjector (one direction, default)", f"{mamba_s * 1e3:.2f}",
                  f"{mamba_s / attention_s:.1f}x"],
                 ["CrossAttentionProjector", f"{attention_s * 1e3:.2f}", "1.0x"]]
    encoder = []
    count = sum(len(batch["num_atoms"]) for batch in batches)
    for mode in ("adaptive", "cross_attention", "graph_mamba"):
        torch.manual_seed(0)
        model = HSANetModel(HSANetConfig(projector_mode=mode)).eval().to(DEVICE)
        for dtype in (torch.float32, torch.bfloat16):
            def run(model=model, dtype=dtype):
                with torch.no_grad(), torch.autocast(DEVICE, dtype=dtype, enabled=dtype != torch.float32):
                    for batch in batches:
                        model(**batch)

            seconds = cuda_seconds(run, repeats)
            encoder.append([f"`{mode}`", "fp32" if dtype == torch.float32 else "bf16 autocast",
                            f"{count / seconds:,.0f}"])
    return projector, encoder, atoms


def end_to_end_rows(smiles: list[str], workers: list[int], repeats: int) -> list[list[str]]:
    """Table c: the pipeline with 0 and N workers, the forward alone, featurization alone (one process)."""
    rows = []
    processor = HSANetProcessor()
    start = time.perf_counter()
    for begin in range(0, len(smiles), MODEL_BATCH):
        processor(smiles[begin:begin + MODEL_BATCH])
    featurize_rate = len(smiles) / (time.perf_counter() - start)
    rows.append(["featurization alone (`HSANetProcessor`, one process)", "", f"{featurize_rate:,.0f}"])
    batches = encoder_inputs(smiles)
    with tempfile.TemporaryDirectory() as directory:
        extractor = feature_pipeline(directory, "default")  # on the GPU when there is one
        model = extractor.model

        def forward():
            with torch.no_grad():
                for batch in batches:
                    model(**batch)

        forward_rate = len(smiles) / cuda_seconds(forward, repeats)
        rows.append(["model forward alone (pre-featurized batches on the GPU)", "", f"{forward_rate:,.0f}"])
        extractor(smiles[:8], batch_size=4)  # warm-up
        for num_workers in [0, *workers]:
            for bucket in (False, True):
                seconds = min(_wall(lambda: extractor(smiles, batch_size=MODEL_BATCH, num_workers=num_workers,
                                                      bucket_by_size=bucket)) for _ in range(max(1, repeats // 2)))
                rows.append([f"pipeline, `num_workers={num_workers}`", "yes" if bucket else "no",
                             f"{len(smiles) / seconds:,.0f}"])
    return rows


def _wall(run) -> float:
    start = time.perf_counter()
    run()
    synchronize()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, lengths 64 and 1,024")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--workers", default=None, help="comma-separated worker counts of table c")
    parser.add_argument("--sections", default="abc")
    parser.add_argument("--molecules", type=int, default=None, help="c-Met ligands of tables b and c (default all)")
    parser.add_argument("--copies", type=int, default=1, help="table c featurizes the ligands this many times over")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: a smoke run of the code")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: CUDA is not available; the CPU rows are in the other benchmarks")
        return 0
    repeats = args.repeats or (3 if args.quick else 10)
    cpus = os.cpu_count() or 1
    workers = [int(n) for n in args.workers.split(",")] if args.workers else sorted({4, 8, max(1, cpus - 1)})
    print(f"# HSA-Net GPU benchmark — {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}, "
          f"{torch.cuda.get_device_name() if DEVICE == 'cuda' else 'CPU'}, torch {torch.__version__}, {cpus} CPUs, "
          "mamba_ssm kernel "
          f"{'importable' if hsanet_modeling._mamba_selective_scan_fn is not None else 'not importable'}\n")
    smiles = load_cmet_smiles()[:args.molecules]
    if "a" in args.sections:
        print(f"## a. Selective scan on the GPU (batch {BATCH}, width {WIDTH}, state {STATE}, float32)\n")
        headers, rows = scan_rows(LENGTHS[:2] if args.quick else LENGTHS, repeats)
        print(markdown_table(headers, rows), "\n", flush=True)
    if "b" in args.sections:
        projector, encoder, atoms = projector_and_encoder_rows(smiles, repeats)
        print(f"## b. Projectors ({atoms[0]} c-Met molecules, {atoms[1]} atoms, forward, eval, fp32) and the encoder "
              f"({len(smiles)} molecules, batches of {MODEL_BATCH})\n")
        print(markdown_table(["projector", "ms / batch", "vs cross-attention"], projector), "\n")
        print(markdown_table(["projector_mode", "precision", "molecules/s"], encoder), "\n", flush=True)
    if "c" in args.sections:
        print(f"## c. End to end: `molecular-feature-extraction` pipeline, default config, batches of {MODEL_BATCH}, "
              f"{len(smiles) * args.copies} molecules (the c-Met ligands x{args.copies}; worker start-up included)\n")
        print(markdown_table(["path", "bucket_by_size", "molecules/s"],
                             end_to_end_rows(smiles * args.copies, workers, repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
