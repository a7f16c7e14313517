import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from modeling_sweet.data_sweet import load_digit_images, moving_digit_clips
from modeling_sweet.training_sweet import SweetCurriculumCallback, SweetCurriculumCollator

CURRICULUM = [
    {"name": "continuous warm-up", "start_step": 0, "quantize": False, "train_temporal": False, "media": "images"},
    {"name": "spatial", "start_step": 4, "quantize": True, "train_temporal": False, "media": "images"},
    {"name": "spatial-temporal", "start_step": 8, "quantize": True, "train_temporal": True, "media": "both"},
]


def real_rows(num_images=48, num_clips=16):
    images = load_digit_images(16)[0][:num_images] - 0.5
    clips = moving_digit_clips(num_clips, num_frames=5, size=16, seed=0) - 0.5
    return [{"pixel_values": x} for x in images] + [{"pixel_values": x} for x in clips]


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


def test_trainer_lowers_the_loss_and_the_curriculum_switches_stages(tmp_path, tiny_sweet_config, minilm_path):
    from modeling_sweet import SweetTokenizerModel

    torch.manual_seed(0)
    config = tiny_sweet_config(curriculum=CURRICULUM, discriminator_start_step=16, discriminator_channels=8)
    model = SweetTokenizerModel.from_language_model(config, minilm_path, max_words=256)
    collator = SweetCurriculumCollator(model.config.num_frames)
    callback = SweetCurriculumCallback(model.config.curriculum, collator)
    dataset = real_rows()  # images and clips mixed: a plain list (Arrow columns need one shape)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=24, learning_rate=2e-3,
                             logging_steps=4, report_to=[], remove_unused_columns=False, save_strategy="no",
                             use_cpu=True, seed=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[callback])
    held_out = torch.from_numpy(moving_digit_clips(8, num_frames=5, size=16, seed=99) - 0.5)

    def held_out_reconstruction_loss():
        model.eval()
        with torch.no_grad():
            return model(held_out).reconstruction_loss.item()

    before = held_out_reconstruction_loss()
    trainer.train()
    after = held_out_reconstruction_loss()
    assert callback.history == [(0, "continuous warm-up"), (4, "spatial"), (8, "spatial-temporal"),
                                (16, "discriminator on")]
    assert model.quantize and model.adversarial and all(p.requires_grad for p in model.temporal_parameters())
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert np.isfinite(losses).all()
    assert after < 0.75 * before


def test_image_stage_freezes_the_temporal_branch(tiny_sweet_config):
    from transformers import TrainerControl, TrainerState

    from modeling_sweet import SweetTokenizerModel

    model = SweetTokenizerModel(tiny_sweet_config(curriculum=CURRICULUM))
    callback = SweetCurriculumCallback(model.config.curriculum)
    state = TrainerState()
    for step, quantize, temporal in ((0, False, False), (5, True, False), (9, True, True)):
        state.global_step = step
        callback.on_step_begin(None, state, TrainerControl(), model=model)
        assert model.quantize is quantize
        assert all(p.requires_grad is temporal for p in model.temporal_parameters())


def test_collator_starts_with_the_first_stage_media():
    collator = SweetCurriculumCollator(num_frames=5)
    SweetCurriculumCallback(CURRICULUM, collator)
    assert collator.media == "images"
