"""`gin_variant="pretrain_gnns"` (the GIN of pretrain-gnns / MolCA on the 2+2 feature scheme): its config rules and the
shared model harness. Its layer math against the original equations: tests/test_conversion.py."""

import pytest
import torch

from modeling_hsanet import HSANetConfig, HSANetModel
from tests.common import ModelTesterMixin
from tests.model_testers import HSANET_TINY, HSANetPretrainGNNsModelTester


class TestHSANetPretrainGNNsHarness(HSANetPretrainGNNsModelTester, ModelTesterMixin):
    expected_slices = {"last_hidden_state": [0.006174546, -0.05642724, -0.03050585, 0.01376543, -0.02019823,
                                             0.002668604, 0.02374155, 0.02330729]}
    # A cold inductor compile of HSA-Net takes minutes on 2 cores; TestHSANetModelHarness compiles the same model
    # with the "gine" layer, and this layer is plain indexing, scatter and Linear layers.
    skip_compile_reason = "compiled with the default GIN in TestHSANetModelHarness (a cold compile costs minutes)"

    def get_config(self):  # golden values of both scan directions: BothScanDirections in test_modeling_hsanet.py
        config = super().get_config()
        config.graph_mamba_bidirectional = True
        return config


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"gin_variant": "gin"}, "`gin_variant` must be one of ('gine', 'pretrain_gnns')"),
        # the OGB scheme reserves no self-loop bond row, so the row must be given
        ({"gin_variant": "pretrain_gnns"}, "`gin_self_loop_bond_features` must be set with gin_variant"),
        ({"gin_self_loop_bond_features": [0, 0, 0]}, 'None unless gin_variant="pretrain_gnns"'),
        ({"feature_scheme": "pretrain_gnns", "gin_variant": "pretrain_gnns", "gin_self_loop_bond_features": [6, 0]},
         "each below its vocabulary size (6, 3), got [6, 0]"),
        ({"feature_scheme": "pretrain_gnns", "gin_variant": "pretrain_gnns", "gin_self_loop_bond_features": [4]},
         "2 integers (one per bond column"),
    ],
)
def test_gin_variant_arguments_are_validated(overrides, message):
    with pytest.raises(ValueError) as error:
        HSANetConfig(**HSANET_TINY, **overrides)
    assert message in str(error.value)


def test_self_loop_row_is_a_saved_config_choice(tmp_path):
    config = HSANetConfig(**HSANET_TINY, feature_scheme="pretrain_gnns", gin_variant="pretrain_gnns")
    assert config.self_loop_bond_features == (4, 0)  # the scheme's own row
    molca = HSANetConfig(**HSANET_TINY, feature_scheme="pretrain_gnns", gin_variant="pretrain_gnns",
                         gin_self_loop_bond_features=(0, 0))
    molca.save_pretrained(tmp_path)
    reloaded = HSANetConfig.from_pretrained(tmp_path)
    assert reloaded.gin_self_loop_bond_features == [0, 0] and reloaded.self_loop_bond_features == (0, 0)
    # any scheme with a self-loop row given: the OGB scheme with the self-loop as a "misc" bond type
    ogb = HSANetConfig(**HSANET_TINY, gin_variant="pretrain_gnns", gin_self_loop_bond_features=[4, 0, 0])
    torch.manual_seed(0)
    model = HSANetModel(ogb).eval()
    assert type(model.encoder.convolutions[0]).__name__ == "SelfLoopGINConv"
    with torch.no_grad():
        assert torch.isfinite(model(**model.dummy_inputs).last_hidden_state).all()
