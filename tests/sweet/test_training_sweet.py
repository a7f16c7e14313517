"""The training recipe (training_sweet.py): curriculum, perceptual loss, 3D PatchGAN + LeCam, EMA, checkpoints; and
that nothing of it is saved with the tokenizer."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerControl, TrainerState, TrainingArguments

from modeling_sweet import SweetTokenizerModel
from modeling_sweet.configuration_sweet import RECIPE_FIELDS
from modeling_sweet.data_sweet import load_digit_images, moving_digit_clips
from modeling_sweet.training_sweet import (
    RECIPE_STATE_NAME,
    ExponentialMovingAverage,
    LeCamRegularizer,
    PatchDiscriminator3D,
    PerceptualLoss,
    SweetCurriculumCollator,
    SweetTokenizerTrainer,
    SweetTokenizerTrainingArguments,
    hinge_discriminator_loss,
)

CURRICULUM = [
    {"name": "continuous warm-up", "start_step": 0, "quantize": False, "train_temporal": False, "media": "images"},
    {"name": "spatial", "start_step": 4, "quantize": True, "train_temporal": False, "media": "images"},
    {"name": "spatial-temporal", "start_step": 8, "quantize": True, "train_temporal": True, "media": "both"},
]


def real_rows(num_images=48, num_clips=16):
    images = load_digit_images(16)[0][:num_images] - 0.5
    clips = moving_digit_clips(num_clips, num_frames=5, size=16, seed=0) - 0.5
    return [{"pixel_values": x} for x in images] + [{"pixel_values": x} for x in clips]


def training_arguments(tmp_path, **recipe):
    defaults = dict(output_dir=str(tmp_path / "trainer"), per_device_train_batch_size=8, max_steps=24,
                    learning_rate=2e-3, logging_steps=4, report_to=[], remove_unused_columns=False,
                    save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True)
    return SweetTokenizerTrainingArguments(**{**defaults, **recipe})


def tiny_resnet(path):
    from transformers import ResNetConfig, ResNetModel

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    ResNetModel(config).save_pretrained(path)
    return str(path)


def clips(batch=2, frames=5, size=16):
    return torch.rand(batch, 3, frames, size, size) - 0.5


# -- collator ---------------------------------------------------------------------------------------------------------
def test_collator_follows_the_media_of_the_stage():
    image, clip = np.zeros((3, 16, 16), np.float32), np.ones((3, 5, 16, 16), np.float32)
    collator = SweetCurriculumCollator(num_frames=5, media="images")
    assert collator([{"pixel_values": image}, {"pixel_values": clip}])["pixel_values"].shape == (2, 3, 16, 16)
    collator.media = "both"
    assert collator([{"pixel_values": image}, {"pixel_values": image}])["pixel_values"].shape == (2, 3, 16, 16)
    mixed = collator([{"pixel_values": image}, {"pixel_values": clip}, {"pixel_values": image}])
    assert mixed["pixel_values"].shape == (2, 3, 16, 16) and mixed["pixel_values_videos"].shape == (1, 3, 5, 16, 16)
    assert set(collator([{"pixel_values": clip}])) == {"pixel_values_videos"}
    collator.media = "videos"
    static = collator([{"pixel_values": image}])["pixel_values"]
    assert static.shape == (1, 3, 5, 16, 16) and torch.equal(static[0, :, 3], static[0, :, 0])
    with pytest.raises(ValueError, match="row #1 pixel_values has shape"):
        collator([{"pixel_values": image}, {"pixel_values": np.zeros((16, 16))}])


# -- the whole recipe through Trainer ---------------------------------------------------------------------------------
def test_trainer_lowers_the_loss_applies_the_curriculum_and_saves_nothing_of_the_recipe(
        tmp_path, tiny_sweet_config, minilm_path):
    torch.manual_seed(0)
    model = SweetTokenizerModel.from_language_model(tiny_sweet_config(), minilm_path, max_words=256)
    collator = SweetCurriculumCollator(model.config.num_frames)
    args = training_arguments(tmp_path, curriculum=CURRICULUM, discriminator_start_step=16, discriminator_channels=8,
                              perceptual_loss_weight=0.1, perceptual_model_name_or_path=tiny_resnet(tmp_path / "r"),
                              ema_decay=0.9, save_strategy="steps", save_steps=20)
    trainer = SweetTokenizerTrainer(model=model, args=args, train_dataset=real_rows(), data_collator=collator)
    assert collator.media == "images"  # the first stage's media, before the DataLoader collates anything
    held_out = torch.from_numpy(moving_digit_clips(8, num_frames=5, size=16, seed=99) - 0.5)

    def held_out_reconstruction_loss():
        model.eval()
        with torch.no_grad():
            return model(held_out).reconstruction_loss.item()

    before = held_out_reconstruction_loss()
    discriminator_before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    trainer.train()
    after = held_out_reconstruction_loss()
    assert trainer.curriculum_history == [(0, "continuous warm-up"), (4, "spatial"), (8, "spatial-temporal"),
                                          (16, "discriminator on")]
    assert all(p.requires_grad for p in model.temporal_parameters()) and collator.media == "both"
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert np.isfinite([entry["loss"] for entry in logs]).all()
    assert all("perceptual_loss" in entry for entry in logs)
    assert "discriminator_loss" in logs[-1] and "generator_loss" in logs[-1] and "discriminator_loss" not in logs[2]
    assert any(not torch.equal(a, b) for a, b in zip(discriminator_before, trainer.discriminator.parameters()))
    assert after < 0.75 * before
    # the EMA's weights are the model's at the end
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter, trainer.ema.shadow[name], atol=0, rtol=0)

    # a Trainer checkpoint keeps the recipe's state beside the tokenizer's files, not in them
    checkpoint = tmp_path / "trainer" / "checkpoint-20"
    assert (checkpoint / RECIPE_STATE_NAME).is_file()
    state = torch.load(checkpoint / RECIPE_STATE_NAME, weights_only=True)
    assert set(state) == {"discriminator", "discriminator_optimizer", "lecam", "ema"}
    # nothing of the recipe in a saved tokenizer: weights are the model's own, config has no recipe field or path
    for folder in (checkpoint, tmp_path / "saved"):
        if folder.name == "saved":
            model.save_pretrained(folder)
        assert set(load_file(folder / "model.safetensors")) == set(model.state_dict())
        config = json.loads((folder / "config.json").read_text())
        assert not set(RECIPE_FIELDS) & set(config)
        assert not any(isinstance(v, str) and (v.startswith("/") or str(tmp_path) in v) for v in config.values())
        assert config["language_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_resume_restores_the_recipe_state(tmp_path, tiny_sweet_config):
    torch.manual_seed(0)
    model = SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=16, temporal_codebook_size=16))
    args = training_arguments(tmp_path, max_steps=4, discriminator_start_step=0, discriminator_channels=8,
                              ema_decay=0.9, save_strategy="steps", save_steps=2)
    trainer = SweetTokenizerTrainer(model=model, args=args, train_dataset=real_rows(8, 8),
                                    data_collator=SweetCurriculumCollator(5))
    trainer.train()
    saved = torch.load(tmp_path / "trainer" / "checkpoint-4" / RECIPE_STATE_NAME, weights_only=True)
    fresh = SweetTokenizerTrainer(model=SweetTokenizerModel(model.config), args=args, train_dataset=real_rows(8, 8),
                                  data_collator=SweetCurriculumCollator(5))
    fresh._load_from_checkpoint(str(tmp_path / "trainer" / "checkpoint-4"))
    for name, value in saved["discriminator"].items():
        torch.testing.assert_close(fresh.discriminator.state_dict()[name], value, atol=0, rtol=0)
    assert fresh.ema.num_updates == 4 and fresh.lecam.steps == saved["lecam"]["steps"]


def test_image_stages_freeze_the_temporal_branch_and_skip_the_codebook(tmp_path, tiny_sweet_config):
    model = SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=16, temporal_codebook_size=16))
    collator = SweetCurriculumCollator(num_frames=5)
    trainer = SweetTokenizerTrainer(model=model, args=training_arguments(tmp_path, curriculum=CURRICULUM),
                                    train_dataset=real_rows(8, 8), data_collator=collator)
    for step, quantize, temporal, media in ((0, False, False, "images"), (5, True, False, "images"),
                                            (9, True, True, "both")):
        trainer.state.global_step = step
        trainer.callback_handler.on_step_begin(trainer.args, trainer.state, TrainerControl())
        assert all(p.requires_grad is temporal for p in model.temporal_parameters()) and collator.media == media
        _, outputs = trainer.compute_loss(model, {"pixel_values": clips()}, return_outputs=True)
        assert (outputs.vq_loss > 0).item() is quantize  # the stage's `quantize=` reached the forward


def test_plain_training_arguments_get_the_recipe_defaults(tmp_path, tiny_sweet_config):
    model = SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=16, temporal_codebook_size=16))
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], remove_unused_columns=False)
    trainer = SweetTokenizerTrainer(model=model, args=args, train_dataset=real_rows(8, 8))
    assert trainer.discriminator is None and trainer.ema is None and trainer.perceptual_loss is None
    assert [stage.quantize for stage in trainer.stages] == [True]
    video = clips()
    torch.testing.assert_close(trainer.compute_loss(model, {"pixel_values": video}), model(video).loss)


def test_video_loss_weight_weighs_a_clips_reconstruction_against_an_images(tmp_path, tiny_sweet_config):
    torch.manual_seed(0)
    model = SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=16, temporal_codebook_size=16)).eval()
    images, video = torch.rand(3, 3, 16, 16) - 0.5, clips()
    trainer = SweetTokenizerTrainer(model=model, args=training_arguments(tmp_path, video_loss_weight=5.0),
                                    train_dataset=real_rows(8, 8))
    with torch.no_grad():
        loss = trainer.compute_loss(model, {"pixel_values": images, "pixel_values_videos": video})
        # direct: each part alone through the model, then the weighted per-item mean
        image_part, clip_part = model(images), model(pixel_values_videos=video)
        clip_reconstruction = torch.mean((clip_part.reconstruction_videos - video) ** 2)
        expected = (3 * image_part.loss + 2 * (clip_part.loss + 4.0 * clip_reconstruction)) / 5
        torch.testing.assert_close(loss, expected)
        # a batch of clips only ("videos" media): the same rule
        clips_only = trainer.compute_loss(model, {"pixel_values": video})
        torch.testing.assert_close(clips_only, model(video).loss + 4.0 * clip_reconstruction)
        # weight 1 is the model's own loss
        trainer.recipe["video_loss_weight"] = 1.0
        torch.testing.assert_close(trainer.compute_loss(model, {"pixel_values": video}), model(video).loss)


@pytest.mark.parametrize("recipe, argument", [
    ({"perceptual_loss_weight": 0.1}, "perceptual_model_name_or_path"),
    ({"discriminator_start_step": -1}, "discriminator_start_step"),
    ({"ema_decay": 1.5}, "ema_decay"),
    ({"video_loss_weight": 0}, "video_loss_weight"),
    ({"curriculum": [{"name": "x", "start_step": 3}]}, "curriculum"),
    ({"curriculum": [{"name": "x", "start_step": 0, "media": "audio"}]}, "curriculum"),
])
def test_recipe_arguments_are_validated(tmp_path, recipe, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        training_arguments(tmp_path, **recipe)


# -- the parts of the recipe ------------------------------------------------------------------------------------------
def test_perceptual_loss_is_added_by_the_trainer_and_not_saved(tmp_path, tiny_sweet_config):
    torch.manual_seed(0)
    model = SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=10, temporal_codebook_size=10)).eval()
    backbone = tiny_resnet(tmp_path / "resnet")
    args = training_arguments(tmp_path, perceptual_loss_weight=0.7, perceptual_model_name_or_path=backbone)
    trainer = SweetTokenizerTrainer(model=model, args=args, train_dataset=real_rows(8, 8))
    video = clips()
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, {"pixel_values": video}, return_outputs=True)
        # the term, computed here with the same backbone loaded independently
        perceptual = PerceptualLoss.from_local_backbone(backbone)(outputs.reconstruction, video)
    assert perceptual > 0
    torch.testing.assert_close(loss - outputs.loss, 0.7 * perceptual)
    model.save_pretrained(tmp_path / "saved")
    assert not any("backbone" in key for key in load_file(tmp_path / "saved" / "model.safetensors"))


def test_perceptual_loss_is_zero_for_identical_pixels_and_compares_frames_as_images(tmp_path):
    loss = PerceptualLoss.from_local_backbone(tiny_resnet(tmp_path / "resnet"))
    video, other = clips(), clips()
    torch.testing.assert_close(loss(video, video), torch.tensor(0.0))

    def frames(clip):
        return clip.transpose(1, 2).flatten(0, 1)

    torch.testing.assert_close(loss(video, other), loss(frames(video), frames(other)))


def test_perceptual_loss_without_weights_says_so(tmp_path, tiny_sweet_config):
    model = SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=10, temporal_codebook_size=10))
    args = training_arguments(tmp_path, perceptual_loss_weight=0.1,
                              perceptual_model_name_or_path=str(tmp_path / "nothing-here"))
    with pytest.raises(OSError, match="asks for a perceptual loss, but no backbone could be loaded"):
        SweetTokenizerTrainer(model=model, args=args, train_dataset=real_rows(8, 8))


def test_discriminator_is_a_3d_patchgan_for_clips_and_images():
    torch.manual_seed(0)
    discriminator = PatchDiscriminator3D(3, channels=8)
    assert isinstance(discriminator.layers[0], torch.nn.Conv3d)
    assert discriminator(clips(2, frames=17, size=32)).shape == (2, 1, 5, 4, 4)  # 17 -> 17 -> 9 -> 5 frames
    image = torch.rand(2, 3, 32, 32) - 0.5
    assert discriminator(image).shape == (2, 1, 1, 4, 4)
    torch.testing.assert_close(discriminator(image), discriminator(image.unsqueeze(2)))  # an image = a 1-frame clip


def test_hinge_and_lecam_losses_against_their_formulas():
    real, fake = torch.tensor([[2.0, 0.5], [-1.0, 0.0]]), torch.tensor([[-2.0, 0.3], [1.5, -0.5]])
    expected = (torch.clamp(1 - real, min=0).mean() + torch.clamp(1 + fake, min=0).mean())
    torch.testing.assert_close(hinge_discriminator_loss(real, fake), expected)
    lecam = LeCamRegularizer(decay=0.5)
    first = lecam(real, fake)  # the first call starts the averages at the batch means
    ema_real, ema_fake = real.mean(), fake.mean()
    torch.testing.assert_close(first, (torch.clamp(real - ema_fake, min=0) ** 2).mean()
                               + (torch.clamp(ema_real - fake, min=0) ** 2).mean())
    lecam(real + 1, fake - 1)
    torch.testing.assert_close(lecam.ema_real, 0.5 * ema_real + 0.5 * (real + 1).mean())
    torch.testing.assert_close(lecam.ema_fake, 0.5 * ema_fake + 0.5 * (fake - 1).mean())


def test_each_side_of_the_gan_trains_only_itself(tmp_path, tiny_sweet_config):
    torch.manual_seed(0)
    model = SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=10, temporal_codebook_size=10))
    args = training_arguments(tmp_path, discriminator_start_step=0, discriminator_channels=8)
    trainer = SweetTokenizerTrainer(model=model, args=args, train_dataset=real_rows(8, 8))
    model.train()
    loss = trainer.compute_loss(model, {"pixel_values": clips()})
    loss.backward()
    assert all(p.grad is None for p in trainer.discriminator.parameters())  # the generator's loss
    assert model.get_parameter("encoder.0.mlp.0.weight").grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    trainer._discriminator_step(trainer._fakes)
    assert all(p.grad is None for p in model.parameters())  # the discriminator's step
    assert all(not torch.equal(a, b) for a, b in zip(before, trainer.discriminator.parameters()))


def test_exponential_moving_average():
    module = torch.nn.Linear(2, 1)
    ema = ExponentialMovingAverage(module, decay=0.5)
    start = module.weight.detach().clone()
    with torch.no_grad():
        module.weight.add_(1.0)
    ema.update(module)  # warm-up decay min(0.5, 2 / 11)
    torch.testing.assert_close(ema.shadow["weight"], start + (1 - 2 / 11))
    ema.copy_to(module)
    torch.testing.assert_close(module.weight, start + (1 - 2 / 11))


def test_callbacks_state_is_the_trainers(tmp_path, tiny_sweet_config):
    """The stage is applied through Trainer's callback handler (on_step_begin), so it follows `global_step`."""
    model = SweetTokenizerModel(tiny_sweet_config(spatial_codebook_size=16, temporal_codebook_size=16))
    trainer = SweetTokenizerTrainer(model=model, args=training_arguments(tmp_path, curriculum=CURRICULUM),
                                    train_dataset=real_rows(8, 8))
    state = TrainerState()
    state.global_step = 4
    trainer.callback_handler.on_step_begin(trainer.args, state, TrainerControl())
    assert trainer.curriculum_history == [(4, "spatial")]
