"""SweetTokenizer: a Cross-attention Query AutoEncoder (CQAE) with language-model codebooks.

Encoder: the first frame becomes patches, the other frames spatio-temporal tubes; a transformer mixes them.
`num_spatial_queries` learned queries cross-attend to the time-averaged features (spatial tokens); the differences
of consecutive frame groups pass a causal temporal transformer and `num_temporal_queries` learned queries
cross-attend to them (temporal tokens). Each branch is quantised by a `LanguageCodebookQuantizer` whose codes are
frozen word embeddings of a language model (spatial: nouns and adjectives, temporal: verbs and adverbs), so every
token id is a word. Decoder: mask tokens cross-attend to the spatial latents (temporal latents at odd layers) and
predict pixels directly.

Quantisation follows the authors' v3 code (the "motion-enhanced language codebook"): factorised codes, a spatial token
= 2 adjectives + 1 noun, a temporal token = 1 verb + 1 adverb, code vectors from the frozen word embeddings through a
2-layer GCN over a word co-occurrence graph (`config.codebook_factorization` / `codebook_projection`; `"single"` /
`"linear"` is the paper's v2 form, one word per token). The encoder/decoder layout follows the authors' v3 code
(first frame + 4-frame tubes, temporal differences, temporal latents injected at odd decoder layers). The authors'
locality (attention within frame groups and windows, per-location temporal queries and decoder layers, spatial
queries reading the matching encoder layers, a convolutional pixel decoder) is a set of config options whose modules
live in `layers_sweet.py`; the defaults keep joint attention over all positions, global temporal queries and a linear
pixel head, so earlier checkpoints load unchanged.

This module is the tokenizer and its inference contract only, as diffusers' `VQModel` and transformers' `Emu3VQVAE`:
`encode` -> ids, `decode(ids)`, and a `forward` whose loss is the reconstruction + VQ loss; `quantize=False` (an
argument of `encode` / `forward`) skips the codebooks, for a continuous warm-up. The training recipe (perceptual
loss, PatchGAN discriminator, EMA, curriculum) lives in `training_sweet.py` and is never saved with the tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import nn
from torch_geometric.nn import GCNConv
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, logging

from .configuration_sweet import CONV_PIXEL_DECODERS, SweetTokenizerConfig
from .hub_sweet import push_to_hub_with_model_card
from .layers_sweet import (
    ConvPixelDecoder,
    PerLocationTemporalQueries,
    PerLocationUnpooling,
    attention_partitions,
    matching_encoder_layers,
    partitioned_layer_forward,
    per_location_temporal_forward,
)
from .remote_code_sweet import add_remote_code_entries

logger = logging.get_logger(__name__)

BRANCHES = ("spatial", "temporal")

# `pixel_values` are x - 0.5 for pixels x in [0, 1], i.e. in [-0.5, 0.5]. Values beyond this magnitude are taken for
# pixels that were not normalised (0..255 uint8 cast to float, ...) and rejected; the margin lets augmented or
# resampled values that overshoot [-0.5, 0.5] a little pass. The one place this bound is set.
PIXEL_VALUE_LIMIT = 1.0
_PROCESSOR_HINT = "use SweetImageProcessor / SweetVideoProcessor to turn images and videos into pixel_values"


# ---------------------------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class SweetTokenizerEncoderOutput(ModelOutput):
    r"""
    spatial_ids (`torch.LongTensor` of shape `(batch, num_spatial_queries, 3)`): spatial codebook indices (words):
        2 adjectives and 1 noun per token with factorised codes (`config.codebook_factorization="paper"`);
        `(batch, num_spatial_queries)`, one word per token, with `"single"`.
    temporal_ids (`torch.LongTensor` of shape `(batch, num_temporal_queries, 2)`): temporal indices, a verb and an
        adverb per token (`(batch, num_temporal_queries)` with `"single"`); `None` for images.
    spatial_latents (`torch.FloatTensor` of shape `(batch, num_spatial_queries, hidden)`): quantised (straight-through)
        spatial latents, as the decoder reads them.
    temporal_latents (`torch.FloatTensor` of shape `(batch, num_temporal_queries, hidden)`): same for temporal tokens.
    vq_loss (`torch.FloatTensor` of shape `()`): VQ loss of both branches.
    encoder_hidden_states (`tuple[torch.FloatTensor]`, with `output_hidden_states=True`): the patch transformer's
        input (patch and tube embeddings) and the output of each of its layers, `num_encoder_layers + 1` tensors of
        shape `(batch, positions, hidden)`, `positions = frame_groups * num_patches` (frame groups: 1 for an image,
        `num_frame_groups` for a clip; first-frame patches first, then the tubes, row-major).
    encoder_attentions (`tuple[torch.FloatTensor]`, with `output_attentions=True`): the self-attention weights of
        each patch transformer layer, `(batch, num_attention_heads, positions, positions)`.
    """

    spatial_ids: torch.LongTensor | None = None
    temporal_ids: torch.LongTensor | None = None
    spatial_latents: torch.FloatTensor | None = None
    temporal_latents: torch.FloatTensor | None = None
    vq_loss: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class SweetTokenizerOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`): `reconstruction_loss + vq_loss_weight * vq_loss` (when `return_loss`).
        The training recipe's terms (perceptual, adversarial) are added by `training_sweet.SweetTokenizerTrainer`.
    reconstruction (`torch.FloatTensor`): decoded pixels, shaped like `pixel_values`.
    spatial_ids, temporal_ids: as in `SweetTokenizerEncoderOutput`, for `pixel_values`.
    reconstruction_videos (`torch.FloatTensor` of shape `(batch_videos, C, num_frames, H, W)`): decoded
        `pixel_values_videos`; `video_spatial_ids`, `video_temporal_ids`: their ids.
    reconstruction_loss (`torch.FloatTensor` of shape `()`): the configured L1 / L2 pixel loss.
    vq_loss (`torch.FloatTensor` of shape `()`): VQ loss of both branches (0 with `quantize=False`).
    codebook_usage (`dict[str, torch.FloatTensor]`): per codebook (factor), the fraction of its words that the ids
        of this call (images and clips together) use at least once, a tensor `()`. Keys: `"spatial_adjective"`,
        `"spatial_noun"`, `"temporal_verb"`, `"temporal_adverb"` with factorised codes, `"spatial"`, `"temporal"`
        else (`SweetTokenizerModel.codebook_names`); temporal keys only when clips were given.
    codebook_perplexity (`dict[str, torch.FloatTensor]`): per codebook (factor), `exp(entropy)` of the frequencies
        of its words in this call's ids: 1 when one word is used, the number of words when all are used equally.
    With both `pixel_values` and `pixel_values_videos`, every loss is the mean of the two parts' losses weighted by
    their number of items.

    With `output_hidden_states=True` (for `pixel_values`; the `video_` fields hold the same for `pixel_values_videos`):
    encoder_hidden_states (`tuple[torch.FloatTensor]`): as in `SweetTokenizerEncoderOutput`, `num_encoder_layers + 1`
        tensors `(batch, positions, hidden)`, `positions = frame_groups * num_patches`.
    decoder_hidden_states (`tuple[torch.FloatTensor]`): the decoder's input (mask tokens + positions + unpooled
        latents) and the output of each decoder layer, `num_decoder_layers + 1` tensors `(batch, positions, hidden)`.
    With `output_attentions=True` (computed by the eager path for that call, see `SweetAttention`):
    encoder_attentions (`tuple[torch.FloatTensor]`): per encoder layer, `(batch, heads, positions, positions)`.
    decoder_attentions (`tuple[torch.FloatTensor]`): per decoder layer, self-attention `(batch, heads, positions,
        positions)`.
    cross_attentions (`tuple[torch.FloatTensor]`): per decoder layer, attention of the positions to the latents,
        `(batch, heads, positions, num_spatial_queries)`; for clips odd layers read the temporal latents,
        `(batch, heads, positions, num_temporal_queries)`.
    `return_dict=False` (or `config.return_dict=False`) returns `to_tuple()`: the fields that are not `None`,
    in field order (`loss` first).
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    spatial_ids: torch.LongTensor | None = None
    temporal_ids: torch.LongTensor | None = None
    reconstruction_videos: torch.FloatTensor | None = None
    video_spatial_ids: torch.LongTensor | None = None
    video_temporal_ids: torch.LongTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    vq_loss: torch.FloatTensor | None = None
    codebook_usage: dict[str, torch.FloatTensor] | None = None
    codebook_perplexity: dict[str, torch.FloatTensor] | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    video_encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    video_decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    video_encoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    video_decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    video_cross_attentions: tuple[torch.FloatTensor, ...] | None = None


# ---------------------------------------------------------------------------------------------------------------------
# Transformer blocks
# ---------------------------------------------------------------------------------------------------------------------
# Adapted from transformers.models.siglip.modeling_siglip.eager_attention_forward (plus `is_causal`)
def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    is_causal: bool = False,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T * scaling + mask) V, written out so that the weights can be returned.

    `query`: (batch, heads, query_length, head_dim); `key`, `value`: (batch, heads, key_length, head_dim);
    `is_causal`: position i sees keys 0..i (SDPA's upper-left alignment). Returns the output
    (batch, query_length, heads, head_dim) and the weights (batch, heads, query_length, key_length).
    """
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    if is_causal:
        visible = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~visible, float("-inf"))
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class SweetAttention(nn.Module):
    """Multi-head attention; self-attention when `context` is None.

    The kernel is `config._attn_implementation` through transformers' `ALL_ATTENTION_FUNCTIONS` ("sdpa" by default,
    "eager" = `eager_attention_forward`). SDPA returns no weights, so a call with `output_attentions=True` runs the
    eager path (same output, to float tolerance) and returns its weights.
    """

    def __init__(self, config: SweetTokenizerConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = hidden // self.num_heads
        self.scaling = self.head_dim**-0.5
        self.q_proj, self.k_proj = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.v_proj, self.o_proj = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)

    def _split_heads(self, states: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = states.shape
        return states.view(batch, length, self.num_heads, hidden // self.num_heads).transpose(1, 2)

    def forward(self, states: torch.Tensor, context: torch.Tensor | None = None, is_causal: bool = False,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`states`: (batch, length, hidden); `context`: (batch, context_length, hidden). Returns `states`' shape
        and, with `output_attentions`, the weights (batch, heads, length, context_length), else `None`."""
        context = states if context is None else context
        attention: Callable = eager_attention_forward
        if not output_attentions:
            attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation,
                                                              eager_attention_forward)
        attended, weights = attention(
            self,
            self._split_heads(self.q_proj(states)),
            self._split_heads(self.k_proj(context)),
            self._split_heads(self.v_proj(context)),
            None,
            scaling=self.scaling,
            is_causal=is_causal,
        )
        return self.o_proj(attended.flatten(2)), weights


class SweetTransformerLayer(GradientCheckpointingLayer):
    """Pre-LayerNorm block: self-attention, optional cross-attention to a (LayerNorm-ed, as in Perceiver) context, MLP.

    A `GradientCheckpointingLayer`: after `model.gradient_checkpointing_enable()` its activations are recomputed in
    the backward pass (pass `states` and `context` positionally). Returns (states, self-attention weights,
    cross-attention weights); the weights are `None` unless `output_attentions`.
    """

    def __init__(self, config: SweetTokenizerConfig, cross_attention: bool = False):
        super().__init__()
        hidden, eps = config.hidden_size, config.layer_norm_eps
        self.self_norm, self.self_attention = nn.LayerNorm(hidden, eps=eps), SweetAttention(config)
        self.cross_norm = nn.LayerNorm(hidden, eps=eps) if cross_attention else None
        self.context_norm = nn.LayerNorm(hidden, eps=eps) if cross_attention else None
        self.cross_attention = SweetAttention(config) if cross_attention else None
        self.mlp_norm = nn.LayerNorm(hidden, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(hidden, config.intermediate_size), nn.GELU(),
                                 nn.Linear(config.intermediate_size, hidden))

    def forward(self, states: torch.Tensor, context: torch.Tensor | None = None, is_causal: bool = False,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """`states`: (batch, length, hidden); `context`: (batch, context_length, hidden), for cross-attention."""
        attended, self_weights = self.self_attention(self.self_norm(states), is_causal=is_causal,
                                                     output_attentions=output_attentions)
        states = states + attended
        cross_weights = None
        if self.cross_attention is not None:
            attended, cross_weights = self.cross_attention(self.cross_norm(states), self.context_norm(context),
                                                           output_attentions=output_attentions)
            states = states + attended
        return states + self.mlp(self.mlp_norm(states)), self_weights, cross_weights


class TokenMixing(nn.Module):
    """A learned linear map along the token axis (MLP-Mixer's token mixing): each output token is a fixed, learned
    mix of the LayerNorm-ed input tokens, i.e. a content-independent attention map.

    It gives the query tokens of the encoder and the mask tokens of the decoder a direct path to the tokens they
    read from the first step on; cross-attention alone must first learn *where* to look (its logits are a product of
    two small projections), and at CPU budgets it stays uniform: the tokenizer then reconstructs the mean image.
    Initialised at random (std `initializer_range`); with `aligned_from`, output `aligned_from + i` also starts as a
    copy of input `i` (the temporal branch has one token per tube position: its maps start as identities).
    `tokens`: (batch, input_length, hidden) -> (batch, output_length, hidden).
    """

    def __init__(self, config: SweetTokenizerConfig, input_length: int, output_length: int,
                 aligned_from: int | None = None):
        super().__init__()
        self.aligned_from = aligned_from
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.weight = nn.Parameter(torch.empty(output_length, input_length))
        self.bias = nn.Parameter(torch.empty(output_length, 1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oi,bih->boh", self.weight, self.norm(tokens)) + self.bias


class QueryTransformer(nn.Module):
    """Learned queries that start from a token mixing of the context, then self-attend and cross-attend to it.
    `context`: (batch, context_length, hidden) -> (batch, num_queries, hidden)."""

    def __init__(self, config: SweetTokenizerConfig, num_queries: int, context_length: int, aligned: bool = False):
        super().__init__()
        self.queries = nn.Parameter(torch.empty(num_queries, config.hidden_size))
        self.pooling = TokenMixing(config, context_length, num_queries, aligned_from=0 if aligned else None)
        self.layers = nn.ModuleList(SweetTransformerLayer(config, cross_attention=True)
                                    for _ in range(config.num_query_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, context: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """`context`: one tensor for every layer, or a list of `num_query_layers` tensors, layer `i` reading context
        `i` (`spatial_query_context="matching"`); the token mixing reads the last."""
        contexts = list(context) if isinstance(context, (list, tuple)) else [context] * len(self.layers)
        states = self.queries + self.pooling(contexts[-1])
        for layer, layer_context in zip(self.layers, contexts):
            states = layer(states, layer_context)[0]
        return self.norm(states)


# ---------------------------------------------------------------------------------------------------------------------
# Patches and tubes
# ---------------------------------------------------------------------------------------------------------------------
class SweetPositionEmbedding(nn.Module):
    """Learned spatial (per patch) plus frame-group position embeddings. Returns (groups, num_patches, hidden)."""

    def __init__(self, config: SweetTokenizerConfig):
        super().__init__()
        self.spatial = nn.Parameter(torch.empty(config.num_patches, config.hidden_size))
        self.group = nn.Parameter(torch.empty(config.num_frame_groups, config.hidden_size))

    def forward(self, groups: int) -> torch.Tensor:
        return self.spatial + self.group[:groups, None]


class SweetPatchEmbedding(nn.Module):
    """First frame -> patches, remaining frames -> tubes, plus position embeddings.

    `pixel_values`: (batch, channels, frames, height, width) -> (batch, frame_groups, num_patches, hidden).
    """

    def __init__(self, config: SweetTokenizerConfig):
        super().__init__()
        hidden, patch, tube = config.hidden_size, config.patch_size, config.temporal_patch_size
        self.frame_patches = nn.Conv2d(config.num_channels, hidden, patch, stride=patch)
        self.tube_patches = nn.Conv3d(config.num_channels, hidden, (tube, patch, patch), stride=(tube, patch, patch))
        self.position = SweetPositionEmbedding(config)
        self.norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        first = self.frame_patches(pixel_values[:, :, 0]).flatten(2).transpose(1, 2).unsqueeze(1)
        groups = [first]
        if pixel_values.shape[2] > 1:
            tubes = self.tube_patches(pixel_values[:, :, 1:])  # (batch, hidden, tubes, grid, grid)
            groups.append(tubes.flatten(3).permute(0, 2, 3, 1))
        embeddings = torch.cat(groups, dim=1)
        return self.norm(embeddings + self.position(embeddings.shape[1]))


class SweetPixelHead(nn.Module):
    """Decoder states (batch, frame_groups, num_patches, hidden) -> pixels (batch, channels, frames, height, width)."""

    def __init__(self, config: SweetTokenizerConfig):
        super().__init__()
        self.config = config
        channels, patch, tube = config.num_channels, config.patch_size, config.temporal_patch_size
        self.frame_head = nn.Linear(config.hidden_size, channels * patch * patch)
        self.tube_head = nn.Linear(config.hidden_size, channels * tube * patch * patch)

    def _unpatchify(self, values: torch.Tensor, frames: int) -> torch.Tensor:
        """(batch, groups, grid*grid, channels*frames*patch*patch) -> (batch, channels, groups*frames, H, W)."""
        c, p, g = self.config.num_channels, self.config.patch_size, self.config.grid_size
        batch, groups = values.shape[:2]
        values = values.view(batch, groups, g, g, c, frames, p, p)
        return values.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(batch, c, groups * frames, g * p, g * p)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        videos = [self._unpatchify(self.frame_head(states[:, :1]), 1)]
        if states.shape[1] > 1:
            videos.append(self._unpatchify(self.tube_head(states[:, 1:]), self.config.temporal_patch_size))
        return torch.cat(videos, dim=2)


# ---------------------------------------------------------------------------------------------------------------------
# Quantiser
# ---------------------------------------------------------------------------------------------------------------------
class CodeVectorGCN(nn.Module):
    """The authors' code-vector network: two `torch_geometric` `GCNConv` layers (ReLU between) over a word
    co-occurrence graph whose nodes are the codebook's words. Each layer mixes a word with its graph neighbours
    (symmetric degree normalisation, a self-loop of weight 1 per word); on a graph of self-loops only (no captions
    given) it is a per-word 2-layer MLP.

    `embeddings`: (num_words, language_embedding_dim), `edge_index`: (2, num_edges), `edge_weight`: (num_edges,)
    -> (num_words, out_features).
    """

    def __init__(self, in_features: int, hidden_size: int, out_features: int):
        super().__init__()
        self.input_layer = GCNConv(in_features, hidden_size)
        self.output_layer = GCNConv(hidden_size, out_features)

    def forward(self, embeddings: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
        edge_weight = edge_weight.to(embeddings.dtype)
        hidden = F.relu(self.input_layer(embeddings, edge_index, edge_weight))
        return self.output_layer(hidden, edge_index, edge_weight)


class LanguageCodebookQuantizer(nn.Module):
    """Nearest-neighbour quantisation against code vectors made from frozen language-model word embeddings.

    Code vectors: the frozen embeddings (a buffer saved with the model) through a learned network,
    `config.codebook_projection`: `CodeVectorGCN` over the codebook's co-occurrence graph (`"gcn"`, buffers
    `graph_edge_index` / `graph_edge_weight`, saved with the model once `set_graph` gave it edges) or one linear map
    (`"linear"`, the first version). They are recomputed at every call in training and cached in eval without
    gradients (until a weight changes).

    Factors (`config.codebook_factors(branch)`): the codebook's words are consecutive blocks, one per factor
    (spatial: adjectives, then nouns; temporal: verbs, then adverbs), and a token's
    `normalize(input_projection(token))` is split into equal parts, one per factor, each L2-normalised. Each part is
    replaced by the mean of its `k` nearest (cosine) codes of its factor's block, code vectors unit-normalised: a
    spatial token's first half by the mean of its 2 nearest adjectives, its second half by its nearest noun; a
    temporal token's halves by a verb and an adverb. Straight-through gradient; VQ loss as the authors' code,
    `||sg(z_q) - z||^2 + commitment_cost * ||z_q - sg(z)||^2` over all parts. With one factor (`"single"`) this is
    the first version's quantiser exactly.

    Ids index the branch's whole word list (`config.{branch}_words`), so that `ids_to_words` reads them directly: a
    factorised token's ids are `(..., ids_per_token)` in factor order, each in its factor's block.
    """

    def __init__(self, config: SweetTokenizerConfig, branch: str):
        super().__init__()
        self.branch = branch
        self.commitment_cost = config.commitment_cost
        self.entropy_loss_weight, self.entropy_temperature = config.entropy_loss_weight, config.entropy_temperature
        self.factors = config.codebook_factors(branch)
        self.factor_sizes = config.codebook_factor_sizes(branch)
        self.factor_starts = [sum(self.factor_sizes[:index]) for index in range(len(self.factor_sizes))]
        self.factor_dim = config.codebook_dim // len(self.factors)
        codebook_size = getattr(config, f"{branch}_codebook_size")
        self.register_buffer("language_embeddings", torch.empty(codebook_size, config.language_embedding_dim))
        self.projection = config.codebook_projection
        if self.projection == "gcn":
            self.code_network = CodeVectorGCN(config.language_embedding_dim, config.codebook_gcn_hidden_size,
                                              self.factor_dim)
            num_edges = getattr(config, f"{branch}_graph_num_edges")
            # An empty graph is not saved (checkpoints without a graph stay as they were).
            self.register_buffer("graph_edge_index", torch.zeros(2, num_edges, dtype=torch.long),
                                 persistent=num_edges > 0)
            self.register_buffer("graph_edge_weight", torch.ones(num_edges), persistent=num_edges > 0)
        else:
            self.code_projection = nn.Linear(config.language_embedding_dim, self.factor_dim)
        # No biases around the unit sphere: a bias shared by all tokens soon outweighs their differences.
        self.input_projection = nn.Linear(config.hidden_size, config.codebook_dim, bias=False)
        self.output_projection = nn.Linear(config.codebook_dim, config.hidden_size, bias=False)
        self._codes_cache: tuple | None = None

    @property
    def codebook_size(self) -> int:
        return self.language_embeddings.shape[0]

    @property
    def ids_per_token(self) -> int:
        return sum(count for _, _, count in self.factors)

    def set_graph(self, edge_index: torch.Tensor, edge_weight: torch.Tensor) -> None:
        """Use (and save with the model) a co-occurrence graph over the codebook's words: `edge_index` (2,
        num_edges) node ids in `[0, codebook_size)`, `edge_weight` (num_edges,) > 0. See
        `codebook_sweet.build_cooccurrence_graph`."""
        if self.projection != "gcn":
            raise ValueError(f"the {self.branch} codebook has codebook_projection={self.projection!r}: only 'gcn' "
                             "code vectors use a graph")
        edge_index, edge_weight = torch.as_tensor(edge_index), torch.as_tensor(edge_weight)
        if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_weight.shape != (edge_index.shape[1],):
            raise ValueError(f"edge_index must be (2, num_edges) and edge_weight (num_edges,), got "
                             f"{tuple(edge_index.shape)} and {tuple(edge_weight.shape)}")
        if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= self.codebook_size):
            raise ValueError(f"edge_index has node ids in [{int(edge_index.min())}, {int(edge_index.max())}], outside "
                             f"the {self.branch} codebook [0, {self.codebook_size})")
        if edge_weight.numel() and not bool((edge_weight > 0).all() & torch.isfinite(edge_weight).all()):
            raise ValueError("edge_weight must be finite and > 0")
        device = self.language_embeddings.device
        persistent = edge_index.shape[1] > 0
        self.register_buffer("graph_edge_index", edge_index.to(device, torch.long).contiguous(), persistent=persistent)
        self.register_buffer("graph_edge_weight", edge_weight.to(device, self.language_embeddings.dtype).contiguous(),
                             persistent=persistent)

    def _compute_codes(self) -> torch.Tensor:
        if self.projection == "gcn":
            vectors = self.code_network(self.language_embeddings, self.graph_edge_index, self.graph_edge_weight)
        else:
            vectors = self.code_projection(self.language_embeddings)
        return F.normalize(vectors, dim=-1)

    def codes(self) -> torch.Tensor:
        """The code vectors: (codebook_size, codebook_dim / number of factors), unit norm; row `i` is word `i`.

        Recomputed at every call in training or with gradients; in eval without gradients, cached until a weight or
        buffer of this module changes (in place, by `load_state_dict`, or by `.to()`)."""
        if self.training or torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self._compute_codes()
        try:
            key = tuple((tensor.data_ptr(), tensor._version, tensor.dtype) for tensor in
                        (*self.parameters(), *self.buffers()))
        except RuntimeError:  # inference tensors (loaded under torch.inference_mode) have no version counter
            return self._compute_codes()
        if self._codes_cache is None or self._codes_cache[0] != key:
            self._codes_cache = (key, self._compute_codes())
        return self._codes_cache[1]

    def _split(self, vectors: torch.Tensor) -> torch.Tensor:
        """(..., codebook_dim) -> (..., factors, factor_dim)."""
        return vectors.unflatten(-1, (len(self.factors), self.factor_dim))

    def _quantized(self, codes: torch.Tensor, ids: torch.LongTensor) -> torch.Tensor:
        """Ids (..., ids_per_token) -> the quantised parts (..., factors, factor_dim): per factor the mean of its
        codes."""
        vectors, start = codes[ids], 0
        parts = []
        for _, _, count in self.factors:
            parts.append(vectors[..., start : start + count, :].mean(dim=-2))
            start += count
        return torch.stack(parts, dim=-2)

    def forward(self, tokens: torch.Tensor, quantize: bool = True):
        """`tokens`: (batch, length, hidden). Returns latents (batch, length, hidden) for the decoder, ids
        (batch, length, ids_per_token), or (batch, length) with one factor, and the VQ loss; with `quantize=False`
        (continuous warm-up) latents skip the codebook (the ids are still the nearest words)."""
        latents = F.normalize(self._split(self.input_projection(tokens)), dim=-1)  # (batch, length, factors, dim)
        with torch.set_grad_enabled(quantize and torch.is_grad_enabled()):  # without quantising, codes give ids only
            codes = self.codes()
        similarities, ids = [], []
        for factor, (_, _, count) in enumerate(self.factors):  # a loop over the (1 or 2) factors, not tokens
            start, size = self.factor_starts[factor], self.factor_sizes[factor]
            # cosines in float32, also under bf16 / fp16: rounded to 8 bits, close codes tie and the word choice flips
            with torch.autocast(latents.device.type, enabled=False):
                factor_similarities = latents[..., factor, :].float() @ codes[start : start + size].float().T
            similarities.append(factor_similarities)
            ids.append(factor_similarities.topk(count, dim=-1).indices + start)
        ids = torch.cat(ids, dim=-1)
        token_ids = ids.squeeze(-1) if len(self.factors) == 1 else ids
        if not quantize:
            return self.output_projection(latents.flatten(-2)), token_ids, latents.new_zeros(())
        quantized = self._quantized(codes, ids)
        vq_loss = (F.mse_loss(latents, quantized.detach())
                   + self.commitment_cost * F.mse_loss(quantized, latents.detach()))
        if self.training and self.entropy_loss_weight > 0:
            vq_loss = vq_loss + self.entropy_loss_weight * sum(self._entropy_loss(part) for part in similarities)
        straight_through = latents + (quantized - latents).detach()
        return self.output_projection(straight_through.flatten(-2)), token_ids, vq_loss

    def _entropy_loss(self, similarities: torch.Tensor) -> torch.Tensor:
        """Mean entropy of each token's soft code assignment minus the entropy of their average: low when every token
        is sure of its code and the batch spreads over many codes. `similarities`: (batch, length, codebook_size);
        with factors, one term per factor (their sum enters the loss)."""
        probabilities = (similarities / self.entropy_temperature).flatten(0, 1).softmax(dim=-1)
        per_token = -(probabilities * probabilities.clamp_min(1e-12).log()).sum(dim=-1).mean()
        average = probabilities.mean(dim=0)
        return per_token + (average * average.clamp_min(1e-12).log()).sum()

    def embed_ids(self, ids: torch.LongTensor) -> torch.Tensor:
        """Code ids (batch, length, ids_per_token), or (batch, length) with one factor -> decoder latents
        (batch, length, hidden)."""
        ids = ids.unsqueeze(-1) if len(self.factors) == 1 else ids
        return self.output_projection(self._quantized(self.codes(), ids).flatten(-2))

    @torch.no_grad()
    def usage_and_perplexity(self, ids: torch.LongTensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Of ids (..., ids_per_token), or (...) with one factor: per factor, the fraction of its words used at least
        once and the perplexity `exp(entropy)` of its word frequencies (1 = one word, the factor's size = all words
        equally often). Returns two float tensors (factors,); no host sync."""
        ids = ids.reshape(-1, self.ids_per_token)
        usage, perplexity, slot = [], [], 0
        for factor, (_, _, count) in enumerate(self.factors):
            start, size = self.factor_starts[factor], self.factor_sizes[factor]
            chosen = (ids[:, slot : slot + count] - start).flatten()
            slot += count
            counts = torch.zeros(size, device=ids.device).scatter_add_(0, chosen, torch.ones_like(chosen,
                                                                                                  dtype=torch.float))
            probabilities = counts / counts.sum().clamp_min(1)
            usage.append((counts > 0).float().mean())
            perplexity.append(torch.exp(-(probabilities * probabilities.clamp_min(1e-12).log()).sum()))
        return torch.stack(usage), torch.stack(perplexity)


# ---------------------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------------------

# Copied from modeling_hsanet.modeling_hsanet._unreadable_safetensors (model folders are self-contained)
def _unreadable_safetensors(folder) -> str:
    """The `.safetensors` files of a local `folder` that safetensors cannot open, or a description of the folder."""
    paths = sorted(Path(folder).glob("*.safetensors")) if Path(folder).is_dir() else []
    unreadable = []
    for path in paths:
        try:
            with safe_open(path, "pt") as handle:
                handle.keys()
        except SafetensorError:
            unreadable.append(str(path))
    return ", ".join(unreadable) if unreadable else f"a weights file of {folder}"


class SweetTokenizerPreTrainedModel(PreTrainedModel):
    config: SweetTokenizerConfig
    config_class = SweetTokenizerConfig
    base_model_prefix = "sweet"
    main_input_name = "pixel_values"
    input_modalities = ("image", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["SweetTransformerLayer"]
    _supports_sdpa = True
    # The loss is a mean over the batch's items, not a sum to be divided by Trainer's `num_items_in_batch`: Trainer
    # must scale it for gradient accumulation itself (and passes no `num_items_in_batch`).
    accepts_loss_kwargs = False
    # Weights of the training recipe that checkpoints of earlier versions carried (their PatchGAN discriminator was a
    # submodule of the model): dropped on load, with a warning (`_adjust_missing_and_unexpected_keys`).
    _recipe_weight_prefixes = ("discriminator.",)
    _keys_to_ignore_on_load_unexpected = [r"^discriminator\."]

    # Copied from modeling_hsanet.modeling_hsanet.HSANetPreTrainedModel.from_pretrained
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`; a weights file that safetensors cannot read (truncated by an interrupted
        download or copy, corrupted) raises an `OSError` that names the file, instead of safetensors' bare error."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except SafetensorError as error:
            raise OSError(f"{_unreadable_safetensors(pretrained_model_name_or_path)} could not be read by safetensors "
                          f"({error}): the file is truncated or corrupted; save or download it again") from error

    # Copied from modeling_hsanet.modeling_hsanet.HSANetPreTrainedModel.push_to_hub
    def push_to_hub(self, repo_id: str, *, model_card=None, **kwargs):
        """`PreTrainedModel.push_to_hub` (same arguments) that uploads this repository's model card as `README.md`
        (rendered by the package's `model_cards` when installed; `model_card=` a card, file or text of your own)."""
        return push_to_hub_with_model_card(self, repo_id, model_card=model_card, **kwargs)

    # Copied from modeling_hsanet.modeling_hsanet.HSANetPreTrainedModel.save_pretrained
    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`; a class registered for an Auto class also writes what loading the folder
        with `trust_remote_code=True` needs beyond transformers' own entry: the base model's `auto_map` entry and
        `custom_pipelines` with the pipelines' code (`add_remote_code_entries`)."""
        if self._auto_class is not None and kwargs.get("is_main_process", True):
            add_remote_code_entries(self, save_directory)
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _adjust_missing_and_unexpected_keys(self, loading_info) -> None:
        """transformers' hook that drops ignorable keys from the load report; says first what it drops of an earlier
        version's training recipe."""
        recipe = sorted(key for key in loading_info.unexpected_keys if key.startswith(self._recipe_weight_prefixes))
        if recipe:
            logger.warning(
                f"{type(self).__name__}: dropped {len(recipe)} weights of the training recipe ({recipe[0]}, ...) from "
                "the checkpoint: it was saved by an earlier version of SweetTokenizer, which kept its PatchGAN "
                "discriminator inside the model. The tokenizer does not use them; the discriminator now belongs to "
                "SweetTokenizerTrainer (modeling_sweet.training_sweet). Save the model again to drop them from the "
                "weights file."
            )
        super()._adjust_missing_and_unexpected_keys(loading_info)

    @property
    def dummy_inputs(self) -> dict[str, torch.Tensor]:
        """Two clips of the configured shape, `{"pixel_values": (2, num_channels, num_frames, image_size,
        image_size)}`, in the model's value range (x - 0.5)."""
        config = self.config
        shape = (2, config.num_channels, config.num_frames, config.image_size, config.image_size)
        generator = torch.Generator().manual_seed(0)
        return {"pixel_values": (torch.rand(shape, generator=generator) - 0.5).to(self.device, self.dtype)}

    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, (QueryTransformer, PerLocationTemporalQueries)):
            init.normal_(module.queries, std=std)
        elif isinstance(module, SweetPositionEmbedding):
            init.normal_(module.spatial, std=std)
            init.normal_(module.group, std=std)
        elif isinstance(module, TokenMixing):
            weight = torch.randn_like(module.weight) * std
            if module.aligned_from is not None:
                outputs, inputs = weight.shape
                start = module.aligned_from
                weight[start : start + inputs] += torch.eye(inputs)[: outputs - start]
            init.copy_(module.weight, weight)
            init.zeros_(module.bias)
        elif isinstance(module, SweetTokenizerModel):
            init.normal_(module.mask_token, std=std)
        elif isinstance(module, ConvPixelDecoder) and module.per_frame:  # each frame's map starts as the identity
            identity = torch.eye(module.frame_weight.shape[-1])
            init.copy_(module.frame_weight, torch.randn_like(module.frame_weight) * std + identity)
            init.zeros_(module.frame_bias)
        elif isinstance(module, LanguageCodebookQuantizer):
            init.normal_(module.language_embeddings)  # random codes until `from_language_model` fills them
            if module.projection == "gcn":
                init.ones_(module.graph_edge_weight)  # `set_codebook_graph` / the checkpoint give the real graph
        elif isinstance(module, GCNConv):  # the layers of CodeVectorGCN
            init.normal_(module.lin.weight, std=std)
            init.zeros_(module.bias)


class SweetTokenizerModel(SweetTokenizerPreTrainedModel):
    """SweetTokenizer: `encode` pixels -> word ids, `decode` ids -> pixels, `forward` -> loss + reconstruction.

    Build one with language-model codebooks through `SweetTokenizerModel.from_language_model(config, path_or_hub_id)`;
    `from_pretrained` then needs no language model (the word embeddings and word lists are saved with it).
    """

    def __init__(self, config: SweetTokenizerConfig):
        super().__init__(config)
        self.patch_embedding = SweetPatchEmbedding(config)
        self.encoder = nn.ModuleList(SweetTransformerLayer(config) for _ in range(config.num_encoder_layers))
        self.encoder_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.spatial_queries = QueryTransformer(config, config.num_spatial_queries, config.num_patches)
        self.temporal_transformer = nn.ModuleList(SweetTransformerLayer(config)
                                                  for _ in range(config.num_temporal_layers))
        tube_positions = (config.num_frame_groups - 1) * config.num_patches
        # one temporal query per tube position: token-mixing maps start as identities
        one_query_per_tube = config.num_temporal_queries == tube_positions
        if config.temporal_queries == "per_location":  # the authors': one query per location, reading its steps
            self.temporal_queries = PerLocationTemporalQueries(config, SweetTransformerLayer)
        else:
            self.temporal_queries = QueryTransformer(config, config.num_temporal_queries, tube_positions,
                                                     aligned=one_query_per_tube)
        self.spatial_quantizer = LanguageCodebookQuantizer(config, "spatial")
        self.temporal_quantizer = LanguageCodebookQuantizer(config, "temporal")
        self.mask_token = nn.Parameter(torch.empty(config.hidden_size))
        self.decoder_position = SweetPositionEmbedding(config)
        self.spatial_unpooling = TokenMixing(config, config.num_spatial_queries, config.num_patches)
        if config.temporal_queries == "per_location":
            self.temporal_unpooling = PerLocationUnpooling(config)
        else:
            self.temporal_unpooling = TokenMixing(
                config, config.num_temporal_queries, config.num_frame_groups * config.num_patches,
                aligned_from=config.num_patches if one_query_per_tube else None)
        self.decoder = nn.ModuleList(SweetTransformerLayer(config, cross_attention=True)
                                     for _ in range(config.num_decoder_layers))
        # decoder_attention="frame_group": after each decoder layer, a causal layer along time per location
        self.decoder_temporal = nn.ModuleList(SweetTransformerLayer(config) for _ in range(
            config.num_decoder_layers)) if config.decoder_attention == "frame_group" else None
        self.decoder_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pixel_head = (ConvPixelDecoder(config) if config.pixel_decoder in CONV_PIXEL_DECODERS
                           else SweetPixelHead(config))
        # which positions attend to each other in each layer (`layers_sweet.attention_partitions`; None: all)
        self._encoder_partitions = attention_partitions(config.num_encoder_layers, config.grid_size,
                                                        config.encoder_attention, config.encoder_window_size)
        self._decoder_partitions = attention_partitions(config.num_decoder_layers, config.grid_size,
                                                        config.decoder_attention, None)
        self.post_init()

    # -- construction from a language model -------------------------------------------------------------------------
    @classmethod
    def from_language_model(cls, config: SweetTokenizerConfig, language_model: str, max_words: int | None = None,
                            language_model_name: str | None = None, captions=None, caption_window: int | None = 5):
        """A new model whose codebooks are the word embeddings of `language_model` (a local path or hub id):
        spatial = nouns and adjectives, temporal = verbs and adverbs, each word in one codebook only, filtered as
        `config.vocabulary_*` say (see `codebook_sweet.select_words`). Word lists go into the config; with
        factorised codes (`config.codebook_factorization="paper"`) each list is reordered into its factors' blocks
        (adjectives then nouns, verbs then adverbs, each in token id order; `codebook_sweet.factor_indices`) and
        `{branch}_factor_sizes` records the blocks.

        `max_words` keeps the first words of each codebook (token id order, before the split into factors), then
        `config.vocabulary_max_words_per_class` the most frequent words of each word class, the words that `captions`
        use first (so that the co-occurrence graph keeps its edges); a ValueError with the numbers when a codebook has
        fewer, or when a factor gets fewer words than a token takes from it.
        `language_model_name` is what `config.language_model_name_or_path` records (provenance); by
        default `codebook_sweet.language_model_name`: a hub id as given, for a local folder a name, never a path of
        this machine. `captions` (a text file, or an iterable of strings such as a `datasets` column) and
        `caption_window`: the co-occurrence graph of the GCN code vectors, see `set_codebook_graph`; without
        captions the GCN runs on self-loops only (a per-word MLP)."""
        from .codebook_sweet import (
            SPATIAL_WORD_CLASSES,
            TEMPORAL_WORD_CLASSES,
            LanguageCodebook,
            build_language_codebook,
            factor_indices,
            most_frequent_per_class,
            read_captions,
            words_in_captions,
        )
        from .codebook_sweet import language_model_name as portable_name

        if captions is not None:  # read once: a generator or a datasets column serves the vocabulary and the graph
            captions = read_captions(captions)

        filters = dict(max_words=max_words, min_word_length=config.vocabulary_min_word_length,
                       min_zipf_frequency=config.vocabulary_min_zipf_frequency,
                       lemmas_only=config.vocabulary_lemmas_only, class_disjoint=config.vocabulary_class_disjoint,
                       verb_share=config.vocabulary_verb_share)
        codebooks = {"spatial": build_language_codebook(language_model, SPATIAL_WORD_CLASSES, **filters),
                     "temporal": build_language_codebook(language_model, TEMPORAL_WORD_CLASSES, **filters)}
        limit = config.vocabulary_max_words_per_class
        if limit is not None:  # the caption words, then the most frequent words of each class, in token id order
            for branch, codebook in codebooks.items():
                first = words_in_captions(captions, codebook.words) if captions is not None else ()
                kept = most_frequent_per_class(codebook.words, codebook.word_classes, limit,
                                               config.vocabulary_verb_share, first=first)
                codebooks[branch] = LanguageCodebook(
                    words=[codebook.words[index] for index in kept],
                    token_ids=[codebook.token_ids[index] for index in kept],
                    embeddings=codebook.embeddings[kept], word_classes=codebook.word_classes,
                    language_model=codebook.language_model)
        fields, embeddings = {}, {}
        for branch, codebook in codebooks.items():
            factors = config.codebook_factors(branch)
            order, sizes = list(range(len(codebook))), None
            if len(factors) > 1:
                groups = factor_indices(codebook.words, [classes for _, classes, _ in factors],
                                        config.vocabulary_verb_share)
                for (name, _, count), group in zip(factors, groups):
                    if len(group) < count:
                        raise ValueError(
                            f"the {branch} codebook of {len(codebook)} words has {len(group)} {name}(s), fewer than "
                            f"the {count} a token takes with codebook_factorization='paper': ask for more words "
                            "(max_words) or use codebook_factorization='single'")
                order, sizes = [index for group in groups for index in group], [len(group) for group in groups]
            fields[f"{branch}_words"] = [codebook.words[index] for index in order]
            fields[f"{branch}_factor_sizes"] = sizes
            fields[f"{branch}_graph_num_edges"] = 0
            embeddings[branch] = codebook.embeddings[order]
        config = SweetTokenizerConfig(**{
            **config.to_dict(),
            **fields,
            "language_model_name_or_path": language_model_name or portable_name(language_model),
            "language_embedding_dim": codebooks["spatial"].embeddings.shape[1],
        })
        model = cls(config)
        with torch.no_grad():
            model.spatial_quantizer.language_embeddings.copy_(embeddings["spatial"])
            model.temporal_quantizer.language_embeddings.copy_(embeddings["temporal"])
        if captions is not None:
            model.set_codebook_graph(captions, window=caption_window)
        return model

    def set_codebook_graph(self, captions, window: int | None = 5) -> dict[str, int]:
        """Build the word co-occurrence graphs of both codebooks from caption text and use them for the GCN code
        vectors (`config.codebook_projection="gcn"`); they are saved with the model (buffers, and the edge counts in
        `config.{branch}_graph_num_edges`), so a loaded model has the same code vectors without the captions.

        `captions`: a text file (one caption per line) or an iterable of caption strings (a list, a generator, a
        `datasets` column); `window`: two codebook words are joined when at most `window - 1` words apart in a
        caption (`None`: anywhere in it). Weights: co-occurrence counts divided by the largest; see
        `codebook_sweet.build_cooccurrence_graph`. Returns the number of edges (both directions) of each graph."""
        from .codebook_sweet import build_cooccurrence_graph, read_captions

        if self.config.codebook_projection != "gcn":
            raise ValueError(f"codebook_projection={self.config.codebook_projection!r} has no graph: the "
                             "co-occurrence graph is for codebook_projection='gcn'")
        tokenized = read_captions(captions)
        edges = {}
        for branch in BRANCHES:
            edge_index, edge_weight = build_cooccurrence_graph(tokenized, self._words(branch), window)
            getattr(self, f"{branch}_quantizer").set_graph(edge_index, edge_weight)
            setattr(self.config, f"{branch}_graph_num_edges", edge_index.shape[1])
            edges[branch] = edge_index.shape[1]
        return edges

    def temporal_parameters(self) -> list[nn.Parameter]:
        """Parameters of the temporal branch (the curriculum freezes them in image-only stages)."""
        modules = (self.temporal_transformer, self.temporal_queries, self.temporal_quantizer, self.temporal_unpooling,
                   *([self.decoder_temporal] if self.decoder_temporal is not None else []))
        return [parameter for module in modules for parameter in module.parameters()]

    def decoder_parameters(self, pixel_decoder_only: bool = False) -> list[nn.Parameter]:
        """Parameters after the quantisers (unpooling, mask token, decoder position, decoder layers, pixel decoder),
        or of the pixel decoder alone: what the authors' second stage trains with the encoder and quantisers frozen
        (`training_sweet.freeze_for_decoder_stage`)."""
        if pixel_decoder_only:
            return list(self.pixel_head.parameters())
        modules = (self.decoder_position, self.spatial_unpooling, self.temporal_unpooling, self.decoder,
                   self.decoder_norm, self.pixel_head, *([self.decoder_temporal] if self.decoder_temporal is not None
                                                         else []))
        return [self.mask_token] + [parameter for module in modules for parameter in module.parameters()]

    # -- checks -------------------------------------------------------------------------------------------------------
    def _as_video(self, pixel_values: torch.Tensor, name: str = "pixel_values") -> tuple[torch.Tensor, bool]:
        """Validate and return `(video, is_image)`: video (batch, channels, frames, height, width) in the model's
        dtype, and whether the input was images (batch, channels, height, width), which get one frame here and are
        reconstructed as images. The one place that tells images from clips.

        Integer pixels are a `TypeError`; NaN / inf, or values beyond +-`PIXEL_VALUE_LIMIT` (unnormalised pixels) a
        `ValueError` naming the item (and the range found)."""
        config = self.config
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(pixel_values).__name__}")
        if not pixel_values.is_floating_point():
            raise TypeError(f"{name} has dtype {pixel_values.dtype}; SweetTokenizer takes float pixels x - 0.5 for "
                            f"x in [0, 1]: {_PROCESSOR_HINT}")
        is_image = pixel_values.dim() == 4
        if is_image:
            pixel_values = pixel_values.unsqueeze(2)
        if pixel_values.dim() != 5:
            raise ValueError(f"{name} must be (batch, channels, height, width) for images or (batch, channels, "
                             f"frames, height, width) for videos, got shape {tuple(pixel_values.shape)}")
        batch, channels, frames, height, width = pixel_values.shape
        if batch == 0:
            raise ValueError(f"{name} is an empty batch")
        if channels != config.num_channels:
            raise ValueError(f"{name} has {channels} channels (dim 1), the model expects {config.num_channels}")
        if frames not in (1, config.num_frames):
            raise ValueError(f"{name} has {frames} frames (dim 2); SweetTokenizer takes 1 (an image) or "
                             f"num_frames={config.num_frames} (a clip)")
        if (height, width) != (config.image_size, config.image_size):
            hint = (f" ({height}x{width} is not divisible by patch_size={config.patch_size})"
                    if height % config.patch_size or width % config.patch_size else "")
            raise ValueError(f"{name} is {height}x{width}, the model expects {config.image_size}x"
                             f"{config.image_size}{hint}; resize with SweetImageProcessor / SweetVideoProcessor")
        values = pixel_values.detach().flatten(1)
        # one reduction and one sync: NaN makes `<=` false, so NaN and inf are caught with the out-of-range values
        bad = ~(values.abs().amax(dim=1) <= PIXEL_VALUE_LIMIT)
        if bad.any():  # the error path: find what is wrong, NaN / inf first
            finite = torch.isfinite(values).all(dim=1)
            if not finite.all():
                raise ValueError(f"{name} item #{int((~finite).nonzero()[0])} contains NaN or inf")
            item = int(bad.nonzero()[0])
            low, high = values[item].min().item(), values[item].max().item()
            raise ValueError(f"{name} item #{item} has values in [{low:.4g}, {high:.4g}]; SweetTokenizer expects "
                             f"x - 0.5 for pixels x in [0, 1], i.e. [-0.5, 0.5] (magnitudes up to {PIXEL_VALUE_LIMIT} "
                             f"are accepted): {_PROCESSOR_HINT}")
        return pixel_values.to(self.dtype), is_image

    def _check_ids(self, ids: torch.LongTensor, branch: str, expected_length: int) -> None:
        """Ids as `decode` takes them: (batch, expected_length), or (batch, expected_length, ids_per_token) with
        factorised codes, each id in its factor's block of the branch's words."""
        quantizer = self.spatial_quantizer if branch == "spatial" else self.temporal_quantizer
        factors, per_token = quantizer.factors, quantizer.ids_per_token
        expected = (expected_length,) if len(factors) == 1 else (expected_length, per_token)
        if ids.dim() != 1 + len(expected) or tuple(ids.shape[1:]) != expected:
            raise ValueError(f"{branch}_ids must be (batch, {', '.join(map(str, expected))}), got shape "
                             f"{tuple(ids.shape)}")
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise ValueError(f"{branch}_ids must be integers, got dtype {ids.dtype}")
        ids = ids.unsqueeze(-1) if len(factors) == 1 else ids
        starts = torch.tensor([start for start, (_, _, count) in zip(quantizer.factor_starts, factors)
                               for _ in range(count)], device=ids.device)
        ends = starts + torch.tensor([size for size, (_, _, count) in zip(quantizer.factor_sizes, factors)
                                      for _ in range(count)], device=ids.device)
        bad = (ids < starts) | (ids >= ends)
        if bad.any():
            item, position, slot = (int(i) for i in bad.nonzero()[0])
            value = int(ids[item, position, slot])
            if len(factors) == 1:
                raise ValueError(f"{branch}_ids[{item}, {position}] = {value} is outside the {branch} codebook "
                                 f"[0, {quantizer.codebook_size})")
            name = [name for name, _, count in factors for _ in range(count)][slot]
            raise ValueError(f"{branch}_ids[{item}, {position}, {slot}] = {value} is outside the {branch} {name}s: "
                             f"slot {slot} takes a {name}, ids [{int(starts[slot])}, {int(ends[slot])}) of the "
                             f"{branch} codebook")

    # -- encoder ------------------------------------------------------------------------------------------------------
    def _encode_features(self, video: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
                         ) -> tuple[torch.Tensor, tuple | None, tuple | None, list[torch.Tensor]]:
        """(batch, channels, frames, H, W) -> features (batch, frame_groups, num_patches, hidden), plus the encoder's
        hidden states and attention weights (tuples, see `SweetTokenizerEncoderOutput`) when asked for, and the output
        of each encoder layer (batch, frame_groups, num_patches, hidden), for `spatial_query_context="matching"`.

        Each layer attends over all positions (`encoder_attention="full"`) or within frame groups / windows
        (`"frame_group"`, see `layers_sweet.attention_partitions`); attention weights are over all positions either
        way (zero between blocks)."""
        states = self.patch_embedding(video)
        hidden_states = (states.flatten(1, 2),) if output_hidden_states else None
        attentions = () if output_attentions else None
        layer_outputs = []
        for layer, partition in zip(self.encoder, self._encoder_partitions):
            states, weights, _ = partitioned_layer_forward(layer, states, partition,
                                                           output_attentions=output_attentions)
            layer_outputs.append(states)
            if output_hidden_states:
                hidden_states += (states.flatten(1, 2),)
            if output_attentions:
                attentions += (weights,)
        return self.encoder_norm(states), hidden_states, attentions, layer_outputs

    def _temporal_tokens(self, features: torch.Tensor) -> torch.Tensor:
        """Differences of consecutive frame groups -> causal transformer along time per location -> queries."""
        batch, groups, patches, hidden = features.shape
        differences = (features[:, 1:] - features[:, :-1]).permute(0, 2, 1, 3)
        differences = differences.reshape(batch * patches, groups - 1, hidden)
        for layer in self.temporal_transformer:
            differences = layer(differences, is_causal=True)[0]
        context = differences.view(batch, patches, groups - 1, hidden).permute(0, 2, 1, 3)  # (batch, steps, ...)
        if self.config.temporal_queries == "per_location":
            return self.temporal_queries(context)
        return self.temporal_queries(context.flatten(1, 2))

    def _encode_video(self, video: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False,
                      quantize: bool = True) -> SweetTokenizerEncoderOutput:
        """`encode` for a checked (batch, C, frames, H, W) tensor (see `_as_video`)."""
        features, hidden_states, attentions, layer_outputs = self._encode_features(video, output_hidden_states,
                                                                                   output_attentions)
        spatial_context = features.mean(dim=1)
        if self.config.spatial_query_context == "matching":  # query layer i reads its encoder layer, time-averaged
            spatial_context = [spatial_context if layer == len(self.encoder) else layer_outputs[layer - 1].mean(dim=1)
                               for layer in matching_encoder_layers(len(self.encoder), self.config.num_query_layers)]
        spatial_latents, spatial_ids, vq_loss = self.spatial_quantizer(self.spatial_queries(spatial_context),
                                                                       quantize=quantize)
        temporal_latents = temporal_ids = None
        if features.shape[1] > 1:
            temporal_latents, temporal_ids, temporal_loss = self.temporal_quantizer(
                self._temporal_tokens(features), quantize=quantize)
            vq_loss = vq_loss + temporal_loss
        return SweetTokenizerEncoderOutput(spatial_ids=spatial_ids, temporal_ids=temporal_ids,
                                           spatial_latents=spatial_latents, temporal_latents=temporal_latents,
                                           vq_loss=vq_loss, encoder_hidden_states=hidden_states,
                                           encoder_attentions=attentions)

    def encode(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None,
               output_attentions: bool | None = None, quantize: bool = True) -> SweetTokenizerEncoderOutput:
        """`pixel_values`: images (batch, C, H, W) or clips (batch, C, num_frames, H, W), normalised as x - 0.5 for
        pixels x in [0, 1] (what `SweetImageProcessor` / `SweetVideoProcessor` return).

        Integer tensors raise a `TypeError`; other float dtypes are cast to the model's dtype; an item with a value
        beyond +-`PIXEL_VALUE_LIMIT` (1.0, e.g. 0..255 pixels) raises a `ValueError` naming it. `output_hidden_states`
        / `output_attentions` (default: the config's) add the encoder's hidden states / attention weights.
        `quantize=False` gives the continuous latents (they skip the codebooks, the VQ loss is 0); the ids are still
        the nearest words."""
        output_hidden_states = self._flag(output_hidden_states, "output_hidden_states")
        output_attentions = self._flag(output_attentions, "output_attentions")
        return self._encode_video(self._as_video(pixel_values)[0], output_hidden_states, output_attentions,
                                  quantize=quantize)

    def _flag(self, value: bool | None, name: str) -> bool:
        return bool(getattr(self.config, name)) if value is None else bool(value)

    # -- decoder ------------------------------------------------------------------------------------------------------
    def _decode_latents(self, spatial_latents: torch.Tensor, temporal_latents: torch.Tensor | None,
                        output_hidden_states: bool = False, output_attentions: bool = False
                        ) -> tuple[torch.Tensor, tuple | None, tuple | None, tuple | None]:
        """Latents -> pixels (batch, C, frames, H, W): one frame without temporal latents, `num_frames` with; plus the
        decoder's hidden states, self- and cross-attention weights (see `SweetTokenizerOutput`) when asked for.

        Mask tokens (one per patch and frame group) start from the spatial latents unpooled to every group plus the
        temporal latents unpooled to every group, then cross-attend to them."""
        batch = spatial_latents.shape[0]
        groups = 1 if temporal_latents is None else self.config.num_frame_groups
        unpooled = self.spatial_unpooling(spatial_latents).unsqueeze(1).expand(-1, groups, -1, -1)
        if temporal_latents is not None:
            temporal = self.temporal_unpooling(temporal_latents)
            unpooled = unpooled + temporal.view(batch, groups, self.config.num_patches, -1)
        # (batch, groups, patches, hidden)
        states = self.mask_token + self.decoder_position(groups) + unpooled
        hidden_states = (states.flatten(1, 2),) if output_hidden_states else None
        self_attentions = () if output_attentions else None
        cross_attentions = () if output_attentions else None
        for index, layer in enumerate(self.decoder):
            reads_temporal = temporal_latents is not None and index % 2 == 1
            states, self_weights, cross_weights = partitioned_layer_forward(
                layer, states, self._decoder_partitions[index],
                temporal_latents if reads_temporal else spatial_latents, output_attentions=output_attentions)
            if self.decoder_temporal is not None and groups > 1:
                states = per_location_temporal_forward(self.decoder_temporal[index], states)
            if output_hidden_states:
                hidden_states += (states.flatten(1, 2),)
            if output_attentions:
                self_attentions += (self_weights,)
                cross_attentions += (cross_weights,)
        return self.pixel_head(self.decoder_norm(states)), hidden_states, self_attentions, cross_attentions

    def decode(self, spatial_ids: torch.LongTensor, temporal_ids: torch.LongTensor | None = None) -> torch.Tensor:
        """Token ids -> pixels: (batch, C, H, W) from spatial ids alone, (batch, C, num_frames, H, W) with temporal.

        Ids as `encode` gives them: `spatial_ids` (batch, num_spatial_queries, 3) and `temporal_ids`
        (batch, num_temporal_queries, 2) with factorised codes (`config.codebook_factorization="paper"`), else
        (batch, length). An id outside its factor's block (a noun id in an adjective slot, ...) raises a ValueError
        naming its position."""
        self._check_ids(spatial_ids, "spatial", self.config.num_spatial_queries)
        temporal_latents = None
        if temporal_ids is not None:
            self._check_ids(temporal_ids, "temporal", self.config.num_temporal_queries)
            temporal_latents = self.temporal_quantizer.embed_ids(temporal_ids)
        video = self._decode_latents(self.spatial_quantizer.embed_ids(spatial_ids), temporal_latents)[0]
        return video[:, :, 0] if temporal_ids is None else video

    def _words(self, branch: str) -> list[str]:
        if branch not in BRANCHES:
            raise ValueError(f"branch must be one of {BRANCHES}, got {branch!r}")
        words = getattr(self.config, f"{branch}_words")
        if words is None:
            raise ValueError(f"this model has no {branch} word list: build it with "
                             "SweetTokenizerModel.from_language_model")
        return words

    def ids_to_words(self, ids: torch.LongTensor, branch: str = "spatial") -> list:
        """Code ids of one branch (any shape) -> nested lists of words, for an LLM prompt. Factorised ids
        (batch, length, 3) give `[adjective, adjective, noun]` per spatial token, (batch, length, 2)
        `[verb, adverb]` per temporal token."""
        words = self._words(branch)
        ids = torch.as_tensor(ids)
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise ValueError(f"{branch} ids must be integers, got dtype {ids.dtype}")
        bad = (ids < 0) | (ids >= len(words))
        if bad.any():
            raise ValueError(f"{branch} id {int(ids[bad].flatten()[0])} is outside the {branch} codebook "
                             f"[0, {len(words)})")
        return [words[i] for i in ids.reshape(-1).tolist()] if ids.dim() <= 1 else [
            self.ids_to_words(row, branch) for row in ids]

    def words_to_ids(self, words, branch: str = "spatial") -> torch.LongTensor:
        """Words of one branch (nested lists of equal length, e.g. `ids_to_words`' output) -> LongTensor of code ids of
        the same shape, on the model's device; `decode` takes them back. A word outside the codebook raises a
        `KeyError` naming it."""
        index = {word: i for i, word in enumerate(self._words(branch))}

        def lookup(item):
            if isinstance(item, str):
                if item not in index:
                    raise KeyError(f"{item!r} is not a word of the {branch} codebook ({len(index)} words)")
                return index[item]
            return [lookup(inner) for inner in item]

        return torch.tensor(lookup(words), dtype=torch.long, device=self.device)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        return_loss: bool = True,
        quantize: bool = True,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> SweetTokenizerOutput | tuple:
        r"""
        pixel_values (`torch.FloatTensor`, *optional*): images (batch, C, H, W) or clips (batch, C, num_frames, H, W),
            x - 0.5 for pixels x in [0, 1] (checked as in `encode`).
        pixel_values_videos (`torch.FloatTensor`, *optional*): clips (batch_videos, C, num_frames, H, W), so that one
            training batch can hold images and clips, each decoded as what it is (`SweetCurriculumCollator` with
            media "both").
        return_loss (`bool`, *optional*, defaults to `True`): compute reconstruction + VQ loss.
        quantize (`bool`, *optional*, defaults to `True`): `False` decodes the continuous latents, skipping the
            codebooks (a continuous warm-up, as the curriculum of `training_sweet.SweetTokenizerTrainer` starts with).
        output_attentions (`bool`, *optional*): return the attention weights of the encoder and decoder layers
            (computed by the eager path for this call); defaults to `config.output_attentions`.
        output_hidden_states (`bool`, *optional*): return the encoder's and decoder's hidden states; defaults to
            `config.output_hidden_states`.
        return_dict (`bool`, *optional*): `False` returns a tuple (`SweetTokenizerOutput.to_tuple()`); defaults to
            `config.return_dict`.

        Any other keyword raises Python's `TypeError` naming it. The loss is a per-item mean and Trainer passes no
        `num_items_in_batch` (`accepts_loss_kwargs = False`): it scales the loss for gradient accumulation itself.
        """
        if pixel_values is None and pixel_values_videos is None:
            raise ValueError("SweetTokenizerModel needs pixel_values, pixel_values_videos or both")
        if isinstance(pixel_values_videos, torch.Tensor) and pixel_values_videos.dim() != 5:
            raise ValueError("pixel_values_videos must be (batch, channels, frames, height, width), got shape "
                             f"{tuple(pixel_values_videos.shape)}")
        output_attentions = self._flag(output_attentions, "output_attentions")
        output_hidden_states = self._flag(output_hidden_states, "output_hidden_states")
        return_dict = self._flag(return_dict, "return_dict")
        given = (("pixel_values", pixel_values), ("pixel_values_videos", pixel_values_videos))
        checked = {name: self._as_video(pixels, name) for name, pixels in given if pixels is not None}
        inputs = {name: video for name, (video, _) in checked.items()}
        parts = {name: self._forward_part(video, is_image, return_loss, quantize, output_hidden_states,
                                          output_attentions)
                 for name, (video, is_image) in checked.items()}
        images, videos = parts.get("pixel_values", {}), parts.get("pixel_values_videos", {})
        losses = {}
        if return_loss:  # per-item mean over both parts
            total = sum(len(video) for video in inputs.values())
            for key in ("loss", "reconstruction_loss", "vq_loss"):
                losses[key] = sum(parts[name][key] * len(inputs[name]) for name in parts) / total
        extras = ("encoder_hidden_states", "decoder_hidden_states", "encoder_attentions", "decoder_attentions",
                  "cross_attentions")
        usage, perplexity = self._codebook_statistics(parts.values())
        output = SweetTokenizerOutput(
            **losses, codebook_usage=usage, codebook_perplexity=perplexity,
            reconstruction=images.get("reconstruction"), spatial_ids=images.get("spatial_ids"),
            temporal_ids=images.get("temporal_ids"), reconstruction_videos=videos.get("reconstruction"),
            video_spatial_ids=videos.get("spatial_ids"), video_temporal_ids=videos.get("temporal_ids"),
            **{key: images.get(key) for key in extras}, **{f"video_{key}": videos.get(key) for key in extras},
        )
        return output if return_dict else output.to_tuple()

    @property
    def codebook_names(self) -> dict[str, tuple[str, ...]]:
        """The keys of `codebook_usage` / `codebook_perplexity` of each branch, in factor order."""
        return {branch: tuple(branch if name == branch else f"{branch}_{name}"
                              for name, _, _ in self.config.codebook_factors(branch)) for branch in BRANCHES}

    def _codebook_statistics(self, parts) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Usage and perplexity per codebook (factor) over the ids of all parts (see `SweetTokenizerOutput`)."""
        usage, perplexity = {}, {}
        parts = list(parts)
        for branch in BRANCHES:
            ids = [part[f"{branch}_ids"] for part in parts if part[f"{branch}_ids"] is not None]
            if not ids:
                continue
            quantizer = getattr(self, f"{branch}_quantizer")
            per_token = quantizer.ids_per_token
            branch_usage, branch_perplexity = quantizer.usage_and_perplexity(
                torch.cat([part_ids.reshape(-1, per_token) for part_ids in ids]))
            for index, name in enumerate(self.codebook_names[branch]):
                usage[name], perplexity[name] = branch_usage[index], branch_perplexity[index]
        return usage, perplexity

    def _forward_part(self, video: torch.Tensor, is_image: bool, return_loss: bool, quantize: bool,
                      output_hidden_states: bool, output_attentions: bool) -> dict:
        """Encode, decode and (optionally) score one checked tensor (batch, C, frames, H, W) of images or clips;
        `is_image`: the input was (batch, C, H, W), and so is the reconstruction."""
        encoded = self._encode_video(video, output_hidden_states, output_attentions, quantize=quantize)
        decoded, decoder_hidden_states, decoder_attentions, cross_attentions = self._decode_latents(
            encoded.spatial_latents, encoded.temporal_latents, output_hidden_states, output_attentions)
        target = video[:, :, 0] if is_image else video
        reconstruction = decoded[:, :, 0] if is_image else decoded
        loss = reconstruction_loss = None
        if return_loss:
            reconstruction_loss = self._reconstruction_loss(reconstruction, target)
            loss = reconstruction_loss + self.config.vq_loss_weight * encoded.vq_loss
        return {"loss": loss, "reconstruction": reconstruction, "spatial_ids": encoded.spatial_ids,
                "temporal_ids": encoded.temporal_ids, "reconstruction_loss": reconstruction_loss,
                "vq_loss": encoded.vq_loss, "encoder_hidden_states": encoded.encoder_hidden_states,
                "decoder_hidden_states": decoder_hidden_states, "encoder_attentions": encoded.encoder_attentions,
                "decoder_attentions": decoder_attentions, "cross_attentions": cross_attentions}

    def _reconstruction_loss(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        kind = self.config.reconstruction_loss
        loss = reconstruction.new_zeros(())
        if "l1" in kind:
            loss = loss + F.l1_loss(reconstruction, target)
        if "l2" in kind:
            loss = loss + F.mse_loss(reconstruction, target)
        return loss


__all__ = ["SweetTokenizerPreTrainedModel", "SweetTokenizerModel", "LanguageCodebookQuantizer", "CodeVectorGCN",
           "SweetTokenizerEncoderOutput", "SweetTokenizerOutput"]
