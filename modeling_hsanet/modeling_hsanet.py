"""HSA-Net: a GIN encoder whose every level is projected to query tokens by a Hierarchical Adaptive Projector
(cross-attention or structure-aware Graph-Mamba, chosen per level by a learned gate) and merged by a Source-Aware
Fusion of routed experts.

Inputs are the flat batch produced by `HSANetProcessor` (see `HSANetModel.forward`): atoms of all molecules stacked,
`num_atoms` telling where each molecule ends.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import nn
from torch_geometric.nn import GINEConv
from torch_geometric.utils import scatter
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func
from transformers.utils import ModelOutput

from .configuration_hsanet import HSANetConfig
from .hub_hsanet import push_to_hub_with_model_card
from .remote_code_hsanet import add_remote_code_entries

try:  # optional CUDA kernels; the pure-PyTorch scan below gives the same numbers
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _mamba_selective_scan_fn
except Exception:  # noqa: BLE001 - any failure (missing package, CUDA mismatch) means "no kernels"
    _mamba_selective_scan_fn = None

CROSS_ATTENTION, GRAPH_MAMBA = 0, 1


# ---------------------------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class HSANetModelOutput(ModelOutput):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(batch, num_tokens, hidden)`):
        Fused tokens: `num_query_tokens` per level followed by the motif tokens.
    pooler_output (`torch.FloatTensor` of shape `(batch, hidden)`):
        Molecule embedding, the mean of the fused tokens.
    projector_choices (`torch.LongTensor` of shape `(batch, num_levels)`):
        Projector used per level: 0 = cross-attention, 1 = Graph-Mamba.
    gate_logits (`torch.FloatTensor` of shape `(batch, num_levels, 2)`):
        Logits of the per-level projector gate (`None` when `projector_mode` forces a projector).
    router_logits (`torch.FloatTensor` of shape `(batch, num_tokens, num_fusion_experts)`):
        Router logits of the Source-Aware Fusion (`None` with `fusion="mlp"`).
    aux_loss (`torch.FloatTensor` of shape `()`):
        Load-balancing loss of the router (0 with `fusion="mlp"`).
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, with `output_hidden_states=True`):
        The GIN levels (atom embedding, then every layer), each `(batch, max_atoms, hidden)`: atoms in the order of
        the `atom_features` rows (the featurizer's canonical order), zeros at padding (`num_atoms` gives lengths).
    attentions (`tuple(torch.FloatTensor)`, *optional*, with `output_attentions=True`):
        Per level, the query attention of the projector each molecule used, `(batch, heads, num_query_tokens,
        max_atoms)`, keys in that same atom order; then, with a motif branch, the motif queries' attention
        `(batch, heads, num_motif_tokens, 1 + num_functional_groups)` (key 0 is the learned "no motif" key).
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    projector_choices: torch.LongTensor | None = None
    gate_logits: torch.FloatTensor | None = None
    router_logits: torch.FloatTensor | None = None
    aux_loss: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class HSANetPropertyPredictionOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*):
        Task loss (NaN labels masked out) plus `router_aux_loss_coef * aux_loss`, when labels are given.
    logits (`torch.FloatTensor` of shape `(batch, num_labels)`):
        Predicted values (regression) or class logits.
    pooler_output (`torch.FloatTensor` of shape `(batch, hidden)`):
        Molecule embedding.
    projector_choices, gate_logits, router_logits, aux_loss, hidden_states, attentions:
        As in `HSANetModelOutput`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    projector_choices: torch.LongTensor | None = None
    gate_logits: torch.FloatTensor | None = None
    router_logits: torch.FloatTensor | None = None
    aux_loss: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


# ---------------------------------------------------------------------------------------------------------------------
# Batch layout: stacked atoms <-> padded per-molecule sequences in the structure-aware order
# ---------------------------------------------------------------------------------------------------------------------
class GraphBatchLayout:
    """Index maps between stacked atoms `(num_atoms_total, ...)` and right-padded sequences `(batch, max_atoms, ...)`.

    Atom `i` of molecule `b` sits at position `structure_rank[i]` of the forward sequence and at
    `num_atoms[b] - 1 - structure_rank[i]` of the backward one, so each molecule is reversed over its own length;
    `input_position` is its index within its molecule (the order of the `atom_features` rows).
    """

    def __init__(self, num_atoms: torch.LongTensor, structure_rank: torch.LongTensor):
        batch_size = num_atoms.shape[0]
        self.atom_batch = torch.repeat_interleave(torch.arange(batch_size, device=num_atoms.device), num_atoms)
        self.input_position = torch.arange(self.atom_batch.shape[0], device=num_atoms.device) - (
            num_atoms.cumsum(0) - num_atoms)[self.atom_batch]
        self.forward_position = structure_rank
        self.backward_position = num_atoms[self.atom_batch] - 1 - structure_rank
        self.batch_size = batch_size
        self.max_atoms = int(num_atoms.max())
        self.mask = torch.arange(self.max_atoms, device=num_atoms.device)[None, :] < num_atoms[:, None]

    def to_dense(self, values: torch.Tensor, position: torch.LongTensor) -> torch.Tensor:
        """`values`: (num_atoms_total, ...) -> (batch, max_atoms, ...), zeros at padding."""
        dense = values.new_zeros((self.batch_size, self.max_atoms) + values.shape[1:])
        dense[self.atom_batch, position] = values
        return dense

    def from_dense(self, dense: torch.Tensor, position: torch.LongTensor) -> torch.Tensor:
        """`dense`: (batch, max_atoms, ...) -> (num_atoms_total, ...)."""
        return dense.flatten(0, 1).index_select(0, self.atom_batch * dense.shape[1] + position)  # = [atom_batch, pos]

    def atom_at(self, position: torch.LongTensor, padding: int = 0) -> torch.LongTensor:
        """(batch, padding + max_atoms): the index of the atom (in the stacked order) at each step of the sequences
        that place atom `i` at step `padding + position[i]`; -1 at the `padding` leading steps and the right padding.
        `values.index_select(0, atom.clamp(min=0).flatten())` then gathers `to_dense`'s result, up to the padding."""
        atom = torch.full((self.batch_size, padding + self.max_atoms), -1, dtype=torch.long, device=position.device)
        atom[self.atom_batch, padding + position] = torch.arange(self.atom_batch.shape[0], device=position.device)
        return atom

    def keys_to_input_order(self, attention: torch.Tensor) -> torch.Tensor:
        """Attention over the forward (structure-aware) sequence (batch, heads, queries, max_atoms) -> the same with
        keys in input order."""
        per_atom = self.from_dense(attention.permute(0, 3, 1, 2), self.forward_position)  # (atoms, heads, queries)
        return self.to_dense(per_atom, self.input_position).permute(0, 2, 3, 1)

    def mean_per_molecule(self, values: torch.Tensor) -> torch.Tensor:
        """`values`: (num_atoms_total, hidden) -> (batch, hidden)."""
        return scatter(values, self.atom_batch, dim=0, dim_size=self.batch_size, reduce="mean")


# ---------------------------------------------------------------------------------------------------------------------
# GIN encoder
# ---------------------------------------------------------------------------------------------------------------------
class CategoricalFeatureEmbedding(nn.Module):
    """Sum of one embedding per categorical column (OGB's AtomEncoder/BondEncoder) in a single table lookup."""

    def __init__(self, vocabulary_sizes: tuple[int, ...], hidden_size: int, name: str):
        super().__init__()
        self.name = name
        self.vocabulary_sizes = tuple(vocabulary_sizes)
        self.embedding = nn.Embedding(sum(vocabulary_sizes), hidden_size)
        self.register_buffer("sizes", torch.empty(len(vocabulary_sizes), dtype=torch.long), persistent=False)
        self.register_buffer("offsets", torch.empty(len(vocabulary_sizes), dtype=torch.long), persistent=False)
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """Fill the non-persistent `sizes` / `offsets` (called from `_init_weights`, also after loading)."""
        sizes = torch.tensor(self.vocabulary_sizes)
        init.copy_(self.sizes, sizes)
        init.copy_(self.offsets, sizes.cumsum(0) - sizes)

    def forward(self, features: torch.LongTensor) -> torch.Tensor:
        """`features`: (num_items, num_columns) -> (num_items, hidden)."""
        if features.dim() != 2 or features.shape[1] != self.sizes.numel():
            raise ValueError(f"{self.name} must have shape (N, {self.sizes.numel()}), got {tuple(features.shape)}")
        if ((features < 0) | (features >= self.sizes)).any():
            column = int(((features < 0) | (features >= self.sizes)).any(0).nonzero()[0])
            raise ValueError(f"{self.name} column {column} has values outside [0, {int(self.sizes[column])})")
        return self.embedding(features + self.offsets).sum(dim=1)


class SelfLoopGINConv(nn.Module):
    """The GIN layer of Hu et al. (pretrain-gnns `chem/model.py` `GINConv`, copied by GraphCL and MolCA): every atom
    gets a self-loop edge with its own bond embedding, messages `x_j + e_ji` are summed without a ReLU, then
    MLP = Linear-ReLU-Linear: `MLP(x_i + e_self + sum_{j -> i} (x_j + e_ji))`. No `eps`: the self-loop is the self
    term.

    `node_states`: (num_atoms, hidden); `edge_index`: (2, num_edges); `edge_states`: (num_edges, hidden);
    `self_loop_state`: (1, hidden), the embedded self-loop bond row. Returns (num_atoms, hidden).
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.nn = nn.Sequential(nn.Linear(hidden_size, 2 * hidden_size), nn.ReLU(),
                                nn.Linear(2 * hidden_size, hidden_size))

    def forward(self, node_states, edge_index, edge_states, self_loop_state) -> torch.Tensor:
        source, target = edge_index
        neighbours = scatter(node_states[source] + edge_states, target, dim=0, dim_size=node_states.shape[0],
                             reduce="sum")
        return self.nn(neighbours + node_states + self_loop_state)


class HSANetGINEncoder(nn.Module):
    """Edge-aware GIN layers, each followed by BatchNorm, ReLU except after the last layer, and dropout. The layer is
    `config.gin_variant`: `"gine"` (PyG's `GINEConv` with MLP = Linear-BatchNorm-ReLU-Linear: MoleculeSTM's GIN) or
    `"pretrain_gnns"` (`SelfLoopGINConv`: the GIN of pretrain-gnns / MolCA).

    Returns every level: `[atom embedding, layer 1, ..., layer L]`, each `(num_atoms_total, hidden)`.
    """

    def __init__(self, config: HSANetConfig):
        super().__init__()
        hidden = config.hidden_size
        self.atom_embedding = CategoricalFeatureEmbedding(config.atom_vocabulary_sizes, hidden, "atom_features")
        self.bond_embeddings = nn.ModuleList(
            CategoricalFeatureEmbedding(config.bond_vocabulary_sizes, hidden, "bond_features")
            for _ in range(config.num_gnn_layers)
        )
        # bond feature row of the self-loop edges ("pretrain_gnns"), None for "gine"
        self.self_loop_bond_features = config.self_loop_bond_features
        if config.gin_variant == "pretrain_gnns":
            self.convolutions = nn.ModuleList(SelfLoopGINConv(hidden) for _ in range(config.num_gnn_layers))
        else:
            self.convolutions = nn.ModuleList(
                GINEConv(nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.BatchNorm1d(2 * hidden), nn.ReLU(),
                                       nn.Linear(2 * hidden, hidden)))
                for _ in range(config.num_gnn_layers)
            )
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(config.num_gnn_layers))
        self.dropout = nn.Dropout(config.gnn_dropout)

    def forward(self, atom_features, edge_index, bond_features) -> list[torch.Tensor]:
        states = self.atom_embedding(atom_features)
        levels = [states]
        last = len(self.convolutions) - 1
        self_loop = None
        if self.self_loop_bond_features is not None:
            self_loop = torch.tensor([self.self_loop_bond_features], device=atom_features.device)  # (1, columns)
        for index, (conv, bond_embedding, norm) in enumerate(zip(self.convolutions, self.bond_embeddings, self.norms)):
            edge_states = bond_embedding(bond_features)
            if self_loop is None:
                states = norm(conv(states, edge_index, edge_states))
            else:
                states = norm(conv(states, edge_index, edge_states, bond_embedding(self_loop)))
            if index < last:
                states = F.relu(states)
            states = self.dropout(states)
            levels.append(states)
        return levels


# ---------------------------------------------------------------------------------------------------------------------
# Projectors
# ---------------------------------------------------------------------------------------------------------------------
def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """softmax(q k^T * scaling) v with a boolean mask (True = attend), returning the weights too.

    `query`: (batch, heads, queries, head_dim); `key`, `value`: (batch, heads, keys, head_dim); `attention_mask`:
    broadcastable to (batch, heads, queries, keys). Returns the output (batch, queries, heads, head_dim) and the
    weights (batch, heads, queries, keys), as transformers' attention functions.
    """
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class QueryCrossAttention(nn.Module):
    """Learned queries cross-attend to a padded set of keys (Q-Former/resampler style), then a feed-forward block.

    Padding keys are masked out, so a molecule never attends to another molecule's atoms or to padding. The attention
    function follows `config._attn_implementation` ("sdpa" by default, "eager" as the reference); a call that asks
    for the attention weights runs eager.
    """

    is_causal = False

    def __init__(self, config: HSANetConfig, num_queries: int):
        super().__init__()
        hidden = config.hidden_size
        self.config = config
        self.num_heads = config.num_attention_heads
        self.scaling = (hidden // self.num_heads) ** -0.5
        self.queries = nn.Parameter(torch.empty(num_queries, hidden))
        self.key_norm = nn.LayerNorm(hidden)
        self.q_proj = nn.Linear(hidden, hidden)
        self.k_proj = nn.Linear(hidden, hidden)
        self.v_proj = nn.Linear(hidden, hidden)
        self.o_proj = nn.Linear(hidden, hidden)
        self.ffn_norm = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))

    def _split_heads(self, states: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = states.shape
        return states.view(batch, length, self.num_heads, hidden // self.num_heads).transpose(1, 2)

    def forward(self, keys: torch.Tensor, key_mask: torch.BoolTensor, output_attentions: bool = False):
        """`keys`: (batch, num_keys, hidden); `key_mask`: (batch, num_keys), True = real. Returns tokens
        (batch, Q, hidden) and, with `output_attentions`, the weights (batch, heads, Q, num_keys), else None."""
        batch = keys.shape[0]
        keys = self.key_norm(keys)
        queries = self.queries.unsqueeze(0).expand(batch, -1, -1)
        attention = eager_attention_forward
        if not output_attentions:
            implementation = self.config._attn_implementation
            attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        attended, weights = attention(
            self,
            self._split_heads(self.q_proj(queries)),
            self._split_heads(self.k_proj(keys)),
            self._split_heads(self.v_proj(keys)),
            key_mask[:, None, None, :],
            scaling=self.scaling,
        )
        tokens = queries + self.o_proj(attended.flatten(2))
        return tokens + self.ffn(self.ffn_norm(tokens)), weights


class CrossAttentionProjector(GradientCheckpointingLayer):
    """E_attn: `num_query_tokens` learned queries attend over the atoms of each molecule."""

    def __init__(self, config: HSANetConfig):
        super().__init__()
        self.pool = QueryCrossAttention(config, config.num_query_tokens)

    def forward(self, node_states: torch.Tensor, layout: GraphBatchLayout, output_attentions: bool = False):
        """`node_states`: (num_atoms_total, hidden) -> tokens (batch, num_query_tokens, hidden) and the attention over
        the forward sequence (batch, heads, num_query_tokens, max_atoms) with `output_attentions`, else None."""
        return self.pool(layout.to_dense(node_states, layout.forward_position), layout.mask, output_attentions)


def _scan_steps(decay: torch.Tensor, states: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """In place along dim 1: `states[:, i] = decay[:, i] * state + states[:, i]`, `state` then becoming `states[:, i]`
    (one fused `addcmul` per step). `decay`, `states`: (batch, steps, ...); `state`: (batch, ...). Returns the last
    state."""
    for step in range(states.shape[1]):
        state = torch.addcmul(states[:, step], decay[:, step], state, out=states[:, step])
    return state


def scan_chunk_size(length: int) -> int:
    """Steps per chunk of `ChunkedSelectiveScan`: about sqrt(length / 4), which minimises the states it keeps
    (length / chunk checkpoints + 4 chunk buffers of `chunk` steps): 4 at length 64, 16 at 1,024, 32 at 4,096."""
    return max(1, math.ceil(math.sqrt(length / 4)))


class ChunkedSelectiveScan(torch.autograd.Function):
    """Mamba's selective scan `h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t`, `y_t = C_t h_t + D u_t`, a chunk of
    steps at a time, with a hand-written backward.

    The (batch, length, inner, state) tensor of all states is never built. Forward keeps the state at every chunk
    boundary (`length / chunk_size` of them); backward recomputes each chunk's states from its boundary and runs the
    adjoint recurrence `g_t = C_t dy_t + exp(delta_{t+1} A) g_{t+1}` backwards through it. The work per chunk is a few
    whole-chunk tensor operations (one `exp2` for all decays, broadcast products, batched matrix products for the
    contractions) plus one fused `addcmul` per step, on buffers of `chunk_size` states that are reused, so they stay
    in cache. Cost and memory against a sequential loop: `benchmarks/bench_scan.py`.

    Layout (the model's): `u`, `delta` (softplus applied): (batch, length, inner); `A`: (inner, state); `B`, `C`:
    (batch, length, state); `D`: (inner,); all one floating dtype. Returns `y`: (batch, length, inner).
    """

    @staticmethod
    def _chunk(A_log2: torch.Tensor, delta, drive, B, start: int, stop: int, decay, states, state) -> torch.Tensor:
        """Decays and states of steps [start, stop) into the (batch, steps, state, inner) buffers, from `state`."""
        torch.mul(delta[:, start:stop, None, :], A_log2, out=decay)
        torch.exp2(decay, out=decay)  # exp(delta * A), computed as exp2(delta * A * log2(e))
        torch.mul(drive[:, start:stop, None, :], B[:, start:stop, :, None], out=states)
        return _scan_steps(decay, states, state)

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, chunk_size: int):
        batch, length, inner = u.shape
        state_size = A.shape[1]
        A_log2 = (A * math.log2(math.e)).t().contiguous()  # (state, inner)
        drive = delta * u
        y = u * D
        starts = range(0, length, chunk_size)
        boundaries = u.new_empty(len(starts), batch, state_size, inner)  # state before each chunk
        boundaries[0].zero_()
        decay_buffer = u.new_empty(batch, min(chunk_size, length), state_size, inner)
        state_buffer = torch.empty_like(decay_buffer)
        for chunk, start in enumerate(starts):
            stop = min(start + chunk_size, length)
            steps = stop - start
            states = state_buffer[:, :steps]
            last = ChunkedSelectiveScan._chunk(A_log2, delta, drive, B, start, stop, decay_buffer[:, :steps], states,
                                               boundaries[chunk])
            if chunk + 1 < len(starts):
                boundaries[chunk + 1].copy_(last)
            # y_t += C_t . h_t, one (1, state) x (state, inner) product per (item, step)
            y[:, start:stop] += torch.matmul(C[:, start:stop, None, :], states).squeeze(2)
        ctx.save_for_backward(u, delta, A, B, C, D, boundaries)
        ctx.chunk_size = chunk_size
        return y

    @staticmethod
    def backward(ctx, grad_y):
        u, delta, A, B, C, D, boundaries = ctx.saved_tensors
        chunk_size = ctx.chunk_size
        batch, length, inner = u.shape
        state_size = A.shape[1]
        A_t = A.t().contiguous()
        A_log2 = A_t * math.log2(math.e)
        drive = delta * u
        grad_y = grad_y.contiguous()
        grad_drive, grad_delta = torch.empty_like(u), torch.empty_like(u)
        grad_B, grad_C = torch.empty_like(B), torch.empty_like(C)
        grad_A_t = A_t.new_zeros(state_size, inner)
        decay_buffer = u.new_empty(batch, min(chunk_size, length), state_size, inner)
        state_buffer, grad_buffer, work_buffer = (torch.empty_like(decay_buffer) for _ in range(3))
        carry = u.new_zeros(batch, state_size, inner)  # exp(delta_{t+1} A) g_{t+1} from the chunk after
        starts = list(range(0, length, chunk_size))
        for chunk in reversed(range(len(starts))):
            start = starts[chunk]
            stop = min(start + chunk_size, length)
            steps = stop - start
            decay, states = decay_buffer[:, :steps], state_buffer[:, :steps]
            grad_states, work = grad_buffer[:, :steps], work_buffer[:, :steps]
            ChunkedSelectiveScan._chunk(A_log2, delta, drive, B, start, stop, decay, states, boundaries[chunk])
            torch.mul(states, grad_y[:, start:stop, None, :], out=work)
            grad_C[:, start:stop] = work.sum(3)
            # adjoint recurrence, backwards through the chunk
            torch.mul(grad_y[:, start:stop, None, :], C[:, start:stop, :, None], out=grad_states)
            grad_states[:, -1] += carry
            for step in range(steps - 2, -1, -1):
                torch.addcmul(grad_states[:, step], decay[:, step + 1], grad_states[:, step + 1],
                              out=grad_states[:, step])
            torch.mul(decay[:, 0], grad_states[:, 0], out=carry)
            grad_drive[:, start:stop] = torch.matmul(B[:, start:stop, None, :], grad_states).squeeze(2)
            torch.mul(grad_states, drive[:, start:stop, None, :], out=work)
            grad_B[:, start:stop] = work.sum(3)
            # d(delta A) = g_t * h_{t-1} * exp(delta_t A), in place of the decays
            decay[:, 1:] *= states[:, :-1]
            decay[:, 0] *= boundaries[chunk]
            decay *= grad_states
            torch.mul(decay, A_t, out=work)
            grad_delta[:, start:stop] = work.sum(2)
            torch.mul(decay, delta[:, start:stop, None, :], out=work)
            grad_A_t += work.sum((0, 1))
        grad_delta += grad_drive * u
        grad_u = grad_drive * delta + grad_y * D
        grad_D = (grad_y * u).sum((0, 1))
        return grad_u, grad_delta, grad_A_t.t(), grad_B, grad_C, grad_D, None


def selective_scan_pytorch(u, delta, A, B, C, D, chunk_size: int | None = None):
    """Pure-PyTorch selective scan (`ChunkedSelectiveScan`), in the model's (batch, length, ...) layout: `u`, `delta`:
    (batch, length, inner); `A`: (inner, state); `B`, `C`: (batch, length, state); `D`: (inner,). Returns `y`:
    (batch, length, inner). `chunk_size` defaults to `scan_chunk_size(length)`.

    Like mamba_ssm's kernel it computes in float32 (autocast off; float64 stays float64) and returns `y` in `u`'s
    dtype, so bf16 / fp16 models and autocast keep a float32 state.
    """
    dtype = u.dtype
    compute_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    chunk_size = scan_chunk_size(u.shape[1]) if chunk_size is None else chunk_size
    with torch.autocast(u.device.type, enabled=False):
        u, delta, A, B, C, D = (tensor.to(compute_dtype).contiguous() for tensor in (u, delta, A, B, C, D))
        y = ChunkedSelectiveScan.apply(u, delta, A, B, C, D, chunk_size)
    return y.to(dtype)


def selective_scan(u, delta, A, B, C, D):
    """`selective_scan_pytorch` (same arguments, layout and result, up to float32 rounding) through a compiled kernel
    where one is available: mamba_ssm's CUDA kernel when it is importable and the tensors are on CUDA (it takes
    (batch, channels, length): transposed here); on CPU the numba kernel (`scan_kernels_hsanet`) when numba is
    importable, except in float64 and while `torch.compile` traces."""
    if _mamba_selective_scan_fn is not None and u.is_cuda:
        # the kernel takes u, delta, B and C in one dtype (under autocast, delta comes out of softplus in float32),
        # A and D in float32, and computes in float32 like selective_scan_pytorch
        dtype = functools.reduce(torch.promote_types, (x.dtype for x in (delta, B, C)), u.dtype)
        with torch.autocast("cuda", enabled=False):
            y = _mamba_selective_scan_fn(*(x.to(dtype).transpose(1, 2).contiguous() for x in (u, delta)),
                                         A.float().contiguous(),
                                         *(x.to(dtype).transpose(1, 2).contiguous() for x in (B, C)), D.float(),
                                         delta_softplus=False)
        return y.transpose(1, 2).to(u.dtype)
    if u.device.type == "cpu" and u.dtype != torch.float64 and not torch.compiler.is_compiling():
        # imported here: importing numba costs about half a second, paid only by models that scan on CPU
        from .scan_kernels_hsanet import numba_scan_available, selective_scan_numba

        if numba_scan_available():
            with torch.autocast("cpu", enabled=False):
                return selective_scan_numba(u, delta, A, B, C, D).to(u.dtype)
    return selective_scan_pytorch(u, delta, A, B, C, D)


class StructureAwareSelectiveScan(nn.Module):
    """One direction of the Graph-Mamba projector: a Mamba block whose step size sees graph distances.

    The step `delta_t` gets a learned bias per (clipped) graph distance between atom t and the atom before it in the
    scan order: a large jump in the graph can make the state forget, a bonded neighbour can keep it. The bias starts at
    zero, so at initialisation this is a standard Mamba block.

    `forward` is the whole block on padded sequences. `GraphMambaProjector` runs the position-wise layers (`in_proj`,
    gate, `out_proj`) on the stacked atoms itself (no padding; `in_proj` of both directions in one matrix product)
    and calls `conv_and_scan` for the part that needs the sequence order.
    """

    def __init__(self, config: HSANetConfig):
        super().__init__()
        hidden, inner = config.hidden_size, config.mamba_expand * config.hidden_size
        self.state_size, self.dt_rank = config.mamba_d_state, config.mamba_dt_rank
        self.use_kernels = config.use_mamba_kernels
        self.in_proj = nn.Linear(hidden, 2 * inner)
        self.conv1d = nn.Conv1d(inner, inner, config.mamba_d_conv, groups=inner, padding=config.mamba_d_conv - 1)
        self.x_proj = nn.Linear(inner, self.dt_rank + 2 * self.state_size, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, inner)
        self.distance_dt_bias = nn.Parameter(torch.empty(config.max_scan_distance + 1, inner))
        self.A_log = nn.Parameter(torch.empty(inner, self.state_size))
        self.D = nn.Parameter(torch.empty(inner))
        self.out_proj = nn.Linear(inner, hidden)

    @property
    def conv_padding(self) -> int:
        """Zero steps `conv_and_scan` expects before each sequence: `mamba_d_conv - 1`."""
        return self.conv1d.kernel_size[0] - 1

    def conv_and_scan(self, padded_x: torch.Tensor, distance: torch.LongTensor) -> torch.Tensor:
        """The sequence part of the block, between `in_proj` and the gate: causal depthwise convolution, SiLU, the
        input-dependent `delta`, `B`, `C` and the selective scan.

        `padded_x`: (batch, conv_padding + length, inner), the `x` half of `in_proj`'s output preceded by
        `conv_padding` zero steps; `distance`: (batch, length). Returns `y`: (batch, length, inner).
        """
        length = distance.shape[1]
        # `self.conv1d` (depthwise, padded by d_conv - 1 on both sides, cut to `length`) as one fused multiply-add per
        # tap on the (batch, length, inner) layout: no transposes, and no work on the right padding it cuts off
        taps = self.conv1d.weight[:, 0, :].t().contiguous()  # (d_conv, inner)
        x = torch.addcmul(self.conv1d.bias, padded_x[:, :length], taps[0])
        for tap in range(1, taps.shape[0]):
            x = x.addcmul_(padded_x[:, tap:tap + length], taps[tap])
        x = F.silu(x)
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.state_size, self.state_size], dim=-1)
        # softplus(dt_proj(dt) + distance_dt_bias[distance]), both biases added to the (distances, inner) table first
        step_bias = (self.distance_dt_bias + self.dt_proj.bias).index_select(0, distance.flatten())
        delta = F.softplus(torch.addmm(step_bias, dt.flatten(0, 1), self.dt_proj.weight.t()))  # (batch * length, .)
        A = -torch.exp(self.A_log.float())
        scan = selective_scan if self.use_kernels else selective_scan_pytorch
        return scan(x, delta.view_as(x), A, B, C, self.D)

    def forward(self, sequence: torch.Tensor, distance: torch.LongTensor) -> torch.Tensor:
        """`sequence`: (batch, length, hidden), right-padded; `distance`: (batch, length).
        Returns (batch, length, hidden)."""
        x, gate = self.in_proj(sequence).chunk(2, dim=-1)
        y = self.conv_and_scan(F.pad(x, (0, 0, self.conv_padding, 0)), distance)
        return self.out_proj(y * F.silu(gate))


class GraphMambaProjector(GradientCheckpointingLayer):
    """E_mamba: structure-aware Graph-Mamba, reduced to `num_query_tokens` tokens.

    1. Adjacency: each atom adds a projection of the mean of its bonded neighbours (one message-passing step, as the
       local MPNN beside Graph-Mamba's global scan); linear in the number of bonds.
    2. Order: atoms are scanned in the featurizer's structure-aware order (BRICS fragment, degree, canonical rank)
       over each molecule's own length: forward only by default, as Graph-Mamba's and MOL-Mamba's code (the paper
       does not give the direction); forward and backward, each direction with its own parameters, with
       `config.graph_mamba_bidirectional=True`.
    3. Distance: the scan's step size sees the graph distance between consecutive atoms
       (`StructureAwareSelectiveScan`).
    4. Reduction: learned queries attend over the scanned atoms (as `CrossAttentionProjector`).
    Everything is linear in the number of atoms.

    The scanned states are the sum over directions of `StructureAwareSelectiveScan.forward` on each direction's padded
    sequences (up to float rounding), computed with the position-wise layers on the stacked atoms, so none of them
    works on padding: `in_proj` of all directions in one matrix product over their concatenated weights, the gate,
    and each `out_proj` accumulated in place; only the convolution and scan
    (`StructureAwareSelectiveScan.conv_and_scan`) run per direction on padded sequences.
    """

    def __init__(self, config: HSANetConfig):
        super().__init__()
        self.neighbour_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size)
        self.forward_scan = StructureAwareSelectiveScan(config)
        self.backward_scan = StructureAwareSelectiveScan(config) if config.graph_mamba_bidirectional else None
        self.pool = QueryCrossAttention(config, config.num_query_tokens)

    def _add_scans(self, states: torch.Tensor, layout: GraphBatchLayout, distance_to_previous, distance_to_next):
        """`states`: (num_atoms_total, hidden) -> `states` plus the scan block of every direction, each as
        `StructureAwareSelectiveScan.forward` on that direction's padded sequences (num_atoms_total, hidden)."""
        directions = [
            (scan, position, distance)
            for scan, position, distance in (
                (self.forward_scan, layout.forward_position, distance_to_previous),
                (self.backward_scan, layout.backward_position, distance_to_next),
            )
            if scan is not None  # graph_mamba_bidirectional=False
        ]
        scans = [scan for scan, _, _ in directions]
        num_directions, inner, padding = len(scans), scans[0].D.shape[0], scans[0].conv_padding
        # in_proj of every direction in one product; per atom, blocks of `inner` columns: [x of each direction, gate
        # of each direction]
        weight = torch.cat([s.in_proj.weight[:inner] for s in scans] + [s.in_proj.weight[inner:] for s in scans])
        bias = torch.cat([s.in_proj.bias[:inner] for s in scans] + [s.in_proj.bias[inner:] for s in scans])
        projected = F.linear(states, weight, bias)  # (num_atoms_total, 2 * directions * inner)
        # every direction's x in its padded sequences, in one gather: (directions, batch, padding + max_atoms, inner).
        # The convolution's `padding` leading steps are zeros; the right padding gets copies of some atom's x, which
        # the causal convolution and scan never carry to a real step.
        atom = torch.stack([layout.atom_at(position, padding) for _, position, _ in directions])
        direction = torch.arange(num_directions, device=atom.device)[:, None, None]
        block = atom.clamp(min=0) * (2 * num_directions) + direction  # row of `projected.view(-1, inner)`
        padded_x = projected.view(-1, inner).index_select(0, block.flatten()).view(*atom.shape, inner)
        padded_x[:, :, :padding] = 0
        # per direction: convolution and scan on the padded sequences, then back to the stacked atoms for the gate
        # and out_proj, whose products accumulate in place onto `states` plus the out_proj biases
        output = states + sum(s.out_proj.bias for s in scans)
        for i, (scan, position, distance) in enumerate(directions):
            y = layout.from_dense(scan.conv_and_scan(padded_x[i], layout.to_dense(distance, position)), position)
            gate = projected[:, (num_directions + i) * inner:(num_directions + i + 1) * inner]
            gated = (y * F.silu(gate)).to(output.dtype)  # autocast may give a lower precision than `states`
            output = output.addmm_(gated, scan.out_proj.weight.t().to(output.dtype))
        return output

    def forward(
        self,
        node_states,
        layout: GraphBatchLayout,
        edge_index,
        distance_to_previous,
        distance_to_next,
        output_attentions: bool = False,
    ):
        """`node_states`: (num_atoms_total, hidden) -> tokens (batch, num_query_tokens, hidden) and, with
        `output_attentions`, the pooling attention over the forward sequence (else None)."""
        source, target = edge_index
        neighbours = scatter(node_states.index_select(0, source), target, dim=0, dim_size=node_states.shape[0],
                             reduce="mean")
        states = self.norm(node_states + self.neighbour_proj(neighbours))
        scanned = self._add_scans(states, layout, distance_to_previous, distance_to_next)
        return self.pool(layout.to_dense(scanned, layout.forward_position), layout.mask, output_attentions)


class HierarchicalAdaptiveProjector(nn.Module):
    """HAP: per level, a linear gate on the mean atom state picks one projector per molecule.

    Training: hard Gumbel-softmax (one-hot forward, soft gradient); eval: argmax. `projector_mode` can force one
    projector everywhere, in which case only that projector is built.
    """

    def __init__(self, config: HSANetConfig):
        super().__init__()
        self.mode = config.projector_mode
        self.temperature = config.gumbel_temperature
        levels = range(config.num_levels)
        uses_attention = self.mode in ("adaptive", "cross_attention")
        uses_mamba = self.mode in ("adaptive", "graph_mamba")
        self.cross_attention = (
            nn.ModuleList(CrossAttentionProjector(config) for _ in levels) if uses_attention else None
        )
        self.graph_mamba = nn.ModuleList(GraphMambaProjector(config) for _ in levels) if uses_mamba else None
        self.gates = (
            nn.ModuleList(nn.Linear(config.hidden_size, 2) for _ in levels) if self.mode == "adaptive" else None
        )

    def _project_level(self, level: int, node_states, layout, structure, output_attentions: bool):
        """Returns tokens (batch, Q, hidden), the attention of the projector used (batch, heads, Q, max_atoms) with
        `output_attentions` (else None), gate logits (batch, 2) (None when forced) and choices (batch,)."""
        projectors = (
            lambda: self.cross_attention[level](node_states, layout, output_attentions=output_attentions),
            lambda: self.graph_mamba[level](node_states, layout, **structure, output_attentions=output_attentions),
        )
        if self.mode != "adaptive":
            choice = CROSS_ATTENTION if self.mode == "cross_attention" else GRAPH_MAMBA
            choices = torch.full((layout.batch_size,), choice, device=node_states.device)
            return *projectors[choice](), None, choices
        logits = self.gates[level](layout.mean_per_molecule(node_states))
        if self.training:
            weights = F.gumbel_softmax(logits, tau=self.temperature, hard=True)
        else:
            weights = F.one_hot(logits.argmax(-1), 2).to(logits.dtype)
        tokens = attention = 0
        for choice, project in enumerate(projectors):
            # Training runs both (the gate learns through the soft part of the straight-through weights); eval
            # skips a projector that no molecule of the batch picked.
            if self.training or bool(weights[:, choice].any()):
                projected, weights_of_choice = project()
                tokens = tokens + weights[:, choice, None, None] * projected
                if output_attentions:
                    attention = attention + weights[:, choice, None, None, None] * weights_of_choice
        return tokens, (attention if output_attentions else None), logits, weights.argmax(-1)

    def forward(
        self, levels: list[torch.Tensor], layout: GraphBatchLayout, output_attentions: bool = False, **structure
    ):
        """`levels`: num_levels x (num_atoms_total, hidden). Returns tokens (batch, num_levels * Q, hidden), the
        per-level attentions (keys in input order; None without `output_attentions`), gate logits
        (batch, num_levels, 2) (None when a projector is forced) and choices (batch, num_levels)."""
        tokens, attentions, logits, choices = zip(
            *(self._project_level(i, s, layout, structure, output_attentions) for i, s in enumerate(levels))
        )
        gate_logits = torch.stack(logits, dim=1) if self.mode == "adaptive" else None
        attentions = tuple(layout.keys_to_input_order(a) for a in attentions) if output_attentions else None
        return torch.cat(tokens, dim=1), attentions, gate_logits, torch.stack(choices, dim=1)


class MotifProjector(GradientCheckpointingLayer):
    """Motif branch: queries attend over the functional groups present in the molecule.

    Each present group is a key `embedding[group] * log1p(count)`; a learned "no motif" key is always present so a
    molecule without any group still has something to attend to.
    """

    def __init__(self, config: HSANetConfig):
        super().__init__()
        self.group_embedding = nn.Parameter(torch.empty(config.num_functional_groups, config.hidden_size))
        self.empty_key = nn.Parameter(torch.empty(1, config.hidden_size))
        self.pool = QueryCrossAttention(config, config.num_motif_tokens)

    def forward(self, motif_counts: torch.Tensor, output_attentions: bool = False):
        """`motif_counts`: (batch, num_functional_groups) -> tokens (batch, num_motif_tokens, hidden) and, with
        `output_attentions`, the attention (batch, heads, num_motif_tokens, 1 + num_functional_groups), else None."""
        batch = motif_counts.shape[0]
        weights = torch.log1p(motif_counts.float()).to(self.group_embedding.dtype)  # counts arrive as float32
        keys = weights.unsqueeze(-1) * self.group_embedding
        keys = torch.cat([self.empty_key.expand(batch, 1, -1), keys], dim=1)
        mask = torch.cat([motif_counts.new_ones(batch, 1, dtype=torch.bool), motif_counts > 0], dim=1)
        return self.pool(keys, mask, output_attentions)


# ---------------------------------------------------------------------------------------------------------------------
# Fusion
# ---------------------------------------------------------------------------------------------------------------------
class SourceAwareFusion(GradientCheckpointingLayer):
    """SAF: every token (tagged with a learned embedding of its source level) is routed to the top-k of N MLP experts.

    The experts' outputs are weighted by the renormalised router probabilities (Mixtral style) so the router also
    learns from the task loss, not only from the load-balancing loss. All experts run as one batched matmul.
    """

    def __init__(self, config: HSANetConfig):
        super().__init__()
        hidden, inner, experts = config.hidden_size, config.fusion_intermediate_size, config.num_fusion_experts
        self.num_experts, self.top_k = experts, config.fusion_top_k
        self.norm = nn.LayerNorm(hidden)
        self.router = nn.Linear(hidden, experts, bias=False)
        self.up_weight = nn.Parameter(torch.empty(experts, hidden, inner))
        self.up_bias = nn.Parameter(torch.empty(experts, inner))
        self.down_weight = nn.Parameter(torch.empty(experts, inner, hidden))
        self.down_bias = nn.Parameter(torch.empty(experts, hidden))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`tokens`: (batch, num_tokens, hidden), source embedding added. Returns fused tokens, router logits
        (batch, num_tokens, num_experts) and the load-balancing loss."""
        normed = self.norm(tokens)
        router_logits = self.router(normed)
        # Routing in float32 whatever the model or autocast dtype (softmax autocasts to float32, the logits do not).
        top_probs, top_experts = router_logits.float().softmax(-1).topk(self.top_k, dim=-1)
        weights = top_probs.new_zeros(router_logits.shape).scatter(
            -1, top_experts, top_probs / top_probs.sum(-1, keepdim=True)
        )
        hidden = F.gelu(torch.einsum("bth,ehi->btei", normed, self.up_weight) + self.up_bias)
        expert_outputs = torch.einsum("btei,eih->bteh", hidden, self.down_weight) + self.down_bias
        fused = tokens + torch.einsum("bte,bteh->bth", weights.to(expert_outputs.dtype), expert_outputs)
        aux_loss = load_balancing_loss_func((router_logits.flatten(0, 1),), self.num_experts, self.top_k)
        return fused, router_logits, aux_loss


class MLPFusion(nn.Module):
    """`fusion="mlp"` ablation: one residual MLP for every token."""

    def __init__(self, config: HSANetConfig):
        super().__init__()
        hidden = config.hidden_size
        self.norm = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, config.fusion_intermediate_size),
            nn.GELU(),
            nn.Linear(config.fusion_intermediate_size, hidden),
        )

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, None, torch.Tensor]:
        return tokens + self.mlp(self.norm(tokens)), None, tokens.new_zeros(())


# ---------------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------------

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


class HSANetPreTrainedModel(PreTrainedModel):
    config: HSANetConfig
    config_class = HSANetConfig
    base_model_prefix = "hsanet"
    main_input_name = "atom_features"
    accepts_loss_kwargs = False  # losses are plain batch means

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`; a weights file that safetensors cannot read (truncated by an interrupted
        download or copy, corrupted) raises an `OSError` that names the file, instead of safetensors' bare error."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except SafetensorError as error:
            raise OSError(f"{_unreadable_safetensors(pretrained_model_name_or_path)} could not be read by safetensors "
                          f"({error}): the file is truncated or corrupted; save or download it again") from error

    def push_to_hub(self, repo_id: str, *, model_card=None, **kwargs):
        """`PreTrainedModel.push_to_hub` (same arguments) that uploads this repository's model card as `README.md`
        (rendered by the package's `model_cards` when installed; `model_card=` a card, file or text of your own)."""
        return push_to_hub_with_model_card(self, repo_id, model_card=model_card, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`; a class registered for an Auto class also writes what loading the folder
        with `trust_remote_code=True` needs beyond transformers' own entry: the base model's `auto_map` entry and
        `custom_pipelines` with the pipelines' code (`add_remote_code_entries`)."""
        if self._auto_class is not None and kwargs.get("is_main_process", True):
            add_remote_code_entries(self, save_directory)
        return super().save_pretrained(save_directory, *args, **kwargs)

    _supports_sdpa = True
    # Checkpointed: the projectors, the motif branch and the fusion. Not the GIN layers: recomputing a BatchNorm in
    # train mode would update its running statistics twice.
    supports_gradient_checkpointing = True
    _no_split_modules = [
        "HSANetGINEncoder",
        "CrossAttentionProjector",
        "GraphMambaProjector",
        "MotifProjector",
        "SourceAwareFusion",
    ]

    @property
    def dummy_inputs(self) -> dict[str, torch.Tensor]:
        """Two molecules of two and one atoms (all categorical features 0), a bond in both directions."""
        config = self.config
        return {
            "atom_features": torch.zeros(3, len(config.atom_vocabulary_sizes), dtype=torch.long),
            "edge_index": torch.tensor([[0, 1], [1, 0]]),
            "bond_features": torch.zeros(2, len(config.bond_vocabulary_sizes), dtype=torch.long),
            "num_atoms": torch.tensor([2, 1]),
            "structure_rank": torch.tensor([0, 1, 0]),
            "distance_to_previous": torch.tensor([0, 1, 0]),
            "distance_to_next": torch.tensor([1, 0, 0]),
            "motif_counts": torch.zeros(2, config.num_functional_groups),
        }

    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, CategoricalFeatureEmbedding):
            module.reset_buffers()
        elif isinstance(module, GINEConv) and not isinstance(module.eps, nn.Parameter):
            init.constant_(
                module.eps, module.initial_eps
            )  # a persistent buffer torch_geometric fills in reset_parameters
        elif isinstance(module, QueryCrossAttention):
            init.normal_(module.queries, std=std)
        elif isinstance(module, MotifProjector):
            init.normal_(module.group_embedding, std=std)
            init.normal_(module.empty_key, std=std)
        elif isinstance(module, SourceAwareFusion):
            for parameter in (module.up_weight, module.down_weight):
                init.normal_(parameter, std=std)
            init.zeros_(module.up_bias)
            init.zeros_(module.down_bias)
        elif isinstance(module, StructureAwareSelectiveScan):
            self._init_selective_scan(module)

    @staticmethod
    def _init_selective_scan(module: StructureAwareSelectiveScan, dt_min=1e-3, dt_max=1e-1, dt_floor=1e-4):
        """Mamba's S4D-real initialisation of A, D = 1, and a log-uniform initial step size in [dt_min, dt_max]."""
        inner, state = module.A_log.shape
        init.copy_(module.A_log, torch.log(torch.arange(1, state + 1, dtype=torch.float32).expand(inner, state)))
        init.ones_(module.D)
        init.zeros_(module.distance_dt_bias)
        init.uniform_(module.dt_proj.weight, -(module.dt_rank**-0.5), module.dt_rank**-0.5)
        dt = torch.exp(torch.rand(inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(
            min=dt_floor
        )
        init.copy_(module.dt_proj.bias, dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        init.kaiming_uniform_(module.conv1d.weight, a=math.sqrt(5))
        init.zeros_(module.conv1d.bias)


def _check_graph_batch(atom_features, edge_index, bond_features, num_atoms, structure_rank) -> None:
    """Clear errors for inconsistent batches (the processor produces consistent ones)."""
    if num_atoms is None or num_atoms.numel() == 0:
        raise ValueError("empty batch: `num_atoms` has no molecules")
    if (num_atoms < 1).any():
        raise ValueError(f"molecule #{int((num_atoms < 1).nonzero()[0])} has no atoms")
    total = int(num_atoms.sum())
    if atom_features.shape[0] != total or structure_rank.shape[0] != total:
        raise ValueError(
            f"`num_atoms` sums to {total} but atom_features has {atom_features.shape[0]} rows and structure_rank "
            f"{structure_rank.shape[0]}"
        )
    if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_index.shape[1] != bond_features.shape[0]:
        raise ValueError(
            f"edge_index must be (2, E) with E = bond_features rows ({bond_features.shape[0]}), "
            f"got {tuple(edge_index.shape)}"
        )


class HSANetModel(HSANetPreTrainedModel):
    """GIN encoder -> Hierarchical Adaptive Projector (+ motif branch) -> Source-Aware Fusion."""

    def __init__(self, config: HSANetConfig):
        super().__init__(config)
        self.encoder = HSANetGINEncoder(config)
        self.projector = HierarchicalAdaptiveProjector(config)
        self.motif_projector = MotifProjector(config) if config.num_motif_tokens > 0 else None
        self.source_embedding = nn.Embedding(config.num_levels + 1, config.hidden_size)
        self.fusion = SourceAwareFusion(config) if config.fusion == "moe" else MLPFusion(config)
        self.post_init()

    def train(self, mode: bool = True) -> HSANetModel:
        """`nn.Module.train`, except that a GIN whose parameters are all frozen stays in eval mode: its BatchNorm
        running statistics do not drift while the rest of the model trains (stage 2 of molecule-to-text training,
        a linear probe)."""
        super().train(mode)
        if mode and not any(parameter.requires_grad for parameter in self.encoder.parameters()):
            self.encoder.eval()
        return self

    def _source_ids(self, device) -> torch.LongTensor:
        """Source of every token: level index for level tokens, `num_levels` for motif tokens. (num_tokens,)"""
        config = self.config
        sources = torch.arange(config.num_levels, device=device).repeat_interleave(config.num_query_tokens)
        motif = torch.full((config.num_motif_tokens,), config.num_levels, device=device)
        return torch.cat([sources, motif])

    def forward(
        self,
        atom_features: torch.LongTensor,
        edge_index: torch.LongTensor,
        bond_features: torch.LongTensor,
        num_atoms: torch.LongTensor,
        structure_rank: torch.LongTensor,
        distance_to_previous: torch.LongTensor,
        distance_to_next: torch.LongTensor,
        motif_counts: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> HSANetModelOutput | tuple:
        r"""
        atom_features (`torch.LongTensor` of shape `(num_atoms_total, num_atom_features)`): atoms of all molecules.
        edge_index (`torch.LongTensor` of shape `(2, num_edges_total)`): bonds (both directions), batch-global indices.
        bond_features (`torch.LongTensor` of shape `(num_edges_total, num_bond_features)`).
        num_atoms (`torch.LongTensor` of shape `(batch,)`): atoms per molecule, in the order atoms are stacked.
        structure_rank (`torch.LongTensor` of shape `(num_atoms_total,)`): position in the structure-aware order.
        distance_to_previous, distance_to_next (`torch.LongTensor` of shape `(num_atoms_total,)`): clipped graph
            distances to the neighbours in that order.
        motif_counts (`torch.FloatTensor` of shape `(batch, num_functional_groups)`): functional-group counts.
        output_attentions, output_hidden_states, return_dict (`bool`, *optional*): as in transformers; default to
            the config's values.
        """
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = config.return_dict if return_dict is None else return_dict
        _check_graph_batch(atom_features, edge_index, bond_features, num_atoms, structure_rank)
        layout = GraphBatchLayout(num_atoms, structure_rank)
        levels = self.encoder(atom_features, edge_index, bond_features)
        structure = {
            "edge_index": edge_index,
            "distance_to_previous": distance_to_previous.clamp(max=config.max_scan_distance),
            "distance_to_next": distance_to_next.clamp(max=config.max_scan_distance),
        }
        tokens, attentions, gate_logits, choices = self.projector(levels, layout, output_attentions, **structure)
        if self.motif_projector is not None:
            if motif_counts is None:
                raise ValueError("`motif_counts` is required when config.num_motif_tokens > 0")
            motif_tokens, motif_attention = self.motif_projector(motif_counts, output_attentions=output_attentions)
            tokens = torch.cat([tokens, motif_tokens], dim=1)
            if output_attentions:
                attentions = attentions + (motif_attention,)
        tokens = tokens + self.source_embedding(self._source_ids(tokens.device))
        fused, router_logits, aux_loss = self.fusion(tokens)
        hidden_states = (
            tuple(layout.to_dense(level, layout.input_position) for level in levels) if output_hidden_states else None
        )
        outputs = HSANetModelOutput(
            last_hidden_state=fused,
            pooler_output=fused.mean(dim=1),
            projector_choices=choices,
            gate_logits=gate_logits,
            router_logits=router_logits,
            aux_loss=aux_loss,
            hidden_states=hidden_states,
            attentions=attentions,
        )
        return outputs if return_dict else outputs.to_tuple()


def resolve_problem_type(config: HSANetConfig, labels: torch.Tensor | None = None) -> str:
    """The one rule for a property head's problem type (transformers' `ForSequenceClassificationLoss` rule).

    `config.problem_type` when set; else "regression" for one label; else integer labels mean
    "single_label_classification" and float labels "multi_label_classification". Without labels (a pipeline serving
    a model that never saw any) several labels read as "single_label_classification". The model writes the decision
    back to `config.problem_type` the first time it sees labels, so a saved model is served as it was trained.
    """
    if config.problem_type is not None:
        return config.problem_type
    if config.num_labels == 1:
        return "regression"
    if labels is None or labels.dtype in (torch.long, torch.int):
        return "single_label_classification"
    return "multi_label_classification"


def molecular_property_loss(logits: torch.Tensor, labels: torch.Tensor, problem_type: str) -> torch.Tensor:
    """Loss with missing labels masked out: NaN for regression / multi-label, -100 for single-label classes."""
    if problem_type == "single_label_classification":
        labels = labels.view(-1).long()
        if (labels == -100).all():
            raise ValueError("every label in the batch is missing (-100); there is nothing to compute a loss on")
        return F.cross_entropy(logits, labels, ignore_index=-100)
    labels = labels.to(logits.dtype).view_as(logits)
    observed = ~torch.isnan(labels)
    if not observed.any():
        raise ValueError("every label in the batch is NaN; there is nothing to compute a loss on")
    if problem_type == "regression":
        return F.mse_loss(logits[observed], labels[observed])
    return F.binary_cross_entropy_with_logits(logits[observed], labels[observed])


class HSANetForMolecularPropertyPrediction(HSANetPreTrainedModel):
    """HSA-Net with a linear head on the pooled molecule embedding: regression, single- or multi-label
    classification (`config.problem_type`, as in transformers)."""

    def __init__(self, config: HSANetConfig):
        super().__init__(config)
        self.hsanet = HSANetModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        atom_features: torch.LongTensor,
        edge_index: torch.LongTensor,
        bond_features: torch.LongTensor,
        num_atoms: torch.LongTensor,
        structure_rank: torch.LongTensor,
        distance_to_previous: torch.LongTensor,
        distance_to_next: torch.LongTensor,
        motif_counts: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> HSANetPropertyPredictionOutput | tuple:
        r"""
        labels (`torch.Tensor` of shape `(batch,)` or `(batch, num_labels)`, *optional*): targets; NaN (or -100 for
            single-label classes) marks a missing label. The first labels seen decide `config.problem_type` when it
            is unset (`resolve_problem_type`). Other inputs: see `HSANetModel.forward`.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.hsanet(
            atom_features,
            edge_index,
            bond_features,
            num_atoms,
            structure_rank,
            distance_to_previous,
            distance_to_next,
            motif_counts,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = None
        if labels is not None:
            if self.config.problem_type is None:  # decided once, by the first labels (as transformers)
                self.config.problem_type = resolve_problem_type(self.config, labels)
            loss = molecular_property_loss(logits, labels, self.config.problem_type)
            loss = loss + self.config.router_aux_loss_coef * outputs.aux_loss
        result = HSANetPropertyPredictionOutput(
            loss=loss,
            logits=logits,
            pooler_output=outputs.pooler_output,
            projector_choices=outputs.projector_choices,
            gate_logits=outputs.gate_logits,
            router_logits=outputs.router_logits,
            aux_loss=outputs.aux_loss,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return result if return_dict else result.to_tuple()


__all__ = [
    "HSANetPreTrainedModel",
    "HSANetModel",
    "HSANetForMolecularPropertyPrediction",
    "CrossAttentionProjector",
    "GraphMambaProjector",
    "HierarchicalAdaptiveProjector",
    "SourceAwareFusion",
    "resolve_problem_type",
    "selective_scan",
    "selective_scan_pytorch",
]
