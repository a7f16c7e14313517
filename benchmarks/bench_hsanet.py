"""CPU inference benchmark of HSA-Net (`make bench`, or `.venv/bin/python benchmarks/bench_hsanet.py`).

Prints three markdown tables (plus a featurization breakdown):

1. Encoder throughput on real molecules (RDKit's c-Met set, batches of 32), default config, against the alternative
   a user would otherwise pick: the same GIN encoder followed by a mean over atoms.
2. Cost of one Graph-Mamba projector vs one cross-attention projector at the same width, on the same node states.
3. Time vs molecule size (about 50, 200 and 1000 heavy atoms), batch of 1 and of 8 copies, so that linear growth
   (or its absence) is visible.

Every number is the median of several repeats after a warm-up, under `torch.no_grad()` with `model.eval()`.
Options: `--quick` (fewer repeats, for a smoke run), `--threads N` (torch intra-op threads).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
import rdkit  # noqa: E402
import torch  # noqa: E402
from rdkit import Chem, RDConfig  # noqa: E402
from torch_geometric.data import Batch, Data  # noqa: E402

from modeling_hsanet import HSANetConfig, HSANetModel, HSANetProcessor  # noqa: E402
from modeling_hsanet import featurization_hsanet as feat  # noqa: E402
from modeling_hsanet import modeling_hsanet as mh  # noqa: E402
from modeling_hsanet.modeling_hsanet import (  # noqa: E402
    CrossAttentionProjector,
    GraphBatchLayout,
    GraphMambaProjector,
)
from modeling_hsanet.processing_hsanet import collate_graphs  # noqa: E402

CMET_PATH = os.path.join(RDConfig.RDContribDir, "FreeWilson", "data", "CHEMBL2321810.smi")
BATCH_SIZE = 32
# One repeating unit = CH2-CH2-O-CH2 + a para-phenylene: 10 heavy atoms, a linear chain with rings.
SIZE_UNIT, SIZE_END = "CCOCc1ccc(cc1)", "C"
SIZE_TARGETS = (50, 200, 1000)


# ---------------------------------------------------------------------------------------------------------------------
# Timing helpers
# ---------------------------------------------------------------------------------------------------------------------
class Timing:
    """Median / min / max of the repeats of one measurement, in seconds."""

    def __init__(self, samples: list[float]):
        self.samples = samples
        self.median = statistics.median(samples)
        self.min = min(samples)
        self.max = max(samples)

    @property
    def spread(self) -> float:
        """(max - min) / median, in percent: how noisy the measurement was."""
        return 100.0 * (self.max - self.min) / self.median if self.median > 0 else 0.0

    def __add__(self, other: Timing) -> Timing:
        """Sum of two stages: per-repeat sums (repeats are paired by index; the shorter list wins)."""
        return Timing([a + b for a, b in zip(self.samples, other.samples)])


def measure(fn: Callable[[], object], repeats: int, warmup: int = 1, budget_s: float = float("inf"),
            min_repeats: int = 3) -> Timing:
    """Run `fn` `warmup` times, then up to `repeats` timed times (fewer, but at least `min_repeats`, once the timed
    runs have used `budget_s` seconds)."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    spent = 0.0
    while len(samples) < repeats:
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
        spent += samples[-1]
        if spent > budget_s and len(samples) >= min(min_repeats, repeats):
            break
    return Timing(samples)


def markdown_table(headers: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A markdown table; `align` is one character per column, `l` or `r` (default: first left, the rest right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) if a == "l" else str(c).rjust(w)
                                 for c, w, a in zip(cells, widths, align)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else (":" + "-" * (w + 1))
                          for w, a in zip(widths, align)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def ms(seconds: float) -> str:
    value = seconds * 1e3
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def minor_page_faults() -> int:
    """Minor page faults of this process so far (0 where `resource` is unavailable)."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def keep_freed_memory() -> str:
    """Ask glibc malloc to keep freed memory instead of returning it to the kernel after every tensor.

    The pure-PyTorch selective scan allocates and frees large temporaries on every forward; with glibc's defaults
    most of them are fresh `mmap`s, so every forward pays hundreds of thousands of page faults, whose cost depends on
    the machine (it is very high and erratic in some VMs). Keeping the memory makes the numbers measure compute.
    Returns a description of what was done.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) == 1 and libc.mallopt(m_trim_threshold, 1 << 30) == 1
    except (OSError, AttributeError):
        ok = False
    return ("glibc mallopt: M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=1 GiB (freed memory is reused)" if ok
            else "glibc mallopt unavailable: allocator defaults")


# ---------------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------------
def load_cmet_smiles() -> list[str]:
    with open(CMET_PATH) as handle:
        return [line.split()[0] for line in handle if line.strip()]


def size_series_smiles(target_atoms: int) -> str:
    """A linear chain of `SIZE_UNIT` repeats with about `target_atoms` heavy atoms."""
    units = max(1, round((target_atoms - len(SIZE_END)) / 10))
    return SIZE_UNIT * units + SIZE_END


def heavy_atoms(smiles: str) -> int:
    return Chem.MolFromSmiles(smiles).GetNumAtoms()


def gin_featurize(smiles: list[str]) -> dict[str, torch.Tensor]:
    """What a plain-GIN user needs: OGB atom / bond features and the batch vector, nothing structure-aware."""
    scheme = feat.FEATURE_SCHEMES["ogb"]
    data = []
    for index, s in enumerate(smiles):
        mol = feat.parse_smiles(s, index)
        bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()],
                         dtype=np.int64).reshape(-1, 2)
        bond_features = scheme.bond_features(mol)
        data.append(Data(
            x=torch.from_numpy(scheme.atom_features(mol)),
            edge_index=torch.from_numpy(np.concatenate([bonds, bonds[:, ::-1]]).T.copy()),
            edge_attr=torch.from_numpy(np.concatenate([bond_features, bond_features])),
            num_nodes=mol.GetNumAtoms(),
        ))
    batch = Batch.from_data_list(data)
    return {"atom_features": batch.x, "edge_index": batch.edge_index, "bond_features": batch.edge_attr,
            "num_atoms": batch.ptr.diff()}


def gin_mean_forward(encoder, inputs) -> torch.Tensor:
    """The baseline: the HSA-Net GIN encoder followed by a mean over each molecule's atoms."""
    levels = encoder(inputs["atom_features"], inputs["edge_index"], inputs["bond_features"])
    layout = GraphBatchLayout(inputs["num_atoms"], torch.zeros_like(inputs["atom_features"][:, 0]))
    return layout.mean_per_molecule(levels[-1])


def projector_inputs(model: HSANetModel, inputs) -> tuple[torch.Tensor, GraphBatchLayout, dict]:
    """Node states of the last GIN level, the batch layout and the structure arguments of the Graph-Mamba projector
    (clipped as `HSANetModel.forward` clips them)."""
    levels = model.encoder(inputs["atom_features"], inputs["edge_index"], inputs["bond_features"])
    layout = GraphBatchLayout(inputs["num_atoms"], inputs["structure_rank"])
    clip = model.config.max_scan_distance
    structure = {
        "edge_index": inputs["edge_index"],
        "distance_to_previous": inputs["distance_to_previous"].clamp(max=clip),
        "distance_to_next": inputs["distance_to_next"].clamp(max=clip),
    }
    return levels[-1], layout, structure


def build_model(**config_kwargs) -> HSANetModel:
    torch.manual_seed(0)
    return HSANetModel(HSANetConfig(**config_kwargs)).eval()


# ---------------------------------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------------------------------
def section_throughput(args, processor, model, forced_models) -> None:
    smiles = load_cmet_smiles()
    num_batches = args.cmet_batches
    batches = [smiles[i * BATCH_SIZE:(i + 1) * BATCH_SIZE] for i in range(num_batches)]
    num_molecules = sum(len(b) for b in batches)
    hsa_inputs = [processor(b) for b in batches]
    gin_inputs = [gin_featurize(b) for b in batches]
    atoms = torch.cat([x["num_atoms"] for x in hsa_inputs]).float()
    repeats = args.repeats

    def over_batches(fn, inputs_list):
        return lambda: [fn(x) for x in inputs_list]

    default_malloc = None
    if args.malloc_tuning:  # first, the forward as a plain process runs it (glibc defaults), then tune
        faults = minor_page_faults()
        default_malloc = measure(over_batches(lambda x: model(**x), hsa_inputs), max(3, repeats // 2))
        default_faults = (minor_page_faults() - faults) / ((len(default_malloc.samples) + 1) * num_batches)
        args.malloc_note = keep_freed_memory()
    faults = minor_page_faults()
    hsa_fwd = measure(over_batches(lambda x: model(**x), hsa_inputs), repeats)
    tuned_faults = (minor_page_faults() - faults) / ((len(hsa_fwd.samples) + 1) * num_batches)
    hsa_feat = measure(lambda: [processor(b) for b in batches], repeats)
    gin_feat = measure(lambda: [gin_featurize(b) for b in batches], repeats)
    gin_fwd = measure(over_batches(lambda x: gin_mean_forward(model.encoder, x), gin_inputs), repeats)
    forced = {mode: measure(over_batches(lambda x, m=m: m(**x), hsa_inputs), repeats)
              for mode, m in forced_models.items()}

    def row(label, hsa: Timing, gin: Timing | None):
        cells = [label, ms(hsa.median / num_batches), f"{num_molecules / hsa.median:,.0f}"]
        if gin is None:
            return cells + ["", "", ""]
        return cells + [ms(gin.median / num_batches), f"{num_molecules / gin.median:,.0f}",
                        f"{hsa.median / gin.median:.1f}x"]

    rows = [
        row("featurization (processor / OGB-only for GIN)", hsa_feat, gin_feat),
        row("model forward", hsa_fwd, gin_fwd),
        row("total (featurization + forward)", hsa_feat + hsa_fwd, gin_feat + gin_fwd),
    ]
    for mode, timing in forced.items():
        rows.append(row(f"  forward, projector_mode={mode!r}", timing, gin_fwd))
    if default_malloc is not None:
        rows.append(row("  forward, glibc malloc defaults", default_malloc, gin_fwd))
    print(f"## 1. Encoder throughput, default config (hidden {model.config.hidden_size}, "
          f"{model.config.num_gnn_layers} GIN layers, projector_mode='{model.config.projector_mode}')\n")
    print(
        f"{num_molecules} c-Met molecules (CHEMBL2321810.smi) in {num_batches} "
        f"batch{'es' if num_batches > 1 else ''} of {BATCH_SIZE}; "
        f"heavy atoms per molecule: mean {atoms.mean():.1f}, min {int(atoms.min())}, max {int(atoms.max())}. "
        f"Median of {len(hsa_fwd.samples)} repeats (forward spread {hsa_fwd.spread:.0f}%). "
        f"Minor page faults per batch forward: {tuned_faults:,.0f}"
        + (f" with the malloc setting below, {default_faults:,.0f} with glibc defaults" if default_malloc else "")
        + ".\n"
    )
    print(
        markdown_table(
            [
                "stage",
                "HSA-Net ms/batch",
                "HSA-Net mol/s",
                "GIN+mean ms/batch",
                "GIN+mean mol/s",
                "HSA-Net / GIN time",
            ],
            rows,
        )
    )
    print(
        "\nGIN+mean = the same `HSANetGINEncoder` weights followed by `GraphBatchLayout.mean_per_molecule`; its "
        "featurization is parse + OGB atom/bond features + collate only (no structure-aware order, distances or "
        "motif counts). The forced-mode rows are full HSA-Net forwards that build only one projector per level."
        + (
            " 'glibc malloc defaults' is the adaptive forward measured before the allocator setting printed below "
            "was applied (every other number uses that setting)."
            if default_malloc
            else ""
        )
        + "\n"
    )


def section_projectors(args, processor, model) -> None:
    smiles = load_cmet_smiles()[:BATCH_SIZE]
    inputs = processor(smiles)
    node_states, layout, structure = projector_inputs(model, inputs)
    mamba: GraphMambaProjector = model.projector.graph_mamba[0]
    attention: CrossAttentionProjector = model.projector.cross_attention[0]
    repeats = args.repeats * 2
    t_mamba = measure(lambda: mamba(node_states, layout, **structure), repeats)
    t_attn = measure(lambda: attention(node_states, layout), repeats)

    # Where the Graph-Mamba time goes: one direction of the scan, and the selective scan alone.
    dense = layout.to_dense(node_states, layout.forward_position)
    distance = layout.to_dense(structure["distance_to_previous"], layout.forward_position)
    t_scan_block = measure(lambda: mamba.forward_scan(dense, distance), repeats)
    t_pool = measure(lambda: mamba.pool(dense, layout.mask), repeats)

    n_atoms = int(inputs["num_atoms"].sum())
    rows = [
        [
            "GraphMambaProjector (whole)",
            ms(t_mamba.median),
            f"{t_mamba.median * 1e6 / n_atoms:.1f}",
            f"{t_mamba.spread:.0f}%",
        ],
        [
            "  of which 1 scan direction (StructureAwareSelectiveScan)",
            ms(t_scan_block.median),
            f"{t_scan_block.median * 1e6 / n_atoms:.1f}",
            f"{t_scan_block.spread:.0f}%",
        ],
        [
            "  of which query pooling (QueryCrossAttention)",
            ms(t_pool.median),
            f"{t_pool.median * 1e6 / n_atoms:.1f}",
            f"{t_pool.spread:.0f}%",
        ],
        [
            "CrossAttentionProjector",
            ms(t_attn.median),
            f"{t_attn.median * 1e6 / n_atoms:.1f}",
            f"{t_attn.spread:.0f}%",
        ],
    ]
    print(f"## 2. Projector cost at hidden {model.config.hidden_size} (level 0 projectors of the adaptive model)\n")
    print(
        f"Same batch of {BATCH_SIZE} c-Met molecules ({n_atoms} atoms), node states of the last GIN level. "
        f"Median of {len(t_mamba.samples)} repeats.\n"
    )
    print(markdown_table(["projector", "ms/batch", "µs/atom", "spread"], rows))
    print(
        f"\nGraph-Mamba / cross-attention time: **{t_mamba.median / t_attn.median:.1f}x**. "
        f"Selective scan: {'mamba_ssm CUDA kernel' if mh._mamba_selective_scan_fn is not None else 'pure PyTorch'} "
        f"(CPU tensors always use the pure-PyTorch chunked scan).\n"
    )


def section_scaling(args, processor, model) -> None:
    mamba = model.projector.graph_mamba[0]
    attention = model.projector.cross_attention[0]
    series = [(target, size_series_smiles(target)) for target in SIZE_TARGETS]
    series = [(target, s, heavy_atoms(s)) for target, s in series]

    rows = []
    medians: dict[tuple[str, int, int], float] = {}
    for batch_size in args.size_batches:
        base: dict[str, tuple[float, int]] = {}
        for target, smiles, n_atoms in series:
            batch = [smiles] * batch_size
            inputs = processor(batch)
            node_states, layout, structure = projector_inputs(model, inputs)
            big = n_atoms * batch_size >= 4000
            repeats = max(3, args.repeats // 2) if big else args.repeats
            budget = args.big_budget_s
            timings = {
                "featurization": measure(lambda: processor(batch), repeats, budget_s=budget),
                "GIN encoder (5 layers)": measure(
                    lambda: model.encoder(inputs["atom_features"], inputs["edge_index"], inputs["bond_features"]),
                    repeats,
                    budget_s=budget,
                ),
                "Graph-Mamba projector (x1)": measure(
                    lambda: mamba(node_states, layout, **structure), repeats, budget_s=budget
                ),
                "cross-attention projector (x1)": measure(
                    lambda: attention(node_states, layout), repeats, budget_s=budget
                ),
                "full HSANetModel forward": measure(lambda: model(**inputs), repeats, budget_s=budget),
            }
            for component, timing in timings.items():
                medians[component, n_atoms, batch_size] = timing.median
                total_atoms = n_atoms * batch_size
                if component not in base:
                    base[component] = (timing.median, n_atoms)
                base_time, base_atoms = base[component]
                rows.append(
                    [
                        component,
                        f"{n_atoms}",
                        f"{batch_size}",
                        ms(timing.median),
                        f"{timing.median * 1e6 / total_atoms:.1f}",
                        f"{timing.median / base_time:.1f}x",
                        f"{n_atoms / base_atoms:.1f}x",
                        f"{len(timing.samples)}",
                        f"{timing.spread:.0f}%",
                    ]
                )
    rows.sort(key=lambda r: (int(r[2]), COMPONENT_ORDER.index(r[0]), int(r[1])))
    print("## 3. Time vs molecule size\n")
    print(
        "Molecules: "
        + "; ".join(
            f"~{t}: `{SIZE_UNIT}`x{(len(s) - len(SIZE_END)) // len(SIZE_UNIT)}+`{SIZE_END}` = {n} heavy atoms"
            for t, s, n in series
        )
    )
    print(
        f"(linear chains of CH2CH2OCH2 + para-phenylene units). Batches of 1 molecule and of {max(args.size_batches)} "
        "copies. µs/atom divides by all atoms of the batch; the ratios compare with the smallest molecule at the "
        "same batch size, so linear scaling means `time ratio` ≈ `atom ratio` and a flat µs/atom. "
        "The full forward runs 6 levels x (both projectors + a gate), so it costs ~6x one of each.\n"
    )
    print(
        markdown_table(
            ["component", "atoms/mol", "batch", "ms", "µs/atom", "time ratio", "atom ratio", "repeats", "spread"], rows
        )
    )
    print()

    # Padding: a batch with one large and seven small molecules is padded to the large one in both projectors.
    (_, small, n_small), (_, large, n_large) = series[0], series[-1]
    mixed = [large] + [small] * 7
    inputs = processor(mixed)
    node_states, layout, structure = projector_inputs(model, inputs)
    n_mixed = n_large + 7 * n_small
    mixed_rows = []
    for component, fn in (
        ("Graph-Mamba projector (x1)", lambda: mamba(node_states, layout, **structure)),
        ("cross-attention projector (x1)", lambda: attention(node_states, layout)),
        ("full HSANetModel forward", lambda: model(**inputs)),
    ):
        timing = measure(fn, max(3, args.repeats // 2), budget_s=args.big_budget_s)
        separate = medians[component, n_large, 1] + medians[component, n_small, 8]
        mixed_rows.append(
            [
                component,
                ms(timing.median),
                f"{timing.median * 1e6 / n_mixed:.1f}",
                ms(separate),
                ms(medians[component, n_large, 8]),
                f"{timing.median / separate:.1f}x",
            ]
        )
    print(f"### 3b. Padding: one {n_large}-atom molecule batched with seven {n_small}-atom ones ({n_mixed} atoms)\n")
    print(
        markdown_table(
            [
                "component",
                "mixed batch ms",
                "µs/real atom",
                f"{n_large}x1 + {n_small}x8 ms",
                f"{n_large}x8 ms",
                "mixed / separate",
            ],
            mixed_rows,
        )
    )
    print()

    # Featurization stages of one molecule of each size: which step (if any) grows faster than linearly.
    scheme = feat.FEATURE_SCHEMES["ogb"]
    stage_rows = []
    for _, smiles, n_atoms in series:
        mol = feat.parse_smiles(smiles)
        bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()], dtype=np.int64).reshape(
            -1, 2
        )
        rank = np.array(Chem.CanonicalRankAtoms(mol, breakTies=True), dtype=np.int64)
        degrees = np.bincount(bonds.reshape(-1), minlength=n_atoms)
        fragments = feat.brics_fragment_ids(mol, rank)
        order = feat.structure_aware_order(fragments, degrees, rank)
        graph = feat.mol_to_graph(mol, scheme, args.max_scan_distance)
        stages = {
            "parse": lambda: feat.parse_smiles(smiles),
            "OGB atom+bond features": lambda: (scheme.atom_features(mol), scheme.bond_features(mol)),
            "canonical rank": lambda: Chem.CanonicalRankAtoms(mol, breakTies=True),
            "BRICS fragments": lambda: feat.brics_fragment_ids(mol, rank),
            "consecutive distances": lambda: feat.consecutive_distances(bonds, n_atoms, order, args.max_scan_distance),
            "motif counts (85 fr_*)": lambda: feat.functional_group_counts(mol),
            "collate (1 molecule)": lambda: collate_graphs([graph]),
        }
        for stage, fn in stages.items():
            timing = measure(fn, args.repeats)
            stage_rows.append([stage, f"{n_atoms}", ms(timing.median), f"{timing.median * 1e6 / n_atoms:.1f}"])
    stage_rows.sort(key=lambda r: (list(stages).index(r[0]), int(r[1])))
    print("### 3c. Featurization stages, one molecule\n")
    print(markdown_table(["stage", "atoms", "ms", "µs/atom"], stage_rows))
    print()


COMPONENT_ORDER = (
    "featurization",
    "GIN encoder (5 layers)",
    "Graph-Mamba projector (x1)",
    "cross-attention projector (x1)",
    "full HSANetModel forward",
)


# ---------------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def benchmark_parser(description: str, quick_help: str) -> argparse.ArgumentParser:
    """The options every benchmark script takes: `--quick` and `--threads` (read with `parse_benchmark_args`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    return parser


def parse_benchmark_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line and apply `--threads`."""
    args = parser.parse_args()
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    return args


def main() -> None:
    parser = benchmark_parser(__doc__.splitlines()[0], "fewer repeats and batches (smoke run)")
    parser.add_argument(
        "--no-malloc-tuning",
        dest="malloc_tuning",
        action="store_false",
        help="keep glibc's malloc defaults (slower and noisier: page faults on every forward)",
    )
    args = parse_benchmark_args(parser)
    args.repeats = 3 if args.quick else 7
    args.cmet_batches = 1 if args.quick else 4
    args.size_batches = (1, 8)
    args.big_budget_s = 5.0 if args.quick else 30.0
    args.max_scan_distance = HSANetConfig().max_scan_distance
    args.malloc_note = "allocator defaults (--no-malloc-tuning)"

    import torch_geometric
    import transformers

    started = time.perf_counter()
    print("# HSA-Net CPU inference benchmark\n")
    print(f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"- cpu: {cpu_model()} ({os.cpu_count()} logical cores visible)")
    print(
        f"- torch {torch.__version__} ({torch.get_num_threads()} intra-op threads), "
        f"torch_geometric {torch_geometric.__version__}, transformers {transformers.__version__}, "
        f"rdkit {rdkit.__version__}, numpy {np.__version__}, python {platform.python_version()}"
    )
    print(
        f"- mode: {'quick' if args.quick else 'full'}; every number is a median after 1 warm-up run, "
        "torch.no_grad(), model.eval(), float32\n"
    )

    processor = HSANetProcessor()
    with torch.no_grad():
        model = build_model(projector_mode="adaptive")
        forced = {mode: build_model(projector_mode=mode) for mode in ("cross_attention", "graph_mamba")}
        section_throughput(args, processor, model, forced)
        del forced
        print(f"Allocator: {args.malloc_note}.\n")
        section_projectors(args, processor, model)
        section_scaling(args, processor, model)
    print(f"_total benchmark time: {time.perf_counter() - started:.0f} s_")


if __name__ == "__main__":
    main()
