"""SweetTokenizerModel and the transformers model contract: gradient checkpointing, return_dict / hidden states /
attentions, sdpa vs eager, unknown keywords, class attributes, dummy inputs, pixel dtype and range checks."""

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, PreTrainedModel, Trainer, TrainingArguments

import modeling_sweet.modeling_sweet as modeling
from modeling_sweet import SweetTokenizerModel, SweetTokenizerOutput
from modeling_sweet.modeling_sweet import SweetAttention, SweetTransformerLayer, eager_attention_forward


def clips(batch=2, frames=5, size=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, frames, size, size, generator=generator) - 0.5


def images(batch=2, size=16, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) - 0.5


@pytest.fixture
def model(tiny_sweet_config):
    torch.manual_seed(0)
    return SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=32, temporal_codebook_size=32))


def gradients(model, **inputs):
    model.zero_grad(set_to_none=True)
    model(**inputs).loss.backward()
    return {name: parameter.grad.clone() for name, parameter in model.named_parameters() if parameter.grad is not None}


# -- 1. gradient checkpointing ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("use_reentrant", [False, True])
def test_gradient_checkpointing_gives_the_same_gradients(model, use_reentrant):
    assert model.supports_gradient_checkpointing
    model.train()
    inputs = {"pixel_values": images(3), "pixel_values_videos": clips(2)}
    expected = gradients(model, **inputs)
    model.activation_checkpointing_enable({"use_reentrant": use_reentrant})
    layers = [module for module in model.modules() if isinstance(module, SweetTransformerLayer)]
    config = model.config
    assert len(layers) == (config.num_encoder_layers + 2 * config.num_query_layers + config.num_temporal_layers
                           + config.num_decoder_layers)
    assert all(layer.gradient_checkpointing for layer in layers) and model.is_activation_checkpointing
    calls = []
    for layer in layers:
        checkpoint = layer._gradient_checkpointing_func
        layer._gradient_checkpointing_func = lambda *args, _checkpoint=checkpoint, **kwargs: (
            calls.append(1), _checkpoint(*args, **kwargs))[1]
    checkpointed = gradients(model, **inputs)
    assert len(calls) >= len(layers)  # every layer ran under checkpoint (the query / decoder ones twice: 2 parts)
    assert checkpointed.keys() == expected.keys()
    for name, gradient in expected.items():
        torch.testing.assert_close(checkpointed[name], gradient, atol=1e-6, rtol=1e-5, msg=name)


def test_gradient_checkpointing_enable_no_longer_raises(model):
    with pytest.warns(FutureWarning):  # transformers 5 renamed it activation_checkpointing_enable
        model.gradient_checkpointing_enable()
    assert model.encoder[0].gradient_checkpointing
    model.eval()
    with torch.no_grad():  # no backward: layers run plainly
        model(images())


# -- 2. return_dict, hidden states, attentions ------------------------------------------------------------------------
def test_return_dict_false_gives_the_tuple(model):
    model.eval()
    video = clips()
    with torch.no_grad():
        output = model(video)
        as_tuple = model(video, return_dict=False)
        model.config.return_dict = False
        from_config = model(video)
    assert isinstance(output, SweetTokenizerOutput) and isinstance(as_tuple, tuple)
    for values in (as_tuple, from_config):
        assert len(values) == len(output.to_tuple())
        for value, reference in zip(values, output.to_tuple()):
            torch.testing.assert_close(value, reference)
    torch.testing.assert_close(as_tuple[0], output.loss)  # loss first


def test_hidden_states_have_the_documented_shapes_and_lead_to_the_outputs(model):
    model.eval()
    config, batch = model.config, 2
    picture, video = images(batch), clips(batch)
    with torch.no_grad():
        plain = model(pixel_values=picture, pixel_values_videos=video)
        output = model(pixel_values=picture, pixel_values_videos=video, output_hidden_states=True)
    assert plain.encoder_hidden_states is None and plain.video_decoder_hidden_states is None
    torch.testing.assert_close(output.reconstruction, plain.reconstruction)
    patches = config.num_patches
    for prefix, groups in (("", 1), ("video_", config.num_frame_groups)):
        encoder_states = getattr(output, f"{prefix}encoder_hidden_states")
        decoder_states = getattr(output, f"{prefix}decoder_hidden_states")
        assert len(encoder_states) == config.num_encoder_layers + 1
        assert len(decoder_states) == config.num_decoder_layers + 1
        assert all(s.shape == (batch, groups * patches, config.hidden_size) for s in encoder_states + decoder_states)
    with torch.no_grad():
        # the first encoder state is the patch embedding; the last decoder state, normed and read out, the pixels
        embedded = model.patch_embedding(picture.unsqueeze(2)).flatten(1, 2)
        last = model.decoder_norm(output.video_decoder_hidden_states[-1])
        pixels = model.pixel_head(last.view(batch, config.num_frame_groups, patches, -1))
    torch.testing.assert_close(output.encoder_hidden_states[0], embedded)
    torch.testing.assert_close(pixels, output.reconstruction_videos)
    # encode exposes the same encoder states
    with torch.no_grad():
        encoded = model.encode(video, output_hidden_states=True)
    torch.testing.assert_close(encoded.encoder_hidden_states[-1], output.video_encoder_hidden_states[-1])


def test_attentions_are_softmax_weights_and_the_eager_path_matches_sdpa(model):
    model.eval()
    config, batch = model.config, 2
    video = clips(batch)
    with torch.no_grad():
        plain = model(video)
        output = model(video, output_attentions=True)
    assert plain.encoder_attentions is None and model.config._attn_implementation == "sdpa"
    # the eager path (taken for this call) gives what SDPA gives: the continuous latents within a tolerance, the code
    # ids (an argmax, which a near tie may flip on another CPU / BLAS) on nearly every position, and the decoder the
    # same pixels from the same latents
    with torch.no_grad():
        eager_latents = model.encode(video, output_attentions=True, quantize=False)
        sdpa_latents = model.encode(video, quantize=False)
    for branch in ("spatial", "temporal"):
        torch.testing.assert_close(getattr(eager_latents, f"{branch}_latents"),
                                   getattr(sdpa_latents, f"{branch}_latents"), atol=1e-5, rtol=1e-5)
        eager_ids, sdpa_ids = getattr(output, f"{branch}_ids"), getattr(plain, f"{branch}_ids")
        assert eager_ids.shape == sdpa_ids.shape and (eager_ids == sdpa_ids).float().mean() >= 0.95
    with torch.no_grad():
        encoded = model.encode(video)
        decoded = {eager: model._decode_latents(encoded.spatial_latents, encoded.temporal_latents,
                                                output_attentions=eager)[0] for eager in (True, False)}
    torch.testing.assert_close(decoded[True], decoded[False], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(decoded[False], plain.reconstruction)  # what forward decodes
    positions, heads = config.num_frame_groups * config.num_patches, config.num_attention_heads
    assert len(output.encoder_attentions) == config.num_encoder_layers
    assert all(w.shape == (batch, heads, positions, positions) for w in output.encoder_attentions)
    assert all(w.shape == (batch, heads, positions, positions) for w in output.decoder_attentions)
    latents = [config.num_temporal_queries if index % 2 else config.num_spatial_queries
               for index in range(config.num_decoder_layers)]
    assert [w.shape for w in output.cross_attentions] == [(batch, heads, positions, n) for n in latents]
    for weights in output.encoder_attentions + output.decoder_attentions + output.cross_attentions:
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    # the first encoder layer's weights, by hand: softmax(Q K^T / sqrt(head_dim)) from its input
    with torch.no_grad():
        hidden = model(video, output_hidden_states=True).encoder_hidden_states[0]
        attention = model.encoder[0].self_attention
        normed = model.encoder[0].self_norm(hidden)
        head_dim = config.hidden_size // heads
        q = attention.q_proj(normed).view(batch, positions, heads, head_dim).transpose(1, 2)
        k = attention.k_proj(normed).view(batch, positions, heads, head_dim).transpose(1, 2)
        expected = (q @ k.transpose(-1, -2) / head_dim**0.5).softmax(-1)
    torch.testing.assert_close(output.encoder_attentions[0], expected, atol=1e-5, rtol=1e-5)


def test_causal_attention_eager_equals_sdpa_and_masks_the_future(tiny_sweet_config):
    torch.manual_seed(0)
    config = tiny_sweet_config()
    config._attn_implementation = "sdpa"  # what SweetTokenizerModel sets (a bare module would fall back to eager)
    attention = SweetAttention(config).eval()
    states = torch.randn(3, 6, 32)
    with torch.no_grad():
        for is_causal in (False, True):
            reference, none = attention(states, is_causal=is_causal)
            eager, weights = attention(states, is_causal=is_causal, output_attentions=True)
            assert none is None and weights.shape == (3, 2, 6, 6)
            torch.testing.assert_close(eager, reference, atol=1e-6, rtol=1e-5)
        visible = torch.ones(6, 6, dtype=torch.bool).tril()
        assert torch.all(weights[..., ~visible] == 0) and torch.all(weights[..., visible] > 0)
        context = torch.randn(3, 4, 32)
        reference, _ = attention(states, context)
        eager, weights = attention(states, context, output_attentions=True)
    torch.testing.assert_close(eager, reference, atol=1e-6, rtol=1e-5)
    assert weights.shape == (3, 2, 6, 4)


def test_eager_attention_function_is_sdpa():
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 5, 8, generator=generator) for _ in range(3))
    for is_causal in (False, True):
        output, _ = eager_attention_forward(torch.nn.Identity(), q, k, v, None, scaling=8**-0.5, is_causal=is_causal)
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal).transpose(1, 2)
        torch.testing.assert_close(output, expected, atol=1e-6, rtol=1e-5)


def test_from_pretrained_with_sdpa_and_eager_match(tmp_path, model):
    assert model._supports_sdpa
    model.eval().save_pretrained(tmp_path)
    loaded = {implementation: AutoModel.from_pretrained(tmp_path, attn_implementation=implementation).eval()
              for implementation in ("sdpa", "eager")}
    assert {k: m.config._attn_implementation for k, m in loaded.items()} == {"sdpa": "sdpa", "eager": "eager"}
    video = clips()
    with torch.no_grad():
        outputs = {k: m(video) for k, m in loaded.items()}
        eager_attentions = loaded["eager"](video, output_attentions=True).encoder_attentions
    torch.testing.assert_close(outputs["eager"].reconstruction, outputs["sdpa"].reconstruction, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(outputs["eager"].loss, outputs["sdpa"].loss, atol=1e-6, rtol=1e-5)
    assert len(eager_attentions) == model.config.num_encoder_layers


# -- 3. keywords ------------------------------------------------------------------------------------------------------
def test_misspelled_keyword_raises_and_names_it(model):
    with pytest.raises(TypeError, match=r"forward\(\) got an unexpected keyword argument 'retrun_loss'"):
        model(pixel_values=images(), retrun_loss=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'labels'"):
        model(pixel_values=images(), labels=images())


def test_trainer_passes_no_loss_keywords_and_scales_the_loss_itself(tmp_path, model):
    assert model.accepts_loss_kwargs is False
    with pytest.raises(TypeError, match="unexpected keyword argument 'num_items_in_batch'"):
        model(images(), num_items_in_batch=7)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, gradient_accumulation_steps=2)
    trainer = Trainer(model=model, args=args)
    assert trainer.model_accepts_loss_kwargs is False
    model.eval()
    with torch.no_grad():  # Trainer keeps num_items_in_batch to itself: the model's per-item mean, unscaled
        torch.testing.assert_close(trainer.compute_loss(model, {"pixel_values": images()}, num_items_in_batch=7),
                                   model(images()).loss)


# -- 4. class attributes and dummy inputs -----------------------------------------------------------------------------
def test_pretrained_class_attributes(model):
    assert SweetTokenizerModel._no_split_modules == ["SweetTransformerLayer"]
    assert set(model._no_split_modules) == {"SweetTransformerLayer"}  # post_init gathers it into a set
    assert tuple(SweetTokenizerModel.input_modalities) == ("image", "video")
    assert SweetTokenizerModel.input_modalities != PreTrainedModel.input_modalities
    assert SweetTokenizerModel.main_input_name == "pixel_values"


def test_dummy_inputs_are_pixel_values_of_the_config_shape(model):
    config = model.config
    dummy = model.dummy_inputs
    assert set(dummy) == {"pixel_values"}
    pixel_values = dummy["pixel_values"]
    assert pixel_values.shape == (2, config.num_channels, config.num_frames, config.image_size, config.image_size)
    assert pixel_values.dtype == model.dtype and pixel_values.abs().max() <= 0.5
    model.eval()
    with torch.no_grad():
        assert model(**dummy).reconstruction.shape == pixel_values.shape


# -- 5. pixel dtypes and range ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
def test_integer_pixels_raise_a_type_error_with_the_fix(model, dtype):
    pixels = torch.zeros(2, 3, 16, 16, dtype=dtype)
    for call in (model.encode, model):
        with pytest.raises(TypeError, match=rf"pixel_values has dtype {dtype}.*x - 0\.5.*SweetImageProcessor / "
                                            "SweetVideoProcessor"):
            call(pixels)
    with pytest.raises(TypeError, match="pixel_values_videos has dtype torch.uint8"):
        model(pixel_values_videos=torch.zeros(1, 3, 5, 16, 16, dtype=torch.uint8))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes_are_cast_to_the_model_dtype(model, dtype):
    model.eval()
    pixels = clips().to(dtype)
    with torch.no_grad():
        output = model(pixels)
        expected = model(pixels.float())
        encoded = model.encode(pixels)
    assert output.reconstruction.dtype == torch.float32
    torch.testing.assert_close(output.reconstruction, expected.reconstruction)
    torch.testing.assert_close(output.loss, expected.loss)
    assert torch.equal(encoded.spatial_ids, expected.spatial_ids)


def test_unnormalised_pixels_raise_naming_the_item_and_the_range(model):
    pixels = images(3)
    pixels[1] = torch.linspace(0, 255, pixels[1].numel()).view(pixels[1].shape)
    with pytest.raises(ValueError, match=r"pixel_values item #1 has values in \[0, 255\]; .*\[-0\.5, 0\.5\] .*up to "
                                         r"1\.0 .*SweetImageProcessor"):
        model.encode(pixels)
    video = clips(2)
    video[0] += 0.5  # x in [0, 1] without the - 0.5: still within the tolerant bound
    video[1, 0, 0, 0, 0] = -1.5
    with pytest.raises(ValueError, match=r"pixel_values_videos item #1 has values in \[-1\.5, "):
        model(pixel_values_videos=video)
    video[1, 0, 0, 0, 0] = -0.9  # a little beyond [-0.5, 0.5] (augmentation) passes
    model(pixel_values_videos=video)


def test_the_range_bound_lives_in_one_constant(model, monkeypatch):
    pixels = images(1) * 3  # |x| up to 1.5
    with pytest.raises(ValueError, match="up to 1.0"):
        model.encode(pixels)
    monkeypatch.setattr(modeling, "PIXEL_VALUE_LIMIT", 2.0)
    model.encode(pixels)
    assert "PIXEL_VALUE_LIMIT" in SweetTokenizerModel.encode.__doc__
