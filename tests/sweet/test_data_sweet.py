import numpy as np
import pytest

from modeling_sweet.data_sweet import load_digit_images, moving_digit_clips


def test_clips_move_only_the_chosen_digits():
    sprites = load_digit_images(8)[0][:, 0]
    clips = moving_digit_clips(3, num_frames=4, size=16, digits_per_clip=1, seed=0, digits=[7])
    # One digit, always fully inside the canvas: every frame holds exactly the pixels of sprite #7.
    frame_sums = clips[:, 0].sum(axis=(2, 3))
    np.testing.assert_allclose(frame_sums, sprites[7].sum(), rtol=1e-5)
    assert not np.allclose(frame_sums, sprites[8].sum(), rtol=1e-3)


def test_an_empty_digit_selection_raises():
    with pytest.raises(ValueError, match="selects none of the 1797 digits"):
        moving_digit_clips(1, num_frames=2, size=16, digits=slice(5, 5))
