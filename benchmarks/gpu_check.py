"""GPU check: the model harness's dtype and device checks on CUDA, for every model class of the package.

Per model (tiny configs, as in `tests/`, plus the default configs for the memory rows):
- fp32 on the device equals fp32 on the CPU;
- bf16 autocast forward is finite and close to fp32 (where discrete choices agree), `model.to(bfloat16)` too;
- one bf16-autocast training step: finite loss and gradients, parameters move;
- peak device memory of a forward + backward at the default config.
With `mamba_ssm` importable, its CUDA selective scan is also compared with the PyTorch scan.

Needs only the package's dependencies (no pytest). Prints a table, exits 1 if any check fails. Run it when a GPU is
available: `python benchmarks/gpu_check.py` (`--device cpu` runs the same checks on the CPU, as a smoke run).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

import torch

from modeling_hsanet import HSANetConfig, HSANetForMolecularPropertyPrediction, HSANetModel, HSANetProcessor
from modeling_hsanet.data_hsanet import load_cmet_ligands
from modeling_hsanet.modeling_hsanet import selective_scan, selective_scan_pytorch
from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel

BF16_TOLERANCE = 5e-2  # max |bf16 - fp32| relative to max |fp32|, as the CPU harness (tests/common.py)
SMILES = ["CC(=O)Nc1ccc(O)cc1", "[Na+].[Cl-]", "c1ccc2ccccc2c1", "O=S(=O)(Nc1cccs1)c1ccc(Oc2ccccc2)cc1"]
HSANET_TINY = dict(hidden_size=32, num_gnn_layers=2, num_attention_heads=2, num_query_tokens=4, mamba_d_state=4,
                   fusion_intermediate_size=64, num_motif_tokens=2, num_labels=2,
                   problem_type="multi_label_classification")
SWEET_TINY = dict(image_size=16, patch_size=4, num_frames=5, temporal_patch_size=4, hidden_size=32,
                  num_attention_heads=2, intermediate_size=64, num_encoder_layers=2, num_query_layers=1,
                  num_temporal_layers=1, num_decoder_layers=2, num_spatial_queries=4, num_temporal_queries=8,
                  codebook_dim=16)


class ModelCase:
    """A model class, how to build it, its inputs and the output and loss the checks read."""

    def __init__(self, name, build, inputs, output_name, loss, comparable=None):
        self.name, self.build, self.inputs, self.output_name, self.loss = name, build, inputs, output_name, loss
        self.comparable = comparable or (lambda outputs, reference: torch.ones(len(getattr(reference, output_name)),
                                                                               dtype=torch.bool))


def hsanet_inputs(smiles: list[str], labels: bool) -> dict:
    inputs = dict(HSANetProcessor()(smiles))
    if labels:
        inputs["labels"] = torch.randint(0, 2, (len(smiles), 2), generator=torch.Generator().manual_seed(0)).float()
    return inputs


def sweet_inputs(config: SweetTokenizerConfig, images: int, clips: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    size, frames = config.image_size, config.num_frames
    return {"pixel_values": torch.rand(images, 3, size, size, generator=generator) - 0.5,
            "pixel_values_videos": torch.rand(clips, 3, frames, size, size, generator=generator) - 0.5}


def same_gates(outputs, reference) -> torch.BoolTensor:
    return (outputs.projector_choices.cpu() == reference.projector_choices.cpu()).all(dim=1)


def cases(tiny: bool) -> list[ModelCase]:
    hsanet_config = (lambda: HSANetConfig(**HSANET_TINY)) if tiny else (
        lambda: HSANetConfig(num_labels=2, problem_type="multi_label_classification"))
    sweet_config = SweetTokenizerConfig(**SWEET_TINY) if tiny else SweetTokenizerConfig()
    smiles = SMILES if tiny else [m.smiles for m in load_cmet_ligands()[:64]]
    return [
        ModelCase(
            "HSANetModel",
            lambda: HSANetModel(hsanet_config()),
            lambda: hsanet_inputs(smiles, False),
            "last_hidden_state",
            lambda o: o.last_hidden_state.pow(2).mean() + o.aux_loss,
            same_gates,
        ),
        ModelCase(
            "HSANetForMolecularPropertyPrediction",
            lambda: HSANetForMolecularPropertyPrediction(hsanet_config()),
            lambda: hsanet_inputs(smiles, True),
            "logits",
            lambda o: o.loss,
            same_gates,
        ),
        ModelCase(
            "SweetTokenizerModel",
            lambda: SweetTokenizerModel(sweet_config),
            lambda: sweet_inputs(sweet_config, 2 if tiny else 4, 2 if tiny else 4),
            "reconstruction",
            lambda o: o.loss,
        ),
    ]


def to_device(inputs: dict, device) -> dict:
    return {key: value.to(device) for key, value in inputs.items()}


def relative_difference(actual, expected) -> float:
    return float(
        (actual.float().cpu() - expected.float().cpu()).abs().max() / expected.float().abs().max().clamp(min=1e-6)
    )


def check_dtypes(case: ModelCase, device: str) -> list[tuple[str, bool, str]]:
    rows = []
    torch.manual_seed(0)
    model = case.build().eval()
    inputs = case.inputs()
    with torch.no_grad():
        reference = model(**inputs)
        model.to(device)
        on_device = model(**to_device(inputs, device))
    difference = relative_difference(getattr(on_device, case.output_name), getattr(reference, case.output_name))
    rows.append(("fp32 equals CPU", difference <= 1e-4, f"max rel. difference {difference:.2e}"))

    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
        autocast = model(**to_device(inputs, device))
    keep = case.comparable(autocast, reference)
    difference = relative_difference(
        getattr(autocast, case.output_name)[keep.to(device)], getattr(reference, case.output_name)[keep]
    )
    rows.append(
        (
            "bf16 autocast forward",
            difference <= BF16_TOLERANCE and keep.float().mean() >= 0.5,
            f"max rel. difference {difference:.2e} on {int(keep.sum())}/{len(keep)} items",
        )
    )

    with torch.no_grad():
        low = case.build().eval()
        low.load_state_dict(model.state_dict())
        outputs = low.to(device, torch.bfloat16)(**to_device(inputs, device))
    output = getattr(outputs, case.output_name)
    rows.append(
        (
            "model.to(bfloat16) forward",
            output.dtype == torch.bfloat16 and bool(torch.isfinite(output).all()),
            f"dtype {output.dtype}",
        )
    )

    model.train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with torch.autocast(device, dtype=torch.bfloat16):
        loss = case.loss(model(**to_device(inputs, device)))
    loss.backward()
    finite = bool(torch.isfinite(loss)) and all(
        bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None
    )
    optimizer.step()
    moved = sum(not torch.equal(before[name], p) for name, p in model.named_parameters())
    rows.append(
        ("bf16 autocast training step", finite and moved > 0, f"loss {loss.item():.4f}, {moved} tensors moved")
    )
    return rows


def peak_memory(case: ModelCase, device: str) -> tuple[str, bool, str]:
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
    if device == "cuda":
        torch.cuda.synchronize()
        peak = f"peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    else:
        peak = "peak n/a on CPU"
    return (
        "bf16 forward+backward, default config",
        bool(torch.isfinite(loss)),
        f"{peak}, {time.perf_counter() - start:.2f} s, batch {len(next(iter(inputs.values())))}",
    )


def check_scan_kernel(device: str) -> tuple[str, bool, str] | None:
    from modeling_hsanet import modeling_hsanet

    if device != "cuda" or modeling_hsanet._mamba_selective_scan_fn is None:
        return None
    generator = torch.Generator().manual_seed(0)
    batch, inner, state, length = 4, 64, 16, 256
    u, B, C = (
        torch.randn(*shape, generator=generator)
        for shape in ((batch, inner, length), (batch, state, length), (batch, state, length))
    )
    delta = torch.nn.functional.softplus(torch.randn(batch, inner, length, generator=generator))
    A, D = -torch.rand(inner, state, generator=generator) * 3, torch.randn(inner, generator=generator)
    args = [x.to(device) for x in (u, delta, A, B, C, D)]
    difference = relative_difference(selective_scan(*args), selective_scan_pytorch(*args))
    return ("mamba_ssm kernel equals PyTorch scan", difference <= 1e-4, f"max rel. difference {difference:.2e}")


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
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"# gpu_check on {name}, torch {torch.__version__}\n\n| model | check | ok | detail |\n|---|---|---|---|")
    failures = 0

    def report(model_name: str, rows) -> None:
        nonlocal failures
        for check, ok, detail in rows:
            failures += not ok
            print(f"| {model_name} | {check} | {'yes' if ok else 'NO'} | {detail} |", flush=True)

    for case in cases(tiny=True):
        try:
            report(case.name, check_dtypes(case, args.device))
        except Exception as error:  # noqa: BLE001 - a crash is a failed check; go on with the other models
            traceback.print_exc()
            report(case.name, [("dtype and device checks", False, f"{type(error).__name__}: {error}")])
    if not args.skip_memory and args.device != "cpu":
        for case in cases(tiny=False):
            try:
                report(case.name, [peak_memory(case, args.device)])
            except Exception as error:  # noqa: BLE001
                report(
                    case.name, [("bf16 forward+backward, default config", False, f"{type(error).__name__}: {error}")]
                )
    scan = check_scan_kernel(args.device)
    if scan is not None:
        report("selective scan", [scan])
    print(f"\n{failures} check(s) failed" if failures else "\nall checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
