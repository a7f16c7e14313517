"""Training recipe for molecule-to-text (`HSANetForConditionalGeneration`), beside the model: the paper's two stages
(after LLaMo and MolCA), generation over a dataset, and scoring with the local metrics module.

- **Stage 1** aligns the graph side with a frozen language model: the GIN, the Hierarchical Adaptive Projector, the
  motif branch, the Source-Aware Fusion and the projection train (LLaMo: lr 1e-4, cosine, warm-up).
- **Stage 2** instruction-tunes: the GIN is frozen (it then stays in eval mode, so its BatchNorm statistics do not
  drift), LoRA on the language model's attention (LLaMo: r 8, alpha 32, dropout 0.05, lr 5e-5), projectors, fusion
  and projection trained and saved whole (`hsanet_text_lora_config`).
- **`"full"`** trains everything (a language model whose head is not pretrained, e.g. a BERT encoder warm-started as
  a decoder, needs it).

Labels mask the prompt and the graph positions (`HSANetProcessor`); `Trainer` runs the stages
(`examples/train_molecule_to_text.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .modeling_text_hsanet import HSANetForConditionalGeneration
from .peft_hsanet import hsanet_text_lora_config
from .processing_hsanet import HSANetProcessor

STAGES = ("1", "2", "full")


def prepare_stage(model: HSANetForConditionalGeneration, stage: str, **lora_kwargs):
    """Set what trains in `stage` ("1", "2" or "full"); returns the model to train (a `peft` model in stage 2)."""
    stage = str(stage)
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    model.requires_grad_(True)
    if stage == "1":
        model.language_model.requires_grad_(False)
        return model
    if stage == "2":
        from peft import get_peft_model

        lora_kwargs = {"r": 8, "lora_alpha": 32, "lora_dropout": 0.05, **lora_kwargs}
        peft_model = get_peft_model(model, hsanet_text_lora_config(model, **lora_kwargs))
        return peft_model  # peft freezes the rest, the GIN included
    return model


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


@torch.no_grad()
def generate_texts(model, processor: HSANetProcessor, rows: Sequence[dict], batch_size: int = 32,
                   max_new_tokens: int = 48, **generate_kwargs) -> list[str]:
    """Greedy (unless told otherwise) texts for rows with `smiles` and `instruction`, in order."""
    was_training = model.training
    model.eval()
    texts = []
    for start in range(0, len(rows), batch_size):
        chunk = list(rows[start:start + batch_size])
        inputs = processor([row["smiles"] for row in chunk], text=[row["instruction"] for row in chunk])
        inputs = {key: value.to(model.device) for key, value in inputs.items()}
        generated = model.generate(**inputs, max_new_tokens=max_new_tokens,
                                   **{"do_sample": False, **generate_kwargs})
        texts += [text.strip() for text in processor.batch_decode(generated[:, inputs["input_ids"].shape[1]:],
                                                                  skip_special_tokens=True)]
    model.train(was_training)
    return texts


def score_texts(predictions: Sequence[str], references: Sequence[str], tokenizer="words") -> dict:
    """BLEU-2/4, ROUGE-1/2/L and METEOR (MolT5 protocol) from the package's local `evaluate` module."""
    from .metrics import load_molecule_text_metrics

    return load_molecule_text_metrics().compute(predictions=list(predictions), references=list(references),
                                                tokenizer=tokenizer)


__all__ = ["STAGES", "prepare_stage", "count_parameters", "generate_texts", "score_texts"]
