import json
import logging
import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel

from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel
from modeling_sweet.codebook_sweet import primary_word_class
from modeling_sweet.configuration_sweet import RECIPE_FIELDS


def images(batch=2, size=16):
    return torch.rand(batch, 3, size, size) - 0.5


def clips(batch=2, frames=5, size=16):
    return torch.rand(batch, 3, frames, size, size) - 0.5


def test_encode_decode_shapes_for_images_and_videos(word_model):
    config = word_model.config
    encoded = word_model.encode(images())
    # factorised codes (the default): 2 adjectives + 1 noun per spatial token, a verb + an adverb per temporal token
    assert encoded.spatial_ids.shape == (2, config.num_spatial_queries, 3) and encoded.temporal_ids is None
    assert word_model.decode(encoded.spatial_ids).shape == (2, 3, 16, 16)
    encoded = word_model.encode(clips())
    assert encoded.temporal_ids.shape == (2, config.num_temporal_queries, 2)
    assert word_model.decode(encoded.spatial_ids, encoded.temporal_ids).shape == (2, 3, 5, 16, 16)
    assert 0 <= encoded.spatial_ids.min() and encoded.spatial_ids.max() < config.spatial_codebook_size
    assert 0 <= encoded.temporal_ids.min() and encoded.temporal_ids.max() < config.temporal_codebook_size


def test_forward_reconstruction_equals_decode_of_the_ids(word_model):
    word_model.eval()
    video = clips()
    with torch.no_grad():
        outputs = word_model(video)
        decoded = word_model.decode(outputs.spatial_ids, outputs.temporal_ids)
    torch.testing.assert_close(outputs.reconstruction, decoded, atol=1e-5, rtol=1e-5)
    assert outputs.loss > 0 and outputs.vq_loss > 0


def test_images_and_videos_in_one_batch_weigh_items_equally(word_model):
    word_model.eval()
    pictures, video = images(3), clips(1)
    with torch.no_grad():
        joint = word_model(pixel_values=pictures, pixel_values_videos=video)
        alone = word_model(pictures), word_model(pixel_values_videos=video)
    expected = (3 * alone[0].loss + alone[1].loss) / 4
    torch.testing.assert_close(joint.loss, expected)
    assert joint.reconstruction.shape == pictures.shape and joint.reconstruction_videos.shape == video.shape
    assert torch.equal(joint.video_temporal_ids, alone[1].video_temporal_ids) and alone[1].reconstruction is None
    with pytest.raises(ValueError, match="needs pixel_values, pixel_values_videos or both"):
        word_model()
    with pytest.raises(ValueError, match="pixel_values_videos must be"):
        word_model(pixel_values_videos=pictures)


def test_token_mixing_of_the_temporal_branch_starts_as_identity(tiny_sweet_config):
    config = tiny_sweet_config(num_temporal_queries=16)  # 16x16 pixels, 4x4 patches, 1 tube group: 16 positions
    model = SweetTokenizerModel(config)
    pooling, unpooling = model.temporal_queries.pooling.weight, model.temporal_unpooling.weight
    assert pooling.shape == (16, 16) and unpooling.shape == (2 * 16, 16)
    torch.testing.assert_close(torch.diagonal(pooling), torch.ones(16), atol=0.2, rtol=0)
    torch.testing.assert_close(torch.diagonal(unpooling[16:]), torch.ones(16), atol=0.2, rtol=0)
    assert unpooling[:16].abs().max() < 0.2  # the first frame group reads the temporal tokens through learning


def test_ids_are_words_of_the_right_class(word_model):
    encoded = word_model.encode(clips())
    spatial = word_model.ids_to_words(encoded.spatial_ids, "spatial")
    temporal = word_model.ids_to_words(encoded.temporal_ids, "temporal")
    assert len(spatial) == 2 and len(spatial[0]) == word_model.config.num_spatial_queries
    # each spatial token is [adjective, adjective, noun], each temporal token [verb, adverb]
    assert all([primary_word_class(word) for word in token] == ["ADJ", "ADJ", "NOUN"]
               for row in spatial for token in row)
    assert all([primary_word_class(word) for word in token] == ["VERB", "ADV"] for row in temporal for token in row)
    assert all(token[0] != token[1] for row in spatial for token in row)  # the 2 nearest adjectives
    assert word_model.ids_to_words(torch.tensor(3), "spatial") == [word_model.config.spatial_words[3]]
    assert not set(word_model.config.spatial_words) & set(word_model.config.temporal_words)  # class-disjoint


def test_ids_words_ids_decode_round_trip(word_model):
    word_model.eval()
    encoded = word_model.encode(clips())
    spatial = word_model.ids_to_words(encoded.spatial_ids, "spatial")
    temporal = word_model.ids_to_words(encoded.temporal_ids, "temporal")
    spatial_ids = word_model.words_to_ids(spatial, "spatial")
    temporal_ids = word_model.words_to_ids(temporal, "temporal")
    assert torch.equal(spatial_ids, encoded.spatial_ids) and torch.equal(temporal_ids, encoded.temporal_ids)
    with torch.no_grad():
        torch.testing.assert_close(word_model.decode(spatial_ids, temporal_ids),
                                   word_model.decode(encoded.spatial_ids, encoded.temporal_ids), atol=0, rtol=0)
    first_temporal_word = word_model.config.temporal_words[0]
    with pytest.raises(KeyError, match=f"'{first_temporal_word}' is not a word of the spatial codebook"):
        word_model.words_to_ids([first_temporal_word], "spatial")
    with pytest.raises(ValueError, match="branch must be one of"):
        word_model.words_to_ids(["dog"], "motion")


def test_language_embeddings_are_the_frozen_lm_rows(word_model, minilm_path):
    from transformers import AutoModel as HFAutoModel
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    embeddings = HFAutoModel.from_pretrained(minilm_path).get_input_embeddings().weight
    ids = tokenizer.convert_tokens_to_ids(word_model.config.spatial_words)
    torch.testing.assert_close(word_model.spatial_quantizer.language_embeddings, embeddings[ids].detach())
    assert "language_embeddings" not in {name.split(".")[-1] for name, _ in word_model.named_parameters()}


def entropy_of_soft_assignment(similarities, temperature):
    """Reference (written out here, not the model's): mean per-token entropy of softmax(similarities / T) minus the
    entropy of the batch-average assignment. `similarities`: (..., codebook_size)."""
    p = torch.softmax(similarities.reshape(-1, similarities.shape[-1]) / temperature, dim=-1)
    per_token = -(p * torch.log(p + 1e-30)).sum(-1).mean()
    average = p.mean(0)
    return per_token - (-(average * torch.log(average + 1e-30)).sum())


def test_entropy_term_is_a_training_only_part_of_the_vq_loss(tiny_sweet_config, minilm_path):
    torch.manual_seed(0)
    single = dict(codebook_factorization="single", codebook_projection="linear")  # one word per token
    plain = SweetTokenizerModel.from_language_model(tiny_sweet_config(**single), minilm_path, max_words=64)
    spread = SweetTokenizerModel.from_language_model(tiny_sweet_config(entropy_loss_weight=0.5, **single),
                                                     minilm_path, max_words=64)
    spread.load_state_dict(plain.state_dict())
    video = clips(4)
    plain.eval(), spread.eval()
    torch.testing.assert_close(spread(video).vq_loss, plain(video).vq_loss)  # eval: the authors' loss
    plain.train(), spread.train()
    # what each quantiser is given, captured with forward hooks (public module API, no private encode path)
    tokens = {}
    hooks = [quantizer.register_forward_hook(lambda module, args, out, name=name: tokens.__setitem__(name, args[0]))
             for name, quantizer in (("spatial", spread.spatial_quantizer), ("temporal", spread.temporal_quantizer))]
    spread_loss = spread(video).vq_loss
    for hook in hooks:
        hook.remove()
    assert tokens["spatial"].shape == (4, 4, 32) and tokens["temporal"].shape == (4, 8, 32)
    entropies = {}
    for name in ("spatial", "temporal"):
        quantizer = getattr(spread, f"{name}_quantizer")
        latents = F.normalize(quantizer.input_projection(tokens[name]), dim=-1)
        entropies[name] = entropy_of_soft_assignment(latents @ quantizer.codes().T, 0.05)
        # per-token entropy and entropy of the average both lie in [0, log(codebook size)]
        assert -math.log(64) - 1e-4 <= entropies[name].item() <= math.log(64) + 1e-4
    expected = plain(video).vq_loss + 0.5 * (entropies["spatial"] + entropies["temporal"])
    torch.testing.assert_close(spread_loss, expected)
    with pytest.raises(ValueError, match="entropy_temperature"):
        tiny_sweet_config(entropy_temperature=0)


def test_entropy_term_rewards_spreading_tokens_over_codes(tiny_sweet_config):
    """Behaviour: with every token on the same code the term is ~0 - 0 = 0 at a sharp temperature; tokens sure of
    different codes lower it to about -log(number of codes used)."""
    torch.manual_seed(0)
    model = SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=16, temporal_codebook_size=16,
                                                  entropy_loss_weight=1.0, entropy_temperature=1e-3,
                                                  codebook_factorization="single"))
    quantizer = model.spatial_quantizer.train()
    codes = quantizer.codes().detach()
    with torch.no_grad():  # make input_projection a map whose outputs can hit chosen codes exactly
        quantizer.input_projection.weight.copy_(torch.eye(*quantizer.input_projection.weight.shape))
    def vq_loss_for(code_ids):
        tokens = torch.zeros(1, len(code_ids), model.config.hidden_size)
        tokens[..., : codes.shape[1]] = codes[code_ids]
        return quantizer(tokens)[2]

    same, spread = vq_loss_for([3, 3, 3, 3]), vq_loss_for([0, 5, 9, 12])
    torch.testing.assert_close(same, torch.tensor(0.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(spread, torch.tensor(-math.log(4)), atol=1e-3, rtol=0)


def test_straight_through_gradients_reach_the_encoder_and_embeddings_stay_frozen(word_model):
    word_model.train()
    before = word_model.spatial_quantizer.language_embeddings.clone()
    optimizer = torch.optim.AdamW(word_model.parameters(), lr=1e-2)
    outputs = word_model(clips())
    outputs.loss.backward()
    for name in ("patch_embedding.frame_patches.weight", "patch_embedding.tube_patches.weight",
                 "encoder.0.mlp.0.weight", "spatial_queries.queries", "temporal_queries.queries",
                 "spatial_quantizer.input_projection.weight",
                 "spatial_quantizer.code_network.input_layer.lin.weight",
                 "spatial_quantizer.code_network.output_layer.bias"):
        gradient = word_model.get_parameter(name).grad
        assert gradient is not None and gradient.abs().sum() > 0, name
    missing = [n for n, p in word_model.named_parameters() if p.grad is None]
    assert missing == []
    optimizer.step()
    assert torch.equal(word_model.spatial_quantizer.language_embeddings, before)


def test_quantize_false_skips_the_codebook(word_model):
    word_model.eval()
    pictures = images()
    with torch.no_grad():
        continuous, quantized = word_model(pictures, quantize=False), word_model(pictures)
        latents = word_model.encode(pictures, quantize=False).spatial_latents
    assert continuous.vq_loss == 0 and quantized.vq_loss > 0 and continuous.spatial_ids.shape == (2, 4, 3)
    assert torch.equal(continuous.spatial_ids, quantized.spatial_ids)  # the nearest words all the same
    assert not torch.allclose(continuous.reconstruction, quantized.reconstruction)
    quantizer = word_model.spatial_quantizer
    with torch.no_grad():
        tokens = word_model.spatial_queries(word_model._encode_features(pictures.unsqueeze(2))[0].mean(dim=1))
        halves = quantizer.input_projection(tokens).unflatten(-1, (2, -1))  # adjective half, noun half
        torch.testing.assert_close(latents, quantizer.output_projection(F.normalize(halves, dim=-1).flatten(-2)))
    assert not hasattr(word_model, "quantize")  # an argument, not an attribute a callback flips


def test_save_load_round_trip(tmp_path, word_model):
    word_model.eval()
    word_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, SweetTokenizerConfig) and config.spatial_words == word_model.config.spatial_words
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is SweetTokenizerModel
    video = clips()
    with torch.no_grad():
        first, second = word_model(video), reloaded(video)
    assert torch.equal(first.spatial_ids, second.spatial_ids) and torch.equal(first.temporal_ids, second.temporal_ids)
    torch.testing.assert_close(first.reconstruction, second.reconstruction)


@pytest.mark.parametrize(
    "pixel_values, message",
    [
        (torch.zeros(2, 4, 16, 16), "4 channels"),
        (torch.zeros(2, 3, 3, 16, 16), "3 frames"),
        (torch.zeros(2, 3, 17, 16, 16), "17 frames"),
        (torch.zeros(2, 3, 18, 18), "18x18 is not divisible by patch_size=4"),
        (torch.zeros(2, 3, 32, 32), "expects 16x16"),
        (torch.zeros(2, 3, 16), "must be \\(batch, channels, height, width\\)"),
        (torch.zeros(0, 3, 16, 16), "empty batch"),
    ],
)
def test_bad_pixel_values_raise(word_model, pixel_values, message):
    with pytest.raises(ValueError, match=message):
        word_model.encode(pixel_values)


def test_nan_and_inf_name_the_item(word_model):
    video = clips(batch=3)
    video[2, 0, 1, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="item #2 contains NaN or inf"):
        word_model(video)
    image = images(batch=2)
    image[1, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="item #1 contains NaN or inf"):
        word_model.encode(image)
    image[1, 0, 0, 0] = -float("inf")
    with pytest.raises(ValueError, match="item #1 contains NaN or inf"):
        word_model.encode(image)
    image[0] *= 10  # item #0 out of range, item #1 not finite: the NaN / inf message comes first, as it names a bug
    with pytest.raises(ValueError, match="item #1 contains NaN or inf"):
        word_model.encode(image)


def test_pixel_checks_sync_once_on_good_input(word_model, monkeypatch):
    """NaN, inf and range are one reduction: a good batch costs one host sync (one `bool()` of a tensor)."""
    synced = []
    monkeypatch.setattr(torch.Tensor, "__bool__", lambda tensor: synced.append(1) or bool(tensor.item()))
    video, is_image = word_model._as_video(clips())
    assert len(synced) == 1 and not is_image and video.shape == (2, 3, 5, 16, 16)


def test_images_and_one_frame_clips_are_told_apart_in_one_place(word_model):
    word_model.eval()
    pictures = images(2)
    assert word_model._as_video(pictures)[1] and not word_model._as_video(pictures.unsqueeze(2))[1]
    with torch.no_grad():
        as_images, as_clips = word_model(pictures), word_model(pictures.unsqueeze(2))
    assert as_images.reconstruction.shape == (2, 3, 16, 16)  # images come back as images
    assert as_clips.reconstruction.shape == (2, 3, 1, 16, 16)  # (batch, C, 1, H, W) stays a clip of one frame
    torch.testing.assert_close(as_images.reconstruction, as_clips.reconstruction[:, :, 0])
    torch.testing.assert_close(as_images.loss, as_clips.loss)


def test_out_of_range_ids_raise(word_model):
    adjectives, nouns = word_model.config.spatial_factor_sizes
    ids = torch.tensor([[[0, 1, adjectives]] * 4])  # (1, 4, 3): valid
    word_model.decode(ids)
    ids[0, 2, 2] = adjectives + nouns
    with pytest.raises(ValueError, match=rf"spatial_ids\[0, 2, 2\] = 64 is outside the spatial nouns: slot 2 takes a "
                                         rf"noun, ids \[{adjectives}, 64\)"):
        word_model.decode(ids)
    ids[0, 2, 2], ids[0, 1, 0] = adjectives, adjectives  # a noun in an adjective slot
    with pytest.raises(ValueError, match=rf"spatial_ids\[0, 1, 0\] = {adjectives} is outside the spatial adjectives"):
        word_model.decode(ids)
    with pytest.raises(ValueError, match=r"spatial_ids must be \(batch, 4, 3\), got shape \(1, 4\)"):
        word_model.decode(torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"temporal_ids must be \(batch, 8, 2\)"):
        word_model.decode(torch.tensor([[[0, 1, adjectives]] * 4]), torch.zeros(1, 3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="outside the temporal codebook"):
        word_model.ids_to_words([-1], "temporal")


def test_model_without_word_lists_says_so(tiny_sweet_config):
    model = SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=10, temporal_codebook_size=10))
    with pytest.raises(ValueError, match="no spatial word list"):
        model.ids_to_words([1])


@pytest.mark.parametrize(
    "kwargs, argument",
    [({"image_size": 30, "patch_size": 8}, "image_size"), ({"num_frames": 6}, "num_frames"),
     ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size"),
     ({"reconstruction_loss": "l3"}, "reconstruction_loss"),
     ({"vocabulary_min_word_length": 0}, "vocabulary_min_word_length"),
     ({"vocabulary_min_zipf_frequency": -1}, "vocabulary_min_zipf_frequency"),
     ({"vocabulary_lemmas_only": "yes"}, "vocabulary_lemmas_only"),
     ({"spatial_words": []}, "spatial_words"), ({"num_spatial_queries": 0}, "num_spatial_queries")],
)
def test_config_validation_names_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        SweetTokenizerConfig(**kwargs)


def test_config_round_trip(tmp_path):
    config = SweetTokenizerConfig(spatial_words=["red", "dark", "dog"], temporal_words=["run", "away"],
                                  spatial_factor_sizes=[2, 1], temporal_factor_sizes=[1, 1])
    config.save_pretrained(tmp_path)
    reloaded = SweetTokenizerConfig.from_pretrained(tmp_path)
    assert reloaded.to_dict() == config.to_dict() and reloaded.spatial_codebook_size == 3
    assert reloaded.codebook_factor_sizes("spatial") == [2, 1] and reloaded.codebook_factorization == "paper"
    single = SweetTokenizerConfig(spatial_words=["dog", "red"], temporal_words=["run"],
                                  codebook_factorization="single")
    single.save_pretrained(tmp_path)
    assert SweetTokenizerConfig.from_pretrained(tmp_path).to_dict() == single.to_dict()


# -- checkpoints of the first version (training recipe inside the model) ----------------------------------------------
# What the first version wrote with `discriminator_start_step` set and `discriminator_channels=8` (checked against a
# folder saved by that code): a 2D PatchGAN's weights in model.safetensors and the recipe in config.json.
OLD_DISCRIMINATOR_SHAPES = {
    "discriminator.layers.0.weight": (8, 3, 4, 4), "discriminator.layers.0.bias": (8,),
    "discriminator.layers.2.weight": (16, 8, 4, 4), "discriminator.layers.2.bias": (16,),
    "discriminator.layers.3.weight": (16,), "discriminator.layers.3.bias": (16,),
    "discriminator.layers.5.weight": (32, 16, 4, 4), "discriminator.layers.5.bias": (32,),
    "discriminator.layers.6.weight": (32,), "discriminator.layers.6.bias": (32,),
    "discriminator.layers.8.weight": (1, 32, 3, 3), "discriminator.layers.8.bias": (1,),
}
OLD_RECIPE_CONFIG = {
    "curriculum": [{"media": "images", "name": "continuous warm-up", "quantize": False, "start_step": 0,
                    "train_temporal": False},
                   {"media": "images", "name": "spatial", "quantize": True, "start_step": 2000,
                    "train_temporal": False},
                   {"media": "both", "name": "spatial-temporal", "quantize": True, "start_step": 10000,
                    "train_temporal": True}],
    "discriminator_channels": 8, "discriminator_start_step": 5, "discriminator_weight": 0.01,
    "perceptual_loss_weight": 0.1, "perceptual_model_name_or_path": "/home/someone/models/convnext-small",
}


def save_first_version_checkpoint(model, folder):
    """A folder as the first version saved it: this model's files plus the discriminator's weights and the recipe's
    config fields."""
    model.save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    generator = torch.Generator().manual_seed(0)
    weights.update({name: torch.randn(shape, generator=generator) for name, shape in OLD_DISCRIMINATOR_SHAPES.items()})
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **OLD_RECIPE_CONFIG}, indent=2))


def test_a_first_version_checkpoint_loads_without_its_recipe_and_says_so(tmp_path, word_model, caplog):
    word_model.eval()
    save_first_version_checkpoint(word_model, tmp_path / "old")
    with caplog.at_level(logging.WARNING):
        reloaded = AutoModel.from_pretrained(tmp_path / "old").eval()
    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert "dropped 12 weights of the training recipe (discriminator.layers.0.bias, ...)" in messages
    assert "ignoring the training-recipe fields ['curriculum', 'discriminator_channels'" in messages
    assert not any(hasattr(reloaded.config, field) for field in RECIPE_FIELDS)
    assert not hasattr(reloaded, "discriminator")
    video = clips()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(video).reconstruction, word_model(video).reconstruction)
    reloaded.save_pretrained(tmp_path / "again")  # saved again: nothing of the recipe left
    assert set(load_file(tmp_path / "again" / "model.safetensors")) == set(word_model.state_dict())
    assert not set(RECIPE_FIELDS) & set(json.loads((tmp_path / "again" / "config.json").read_text()))


def test_a_first_version_config_loads_with_a_warning(tmp_path, caplog):
    SweetTokenizerConfig(hidden_size=32, num_attention_heads=2).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **OLD_RECIPE_CONFIG}))
    with caplog.at_level(logging.WARNING):
        loaded = AutoConfig.from_pretrained(tmp_path)
    assert "perceptual_model_name_or_path" in caplog.text and "SweetTokenizerTrainingArguments" in caplog.text
    assert loaded.hidden_size == 32 and "curriculum" not in loaded.to_dict()


# -- the motion-enhanced language codebook: factorised codes, GCN code vectors, usage and perplexity ------------------
# in words of the `word_model` codebooks (the first 64 MiniLM words of each): "small", "old", "house", ... and
# "look", "come", "back", "together", ...
CAPTIONS = ["a small old house in the city", "people walk around the old town", "the team comes back together",
            "a man looks down across the long line", "families play along"]


def gcn_reference(quantizer, edges=None):
    """Code vectors written out (not torch_geometric): two GCN layers H' = D^-1/2 (A + I) D^-1/2 H W + b, ReLU
    between, then unit rows. `edges`: (edge_index, edge_weight), or None for self-loops only."""
    size = quantizer.codebook_size
    adjacency = torch.eye(size)
    if edges is not None:
        adjacency[edges[0][1], edges[0][0]] += edges[1]  # row = target, column = source
    degree = adjacency.sum(dim=1)
    propagate = adjacency / degree.sqrt()[:, None] / degree.sqrt()[None, :]
    network = quantizer.code_network
    hidden = torch.relu(propagate @ (quantizer.language_embeddings @ network.input_layer.lin.weight.T)
                        + network.input_layer.bias)
    return F.normalize(propagate @ (hidden @ network.output_layer.lin.weight.T) + network.output_layer.bias, dim=-1)


def test_factorised_codebooks_hold_adjectives_then_nouns_and_verbs_then_adverbs(word_model):
    config = word_model.config
    adjectives, nouns = config.spatial_factor_sizes
    verbs, adverbs = config.temporal_factor_sizes
    assert adjectives + nouns == config.spatial_codebook_size == 64 and verbs + adverbs == 64
    assert [primary_word_class(w) for w in config.spatial_words] == ["ADJ"] * adjectives + ["NOUN"] * nouns
    assert [primary_word_class(w) for w in config.temporal_words] == ["VERB"] * verbs + ["ADV"] * adverbs
    assert config.codebook_factorization == "paper" and config.codebook_projection == "gcn"
    assert word_model.codebook_names == {"spatial": ("spatial_adjective", "spatial_noun"),
                                         "temporal": ("temporal_verb", "temporal_adverb")}


def test_a_spatial_token_is_the_mean_of_its_2_nearest_adjectives_beside_its_nearest_noun(word_model):
    word_model.eval()
    quantizer = word_model.spatial_quantizer
    adjectives = word_model.config.spatial_factor_sizes[0]
    tokens = torch.randn(3, 4, word_model.config.hidden_size)
    with torch.no_grad():
        latents, ids, _ = quantizer(tokens)
        codes = quantizer.codes()
        halves = F.normalize(quantizer.input_projection(tokens).unflatten(-1, (2, -1)), dim=-1)
    assert ids.shape == (3, 4, 3) and codes.shape == (64, 8)
    # reference by sorting all cosines: the two best adjectives (any order) and the best noun
    adjective_order = (halves[..., 0, :] @ codes[:adjectives].T).argsort(dim=-1, descending=True)
    noun_best = (halves[..., 1, :] @ codes[adjectives:].T).argmax(dim=-1) + adjectives
    assert torch.equal(ids[..., :2].sort(dim=-1).values, adjective_order[..., :2].sort(dim=-1).values)
    assert torch.equal(ids[..., 2], noun_best)
    quantized = torch.cat([(codes[ids[..., 0]] + codes[ids[..., 1]]) / 2, codes[ids[..., 2]]], dim=-1)
    torch.testing.assert_close(latents, quantizer.output_projection(quantized))
    with torch.no_grad():
        torch.testing.assert_close(quantizer.embed_ids(ids), latents)


def test_without_captions_the_gcn_is_a_per_word_mlp(word_model):
    quantizer = word_model.spatial_quantizer.eval()
    assert word_model.config.spatial_graph_num_edges == 0 and quantizer.graph_edge_index.shape == (2, 0)
    with torch.no_grad():
        torch.testing.assert_close(quantizer.codes(), gcn_reference(quantizer), atol=1e-5, rtol=1e-4)


def test_the_cooccurrence_graph_shapes_the_code_vectors_and_is_saved(word_model, tmp_path):
    word_model.eval()
    with torch.no_grad():
        alone = word_model.spatial_quantizer.codes().clone()
    edges = word_model.set_codebook_graph(CAPTIONS)
    quantizer = word_model.spatial_quantizer
    assert edges["spatial"] == word_model.config.spatial_graph_num_edges == quantizer.graph_edge_index.shape[1] > 0
    assert edges["temporal"] > 0
    graph = (quantizer.graph_edge_index, quantizer.graph_edge_weight)
    words = word_model.config.spatial_words
    pairs = {(words[s], words[t]) for s, t in graph[0].T.tolist()}
    assert ("small", "old") in pairs and ("old", "small") in pairs and ("small", "city") not in pairs  # window 5
    with torch.no_grad():
        codes = quantizer.codes()
        torch.testing.assert_close(codes, gcn_reference(quantizer, graph), atol=1e-5, rtol=1e-4)
    changed = (codes - alone).abs().amax(dim=1) > 1e-6
    assert changed[graph[0].unique()].all() and not changed[~torch.isin(torch.arange(64), graph[0])].any()
    word_model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()  # no captions needed
    assert reloaded.config.spatial_graph_num_edges == edges["spatial"]
    torch.testing.assert_close(reloaded.spatial_quantizer.graph_edge_weight, graph[1], atol=0, rtol=0)
    video = clips()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.spatial_quantizer.codes(), codes)
        first, second = word_model(video), reloaded(video)
    torch.testing.assert_close(second.reconstruction, first.reconstruction)
    assert (second.spatial_ids == first.spatial_ids).float().mean() > 0.9  # ties aside, the same words


def test_the_gcn_codebook_trains_and_its_code_vectors_follow(tiny_sweet_config, minilm_path, tmp_path):
    torch.manual_seed(0)
    model = SweetTokenizerModel.from_language_model(tiny_sweet_config(), minilm_path, max_words=64,
                                                    captions=CAPTIONS)
    assert model.config.spatial_graph_num_edges > 0
    quantizer = model.spatial_quantizer
    with torch.no_grad():
        before = {name: p.clone() for name, p in quantizer.code_network.named_parameters()}
        codes_before = quantizer.eval().codes().clone()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        model(clips()).loss.backward()
        optimizer.step()
    model.eval()
    moved = [name for name, p in quantizer.code_network.named_parameters() if not torch.allclose(p, before[name])]
    assert sorted(moved) == sorted(before)
    with torch.no_grad():
        codes_after = quantizer.codes()
        assert (codes_after - codes_before).abs().max() > 1e-3  # the eval cache followed the new weights
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.spatial_quantizer.codes(), codes_after)


def test_code_vectors_are_cached_in_eval_only(word_model):
    quantizer = word_model.spatial_quantizer
    quantizer.eval()
    with torch.no_grad():
        first = quantizer.codes()
        assert quantizer.codes() is first  # cached
        quantizer.code_network.output_layer.bias.add_(0.5)  # an in-place change of a weight
        second = quantizer.codes()
    assert second is not first and not torch.allclose(second, first)
    assert quantizer.codes().requires_grad  # with gradients: recomputed, differentiable
    quantizer.train()
    with torch.no_grad():
        assert quantizer.codes() is not quantizer.codes()


def test_codebook_usage_and_perplexity_per_factor(word_model):
    word_model.eval()
    pictures, video = images(3), clips(2)
    with torch.no_grad():
        output = word_model(pixel_values=pictures, pixel_values_videos=video)
    spatial = torch.cat([output.spatial_ids.reshape(-1, 3), output.video_spatial_ids.reshape(-1, 3)])
    temporal = output.video_temporal_ids.reshape(-1, 2)
    adjectives, nouns = word_model.config.spatial_factor_sizes
    verbs, adverbs = word_model.config.temporal_factor_sizes
    expected = {"spatial_adjective": (spatial[:, :2].flatten().tolist(), adjectives),
                "spatial_noun": (spatial[:, 2].tolist(), nouns),
                "temporal_verb": (temporal[:, 0].tolist(), verbs),
                "temporal_adverb": (temporal[:, 1].tolist(), adverbs)}
    assert set(output.codebook_usage) == set(output.codebook_perplexity) == set(expected)
    for name, (ids, size) in expected.items():
        counts = Counter(ids)
        reference = math.exp(-sum(c / len(ids) * math.log(c / len(ids)) for c in counts.values()))
        assert output.codebook_usage[name].item() == pytest.approx(len(counts) / size)
        assert output.codebook_perplexity[name].item() == pytest.approx(reference, rel=1e-5)
        assert 1 <= output.codebook_perplexity[name].item() <= len(counts) + 1e-4
    with torch.no_grad():
        only_images = word_model(pictures)
    assert set(only_images.codebook_usage) == {"spatial_adjective", "spatial_noun"}


def test_too_few_words_for_a_factor_say_so(tiny_sweet_config, minilm_path):
    with pytest.raises(ValueError, match=r"the spatial codebook of 1 words has \d adjective\(s\), fewer than the 2 a "
                                         r"token takes with codebook_factorization='paper'"):
        SweetTokenizerModel.from_language_model(tiny_sweet_config(), minilm_path, max_words=1)
    linear = SweetTokenizerModel(tiny_sweet_config(codebook_projection="linear", spatial_words=["red", "dark", "dog"],
                                                   spatial_factor_sizes=[2, 1], temporal_words=["run", "away"]))
    with pytest.raises(ValueError, match="codebook_projection='linear' has no graph"):
        linear.set_codebook_graph(CAPTIONS)


@pytest.mark.parametrize("kwargs, argument", [
    ({"codebook_factorization": "pairs"}, "codebook_factorization"),
    ({"codebook_projection": "mlp"}, "codebook_projection"),
    ({"codebook_dim": 15}, "codebook_dim"),
    ({"spatial_words": ["red", "dog"], "spatial_factor_sizes": [1, 1]}, "spatial_factor_sizes"),
    ({"temporal_words": ["run", "away"], "temporal_factor_sizes": [1, 2]}, "temporal_factor_sizes"),
    ({"spatial_codebook_size": 2}, "spatial_codebook_size"),  # 1 adjective + 1 noun: a token takes 2 adjectives
    ({"spatial_graph_num_edges": -1}, "spatial_graph_num_edges"),
])
def test_codebook_config_validation_names_the_argument(tiny_sweet_config, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        tiny_sweet_config(**kwargs)


def test_a_checkpoint_of_the_single_word_codebook_loads_as_it_was(tiny_sweet_config, minilm_path, tmp_path):
    """A folder saved before factorised codes and GCN code vectors: no codebook_* fields in config.json,
    `code_projection` weights. It loads with one word per token and linear code vectors, the same outputs."""
    torch.manual_seed(0)
    old = SweetTokenizerModel.from_language_model(
        tiny_sweet_config(codebook_factorization="single", codebook_projection="linear"), minilm_path, max_words=64
    ).eval()
    old.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    new_fields = [key for key in config if key.startswith("codebook_") and key != "codebook_dim"
                  or key.endswith(("_factor_sizes", "_graph_num_edges"))]
    assert len(new_fields) == 7
    (tmp_path / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k not in new_fields}))
    assert {key.split(".", 1)[1] for key in load_file(tmp_path / "model.safetensors")
            if key.startswith("spatial_quantizer.")} == {"language_embeddings", "code_projection.weight",
                                                         "code_projection.bias", "input_projection.weight",
                                                         "output_projection.weight"}
    reloaded, info = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info
    assert (reloaded.config.codebook_factorization, reloaded.config.codebook_projection) == ("single", "linear")
    video = clips()
    with torch.no_grad():
        first, second = old(video), reloaded.eval()(video)
    assert second.spatial_ids.shape == (2, 4) and second.temporal_ids.shape == (2, 8)
    assert set(second.codebook_usage) == {"spatial", "temporal"}
    assert torch.equal(first.spatial_ids, second.spatial_ids)
    torch.testing.assert_close(second.reconstruction, first.reconstruction)
    words = reloaded.ids_to_words(second.spatial_ids, "spatial")
    assert torch.equal(reloaded.words_to_ids(words, "spatial"), second.spatial_ids)
    assert SweetTokenizerConfig().codebook_factorization == "paper"  # new configs get the paper's codebook


def test_with_factorised_codes_the_entropy_term_is_summed_over_the_factors(tiny_sweet_config):
    torch.manual_seed(0)
    model = SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=16, entropy_loss_weight=0.5))
    quantizer = model.spatial_quantizer.train()
    tokens = torch.randn(2, 4, model.config.hidden_size)
    with torch.no_grad():
        with_entropy = quantizer(tokens)[2]
        quantizer.entropy_loss_weight = 0.0
        without = quantizer(tokens)[2]
        halves = F.normalize(quantizer.input_projection(tokens).unflatten(-1, (2, -1)), dim=-1)
        codes = quantizer.codes()
    adjectives = model.config.codebook_factor_sizes("spatial")[0]
    expected = (entropy_of_soft_assignment(halves[..., 0, :] @ codes[:adjectives].T, 0.05)
                + entropy_of_soft_assignment(halves[..., 1, :] @ codes[adjectives:].T, 0.05))
    torch.testing.assert_close(with_entropy - without, 0.5 * expected)
    assert with_entropy != without


def test_a_bf16_model_chooses_words_on_float32_cosines():
    # Rounded to bf16's 8 bits, the cosines of close codes tie and the word choice flips with the hardware; the
    # quantizer computes them in float32 from the (bf16) latents and codes, in a bf16 model and under autocast alike.
    from tests.model_testers import SweetTokenizerFactorizedModelTester

    quantizer = SweetTokenizerFactorizedModelTester().make_model().spatial_quantizer.to(torch.bfloat16)
    tokens = torch.randn(8, 512, quantizer.input_projection.in_features, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, ids, _ = quantizer(tokens.bfloat16())
        latents = F.normalize(quantizer._split(quantizer.input_projection(tokens.bfloat16())), dim=-1)
        codes = quantizer.codes()
        expected, rounded = [], []
        for factor, (_, _, count) in enumerate(quantizer.factors):
            start, size = quantizer.factor_starts[factor], quantizer.factor_sizes[factor]
            block = codes[start : start + size]
            expected.append((latents[..., factor, :].float() @ block.float().T).topk(count, dim=-1).indices + start)
            rounded.append((latents[..., factor, :] @ block.T).topk(count, dim=-1).indices + start)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, autocast_ids, _ = quantizer(tokens.bfloat16())
    assert ids.dtype == torch.long
    torch.testing.assert_close(ids, torch.cat(expected, dim=-1), rtol=0, atol=0)
    torch.testing.assert_close(autocast_ids, ids, rtol=0, atol=0)
    # the bf16 cosines would have chosen other words for some tokens: the check can fail
    assert not torch.equal(torch.cat(rounded, dim=-1), ids)
