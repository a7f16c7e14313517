"""SweetTokenizer's local attention pieces: the locality of the authors' encoder and decoder (v3 code).

The first version mixes all `num_frame_groups * num_patches` positions of a clip in one joint attention (5,120 at the
paper's default config), reads one set of encoder states with its spatial queries, lets 1,024 temporal queries
attend to all 4,096 tube positions and predicts pixels with a linear head per patch. The authors instead attend
within each frame group (alternating window and full attention), read the matching encoder layer with each spatial
query layer, give each spatial location one temporal query that reads that location's steps only, decode with
per-frame-group attention plus per-location causal temporal layers, and turn tokens into pixels with a convolutional
decoder trained in a separate stage. Each piece here is a config option of `SweetTokenizerConfig`
(`encoder_attention`, `encoder_window_size`, `spatial_query_context`, `temporal_queries`, `decoder_attention`,
`pixel_decoder`); the defaults keep the first version, so earlier checkpoints load unchanged.

Nothing here imports `modeling_sweet` (it imports this module): modules that need SweetTokenizer's transformer layer
take its class as an argument.
"""

from __future__ import annotations

import torch
from torch import nn


# ---------------------------------------------------------------------------------------------------------------------
# Frame-group and window attention
# ---------------------------------------------------------------------------------------------------------------------
class FrameGroupPartition:
    """Splits positions into the blocks that attend to each other: each frame group alone (`window_size=None`), or
    each `window_size x window_size` window of a frame group's patch grid (non-overlapping, Swin without shift).

    `states`: (batch, groups, grid_size**2, hidden), patches row-major. `split` -> (batch * groups * blocks,
    block_length, hidden), one row per block; `merge` is its inverse. No parameters (a plain object, not a module).
    """

    def __init__(self, grid_size: int, window_size: int | None = None):
        window_size = grid_size if window_size is None else window_size
        if window_size < 1 or grid_size % window_size:
            raise ValueError(f"window_size={window_size} must divide the patch grid's side {grid_size}")
        self.grid_size, self.window_size = grid_size, window_size

    @property
    def windows_per_side(self) -> int:
        return self.grid_size // self.window_size

    @property
    def blocks_per_group(self) -> int:
        return self.windows_per_side**2

    @property
    def block_length(self) -> int:
        return self.window_size**2

    def split(self, states: torch.Tensor) -> torch.Tensor:
        """(batch, groups, grid_size**2, hidden) -> (batch * groups * blocks_per_group, block_length, hidden)."""
        batch, groups, _, hidden = states.shape
        n, w = self.windows_per_side, self.window_size
        if n == 1:
            return states.reshape(batch * groups, w * w, hidden)
        states = states.reshape(batch, groups, n, w, n, w, hidden).permute(0, 1, 2, 4, 3, 5, 6)
        return states.reshape(batch * groups * n * n, w * w, hidden)

    def merge(self, blocks: torch.Tensor, batch: int, groups: int) -> torch.Tensor:
        """(batch * groups * blocks_per_group, block_length, hidden) -> (batch, groups, grid_size**2, hidden)."""
        n, w, hidden = self.windows_per_side, self.window_size, blocks.shape[-1]
        if n == 1:
            return blocks.reshape(batch, groups, w * w, hidden)
        blocks = blocks.reshape(batch, groups, n, n, w, w, hidden).permute(0, 1, 2, 4, 3, 5, 6)
        return blocks.reshape(batch, groups, self.grid_size**2, hidden)

    def positions(self, groups: int, device: torch.device | None = None) -> torch.LongTensor:
        """(groups * blocks_per_group, block_length): the index of each block element among the `groups *
        grid_size**2` positions of a clip (frame group major, then patches row-major)."""
        index = torch.arange(groups * self.grid_size**2, device=device).view(1, groups, self.grid_size**2, 1)
        return self.split(index).squeeze(-1)

    def scatter_weights(self, weights: torch.Tensor, batch: int, groups: int, self_attention: bool = True
                        ) -> torch.Tensor:
        """Attention weights of the blocks, (batch * groups * blocks_per_group, heads, block_length, keys), as the
        weights over all positions: (batch, heads, positions, positions) for self-attention (`keys` =
        `block_length`: zero outside a position's block), or with `self_attention=False` (batch, heads, positions,
        keys), cross-attention to a context of `keys` tokens shared by all blocks. Rows still sum to 1."""
        heads, length, keys = weights.shape[1:]
        index = self.positions(groups, weights.device)  # (blocks, length)
        weights = weights.reshape(batch, -1, heads, length, keys).permute(0, 2, 1, 3, 4)
        positions = groups * self.grid_size**2
        if self_attention:
            full = weights.new_zeros(batch, heads, positions, positions)
            full[:, :, index[:, :, None], index[:, None, :]] = weights
        else:
            full = weights.new_zeros(batch, heads, positions, keys)
            full[:, :, index] = weights
        return full


def attention_partitions(num_layers: int, grid_size: int, attention: str, window_size: int | None
                         ) -> list[FrameGroupPartition | None]:
    """The block partition of each of `num_layers` layers: `None` everywhere for `attention="full"` (joint attention
    over all positions of a clip); for `"frame_group"`, attention within each frame group, and with `window_size`,
    within `window_size x window_size` windows at even layers (0, 2, ...) and the whole frame group at odd layers, the
    authors' alternation of window and full attention."""
    if attention == "full":
        return [None] * num_layers
    frame = FrameGroupPartition(grid_size)
    window = FrameGroupPartition(grid_size, window_size) if window_size is not None else frame
    return [window if index % 2 == 0 else frame for index in range(num_layers)]


def partitioned_layer_forward(layer: nn.Module, states: torch.Tensor, partition: FrameGroupPartition | None,
                              context: torch.Tensor | None = None, output_attentions: bool = False
                              ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Run a `SweetTransformerLayer` on `states` (batch, groups, num_patches, hidden) with its self-attention limited
    to the blocks of `partition` (`None`: all positions). `context` (batch, context_length, hidden) is shared by every
    block (cross-attention is per position, so blocks do not change it). Returns the states (same shape) and, with
    `output_attentions`, the self- and cross-attention weights over all positions (see
    `FrameGroupPartition.scatter_weights`)."""
    batch, groups, patches, hidden = states.shape
    if partition is None:
        output, self_weights, cross_weights = layer(states.reshape(batch, groups * patches, hidden), context,
                                                    output_attentions=output_attentions)
        return output.view(batch, groups, patches, hidden), self_weights, cross_weights
    blocks = partition.split(states)
    if context is not None:
        context = context.repeat_interleave(blocks.shape[0] // batch, dim=0)
    output, self_weights, cross_weights = layer(blocks, context, output_attentions=output_attentions)
    if output_attentions:
        self_weights = partition.scatter_weights(self_weights, batch, groups)
        if cross_weights is not None:
            cross_weights = partition.scatter_weights(cross_weights, batch, groups, self_attention=False)
    return partition.merge(output, batch, groups), self_weights, cross_weights


def per_location_temporal_forward(layer: nn.Module, states: torch.Tensor) -> torch.Tensor:
    """A causal `SweetTransformerLayer` along the frame groups of each location: `states` (batch, groups,
    num_patches, hidden) -> same shape; frame group t of a location reads frame groups 0..t of that location only."""
    batch, groups, patches, hidden = states.shape
    along_time = states.permute(0, 2, 1, 3).reshape(batch * patches, groups, hidden)
    along_time = layer(along_time, is_causal=True)[0]
    return along_time.view(batch, patches, groups, hidden).permute(0, 2, 1, 3)


def matching_encoder_layers(num_encoder_layers: int, num_query_layers: int) -> list[int]:
    """For `spatial_query_context="matching"`: the encoder layer (1-based: its output is hidden state number `i`) that
    each of the `num_query_layers` query layers reads, spread evenly, the last one reading the last encoder layer
    (8 encoder and 4 query layers: 2, 4, 6, 8)."""
    return [max(1, round((index + 1) * num_encoder_layers / num_query_layers)) for index in range(num_query_layers)]


# ---------------------------------------------------------------------------------------------------------------------
# Per-location temporal queries
# ---------------------------------------------------------------------------------------------------------------------
class PerLocationTemporalQueries(nn.Module):
    """The authors' temporal queries: one learned query per spatial location, which reads that location's temporal
    steps only (cross-attention to a context of `steps` tokens), not the whole clip.

    Each query starts from its learned vector plus the mean of its LayerNorm-ed steps (a direct path, as
    `TokenMixing` gives the global queries), then passes `num_layers` layers of `layer_class(config,
    cross_attention=True)` (self-attention over one token is a per-location linear map).
    `context`: (batch, steps, num_patches, hidden) -> (batch, num_patches, hidden).
    """

    def __init__(self, config, layer_class: type[nn.Module]):
        super().__init__()
        hidden = config.hidden_size
        self.queries = nn.Parameter(torch.empty(config.num_patches, hidden))
        self.pooling_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(layer_class(config, cross_attention=True) for _ in range(config.num_query_layers))
        self.norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        batch, steps, patches, hidden = context.shape
        context = context.permute(0, 2, 1, 3).reshape(batch * patches, steps, hidden)
        states = (self.queries + self.pooling_norm(context).mean(dim=1).view(batch, patches, hidden))
        states = states.reshape(batch * patches, 1, hidden)
        for layer in self.layers:
            states = layer(states, context)[0]
        return self.norm(states).view(batch, patches, hidden)


class PerLocationUnpooling(nn.Module):
    """Temporal latents of per-location queries back to the decoder's positions: location `l`'s latent, through a
    learned linear map per frame group, starts the mask tokens of location `l` only.
    `latents`: (batch, num_patches, hidden) -> (batch, num_frame_groups * num_patches, hidden), frame group major."""

    def __init__(self, config):
        super().__init__()
        self.num_frame_groups = config.num_frame_groups
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.hidden_size, config.num_frame_groups * config.hidden_size)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        batch, patches, hidden = latents.shape
        unpooled = self.projection(self.norm(latents)).view(batch, patches, self.num_frame_groups, hidden)
        return unpooled.transpose(1, 2).reshape(batch, self.num_frame_groups * patches, hidden)


# ---------------------------------------------------------------------------------------------------------------------
# Convolutional pixel decoder
# ---------------------------------------------------------------------------------------------------------------------
class ConvPixelDecoder(nn.Module):
    """Decoder states -> pixels with diffusers' VAE `Decoder` (a mid block and `UpDecoderBlock2D` blocks of ResNet
    layers, GroupNorm, SiLU; no attention), run on each frame group's patch grid as a feature map: `log2(patch_size)`
    2x upsamplings take the grid to the image size. A frame group's output has `temporal_patch_size * num_channels`
    channels, its frames in order; the first-frame group (one frame) uses the first frame's channels. With
    `pixel_decoder="conv_per_frame"` the decoder draws one frame at a time instead: `frame_weight[k]` /
    `frame_bias[k]` map a tube's state to its frame k (k = 0 also for the first frame and images), and the decoder
    has `num_channels` outputs.

    Widths: `config.pixel_decoder_widths()` (full resolution first, as diffusers' `block_out_channels`), GroupNorm
    groups `config.pixel_decoder_norm_groups`, `config.pixel_decoder_layers_per_block` (+1) ResNet layers per block.
    `states`: (batch, frame_groups, num_patches, hidden) -> (batch, channels, frames, height, width).
    """

    def __init__(self, config):
        super().__init__()
        from diffusers.models.autoencoders.vae import Decoder

        self.config = config
        channels = config.pixel_decoder_widths()
        # "conv_per_frame": a linear map per frame of a tube turns the tube's state into one state per frame (each map
        # starts as the identity), and the decoder draws one frame at a time, so that every frame of a clip goes
        # through the weights images train
        self.per_frame = config.pixel_decoder == "conv_per_frame"
        tube, hidden = config.temporal_patch_size, config.hidden_size
        self.frame_weight = nn.Parameter(torch.empty(tube, hidden, hidden)) if self.per_frame else None
        self.frame_bias = nn.Parameter(torch.empty(tube, hidden)) if self.per_frame else None
        self.decoder = Decoder(in_channels=config.hidden_size,
                               out_channels=config.num_channels * (1 if self.per_frame else tube),
                               up_block_types=("UpDecoderBlock2D",) * len(channels),
                               block_out_channels=tuple(channels),
                               layers_per_block=config.pixel_decoder_layers_per_block,
                               norm_num_groups=config.pixel_decoder_norm_groups,
                               mid_block_add_attention=False)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        config = self.config
        batch, groups, patches, hidden = states.shape
        grid, channels, tube = config.grid_size, config.num_channels, config.temporal_patch_size
        if self.per_frame:
            # the first-frame group takes the first frame's map; each tube, one map per frame
            frames = [torch.einsum("bpi,oi->bpo", states[:, 0], self.frame_weight[0]).add(self.frame_bias[0])[:, None]]
            if groups > 1:
                tubes = torch.einsum("bgpi,toi->bgtpo", states[:, 1:], self.frame_weight)
                frames.append((tubes + self.frame_bias[:, None]).flatten(1, 2))
            frame_states = torch.cat(frames, dim=1)  # (batch, frames, patches, hidden)
            count = frame_states.shape[1]
            feature_maps = frame_states.reshape(batch * count, grid, grid, hidden).permute(0, 3, 1, 2)
            pixels = self.decoder(feature_maps)  # (batch * frames, channels, H, W)
            return pixels.view(batch, count, channels, *pixels.shape[-2:]).transpose(1, 2)
        feature_maps = states.reshape(batch * groups, grid, grid, hidden).permute(0, 3, 1, 2)
        pixels = self.decoder(feature_maps)  # (batch * groups, tube * channels, H, W)
        pixels = pixels.view(batch, groups, tube, channels, *pixels.shape[-2:])
        frames = pixels[:, :1, :1].flatten(1, 2)  # the first frame group: one frame
        if groups > 1:
            frames = torch.cat([frames, pixels[:, 1:].flatten(1, 2)], dim=1)
        return frames.transpose(1, 2)


__all__ = ["ConvPixelDecoder", "FrameGroupPartition", "PerLocationTemporalQueries", "PerLocationUnpooling",
           "attention_partitions", "matching_encoder_layers",
           "partitioned_layer_forward", "per_location_temporal_forward"]
