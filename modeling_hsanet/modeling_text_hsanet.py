"""HSA-Net for molecule-to-text: captioning, naming and question answering with any causal language model.

LLaVA's design with a molecule encoder in place of the vision tower: the fused HSA-Net tokens of a molecule are
projected into the embedding space of a causal LM (`config.text_config`: Llama, OPT/Galactica, GPT-2, Qwen, or BERT
with `is_decoder=True`) and replace the `<graph>` placeholder tokens of the prompt, which holds the SMILES, the
placeholders and the instruction (the paper's input). `HSANetProcessor` writes such prompts.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationConfig, GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache
from transformers.utils import ModelOutput

from .configuration_hsanet import HSANetConfig
from .modeling_hsanet import HSANetModel, HSANetPreTrainedModel
from .processing_hsanet import special_token_id

GRAPH_INPUT_NAMES = ("atom_features", "edge_index", "bond_features", "num_atoms", "structure_rank",
                     "distance_to_previous", "distance_to_next", "motif_counts")


@dataclass
class HSANetCausalLMOutputWithPast(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*):
        Next-token loss of the language model over the positions whose label is not -100 (prompt and graph
        positions are masked), plus `router_aux_loss_coef * aux_loss` when the molecules were encoded in this pass.
    logits (`torch.FloatTensor` of shape `(batch, sequence_length, vocab_size)`):
        Language-model logits.
    cache (`Cache`, *optional*):
        The language model's key/value cache (`use_cache=True`).
    hidden_states, attentions (`tuple(torch.FloatTensor)`, *optional*):
        The language model's, as in transformers.
    graph_hidden_states (`torch.FloatTensor` of shape `(batch, num_graph_tokens, text_hidden_size)`, *optional*):
        The projected HSA-Net tokens that replaced the placeholders, when the molecules were encoded in this pass.
    projector_choices (`torch.LongTensor` of shape `(batch, num_levels)`, *optional*):
        Projector used per GIN level (0 = cross-attention, 1 = Graph-Mamba).
    aux_loss (`torch.FloatTensor` of shape `()`, *optional*):
        Load-balancing loss of the Source-Aware Fusion router.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: Cache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    graph_hidden_states: torch.FloatTensor | None = None
    projector_choices: torch.LongTensor | None = None
    aux_loss: torch.FloatTensor | None = None


class HSANetTextProjector(nn.Module):
    """HSA-Net tokens -> language-model embeddings: Linear, activation, Linear (LLaVA's multi-modal projector)."""

    def __init__(self, config: HSANetConfig, text_hidden_size: int):
        super().__init__()
        self.linear_1 = nn.Linear(config.hidden_size, text_hidden_size)
        self.act = ACT2FN[config.text_projector_hidden_act]
        self.linear_2 = nn.Linear(text_hidden_size, text_hidden_size)

    def forward(self, graph_tokens: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(graph_tokens)))


class HSANetForConditionalGeneration(HSANetPreTrainedModel, GenerationMixin):
    r"""
    HSA-Net encoder + projection + causal language model, for molecule-to-text generation.

    `config.text_config` configures the language model and `config.graph_token_id` is the placeholder token.
    `language_model` and `hsanet` may be given already built (e.g. pretrained), as in transformers'
    `VisionEncoderDecoderModel`; `from_graph_text_pretrained` does that from two checkpoints and a tokenizer.

    A GIN whose parameters are all frozen stays in eval mode under `model.train()`, so its BatchNorm running
    statistics do not drift while the rest trains (stage 2; see `HSANetModel.train`).

    Example:
    ```python
    >>> processor = HSANetProcessor(tokenizer=tokenizer, num_graph_tokens=model.config.num_graph_tokens)
    >>> inputs = processor(["CCO"], text=["Describe this molecule."])
    >>> generated = model.generate(**inputs, max_new_tokens=32)
    >>> processor.batch_decode(generated[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    ```
    """

    main_input_name = "input_ids"
    accepts_loss_kwargs = True  # `num_items_in_batch` reaches the language model's loss (gradient accumulation)
    _no_split_modules = HSANetPreTrainedModel._no_split_modules + ["HSANetTextProjector"]

    def __init__(
        self,
        config: HSANetConfig,
        language_model: PreTrainedModel | None = None,
        hsanet: HSANetModel | None = None,
    ):
        if config.text_config is None:
            raise ValueError("HSANetForConditionalGeneration needs `config.text_config`, the causal language model's "
                             "configuration (e.g. HSANetConfig(text_config=AutoConfig.from_pretrained(...)))")
        if config.graph_token_id is None:
            raise ValueError("HSANetForConditionalGeneration needs `config.graph_token_id`, the id of the `<graph>` "
                             "placeholder token in the language model's vocabulary")
        super().__init__(config)
        self.hsanet = hsanet if hsanet is not None else HSANetModel(config)
        if language_model is None:
            language_model = AutoModelForCausalLM.from_config(config.text_config)
        else:
            self.config.text_config = language_model.config  # one config object, saved as the model runs
        self.language_model = language_model
        self.text_projector = HSANetTextProjector(config, language_model.get_input_embeddings().embedding_dim)
        self._language_model_parameters = set(inspect.signature(language_model.forward).parameters)
        self.post_init()
        self.generation_config = self._generation_config_from_text_config(config)

    @staticmethod
    def _generation_config_from_text_config(config: HSANetConfig) -> GenerationConfig:
        """The language model's special tokens; the placeholder is never generated."""
        generation_config = GenerationConfig.from_model_config(config.text_config)
        generation_config.suppress_tokens = [config.graph_token_id]
        return generation_config

    @classmethod
    def from_graph_text_pretrained(
        cls,
        text_model_name_or_path: str,
        tokenizer,
        hsanet_model_name_or_path: str | None = None,
        hsanet_config: HSANetConfig | None = None,
        graph_token: str = "<graph>",
        **text_model_kwargs,
    ) -> HSANetForConditionalGeneration:
        """Build a model from a pretrained causal LM (and optionally a pretrained HSA-Net encoder or property
        checkpoint); the projection is new. `tokenizer` is the LM's: `graph_token` is added to it as a special token
        when missing and the LM's embeddings are resized to match (new rows at the mean of the old ones).
        `text_model_kwargs` go to `AutoModelForCausalLM.from_pretrained` (e.g. `is_decoder=True` for BERT,
        `dtype=torch.bfloat16`).
        """
        if graph_token not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"additional_special_tokens": [graph_token]})
        language_model = AutoModelForCausalLM.from_pretrained(text_model_name_or_path, **text_model_kwargs)
        if language_model.get_input_embeddings().num_embeddings < len(tokenizer):
            language_model.resize_token_embeddings(len(tokenizer))
        if hsanet_model_name_or_path is not None:
            hsanet = HSANetModel.from_pretrained(hsanet_model_name_or_path)
            graph_config = hsanet.config.to_dict()
        else:
            hsanet = None
            graph_config = (hsanet_config or HSANetConfig()).to_dict()
        for key in ("text_config", "graph_token_id", "architectures", "auto_map", "model_type",
                    "transformers_version"):
            graph_config.pop(key, None)
        config = HSANetConfig(
            **graph_config,
            text_config=language_model.config,
            graph_token_id=tokenizer.convert_tokens_to_ids(graph_token),
        )
        if hsanet is not None:
            hsanet.config = config
        model = cls(config, language_model=language_model, hsanet=hsanet)
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(model.generation_config, name) is None:
                setattr(model.generation_config, name, special_token_id(tokenizer, name))
        return model

    @property
    def dummy_inputs(self) -> dict[str, torch.Tensor]:
        """The encoder's two dummy molecules, each behind a prompt of a token and its placeholders."""
        inputs = dict(super().dummy_inputs)
        placeholders = torch.full((2, self.config.num_graph_tokens), self.config.graph_token_id)
        inputs["input_ids"] = torch.cat([torch.zeros(2, 1, dtype=torch.long), placeholders], dim=1)
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        return inputs

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        self.language_model.set_output_embeddings(new_embeddings)

    def get_graph_features(self, **graph_inputs) -> tuple[torch.Tensor, ModelOutput]:
        """Graph inputs (see `HSANetModel.forward`) -> projected tokens `(batch, num_graph_tokens, text_hidden)` and
        the encoder's outputs."""
        outputs = self.hsanet(**graph_inputs, return_dict=True)
        return self.text_projector(outputs.last_hidden_state), outputs

    def _merge_graph_tokens(self, input_ids, inputs_embeds, graph_embeds) -> torch.Tensor:
        """Write `graph_embeds` at the placeholder positions, checking there are `num_graph_tokens` per item."""
        expected = self.config.num_graph_tokens
        placeholder = input_ids == self.config.graph_token_id
        found = placeholder.sum(dim=1)
        wrong = (found != expected).nonzero()
        if len(wrong):
            item = int(wrong[0])
            raise ValueError(
                f"item #{item} of the batch holds {int(found[item])} `<graph>` placeholder tokens (id "
                f"{self.config.graph_token_id}); expected {expected} per molecule (config.num_graph_tokens = "
                f"{self.config.num_levels} levels x {self.config.num_query_tokens} queries + "
                f"{self.config.num_motif_tokens} motif tokens). Build prompts with HSANetProcessor, whose "
                "num_graph_tokens must match the model's"
            )
        if graph_embeds.shape[:2] != (input_ids.shape[0], expected):
            raise ValueError(f"graph_embeds has shape {tuple(graph_embeds.shape)}; expected ({input_ids.shape[0]}, "
                             f"{expected}, hidden) for a batch of {input_ids.shape[0]} prompts")
        graph_embeds = graph_embeds.to(inputs_embeds.device, inputs_embeds.dtype)
        return inputs_embeds.masked_scatter(placeholder.unsqueeze(-1), graph_embeds)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        atom_features: torch.LongTensor | None = None,
        edge_index: torch.LongTensor | None = None,
        bond_features: torch.LongTensor | None = None,
        num_atoms: torch.LongTensor | None = None,
        structure_rank: torch.LongTensor | None = None,
        distance_to_previous: torch.LongTensor | None = None,
        distance_to_next: torch.LongTensor | None = None,
        motif_counts: torch.Tensor | None = None,
        graph_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> HSANetCausalLMOutputWithPast | tuple:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch, sequence_length)`):
            Prompt (and, in training, target) tokens; each prompt holds `config.num_graph_tokens` placeholders
            (`config.graph_token_id`) where the molecule's projected tokens go.
        attention_mask (`torch.Tensor` of shape `(batch, sequence_length)`, *optional*):
            1 for tokens, 0 for padding (left or right). When `position_ids` is not given, positions are counted
            over the attended tokens, so a left-padded prompt gets the positions it has alone.
        labels (`torch.LongTensor` of shape `(batch, sequence_length)`, *optional*):
            Targets aligned with `input_ids` (the language model shifts them); -100 is ignored. Placeholder positions
            are always ignored.
        atom_features ... motif_counts:
            The molecules' graph batch from `HSANetProcessor` (see `HSANetModel.forward`), one molecule per prompt.
        graph_embeds (`torch.FloatTensor` of shape `(batch, num_graph_tokens, text_hidden_size)`, *optional*):
            Already projected molecule tokens (what `generate` passes after encoding the molecules once).
        logits_to_keep (`int`, *optional*, defaults to 0):
            Compute logits for the last `logits_to_keep` positions only (0: all), as transformers' language models.
            With `labels`, the loss covers those positions too (labels are cut to the same window): with left
            padding the targets end every row, so `1 + the longest target` gives the full loss without the other
            positions' logits (`HSANetProcessor.collate(..., trim_logits=True)` sets it).
        cache, use_cache, output_attentions, output_hidden_states:
            Passed to the language model.
        num_items_in_batch (*optional*):
            From `Trainer` (gradient accumulation): the language model's loss sums over the batch and divides by it.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids or inputs_embeds")
        graph_inputs = {name: value for name, value in zip(GRAPH_INPUT_NAMES, (
            atom_features, edge_index, bond_features, num_atoms, structure_rank, distance_to_previous,
            distance_to_next, motif_counts)) if value is not None}
        if graph_inputs and graph_embeds is not None:
            raise ValueError("give the molecules either as graph inputs or as graph_embeds, not both")
        graph_outputs = None
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
            placeholder = input_ids == self.config.graph_token_id
            prefill = cache is None or cache.get_seq_length() == 0
            if placeholder.any():
                if graph_embeds is None:
                    if not graph_inputs:
                        raise ValueError("the prompt holds `<graph>` placeholders but no molecules were given "
                                         "(atom_features, ... from HSANetProcessor)")
                    graph_embeds, graph_outputs = self.get_graph_features(**graph_inputs)
                inputs_embeds = self._merge_graph_tokens(input_ids, inputs_embeds, graph_embeds)
                if labels is not None:
                    labels = labels.masked_fill(placeholder, -100)
            elif graph_inputs and prefill:
                raise ValueError(
                    f"molecules were given but input_ids holds no `<graph>` placeholder (id "
                    f"{self.config.graph_token_id}); build the prompts with HSANetProcessor"
                )
        elif graph_inputs:
            raise ValueError("with inputs_embeds, merge the molecule tokens yourself (get_graph_features) or pass "
                             "input_ids")

        if position_ids is None and attention_mask is not None and "position_ids" in self._language_model_parameters:
            # positions over the attended tokens (left padding does not shift them), as `generate` computes them
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -inputs_embeds.shape[1]:]
        text_kwargs = {"attention_mask": attention_mask, "position_ids": position_ids, "use_cache": use_cache,
                       "output_attentions": output_attentions, "output_hidden_states": output_hidden_states,
                       "num_items_in_batch": num_items_in_batch}
        if cache is not None:
            text_kwargs["cache" if "cache" in self._language_model_parameters else "past_key_values"] = cache
        if "logits_to_keep" in self._language_model_parameters:
            text_kwargs["logits_to_keep"] = logits_to_keep
            if labels is not None and isinstance(logits_to_keep, int) and logits_to_keep > 0:
                if (labels[:, :-logits_to_keep] != -100).any():
                    raise ValueError(f"logits_to_keep={logits_to_keep} leaves labelled positions out of the loss")
                labels = labels[:, -logits_to_keep:]
        accepted = self._language_model_parameters
        text_kwargs = {key: value for key, value in text_kwargs.items()
                       if value is not None and (key in accepted or "kwargs" in accepted)}
        outputs = self.language_model(inputs_embeds=inputs_embeds, labels=labels, return_dict=True, **text_kwargs)
        loss = outputs.loss
        aux_loss = graph_outputs.aux_loss if graph_outputs is not None else None
        if loss is not None and aux_loss is not None:
            loss = loss + self.config.router_aux_loss_coef * aux_loss.to(loss.dtype)
        result = HSANetCausalLMOutputWithPast(
            loss=loss,
            logits=outputs.logits,
            cache=outputs.get("cache", outputs.get("past_key_values")),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            graph_hidden_states=graph_embeds if graph_outputs is not None else None,
            projector_choices=graph_outputs.projector_choices if graph_outputs is not None else None,
            aux_loss=aux_loss,
        )
        return result if return_dict else result.to_tuple()

    @torch.no_grad()
    def generate(self, input_ids: torch.LongTensor | None = None, **kwargs):
        """`GenerationMixin.generate`, the molecules encoded once: graph inputs become `graph_embeds`, which follow
        the prompts through beam expansion and are merged at the placeholders in the first forward (the key/value
        cache holds them afterwards). Returns the prompt followed by the generated tokens, as LLaVA."""
        graph_inputs = {name: kwargs.pop(name) for name in GRAPH_INPUT_NAMES if kwargs.get(name) is not None}
        for name in GRAPH_INPUT_NAMES:
            kwargs.pop(name, None)
        if graph_inputs:
            if kwargs.get("graph_embeds") is not None:
                raise ValueError("give the molecules either as graph inputs or as graph_embeds, not both")
            kwargs["graph_embeds"], _ = self.get_graph_features(**graph_inputs)
        return super().generate(input_ids=input_ids, **kwargs)


__all__ = ["HSANetForConditionalGeneration", "HSANetTextProjector", "HSANetCausalLMOutputWithPast"]
