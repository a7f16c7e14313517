"""Molecule-to-text beyond the model: the `molecule-captioning` pipeline, `Trainer` (fp32 and bf16, the prompt
masked out of the loss) and a stage-2 LoRA adapter's round trip."""

from __future__ import annotations

import datasets
import pytest
import torch
import torch.nn.functional as F
from peft import PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments, pipeline
from transformers.pipelines.pt_utils import KeyDataset

from modeling_hsanet import HSANetConfig, HSANetForConditionalGeneration
from modeling_hsanet.peft_hsanet import hsanet_text_lora_config
from tests.model_testers import HSANET_TINY, TINY_LLAMA, tiny_text_processor

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "O=S(=O)(Nc1cccs1)c1ccc(Oc2ccccc2)cc1", "CCN", "C1CCCCC1"]
TARGETS = ["ethanol, an alcohol.", "phenol, an aromatic alcohol.", "paracetamol, an amide.", "a sulfonamide.",
           "ethylamine, an amine.", "cyclohexane, a ring."]


@pytest.fixture(scope="module")
def processor():
    return tiny_text_processor(HSANetConfig(**HSANET_TINY).num_graph_tokens)


def tiny_model(processor) -> HSANetForConditionalGeneration:
    from transformers import LlamaConfig

    torch.manual_seed(0)
    config = HSANetConfig(**HSANET_TINY, text_config=LlamaConfig(**TINY_LLAMA, vocab_size=len(processor.tokenizer)),
                          graph_token_id=processor.graph_token_id)
    return HSANetForConditionalGeneration(config).eval()


@pytest.fixture(scope="module")
def saved(processor, tmp_path_factory):
    path = tmp_path_factory.mktemp("captioner")
    tiny_model(processor).save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def captioner(saved):
    return pipeline("molecule-captioning", model=str(saved))


def reference_text(saved, processor, smiles, instruction=None, max_new_tokens=5) -> str:
    model = AutoModelForCausalLM.from_pretrained(saved).eval()
    inputs = processor([smiles], text=instruction)
    generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return processor.decode(generated[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def test_pipeline_resolves_and_matches_generate(captioner, saved, processor):
    assert type(captioner.model) is HSANetForConditionalGeneration
    result = captioner("CCO", max_new_tokens=5)
    assert result == {"generated_text": reference_text(saved, processor, "CCO")}
    named = captioner({"smiles": "CCO", "instruction": "Name it."}, max_new_tokens=5)
    assert named["generated_text"] == reference_text(saved, processor, "CCO", "Name it.")
    assert captioner("CCO", instruction="Name it.", max_new_tokens=5) == named


def test_pipeline_batches_in_order_and_streams(captioner):
    one_by_one = [captioner(smiles, max_new_tokens=4) for smiles in SMILES]
    assert captioner(SMILES, batch_size=4, max_new_tokens=4) == one_by_one
    assert list(captioner((s for s in SMILES), batch_size=2, generate_kwargs={"max_new_tokens": 4})) == one_by_one
    dataset = datasets.Dataset.from_dict({"smiles": SMILES})
    assert list(captioner(KeyDataset(dataset, "smiles"), batch_size=3, max_new_tokens=4)) == one_by_one


def test_pipeline_passes_generation_arguments_through(captioner, processor):
    short = captioner(SMILES[:2], max_new_tokens=2)
    longer = captioner(SMILES[:2], max_new_tokens=6)
    for a, b in zip(short, longer):  # greedy: two tokens are the start of six
        assert b["generated_text"].startswith(a["generated_text"])
        assert len(b["generated_text"]) > len(a["generated_text"])
    sampled = captioner(SMILES[:1], max_new_tokens=6, do_sample=True, top_k=50, temperature=5.0)
    assert isinstance(sampled[0]["generated_text"], str)


def test_pipeline_errors_name_the_item(captioner):
    with pytest.raises(ValueError, match="SMILES #1"):
        captioner(["CCO", "C1CC", "CCN"], max_new_tokens=2)
    with pytest.raises(KeyError, match="input #0 has no 'smiles'"):
        captioner([{"molecule": "CCO"}], max_new_tokens=2)


def training_rows():
    return datasets.Dataset.from_dict({"smiles": SMILES, "instruction": ["Describe this molecule."] * len(SMILES),
                                       "text": TARGETS})


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_trainer_lowers_the_loss_with_the_prompt_masked_out(processor, tmp_path, bf16):
    model = tiny_model(processor)
    batch = processor.collate(list(training_rows()))
    with torch.no_grad():
        before = model(**batch)
    # the loss is the language model's over the target tokens only (+ the router's auxiliary loss)
    shifted_logits, shifted_labels = before.logits[:, :-1], batch["labels"][:, 1:]
    manual = F.cross_entropy(shifted_logits.reshape(-1, shifted_logits.shape[-1]).float(), shifted_labels.reshape(-1),
                             ignore_index=-100)
    torch.testing.assert_close(before.loss, manual + model.config.router_aux_loss_coef * before.aux_loss)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=40, learning_rate=3e-3, per_device_train_batch_size=3,
                             bf16=bf16, use_cpu=True, report_to=[], remove_unused_columns=False, save_strategy="no",
                             logging_strategy="no", seed=0, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=training_rows(), data_collator=processor.collate,
                      processing_class=processor)
    trainer.train()
    model.eval()
    with torch.no_grad():
        after = model(**batch)
    assert after.loss < 0.75 * before.loss, (float(before.loss), float(after.loss))


def test_stage_two_lora_adapter_round_trip(processor, tmp_path):
    model = tiny_model(processor)
    model.save_pretrained(tmp_path / "base")
    config = hsanet_text_lora_config(model, r=4, lora_alpha=8)
    assert "text_projector" in config.modules_to_save and "hsanet.fusion" in config.modules_to_save
    peft_model = get_peft_model(model, config)
    trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad}
    assert any("lora_A" in name and "language_model" in name for name in trainable)
    assert not any(".encoder." in name and "hsanet" in name for name in trainable)  # the GIN is frozen
    assert not any("language_model" in name and "lora" not in name for name in trainable)
    batch = processor.collate(list(training_rows()))
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    peft_model.train()
    for _ in range(3):
        optimizer.zero_grad()
        peft_model(**batch).loss.backward()
        optimizer.step()
    peft_model.eval()
    with torch.no_grad():
        trained = peft_model(**batch).logits
    peft_model.save_pretrained(tmp_path / "adapter")
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "base").eval()
    with torch.no_grad():
        assert (base(**batch).logits - trained).abs().max() > 1e-3  # the adapter changed something
    reloaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, trained, atol=1e-5, rtol=1e-5)


def test_trimmed_logits_give_the_same_loss(processor):
    model = tiny_model(processor)
    rows = list(training_rows())
    full, trimmed = processor.collate(rows), processor.collate(rows, trim_logits=True)
    assert 0 < trimmed["logits_to_keep"] < full["input_ids"].shape[1]
    with torch.no_grad():
        full_outputs, trimmed_outputs = model(**full), model(**trimmed)
    assert trimmed_outputs.logits.shape[1] == trimmed["logits_to_keep"]
    torch.testing.assert_close(trimmed_outputs.loss, full_outputs.loss)
    with pytest.raises(ValueError, match="leaves labelled positions out"):
        model(**{**full, "logits_to_keep": 2})


def test_the_stages_train_what_the_paper_trains(processor):
    from modeling_hsanet.training_text_hsanet import prepare_stage

    def trainable(module):
        return {name for name, p in module.named_parameters() if p.requires_grad}

    stage1 = prepare_stage(tiny_model(processor), "1")
    names = trainable(stage1)
    assert not any(name.startswith("language_model.") for name in names)
    assert any(name.startswith("hsanet.encoder.") for name in names) and any("text_projector" in n for n in names)
    stage2 = prepare_stage(tiny_model(processor), "2", r=4)
    names = trainable(stage2)
    assert not any(".hsanet.encoder." in name for name in names)  # the GIN is frozen ...
    stage2.train()
    assert not stage2.get_base_model().hsanet.encoder.training  # ... and keeps its BatchNorm statistics
    assert any("lora_A" in name for name in names) and any("text_projector" in name for name in names)
    full = prepare_stage(tiny_model(processor), "full")
    assert trainable(full) == {name for name, _ in full.named_parameters()}
    with pytest.raises(ValueError, match="stage must be one of"):
        prepare_stage(tiny_model(processor), "3")
