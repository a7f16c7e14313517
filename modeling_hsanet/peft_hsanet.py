"""PEFT (LoRA) for HSA-Net: which modules an adapter must carry whole, named in one place.

LoRA trains low-rank updates of Linear layers and saves only those. Two other things change while fine-tuning HSA-Net:

- the GIN encoder's BatchNorm layers update their running mean and variance (buffers, not weights) at every forward
  in train mode, and eval mode normalises with them (when LoRA reaches the GIN: a GIN with no trainable parameter
  stays in eval mode, see `HSANetModel.train`);
- the property head (`classifier`) is new and trained from scratch.

An adapter without them does not reproduce the fine-tuned model (eval logits differ by ~1e-3). PEFT saves such modules
whole when they are listed in `modules_to_save`; `hsanet_lora_config` lists them. `peft` is optional: it is imported
inside the function.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from peft import LoraConfig

# The attention projections of every cross-attention pool (cross-attention and Graph-Mamba projectors, motif branch).
DEFAULT_LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


def batch_norm_module_names(model: nn.Module) -> list[str]:
    """Full names of every batch-norm layer of `model` (BatchNorm1d/2d/3d, SyncBatchNorm, torch_geometric's
    BatchNorm through the layer it wraps), in `named_modules` order: the layers whose running statistics change in
    train mode."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]


def hsanet_modules_to_save(model: nn.Module) -> list[str]:
    """What an HSA-Net adapter must save whole: every batch-norm layer, and the property head when there is one."""
    head = ["classifier"] if isinstance(getattr(model, "classifier", None), nn.Module) else []
    return batch_norm_module_names(model) + head


def hsanet_lora_config(model: nn.Module, **kwargs: Any) -> LoraConfig:
    """A `peft.LoraConfig` whose adapter reproduces the fine-tuned `model` (an `HSANetModel` or
    `HSANetForMolecularPropertyPrediction`): LoRA on `target_modules` (default: the attention projections,
    `DEFAULT_LORA_TARGET_MODULES`; `"all-linear"` works too) and `hsanet_modules_to_save(model)` saved whole,
    together with any `modules_to_save` given. Other keyword arguments go to `LoraConfig` (`r`, `lora_alpha`,
    `lora_dropout`, ...).

    Example:
    ```python
    >>> from peft import get_peft_model
    >>> peft_model = get_peft_model(model, hsanet_lora_config(model, r=8, lora_alpha=16))
    ```
    """
    try:
        from peft import LoraConfig
    except ImportError as error:
        raise ImportError("hsanet_lora_config needs the `peft` package: pip install peft") from error
    extra = list(kwargs.pop("modules_to_save", None) or [])
    modules_to_save = hsanet_modules_to_save(model)
    modules_to_save += [name for name in extra if name not in modules_to_save]
    kwargs.setdefault("target_modules", list(DEFAULT_LORA_TARGET_MODULES))
    return LoraConfig(modules_to_save=modules_to_save, **kwargs)


# Stage 2 of molecule-to-text training: what trains besides LoRA (the GIN stays frozen, hence in eval mode).
GRAPH_SIDE_MODULES = ("hsanet.projector", "hsanet.motif_projector", "hsanet.source_embedding", "hsanet.fusion")


def hsanet_text_lora_config(model: nn.Module, target_modules: list[str] | None = None, train_graph_side: bool = True,
                            **kwargs: Any) -> LoraConfig:
    """A `peft.LoraConfig` for stage 2 of `HSANetForConditionalGeneration` training (LLaMo / MolCA): LoRA on the
    language model's attention only (peft's default targets for its `model_type`, e.g. `q_proj`/`v_proj` for Llama
    and OPT, `query`/`value` for BERT, `c_attn` for GPT-2, unless `target_modules` is given), the projection to the
    language model and, with `train_graph_side`, the projectors, motif branch and fusion trained and saved whole. The
    GIN is frozen; with no trainable parameter it stays in eval mode, so its BatchNorm statistics do not drift.
    Other keyword arguments go to `LoraConfig` (`r`, `lora_alpha`, `lora_dropout`, ...; LLaMo: r 8, alpha 32,
    dropout 0.05).
    """
    try:
        from peft import LoraConfig
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    except ImportError as error:
        raise ImportError("hsanet_text_lora_config needs the `peft` package: pip install peft") from error
    text_type = model.config.text_config.model_type
    targets = target_modules or TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(text_type)
    if not targets:
        raise ValueError(f"peft has no default LoRA targets for a {text_type!r} language model: pass target_modules, "
                         "the names of its attention projections")
    present = {name for name, _ in model.named_modules()}
    modules_to_save = ["text_projector"]
    if train_graph_side:
        modules_to_save += [name for name in GRAPH_SIDE_MODULES if name in present]
    modules_to_save += [name for name in kwargs.pop("modules_to_save", None) or [] if name not in modules_to_save]
    pattern = r"language_model\..*\.(" + "|".join(map(re.escape, targets)) + ")"
    return LoraConfig(target_modules=pattern, modules_to_save=modules_to_save, **kwargs)


__all__ = [
    "DEFAULT_LORA_TARGET_MODULES",
    "GRAPH_SIDE_MODULES",
    "batch_norm_module_names",
    "hsanet_lora_config",
    "hsanet_modules_to_save",
    "hsanet_text_lora_config",
]
