"""LoRA adapters (PEFT) reproduce a fine-tuned HSA-Net only if they carry the batch-norm layers and the head whole."""

import json

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from modeling_hsanet import HSANetForMolecularPropertyPrediction, HSANetModel
from modeling_hsanet.peft_hsanet import batch_norm_module_names, hsanet_lora_config, hsanet_modules_to_save


def fine_tune(base_path, make_lora_config, processor, molecules, steps: int = 3):
    """Load the base model, wrap it with LoRA, train `steps` batches of 8 in train mode; returns the PEFT model."""
    model = HSANetForMolecularPropertyPrediction.from_pretrained(base_path)
    peft_model = get_peft_model(model, make_lora_config(model))
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    peft_model.train()
    for step in range(steps):
        rows = molecules[8 * step: 8 * (step + 1)]
        loss = peft_model(**processor([m.smiles for m in rows], labels=[m.label for m in rows])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return peft_model.eval()


def reload_adapter(base_path, adapter_path):
    base = HSANetForMolecularPropertyPrediction.from_pretrained(base_path)
    return PeftModel.from_pretrained(base, adapter_path).eval()


@pytest.fixture
def base_path(tmp_path, tiny_config):
    HSANetForMolecularPropertyPrediction(tiny_config(num_labels=1)).save_pretrained(tmp_path / "base")
    return tmp_path / "base"


def test_modules_to_save_names_every_batch_norm_and_the_head(tiny_config):
    model = HSANetForMolecularPropertyPrediction(tiny_config(num_gnn_layers=3))
    names = batch_norm_module_names(model)
    assert len(names) == 2 * 3  # one in each GIN layer's MLP, one after each layer
    assert all(isinstance(model.get_submodule(name), torch.nn.BatchNorm1d) for name in names)
    assert hsanet_modules_to_save(model) == names + ["classifier"]
    base_names = [name.removeprefix("hsanet.") for name in names]
    assert hsanet_modules_to_save(HSANetModel(tiny_config(num_gnn_layers=3))) == base_names
    config = hsanet_lora_config(model, r=4, modules_to_save=["classifier", "hsanet.fusion.router"])
    assert list(config.modules_to_save) == names + ["classifier", "hsanet.fusion.router"]
    assert set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"} and config.r == 4


@pytest.mark.parametrize("target_modules", [["q_proj", "k_proj", "v_proj", "o_proj"], "all-linear"])
def test_lora_adapter_reproduces_the_fine_tuned_model(tmp_path, base_path, processor, cmet, target_modules):
    peft_model = fine_tune(base_path, lambda model: hsanet_lora_config(model, r=4, target_modules=target_modules),
                           processor, cmet)
    batch = processor([m.smiles for m in cmet[100:110]])
    with torch.no_grad():
        trained = peft_model(**batch).logits
    peft_model.save_pretrained(tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    expected = hsanet_modules_to_save(HSANetForMolecularPropertyPrediction.from_pretrained(base_path))
    assert len(expected) == 5 and set(saved["modules_to_save"]) == set(expected)

    reloaded = reload_adapter(base_path, tmp_path / "adapter")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, trained, atol=1e-5, rtol=1e-5)


def test_a_frozen_gin_keeps_its_batch_norm_statistics(base_path, processor, cmet):
    # LoRA on the projectors only: the GIN is frozen, so train mode leaves it in eval mode (HSANetModel.train)
    def projector_lora(model):
        return LoraConfig(r=4, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], modules_to_save=["classifier"])

    peft_model = fine_tune(base_path, projector_lora, processor, cmet)
    base = HSANetForMolecularPropertyPrediction.from_pretrained(base_path)
    for norm in batch_norm_module_names(base):
        torch.testing.assert_close(peft_model.get_base_model().get_submodule(norm).running_mean,
                                   base.get_submodule(norm).running_mean, atol=0, rtol=0, msg=norm)


def test_adapter_without_the_batch_norms_does_not_reproduce_the_model(tmp_path, base_path, processor, cmet):
    # LoRA reaching the GIN's linear layers and the head, but not the batch-norm running statistics that training in
    # train mode changed
    def lora_config_without_batch_norms(model):
        return LoraConfig(r=4, target_modules="all-linear", modules_to_save=["classifier"])

    peft_model = fine_tune(base_path, lora_config_without_batch_norms, processor, cmet)
    base = HSANetForMolecularPropertyPrediction.from_pretrained(base_path)
    norm = batch_norm_module_names(base)[0]
    assert not torch.allclose(peft_model.get_base_model().get_submodule(norm).running_mean,
                              base.get_submodule(norm).running_mean)
    batch = processor([m.smiles for m in cmet[100:110]])
    with torch.no_grad():
        trained = peft_model(**batch).logits
    peft_model.save_pretrained(tmp_path / "adapter")
    with torch.no_grad():
        reloaded = reload_adapter(base_path, tmp_path / "adapter")(**batch).logits
    assert (reloaded - trained).abs().max() > 1e-4, (reloaded - trained).abs().max()
