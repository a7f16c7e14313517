"""GPU check: the model harness's dtype and device checks on CUDA, for every model class of the package.

Per model class (the tiny tester configs of `tests/model_testers.py`, shared with the CPU harness, plus the default
configs for the memory rows):
- fp32 on the device equals fp32 on the CPU;
- bf16 autocast forward is finite and close to fp32 (where discrete choices agree), `model.to(bfloat16)` too;
- one bf16-autocast training step: finite loss and gradients, parameters move;
- peak device memory of a forward + backward at the default config.
With `mamba_ssm` importable, its CUDA selective scan is also compared with the PyTorch scan.

Needs only the package's dependencies and a checkout of the repository (no pytest). Prints a table, exits 1 if any
check fails. Run it when a GPU is
available: `python benchmarks/gpu_check.py` (`--device cpu` runs the same checks on the CPU, as a smoke run).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests/model_testers.py

from modeling_hsanet import HSANetConfig, HSANetForMolecularPropertyPrediction, HSANetModel  # noqa: E402
from modeling_hsanet.data_hsanet import load_cmet_ligands  # noqa: E402
from modeling_hsanet.modeling_hsanet import selective_scan, selective_scan_pytorch  # noqa: E402
from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel  # noqa: E402
from tests.model_testers import TESTERS, ModelTester, max_relative_difference  # noqa: E402


def to_device(inputs: dict, device) -> dict:
    return {key: value.to(device) for key, value in inputs.items()}


def check_dtypes(tester: ModelTester, device: str) -> list[tuple[str, bool, str]]:
    """The harness's device and dtype checks for one tester: (check, ok, detail) rows."""
    rows = []
    model = tester.make_model()
    inputs = tester.get_inputs()
    with torch.no_grad():
        reference = model(**inputs)
        model.to(device)
        on_device = model(**to_device(inputs, device))
    difference = max(max_relative_difference(getattr(on_device, name), getattr(reference, name))
                     for name in tester.output_names)
    rows.append(("fp32 equals CPU", difference <= 1e-4, f"max rel. difference {difference:.2e}"))

    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
        autocast = model(**to_device(inputs, device))
    problems = tester.low_precision_differences(autocast, reference, torch.bfloat16)
    kept = int(tester.comparable_items(autocast, reference).sum())
    rows.append(("bf16 autocast forward", not problems, "; ".join(problems) or f"close on {kept} items"))

    with torch.no_grad():
        low = tester.make_model().to(device, torch.bfloat16)
        outputs = low(**to_device(inputs, device))
    problems = tester.low_precision_differences(outputs, reference, torch.bfloat16)
    dtypes = {str(getattr(outputs, name).dtype) for name in tester.output_names}
    rows.append(("model.to(bfloat16) forward", not problems and dtypes == {"torch.bfloat16"},
                 "; ".join(problems) or f"dtype {', '.join(sorted(dtypes))}"))

    model.train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with torch.autocast(device, dtype=torch.bfloat16):
        loss = tester.training_loss(model(**to_device(inputs, device)))
    loss.backward()
    finite = bool(torch.isfinite(loss)) and all(
        bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None
    )
    optimizer.step()
    moved = sum(not torch.equal(before[name], p) for name, p in model.named_parameters())
    detail = f"loss {loss.item():.4f}, {moved} tensors moved"
    rows.append(("bf16 autocast training step", finite and moved > 0, detail))
    return rows


class DefaultSize:
    """A model at its default (paper) size, for the memory rows."""

    def __init__(self, name, build, inputs, loss):
        self.name, self.build, self.inputs, self.loss = name, build, inputs, loss


def default_size_models() -> list[DefaultSize]:
    smiles = [m.smiles for m in load_cmet_ligands()[:64]]

    def hsanet_inputs(labels: bool) -> dict:
        from modeling_hsanet import HSANetProcessor

        inputs = dict(HSANetProcessor()(smiles))
        if labels:
            generator = torch.Generator().manual_seed(0)
            inputs["labels"] = torch.randint(0, 2, (len(smiles), 2), generator=generator).float()
        return inputs

    def sweet_inputs() -> dict:
        config, generator = SweetTokenizerConfig(), torch.Generator().manual_seed(0)
        size = config.image_size
        return {"pixel_values": torch.rand(4, 3, size, size, generator=generator) - 0.5,
                "pixel_values_videos": torch.rand(4, 3, config.num_frames, size, size, generator=generator) - 0.5}

    config = dict(num_labels=2, problem_type="multi_label_classification")
    return [
        DefaultSize("HSANetModel", lambda: HSANetModel(HSANetConfig(**config)), lambda: hsanet_inputs(False),
                    lambda o: o.last_hidden_state.pow(2).mean() + o.aux_loss),
        DefaultSize("HSANetForMolecularPropertyPrediction",
                    lambda: HSANetForMolecularPropertyPrediction(HSANetConfig(**config)), lambda: hsanet_inputs(True),
                    lambda o: o.loss),
        DefaultSize("SweetTokenizerModel", lambda: SweetTokenizerModel(SweetTokenizerConfig()), sweet_inputs,
                    lambda o: o.loss),
    ]


def peak_memory(case: DefaultSize, device: str) -> tuple[str, bool, str]:
    torch.manual_seed(0)
    model = case.build().to(device).train()
    inputs = to_device(case.inputs(), device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with torch.autocast(device, dtype=torch.bfloat16):
        loss = case.loss(model(**inputs))
    loss.backward()
    batch = len(inputs.get("num_atoms", next(iter(inputs.values()))))  # molecules, not atoms, for graph batches
    if device == "cuda":
        torch.cuda.synchronize()
        peak = f"peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    else:
        peak = "peak n/a on CPU"
    return (
        "bf16 forward+backward, default config",
        bool(torch.isfinite(loss)),
        f"{peak}, {time.perf_counter() - start:.2f} s, batch {batch}",
    )


def check_scan_kernel(device: str) -> list[tuple[str, bool, str]]:
    """mamba_ssm's CUDA selective scan (what `selective_scan` picks on CUDA when it is importable) against the
    package's PyTorch scan: outputs and the gradients of every input, in float32, at a length inside one of the
    kernel's 2,048-step chunks and one across them; and a bf16 call (mixed dtypes, as under autocast) against the
    float32 result."""
    from modeling_hsanet import modeling_hsanet

    if device != "cuda" or modeling_hsanet._mamba_selective_scan_fn is None:
        return []
    rows = []
    generator = torch.Generator().manual_seed(0)
    batch, inner, state = 4, 64, 16
    for length in (256, 3000):
        u, B, C = (
            torch.randn(*shape, generator=generator)
            for shape in ((batch, length, inner), (batch, length, state), (batch, length, state))
        )  # the model's (batch, length, channels) layout
        delta = torch.nn.functional.softplus(torch.randn(batch, length, inner, generator=generator) - 2)
        A, D = -torch.rand(inner, state, generator=generator) * 3, torch.randn(inner, generator=generator)
        grad_y = torch.randn(batch, length, inner, generator=generator)
        results = []
        for scan in (selective_scan, selective_scan_pytorch):
            args = [x.to(device).requires_grad_() for x in (u, delta, A, B, C, D)]
            y = scan(*args)
            results.append([y, *torch.autograd.grad(y, args, grad_y.to(device))])
        names = ("y", "du", "ddelta", "dA", "dB", "dC", "dD")
        worst = max(zip(names, results[0], results[1]), key=lambda item: max_relative_difference(item[1], item[2]))
        difference = max_relative_difference(worst[1], worst[2])
        rows.append((f"mamba_ssm kernel equals PyTorch scan, length {length}, output and gradients",
                     difference <= 1e-4, f"max rel. difference {difference:.2e} ({worst[0]})"))
    low = [x.to(device) for x in (u.bfloat16(), delta, A, B.bfloat16(), C.bfloat16(), D)]
    y_low = selective_scan(*low)
    difference = max_relative_difference(y_low.float(), results[1][0])
    rows.append(("mamba_ssm kernel, bf16 u/B/C with float32 delta (autocast's mix)",
                 y_low.dtype == torch.bfloat16 and difference <= 5e-2,
                 f"dtype {y_low.dtype}, max rel. difference to float32 {difference:.2e}"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a smoke run")
    parser.add_argument(
        "--skip-memory",
        action="store_true",
        help="leave out the default-config memory rows (always left out on the CPU)",
    )
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available (use --device cpu for a smoke run on the CPU)")
        return 2
    if args.device == "cuda":  # fp32 means fp32 here: cuDNN's convolutions default to TF32 (10-bit mantissa)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"# gpu_check on {name}, torch {torch.__version__}\n\n| model | check | ok | detail |\n|---|---|---|---|")
    failures = 0

    def report(model_name: str, rows) -> None:
        nonlocal failures
        for check, ok, detail in rows:
            failures += not ok
            print(f"| {model_name} | {check} | {'yes' if ok else 'NO'} | {detail} |", flush=True)

    for tester in TESTERS:
        name = tester.model_class.__name__
        try:
            report(name, check_dtypes(tester(), args.device))
        except Exception as error:  # noqa: BLE001 - a crash is a failed check; go on with the other models
            traceback.print_exc()
            report(name, [("dtype and device checks", False, f"{type(error).__name__}: {error}")])
    if not args.skip_memory and args.device != "cpu":
        for case in default_size_models():
            try:
                report(case.name, [peak_memory(case, args.device)])
            except Exception as error:  # noqa: BLE001
                report(
                    case.name, [("bf16 forward+backward, default config", False, f"{type(error).__name__}: {error}")]
                )
    report("selective scan", check_scan_kernel(args.device))
    print(f"\n{failures} check(s) failed" if failures else "\nall checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
