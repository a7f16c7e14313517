"""HSANetForConditionalGeneration: the shared harness, graph tokens at the placeholders, generation (alone = in a
left-padded batch, cache = no cache, beams), other language models, a frozen GIN's BatchNorm, save/load with the
processor."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoProcessor, BertConfig, GPT2Config, LlamaConfig

from modeling_hsanet import HSANetConfig, HSANetForConditionalGeneration
from tests.common import ModelTesterMixin
from tests.model_testers import HSANET_TINY, TINY_LLAMA, HSANetForConditionalGenerationTester, tiny_text_processor


class TestHSANetForConditionalGenerationHarness(HSANetForConditionalGenerationTester, ModelTesterMixin):
    attentions_need_eager = True
    skip_compile_reason = ("compiling the wrapped language model takes ~2 minutes on 2 CPU cores; the HSA-Net "
                           "encoder's compile is checked by its own harness")
    expected_slices = {
        "logits": [-0.04410656, 0.100584, 0.1899105, 0.1332511, 0.08174693, -0.03212311, 0.04534755, -0.1252842],
        "graph_hidden_states": [-7.463047e-06, -3.226446e-05, -9.221059e-05, 0.0001968914, -0.0001228043,
                                -2.851292e-05, 5.000456e-05, -0.00030316],
    }


# ---------------------------------------------------------------------------------------------------------------------
# Tiny models behind three kinds of language model
# ---------------------------------------------------------------------------------------------------------------------
NUM_GRAPH_TOKENS = HSANetConfig(**HSANET_TINY).num_graph_tokens


@pytest.fixture(scope="module")
def processor():
    return tiny_text_processor(NUM_GRAPH_TOKENS)


def text_config(kind: str, vocab_size: int):
    if kind == "llama":
        return LlamaConfig(**TINY_LLAMA, vocab_size=vocab_size)
    if kind == "gpt2":
        return GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=256, vocab_size=vocab_size, bos_token_id=101,
                          eos_token_id=102)
    return BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      max_position_embeddings=256, vocab_size=vocab_size, is_decoder=True)


def tiny_model(processor, kind: str = "llama") -> HSANetForConditionalGeneration:
    torch.manual_seed(0)
    config = HSANetConfig(**HSANET_TINY, text_config=text_config(kind, len(processor.tokenizer)),
                          graph_token_id=processor.graph_token_id)
    return HSANetForConditionalGeneration(config).eval()


PROMPTS = [("CCO", "Describe this molecule."), ("O=S(=O)(Nc1cccs1)c1ccc(Oc2ccccc2)cc1", "Name it."),
           ("c1ccccc1O", "Which functional groups does this molecule have, and where are they?")]


def prompts(processor, indices=None, **kwargs):
    chosen = [PROMPTS[i] for i in (range(len(PROMPTS)) if indices is None else indices)]
    return processor([s for s, _ in chosen], text=[t for _, t in chosen], **kwargs)


def test_graph_tokens_land_exactly_at_the_placeholders(processor):
    model = tiny_model(processor)
    inputs = prompts(processor, padding_side="left")
    seen = {}
    model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.update(embeds=kwargs["inputs_embeds"]), with_kwargs=True)
    with torch.no_grad():
        outputs = model(**inputs)
    placeholder = inputs["input_ids"] == processor.graph_token_id
    assert (placeholder.sum(1) == NUM_GRAPH_TOKENS).all()
    embeds = seen["embeds"]
    # the molecule's tokens in order at its placeholders, the token embeddings everywhere else
    torch.testing.assert_close(embeds[placeholder], outputs.graph_hidden_states.reshape(-1, embeds.shape[-1]))
    token_embeddings = model.get_input_embeddings()(inputs["input_ids"])
    torch.testing.assert_close(embeds[~placeholder], token_embeddings[~placeholder])
    # and the tokens are the molecule's: another molecule at the same placeholders changes them
    swapped = dict(inputs)
    other = processor.feature_extractor([PROMPTS[2][0], PROMPTS[0][0], PROMPTS[1][0]])
    swapped.update(other)
    with torch.no_grad():
        assert not torch.allclose(model(**swapped).graph_hidden_states, outputs.graph_hidden_states)


def test_a_wrong_number_of_placeholders_says_how_many_were_expected_and_found(processor):
    model = tiny_model(processor)
    inputs = prompts(processor)
    input_ids = inputs["input_ids"].clone()
    first = (input_ids[1] == processor.graph_token_id).nonzero()[0]
    input_ids[1, first] = 1000  # item #1 loses one placeholder
    with pytest.raises(ValueError, match=rf"item #1 .* holds {NUM_GRAPH_TOKENS - 1} .*expected {NUM_GRAPH_TOKENS}"):
        model(**{**inputs, "input_ids": input_ids})
    with pytest.raises(ValueError, match="no molecules were given"):
        model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    plain = processor.tokenizer(["a molecule"], return_tensors="pt")
    with pytest.raises(ValueError, match="holds no `<graph>` placeholder"):
        model(input_ids=plain["input_ids"], **processor.feature_extractor(["CCO"]))
    with pytest.raises(ValueError, match="num_graph_tokens"):
        type(processor)(tokenizer=processor.tokenizer)


def test_processor_labels_mask_the_prompt_and_the_graph_positions(processor):
    targets = ["ethanol is an alcohol.", "a sulfonamide.", "phenol."]
    inputs = prompts(processor, targets=targets, padding_side="right")
    for row, target in enumerate(targets):
        labels, input_ids = inputs["labels"][row], inputs["input_ids"][row]
        target_ids = processor.tokenizer(target, add_special_tokens=False)["input_ids"] + [102]  # then [SEP]
        kept = labels != -100
        assert labels[kept].tolist() == target_ids
        assert input_ids[kept].tolist() == target_ids  # labels are the input tokens the target occupies
        assert not kept[input_ids == processor.graph_token_id].any()
        prompt_length = int(inputs["attention_mask"][row].sum()) - len(target_ids)
        assert not kept[:prompt_length].any() and kept[prompt_length:prompt_length + len(target_ids)].all()


@pytest.mark.parametrize("kind", ["llama", "gpt2", "bert-decoder"])
def test_generate_gives_the_same_text_alone_and_in_a_left_padded_batch(processor, kind):
    model = tiny_model(processor, kind)
    batch = prompts(processor, padding_side="left")
    assert (batch["attention_mask"][:, 0] == 0).any()  # some prompts are padded
    generated = model.generate(**batch, max_new_tokens=6, do_sample=False)
    new = generated[:, batch["input_ids"].shape[1]:]
    for index in range(len(PROMPTS)):
        alone = prompts(processor, [index])
        expected = model.generate(**alone, max_new_tokens=6, do_sample=False)[:, alone["input_ids"].shape[1]:]
        assert new[index].tolist() == expected[0].tolist(), f"prompt #{index}"
        # without the key/value cache every step re-reads the molecule: the same tokens
        uncached = model.generate(**alone, max_new_tokens=6, do_sample=False, use_cache=False)
        assert uncached[0, alone["input_ids"].shape[1]:].tolist() == expected[0].tolist()
    assert processor.graph_token_id not in new.tolist()


def test_beam_search_and_several_sequences_expand_the_molecules(processor):
    model = tiny_model(processor)
    batch = prompts(processor)
    beams = model.generate(**batch, max_new_tokens=4, num_beams=3, num_return_sequences=2, do_sample=False)
    assert beams.shape[0] == 2 * len(PROMPTS)
    # the best beam of each prompt is what that prompt gets alone
    for index in range(len(PROMPTS)):
        alone = prompts(processor, [index])
        best = model.generate(**alone, max_new_tokens=4, num_beams=3, do_sample=False)
        prompt_length = alone["input_ids"].shape[1]
        assert beams[2 * index, batch["input_ids"].shape[1]:].tolist() == best[0, prompt_length:].tolist()


def test_bf16_generation_runs_end_to_end(processor):
    model = tiny_model(processor).to(torch.bfloat16)
    batch = prompts(processor)
    with torch.no_grad():
        outputs = model(**batch)
    assert outputs.logits.dtype == torch.bfloat16 and torch.isfinite(outputs.logits).all()
    generated = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert generated.shape == (len(PROMPTS), batch["input_ids"].shape[1] + 4)


def test_a_frozen_gin_keeps_its_batch_norm_statistics_in_train_mode(processor):
    model = tiny_model(processor)
    model.hsanet.encoder.requires_grad_(False)
    model.train()
    assert not model.hsanet.encoder.training and model.language_model.training and model.hsanet.projector.training
    norms = {name: module.running_mean.clone() for name, module in model.named_modules()
             if isinstance(module, torch.nn.BatchNorm1d)}
    model(**prompts(processor, targets=["a", "b", "c"]))
    for name, before in norms.items():
        torch.testing.assert_close(model.get_submodule(name).running_mean, before, atol=0, rtol=0, msg=name)
    model.hsanet.encoder.requires_grad_(True)
    model.train()
    assert model.hsanet.encoder.training


def test_save_and_load_with_the_processor_through_the_auto_classes(processor, tmp_path):
    model = tiny_model(processor)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    reloaded_processor = AutoProcessor.from_pretrained(tmp_path)
    assert type(reloaded) is HSANetForConditionalGeneration and type(reloaded_processor) is type(processor)
    assert reloaded_processor.num_graph_tokens == NUM_GRAPH_TOKENS
    assert reloaded_processor.graph_token_id == processor.graph_token_id == reloaded.config.graph_token_id
    assert reloaded.generation_config.suppress_tokens == [processor.graph_token_id]
    batch = prompts(processor)
    assert torch.equal(prompts(reloaded_processor)["input_ids"], batch["input_ids"])
    expected = model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert reloaded.generate(**batch, max_new_tokens=5, do_sample=False).tolist() == expected.tolist()


def test_from_graph_text_pretrained_warm_starts_the_language_model():
    from transformers import AutoTokenizer

    from tests.model_testers import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    assert "<graph>" not in tokenizer.get_vocab()
    model = HSANetForConditionalGeneration.from_graph_text_pretrained(
        minilm_path(), tokenizer, hsanet_config=HSANetConfig(**HSANET_TINY), is_decoder=True)
    pretrained = AutoModelForCausalLM.from_pretrained(minilm_path(), is_decoder=True)
    assert tokenizer.convert_tokens_to_ids("<graph>") == model.config.graph_token_id == 30522
    assert model.get_input_embeddings().num_embeddings == len(tokenizer) == 30523
    name = "bert.encoder.layer.3.attention.self.query.weight"
    torch.testing.assert_close(model.language_model.get_parameter(name), pretrained.get_parameter(name), atol=0,
                               rtol=0)
    torch.testing.assert_close(model.get_input_embeddings().weight[:30522],
                               pretrained.get_input_embeddings().weight, atol=0, rtol=0)
    assert model.language_model.config._attn_implementation == "sdpa"
    assert model.generation_config.eos_token_id == 102 and model.generation_config.pad_token_id == 0
