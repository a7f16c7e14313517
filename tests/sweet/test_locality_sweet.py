"""SweetTokenizer's locality options (modeling_sweet/layers_sweet.py): frame-group and window attention, spatial
queries reading the matching encoder layers, per-location temporal queries and decoder layers, the convolutional
pixel decoder, and the second training stage (pixel decoder trained with the encoder and quantiser frozen)."""

import pytest
import torch

from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel
from modeling_sweet.layers_sweet import (
    FrameGroupPartition,
    PerLocationTemporalQueries,
    attention_partitions,
    matching_encoder_layers,
    partitioned_layer_forward,
    per_location_temporal_forward,
)
from modeling_sweet.modeling_sweet import SweetTransformerLayer
from tests.model_testers import SWEET_TINY

ATOL = 1e-5


def tiny_config(**overrides):
    return SweetTokenizerConfig(**{**SWEET_TINY, **overrides})


def seeded(module):
    torch.manual_seed(0)
    for parameter in module.parameters():
        torch.nn.init.normal_(parameter, std=0.2)
    return module.eval()


# -- partitions -------------------------------------------------------------------------------------------------------
def test_window_partition_round_trips_and_holds_adjacent_patches():
    partition = FrameGroupPartition(grid_size=4, window_size=2)
    states = torch.randn(2, 3, 16, 5)
    blocks = partition.split(states)
    assert blocks.shape == (2 * 3 * 4, 4, 5)
    torch.testing.assert_close(partition.merge(blocks, 2, 3), states, atol=0, rtol=0)
    # block 0 of group 0: patches (0, 0), (0, 1), (1, 0), (1, 1) of the 4x4 grid, i.e. positions 0, 1, 4, 5
    assert partition.positions(2)[0].tolist() == [0, 1, 4, 5]
    assert partition.positions(2)[4].tolist() == [16, 17, 20, 21]  # group 1 starts at position 16
    assert sorted(partition.positions(2).flatten().tolist()) == list(range(32))


def test_window_size_must_divide_the_grid():
    with pytest.raises(ValueError, match="window_size=3 must divide the patch grid's side 4"):
        FrameGroupPartition(grid_size=4, window_size=3)


def test_attention_partitions_alternate_window_and_frame_group():
    partitions = attention_partitions(4, grid_size=4, attention="frame_group", window_size=2)
    assert [p.window_size for p in partitions] == [2, 4, 2, 4]
    assert attention_partitions(3, grid_size=4, attention="full", window_size=None) == [None] * 3
    assert matching_encoder_layers(8, 4) == [2, 4, 6, 8]
    assert matching_encoder_layers(2, 1) == [2]


def test_partitioned_layer_equals_the_layer_on_each_block_alone():
    config = tiny_config()
    layer = seeded(SweetTransformerLayer(config, cross_attention=True))
    partition = FrameGroupPartition(config.grid_size, window_size=2)
    states, context = torch.randn(2, 3, config.num_patches, 32), torch.randn(2, 4, 32)
    with torch.no_grad():
        output, self_weights, cross_weights = partitioned_layer_forward(layer, states, partition, context,
                                                                        output_attentions=True)
        index = partition.positions(3)
        flat = states.flatten(1, 2)
        for block in (0, 5, 11):  # each block alone, as its own sequence
            alone = layer(flat[:, index[block]], context)[0]
            torch.testing.assert_close(output.flatten(1, 2)[:, index[block]], alone, atol=ATOL, rtol=ATOL)
    positions = 3 * config.num_patches
    assert self_weights.shape == (2, 2, positions, positions) and cross_weights.shape == (2, 2, positions, 4)
    torch.testing.assert_close(self_weights.sum(-1), torch.ones(2, 2, positions), atol=ATOL, rtol=0)
    torch.testing.assert_close(cross_weights.sum(-1), torch.ones(2, 2, positions), atol=ATOL, rtol=0)
    outside = torch.ones(positions, positions, dtype=torch.bool)
    outside[index[:, :, None], index[:, None, :]] = False
    assert self_weights[:, :, outside].abs().max() == 0  # no weight outside a position's window


def test_per_location_temporal_layer_is_causal_and_local():
    config = tiny_config()
    layer = seeded(SweetTransformerLayer(config))
    states = torch.randn(1, 4, config.num_patches, 32)
    changed = states.clone()
    changed[:, 2, 5] += torch.randn(32)  # frame group 2 at location 5
    with torch.no_grad():
        before, after = per_location_temporal_forward(layer, states), per_location_temporal_forward(layer, changed)
    difference = (after - before).abs().amax(dim=-1)  # (1, groups, patches)
    assert difference[0, 2:, 5].min() > 1e-3  # that step and the later ones of location 5 see it
    difference[0, 2:, 5] = 0
    assert difference.max() < ATOL  # earlier steps and every other location do not


def test_per_location_temporal_queries_read_only_their_location():
    config = tiny_config()
    queries = seeded(PerLocationTemporalQueries(config, SweetTransformerLayer))
    context = torch.randn(2, 1, config.num_patches, 32)
    changed = context.clone()
    changed[1, 0, 7] += torch.randn(32)
    with torch.no_grad():
        before, after = queries(context), queries(changed)
    assert before.shape == (2, config.num_patches, 32)
    difference = (after - before).abs().amax(dim=-1)
    assert difference[1, 7] > 1e-3
    difference[1, 7] = 0
    assert difference.max() < ATOL
