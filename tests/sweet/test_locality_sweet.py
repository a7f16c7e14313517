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
from tests.common import ModelTesterMixin
from tests.model_testers import SWEET_LOCALITY, SWEET_TINY, SweetTokenizerLocalityModelTester

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


# -- the model with the locality options ------------------------------------------------------------------------------
LOCALITY = SWEET_LOCALITY


def clip_encoder_states(model, clip):
    with torch.no_grad():
        return model.encode(clip, output_hidden_states=True).encoder_hidden_states[-1]


@pytest.mark.parametrize("window", [None, 2])
def test_frame_group_attention_does_not_mix_frame_groups(window):
    """Frames of group 2 change: the encoder states of groups 0 and 1 stay; with joint attention they do not."""
    config = tiny_config(num_frames=9, encoder_attention="frame_group", encoder_window_size=window)
    torch.manual_seed(0)
    local, joint = SweetTokenizerModel(config).eval(), SweetTokenizerModel(tiny_config(num_frames=9)).eval()
    clip = torch.rand(2, 3, 9, 16, 16) - 0.5
    changed = clip.clone()
    changed[:, :, 5:] = torch.rand(2, 3, 4, 16, 16) - 0.5  # frame group 2 = frames 5..8
    patches = config.num_patches
    for model, mixes in ((local, False), (joint, True)):
        before, after = clip_encoder_states(model, clip), clip_encoder_states(model, changed)
        earlier = (after - before)[:, : 2 * patches].abs().max()
        assert (earlier > 1e-3) if mixes else (earlier < 1e-5), (mixes, float(earlier))
        assert (after - before)[:, 2 * patches :].abs().max() > 1e-3


def test_window_attention_keeps_windows_apart_in_its_layer():
    config = tiny_config(encoder_attention="frame_group", encoder_window_size=2, num_encoder_layers=1)
    torch.manual_seed(0)
    model = SweetTokenizerModel(config).eval()
    image = torch.rand(1, 3, 16, 16) - 0.5
    changed = image.clone()
    changed[:, :, :4, :4] = torch.rand(1, 3, 4, 4) - 0.5  # patch (0, 0): window 0 (patches 0, 1, 4, 5)
    with torch.no_grad():
        before = model.encode(image, output_hidden_states=True).encoder_hidden_states[1]
        after = model.encode(changed, output_hidden_states=True).encoder_hidden_states[1]
    difference = (after - before).abs().amax(dim=-1)[0]
    assert difference[[0, 1, 4, 5]].min() > 1e-3
    assert difference[[2, 3, 6, 7, 8, 15]].max() < 1e-5


def test_locality_model_shapes_and_old_configs_keep_the_first_version(tmp_path):
    torch.manual_seed(0)
    model = SweetTokenizerModel(tiny_config(**LOCALITY)).eval()
    clip = torch.rand(2, 3, 5, 16, 16) - 0.5
    with torch.no_grad():
        encoded = model.encode(clip)
        assert encoded.temporal_ids.shape[:2] == (2, 16)
        assert model.decode(encoded.spatial_ids, encoded.temporal_ids).shape == clip.shape
        assert model.decode(encoded.spatial_ids).shape == (2, 3, 16, 16)
    # a config.json written before the locality fields existed loads as the first version
    default = SweetTokenizerModel(tiny_config())
    default.save_pretrained(tmp_path)
    import json

    saved = json.loads((tmp_path / "config.json").read_text())
    for field in ("encoder_attention", "encoder_window_size", "spatial_query_context", "temporal_queries",
                  "decoder_attention", "pixel_decoder", "pixel_decoder_channels", "pixel_decoder_layers_per_block",
                  "pixel_decoder_norm_groups"):
        saved.pop(field)
    (tmp_path / "config.json").write_text(json.dumps(saved))
    reloaded = SweetTokenizerModel.from_pretrained(tmp_path)
    assert (reloaded.config.encoder_attention, reloaded.config.temporal_queries,
            reloaded.config.pixel_decoder) == ("full", "global", "linear")
    assert reloaded.decoder_temporal is None and type(reloaded.pixel_head).__name__ == "SweetPixelHead"


def test_per_frame_pixel_decoder_draws_each_frame_through_its_own_map(tmp_path):
    """`pixel_decoder="conv_per_frame"`: each frame of a tube has its own map (starting as the identity) from the
    tube's state, and one decoder draws every frame: changing the map of tube slot k changes exactly the frames in
    slot k (slot 0 also draws the first frame and images); it trains, saves and runs in bf16."""
    torch.manual_seed(0)
    config = tiny_config(num_frames=9, pixel_decoder="conv_per_frame", pixel_decoder_channels=[8, 8, 16],
                         pixel_decoder_norm_groups=4)
    model = SweetTokenizerModel(config).eval()
    head = model.pixel_head
    assert head.frame_weight.shape == (4, 32, 32)
    assert (head.frame_weight - torch.eye(32)).abs().mean() < 0.05 and head.frame_bias.abs().max() == 0
    clip, image = torch.rand(2, 3, 9, 16, 16) - 0.5, torch.rand(2, 3, 16, 16) - 0.5
    with torch.no_grad():
        reference = model(pixel_values=image, pixel_values_videos=clip)
        assert reference.reconstruction_videos.shape == clip.shape and reference.reconstruction.shape == image.shape
        weight = head.frame_weight.clone()
        for slot, frames in ((0, {0, 1, 5}), (2, {3, 7})):
            head.frame_weight[slot] += torch.randn(32, 32)
            changed = model(pixel_values=image, pixel_values_videos=clip)
            head.frame_weight.copy_(weight)
            per_frame = (changed.reconstruction_videos - reference.reconstruction_videos).abs().amax(dim=(0, 1, 3, 4))
            assert {int(f) for f in torch.nonzero(per_frame > 1e-6)} == frames
            image_change = (changed.reconstruction - reference.reconstruction).abs().max()
            assert bool(image_change > 1e-6) == (slot == 0)
    model.train()
    model(pixel_values_videos=clip).loss.backward()
    assert all(head.frame_weight.grad[slot].abs().sum() > 0 for slot in range(4))
    model.eval().save_pretrained(tmp_path)
    reloaded = SweetTokenizerModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        again = reloaded(pixel_values_videos=clip).reconstruction_videos
        torch.testing.assert_close(again, reference.reconstruction_videos, atol=1e-5, rtol=1e-4)
        low = reloaded.to(torch.bfloat16)(pixel_values_videos=clip.bfloat16()).reconstruction_videos
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    assert (low.float() - again).abs().max() < 0.25


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(encoder_attention="frame_group", encoder_window_size=3), "`encoder_window_size` must be None or an integer "
                                                                   "dividing image_size / patch_size = 4"),
    (dict(encoder_window_size=2), "`encoder_window_size` must be None with encoder_attention='full'"),
    (dict(temporal_queries="per_location"), "`num_temporal_queries` must be .* = 16 with temporal_queries="),
    (dict(pixel_decoder="conv", image_size=18, patch_size=6), "`patch_size` must be a power of 2"),
    (dict(pixel_decoder="conv", pixel_decoder_channels=[8, 16]), "`pixel_decoder_channels` must be None or 3 widths"),
    (dict(pixel_decoder="conv", pixel_decoder_norm_groups=5), "`pixel_decoder_norm_groups` must be a divisor"),
    (dict(decoder_attention="window"), "`decoder_attention` must be one of"),
])
def test_locality_options_are_validated(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


# -- second stage -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("trainable", ["decoder", "pixel_decoder"])
def test_decoder_stage_trains_the_decoder_with_encoder_and_quantisers_frozen(trainable, tmp_path):
    from datasets import Dataset

    from modeling_sweet.training_sweet import (
        DEFAULT_CURRICULUM,
        SweetCurriculumCollator,
        SweetTokenizerTrainer,
        SweetTokenizerTrainingArguments,
    )

    torch.manual_seed(0)
    model = SweetTokenizerModel(tiny_config(**LOCALITY))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    generator = torch.Generator().manual_seed(0)
    rows = [{"pixel_values": (torch.rand(3, 5, 16, 16, generator=generator) - 0.5).tolist()} for _ in range(4)]
    curriculum = [{**stage, "quantize": True} for stage in DEFAULT_CURRICULUM]  # stages that free the temporal part
    curriculum[1]["start_step"], curriculum[2]["start_step"] = 1, 2
    args = SweetTokenizerTrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=2,
                                           learning_rate=1e-2, report_to=[], save_strategy="no", use_cpu=True,
                                           decoder_stage=trainable, curriculum=curriculum)
    trainer = SweetTokenizerTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                    data_collator=SweetCurriculumCollator(5))
    trainer.train()
    trained = {name for name, p in model.named_parameters() if not torch.allclose(p, before[name])}
    pixel_decoder = {name for name in before if name.startswith("pixel_head.")}
    assert set(trainer.decoder_stage_parameters) == {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained and trained <= set(trainer.decoder_stage_parameters)
    assert not any(name.startswith(("encoder.", "patch_embedding.", "spatial_quantizer.", "temporal_quantizer.",
                                    "spatial_queries.", "temporal_queries.", "temporal_transformer."))
                   for name in trained)
    if trainable == "pixel_decoder":
        assert set(trainer.decoder_stage_parameters) == pixel_decoder
    else:
        assert pixel_decoder < set(trainer.decoder_stage_parameters) and any(n.startswith("decoder.") for n in trained)


def test_decoder_stage_needs_quantised_stages(tmp_path):
    from modeling_sweet.training_sweet import DEFAULT_CURRICULUM, SweetTokenizerTrainingArguments

    with pytest.raises(ValueError, match="`decoder_stage` must be None with a curriculum that has continuous"):
        SweetTokenizerTrainingArguments(output_dir=str(tmp_path), decoder_stage="decoder",
                                        curriculum=DEFAULT_CURRICULUM)
    with pytest.raises(ValueError, match="`decoder_stage` must be None or one of"):
        SweetTokenizerTrainingArguments(output_dir=str(tmp_path), decoder_stage="encoder")


# -- the shared harness -----------------------------------------------------------------------------------------------
class TestSweetTokenizerLocalityModelHarness(SweetTokenizerLocalityModelTester, ModelTesterMixin):
    expected_slices = {
        "reconstruction": [0.0536783, 0.04055987, 0.06724413, 0.02800871, 0.04047531, -0.02266569, -0.06807078,
                           -0.0223983],
        "reconstruction_videos": [-0.08458295, -0.01579207, 0.01554142, -0.1687585, -0.06649662, -0.1409251,
                                  -0.05121125, -0.06927534],
    }
    hidden_states_names = ("encoder_hidden_states", "decoder_hidden_states", "video_encoder_hidden_states",
                           "video_decoder_hidden_states")
    attentions_names = ("encoder_attentions", "decoder_attentions", "cross_attentions", "video_encoder_attentions",
                        "video_decoder_attentions", "video_cross_attentions")
    skip_compile_reason = ("a cold inductor compile takes minutes on 2 CPU cores; the first version's harness "
                           "compiles the same transformer layers")
