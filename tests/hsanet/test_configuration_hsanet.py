import pytest

from modeling_hsanet import HSANetConfig


def test_defaults_follow_the_paper_and_llamo():
    config = HSANetConfig()
    assert (config.hidden_size, config.num_gnn_layers, config.num_levels, config.num_query_tokens) == (300, 5, 6, 8)
    assert (config.projector_mode, config.fusion, config.num_fusion_experts, config.fusion_top_k) == (
        "adaptive",
        "moe",
        4,
        2,
    )


def test_round_trip(tmp_path):
    config = HSANetConfig(hidden_size=64, num_attention_heads=8, projector_mode="graph_mamba", num_labels=3)
    config.save_pretrained(tmp_path)
    reloaded = HSANetConfig.from_pretrained(tmp_path)
    assert reloaded.to_dict() == config.to_dict()


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"num_gnn_layers": 0}, "num_gnn_layers"),
        ({"projector_mode": "mamba"}, "projector_mode"),
        ({"fusion": "attention"}, "fusion"),
        ({"num_fusion_experts": 2, "fusion_top_k": 3}, "fusion_top_k"),
        ({"feature_scheme": "pretrain-gnns"}, "feature_scheme"),
        ({"gumbel_temperature": 0.0}, "gumbel_temperature"),
        ({"gnn_dropout": 1.5}, "gnn_dropout"),
        ({"num_motif_tokens": -1}, "num_motif_tokens"),
        ({"problem_type": "ranking"}, "problem_type"),
        ({"num_query_tokens": 2.5}, "num_query_tokens"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        HSANetConfig(**kwargs)
