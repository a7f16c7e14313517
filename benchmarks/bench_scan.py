"""Selective-scan benchmark (`make bench`, or `.venv/bin/python benchmarks/bench_scan.py`).

Prints two markdown tables, each measured side by side in one run:

a. The selective scan HSA-Net's Graph-Mamba projector runs on CPU: the numba kernel (`scan_kernels_hsanet`, used when
   numba is installed) and the pure-PyTorch `ChunkedSelectiveScan` (the fallback, also on GPUs without `mamba_ssm`),
   against the eager sequential loop a user would write (one `exp`, multiply and add per step, autograd through it:
   the test suite's reference), at batch 32, width 512, state 16, lengths 64, 1,024 and 4,096; forward
   (`torch.no_grad()`) and forward + backward. Each (method, length, pass) runs in its own subprocess, so its peak
   memory is its own: peak resident set during the first call (reset through /proc/self/clear_refs, Linux) minus the
   resident set with the inputs built (the numba kernels are compiled or loaded from numba's cache before that).
   Time: best of `--repeats` runs after that call, in CPU seconds of the process (`time.process_time`), which a busy
   machine disturbs less than wall time; with `--threads 1` (the default) the two are the same on a quiet machine.
b. The Graph-Mamba projector against the cross-attention projector (HSA-Net's two projectors, one GIN level of the
   default config, width 300, on the same 32 c-Met molecules): the default Graph-Mamba projector (one direction) and
   the bidirectional one (`graph_mamba_bidirectional=True`), forward, eval mode: time (median CPU time of the
   process over `--repeats` runs, the three projectors taking turns), and the floating-point operations of their
   matrix products (`torch.utils.flop_counter`). The Graph-Mamba projector is the same cross-attention pooling plus a
   neighbour projection and one Mamba block per direction, so that ratio bounds the time ratio.

The sequential loop keeps every step's tensors for backward: at length 4,096 that needs several GB and minutes, so
its forward + backward is run there only with `--long-loop`. Options: `--quick` (length 64 only, fewer
repeats), `--threads N` (default 1), `--repeats N`.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import platform
import subprocess
import sys
import textwrap
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from bench_hsanet import (  # noqa: E402
    Timing,
    benchmark_parser,
    build_model,
    cpu_model,
    load_cmet_smiles,
    markdown_table,
    ms,
    parse_benchmark_args,
    projector_inputs,
)
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from modeling_hsanet import HSANetProcessor  # noqa: E402

BATCH, WIDTH, STATE = 32, 512, 16
LENGTHS = (64, 1024, 4096)
SUBPROCESS_TIMEOUT_S = 600

# The eager sequential loop a user would write, and the test suite's reference form (tests/hsanet).
def sequential_scan(u, delta, A, B, C, D):
    """Mamba's selective scan one step at a time, in the model's (batch, length, width) layout: one `exp`, multiply
    and add per step, autograd through it."""
    batch, length, width = u.shape
    h = u.new_zeros(batch, width, A.shape[1])
    outputs = []
    for t in range(length):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * u[:, t])[..., None] * B[:, t, None, :]
        outputs.append((h * C[:, t, None, :]).sum(-1) + D * u[:, t])
    return torch.stack(outputs, dim=1)


def scan_inputs(batch: int, length: int, width: int, state: int, requires_grad: bool = False):
    """Seeded scan inputs `[u, delta, A, B, C, D]` (delta after softplus, A negative) and an output gradient."""
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(batch, length, width, generator=generator)
    delta = torch.nn.functional.softplus(torch.randn(batch, length, width, generator=generator) - 2)
    A = -torch.rand(width, state, generator=generator) * 3
    B, C = (torch.randn(batch, length, state, generator=generator) for _ in range(2))
    D = torch.randn(width, generator=generator)
    grad_y = torch.randn(batch, length, width, generator=generator)
    return [x.requires_grad_(requires_grad) for x in (u, delta, A, B, C, D)], grad_y


# One measurement in a fresh process: method, length, pass ("forward" / "backward"), repeats, threads.
RUN_SCRIPT = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {benchmarks!r})
    import torch
    from bench_scan import scan_inputs, sequential_scan
    from modeling_hsanet.modeling_hsanet import selective_scan, selective_scan_pytorch

    method, mode = sys.argv[1], sys.argv[3]
    length, repeats, threads = int(sys.argv[2]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    inputs, grad_y = scan_inputs({batch}, length, {width}, {state}, requires_grad=mode == "backward")
    scan = dict(loop=sequential_scan, chunked=selective_scan_pytorch, kernel=selective_scan)[method]
    if method == "kernel":  # compile the numba kernels (or load them from numba's cache) outside the measurement
        small = [(x[:1, :2] if x.dim() == 3 else x).detach().clone().requires_grad_() for x in inputs]
        torch.autograd.grad(scan(*small), small, torch.ones(1, 2, {width}))

    def run():
        if mode == "forward":
            with torch.no_grad():
                scan(*inputs)
        else:
            torch.autograd.grad(scan(*inputs), inputs, grad_y)

    def rss_kb(field):
        with open("/proc/self/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith(field))

    try:  # peak of the first call: later calls reuse memory the allocator kept, so their peak is not theirs
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset the peak resident set to the current one
        before = rss_kb("VmRSS")
        run()
        peak_mb = (rss_kb("VmHWM") - before) / 1024
    except OSError:
        run()
        peak_mb = float("nan")
    seconds = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        seconds.append(time.process_time() - start)
    print(json.dumps(dict(seconds=min(seconds), peak_mb=peak_mb)))
""")


def scan_run(method: str, length: int, mode: str, repeats: int, threads: int) -> dict | str:
    """One measurement in a fresh subprocess: a dict, or why there is none."""
    script = RUN_SCRIPT.format(repo=REPO_ROOT, benchmarks=os.path.dirname(os.path.abspath(__file__)), batch=BATCH,
                               width=WIDTH, state=STATE)
    try:
        result = subprocess.run(
            [sys.executable, "-c", script, method, str(length), mode, str(repeats), str(threads)],
            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, cwd=REPO_ROOT,
        )
    except subprocess.TimeoutExpired:
        return f"no answer in {SUBPROCESS_TIMEOUT_S} s"
    if result.returncode != 0:
        return f"failed: {(result.stderr.strip().splitlines() or ['killed'])[-1][:80]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def scan_rows(lengths, repeats: int, threads: int, long_loop: bool) -> list[list[str]]:
    rows = []
    for length in lengths:
        for mode in ("forward", "backward"):
            reps = max(1, repeats if length <= 64 else repeats // 3)
            kernel = scan_run("kernel", length, mode, reps, threads)
            chunked = scan_run("chunked", length, mode, reps, threads)
            skip_loop = mode == "backward" and length > 1024 and not long_loop
            loop = "not run (`--long-loop`)" if skip_loop else scan_run("loop", length, mode, max(1, reps // 2),
                                                                             threads)
            label = "forward" if mode == "forward" else "forward + backward"
            row = [f"{length:,}", label]
            for run in (kernel, chunked, loop):
                if isinstance(run, str):
                    row += [run, ""]
                else:
                    row += [f"{run['seconds'] * 1e3:,.1f}", f"{run['peak_mb']:,.0f}"]
            for fast in (kernel, chunked):
                both = not isinstance(fast, str) and not isinstance(loop, str)
                row.append(f"**{loop['seconds'] / fast['seconds']:.1f}x**" if both else "")
            rows.append(row)
    return rows


def interleaved_cpu_times(runs: dict, repeats: int) -> dict[str, Timing]:
    """CPU time of the process (`time.process_time`) of each of `runs` (name -> callable), after one warm-up call
    each, the runs taking turns `repeats` times, so a load that comes and goes on a shared machine hits all of them
    alike."""
    for run in runs.values():
        run()
    samples = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.process_time()
            run()
            samples[name].append(time.process_time() - start)
    return {name: Timing(values) for name, values in samples.items()}


def projector_rows(repeats: int) -> tuple[list[list[str]], float]:
    """Table b: one Graph-Mamba projector with `graph_mamba_bidirectional=True` and one cross-attention projector of
    the default config on 32 c-Met molecules, and the default one-direction Graph-Mamba projector (the same weights,
    its forward block only), with the floating-point operations of their matrix products (`torch.utils.flop_counter`):
    the Graph-Mamba projector is the cross-attention pooling plus a neighbour projection and one Mamba block per
    direction, so their ratio bounds the time ratio once the scan is cheap."""
    processor = HSANetProcessor()
    inputs = processor(load_cmet_smiles()[:BATCH])
    with torch.no_grad():
        model = build_model(projector_mode="adaptive", graph_mamba_bidirectional=True)
        node_states, layout, structure = projector_inputs(model, inputs)
        mamba, attention = model.projector.graph_mamba[0], model.projector.cross_attention[0]
        one_direction = copy.deepcopy(mamba)
        one_direction.backward_scan = None  # what graph_mamba_bidirectional=False (the default) builds

        runs = {
            "GraphMambaProjector (one direction, default)": lambda: one_direction(node_states, layout, **structure),
            "GraphMambaProjector (graph_mamba_bidirectional=True)": lambda: mamba(node_states, layout, **structure),
            "CrossAttentionProjector": lambda: attention(node_states, layout),
        }
        times = interleaved_cpu_times(runs, repeats)
    flops = {}
    for name, run in runs.items():
        with FlopCounterMode(display=False) as counter:  # its module tracker needs autograd on
            run()
        flops[name] = counter.get_total_flops()
    n_atoms = int(inputs["num_atoms"].sum())
    reference = "CrossAttentionProjector"
    rows = [[name, ms(t.median), f"{t.median * 1e6 / n_atoms:.1f}", f"{t.median / times[reference].median:.1f}x",
             f"{flops[name] / 1e9:.2f}", f"{flops[name] / flops[reference]:.1f}x"] for name, t in times.items()]
    return rows, n_atoms


def main() -> None:
    parser = benchmark_parser(__doc__.splitlines()[0], "length 64 only, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (best is kept)")
    parser.add_argument("--long-loop", action="store_true", help="also run the sequential loop at length 4,096")
    parser.set_defaults(threads=1)
    args = parse_benchmark_args(parser)
    repeats = args.repeats or (3 if args.quick else 7)
    lengths = LENGTHS[:1] if args.quick else LENGTHS

    print("# Selective scan benchmark\n")
    print(f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"- cpu: {cpu_model()} ({os.cpu_count()} logical cores visible), {torch.get_num_threads()} torch thread(s)")
    print(f"- torch {torch.__version__}, python {platform.python_version()}\n")

    print(f"## a. Selective scan vs the eager sequential loop (batch {BATCH}, width {WIDTH}, state {STATE}, "
          "float32)\n")
    print("Time: best CPU time of the process; peak: extra resident memory while one call runs.\n")
    rows = scan_rows(lengths, repeats, torch.get_num_threads(), args.long_loop)
    print(markdown_table(["length", "pass", "numba kernel ms", "kernel peak MB", "PyTorch chunked ms",
                          "chunked peak MB", "sequential loop ms", "loop peak MB", "loop / kernel time",
                          "loop / chunked time"], rows))
    print()

    rows, n_atoms = projector_rows(repeats)
    print(f"## b. Graph-Mamba vs cross-attention projector (default config, {BATCH} c-Met molecules, {n_atoms} atoms, "
          "forward, eval)\n")
    print("Time: median CPU time of the process, the projectors taking turns.\n")
    print(markdown_table(["projector", "ms/batch", "µs/atom", "time vs cross-attention", "matmul GFLOP",
                          "GFLOP vs cross-attention"], rows))


if __name__ == "__main__":
    main()
