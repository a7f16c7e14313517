"""HSA-Net configuration."""

from __future__ import annotations

import copy
import math

import torch
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, PreTrainedConfig
from transformers.activations import ACT2FN
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from .featurization_hsanet import FEATURE_SCHEMES, FUNCTIONAL_GROUP_NAMES
from .remote_code_hsanet import drop_registered_pipelines

PROJECTOR_MODES = ("adaptive", "cross_attention", "graph_mamba")
FUSION_TYPES = ("moe", "mlp")
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")
GIN_VARIANTS = ("gine", "pretrain_gnns")

# Upper bounds of the fields that size memory (weights, token sequences), checked in `__init__` before anything is
# allocated, so that a hostile or mistyped `config.json` fails in milliseconds with an error naming the field instead
# of exhausting memory. They are generous: every realistic model is far below them (the paper's HSA-Net: hidden 300,
# 5 layers, 8 query tokens). To go beyond one, raise its entry here (in the copy of this file that a remote-code
# checkpoint carries) before building the config.
UPPER_BOUNDS = {
    "hidden_size": 16_384,
    "num_gnn_layers": 1_024,
    "num_query_tokens": 1_024,
    "num_attention_heads": 1_024,
    "mamba_d_state": 1_024,
    "mamba_d_conv": 64,
    "mamba_expand": 16,
    "mamba_dt_rank": 16_384,
    "max_scan_distance": 4_096,
    "num_motif_tokens": 1_024,
    "num_functional_groups": 4_096,
    "num_fusion_experts": 1_024,
    "fusion_top_k": 1_024,
    "fusion_intermediate_size": 65_536,
}
# Tokens per molecule (`num_graph_tokens`): they are placeholders in every prompt of the language model.
MAX_NUM_GRAPH_TOKENS = 65_536
# Classes of a classification head: transformers builds `id2label` with one entry per class, so a huge `num_labels`
# would hang `__init__` / `from_pretrained` (10**12 entries). ImageNet-21k has 21,841 classes, ToxCast 617 tasks.
MAX_NUM_LABELS = 100_000
# Fields of `text_config` (any causal LM config) that size the language model, under their transformers names.
TEXT_CONFIG_UPPER_BOUNDS = {
    "vocab_size": 4_194_304,
    "hidden_size": 65_536,
    "intermediate_size": 524_288,
    "num_hidden_layers": 1_024,
    "num_attention_heads": 1_024,
    "max_position_embeddings": 16_777_216,
}


def check_base_kwargs(owner: str, kwargs: dict) -> None:
    """Check transformers' fields among config keyword arguments before `PreTrainedConfig.__init__` uses them:
    `num_labels` / `id2label` (it builds one `id2label` entry per label) and `dtype` / `torch_dtype`.

    Raises `ValueError` naming `owner` (the config being built) and the field."""
    for argument in ("dtype", "torch_dtype"):
        value = kwargs.get(argument)
        if isinstance(value, str) and value != "auto" and not isinstance(getattr(torch, value, None), torch.dtype):
            raise ValueError(f"{owner}: `{argument}` must name a torch dtype (e.g. 'float32'), got {value!r}")
    num_labels, id2label = kwargs.get("num_labels"), kwargs.get("id2label")
    if "num_labels" in kwargs and (not isinstance(num_labels, int) or isinstance(num_labels, bool)
                                   or not 0 <= num_labels <= MAX_NUM_LABELS):
        raise ValueError(f"{owner}: `num_labels` must be an integer in [0, {MAX_NUM_LABELS:,}] (MAX_NUM_LABELS), got "
                         f"{num_labels!r}")
    if id2label is not None and (not isinstance(id2label, dict) or len(id2label) > MAX_NUM_LABELS):
        got = f"{len(id2label):,} labels" if isinstance(id2label, dict) else f"a {type(id2label).__name__}"
        raise ValueError(f"{owner}: `id2label` must be a dict of at most {MAX_NUM_LABELS:,} labels (MAX_NUM_LABELS), "
                         f"got {got}")


def _check_text_config_dict(text_config: dict) -> None:
    """A `text_config` dict: a known `model_type` and label fields within bounds, before its config is built."""
    model_type = text_config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ValueError(f"HSANetConfig: `text_config.model_type` must name a transformers config (e.g. 'llama', "
                         f"'gpt2'), got {model_type!r}")
    check_base_kwargs("HSANetConfig.text_config", text_config)


class HSANetConfig(PreTrainedConfig):
    r"""
    Configuration of an HSA-Net molecular encoder (GIN -> Hierarchical Adaptive Projector -> Source-Aware Fusion).

    Args:
        feature_scheme (`str`, *optional*, defaults to `"ogb"`):
            Atom/bond feature scheme of the featurizer; sizes the embedding tables.
        hidden_size (`int`, *optional*, defaults to 300):
            Width of the GIN, the projectors and the fused tokens.
        num_gnn_layers (`int`, *optional*, defaults to 5):
            GIN layers; the projector sees `num_gnn_layers + 1` levels (atom embedding + every layer).
        gnn_dropout (`float`, *optional*, defaults to 0.0):
            Dropout after every GIN layer.
        gin_variant (`str`, *optional*, defaults to `"gine"`):
            Layer math of the GIN. `"gine"`: PyG's `GINEConv`, `MLP((1 + eps) x_i + sum_j relu(x_j + e_ji))` with MLP
            = Linear-BatchNorm-ReLU-Linear (MoleculeSTM's GIN). `"pretrain_gnns"`: the GIN of Hu et al.
            (pretrain-gnns, GraphCL's `graphcl_80.pth` used by MolCA), `MLP(sum_{j in N(i) + i} (x_j + e_ji))`, a
            self-loop edge per atom, no ReLU on messages, MLP = Linear-ReLU-Linear. Both: then BatchNorm, ReLU except
            after the last layer, dropout.
        gin_self_loop_bond_features (`list[int]`, *optional*):
            Bond feature row of the self-loop edges of `gin_variant="pretrain_gnns"` (one value per bond column).
            Defaults to the feature scheme's own (`"pretrain_gnns"`: `[4, 0]`, the self-loop bond type of
            pretrain-gnns); MolCA's GIN code adds its self-loops with `[0, 0]` instead.
        num_query_tokens (`int`, *optional*, defaults to 8):
            Tokens each level is projected to, by either projector.
        num_attention_heads (`int`, *optional*, defaults to 4):
            Heads of the query cross-attention; must divide `hidden_size`.
        projector_mode (`str`, *optional*, defaults to `"adaptive"`):
            `"adaptive"` (a learned gate per level picks a projector: hard Gumbel-softmax in training, argmax in
            eval), or `"cross_attention"` / `"graph_mamba"` to force one projector at every level (ablations).
        gumbel_temperature (`float`, *optional*, defaults to 1.0):
            Temperature of the Gumbel-softmax gate.
        mamba_d_state (`int`, *optional*, defaults to 16):
            State size of the selective scan.
        mamba_d_conv (`int`, *optional*, defaults to 4):
            Kernel of the causal depthwise convolution before the scan.
        mamba_expand (`int`, *optional*, defaults to 1):
            Inner width of the scan is `mamba_expand * hidden_size` (1 as Graph-Mamba).
        mamba_dt_rank (`int`, *optional*):
            Rank of the step-size projection; defaults to `ceil(hidden_size / 16)`.
        max_scan_distance (`int`, *optional*, defaults to 8):
            Graph distances between consecutive atoms of the scan are clipped to this value.
        graph_mamba_bidirectional (`bool`, *optional*, defaults to `False`):
            `False`: one Mamba block per projector scans the structure-aware order forwards only. The paper does not
            give the direction of the scan; Graph-Mamba's and MOL-Mamba's code scan one direction. `True`: forwards
            and backwards, each direction with its own Mamba block; about 1.5x the projector's CPU time
            (`benchmarks/bench_scan.py`, table b). `None` gives `False`, except for a config.json written before this
            field existed (it has `transformers_version` but not this field), whose model scanned both directions.
        use_mamba_kernels (`bool`, *optional*, defaults to `True`):
            Use a compiled selective scan where one is available: `mamba_ssm`'s CUDA kernel when it is importable and
            the tensors are on CUDA, the numba kernel on CPU when numba is importable (float32, bf16 and fp16; see
            `benchmarks/bench_scan.py`). `False` always runs the pure-PyTorch scan.
        num_motif_tokens (`int`, *optional*, defaults to 4):
            Tokens of the functional-group (motif) branch; 0 disables the branch.
        num_functional_groups (`int`, *optional*, defaults to 85):
            Length of the featurizer's functional-group count vector.
        fusion (`str`, *optional*, defaults to `"moe"`):
            `"moe"`: Source-Aware Fusion with routed experts; `"mlp"`: one MLP for all tokens (ablation).
        num_fusion_experts (`int`, *optional*, defaults to 4):
            Experts of the Source-Aware Fusion.
        fusion_top_k (`int`, *optional*, defaults to 2):
            Experts each token is routed to.
        fusion_intermediate_size (`int`, *optional*, defaults to 600):
            Hidden width of each expert MLP.
        router_aux_loss_coef (`float`, *optional*, defaults to 0.01):
            Weight of the load-balancing loss added to a head's loss during training.
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout before the property prediction head.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialiser.
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            Configuration of the causal language model of `HSANetForConditionalGeneration` (molecule-to-text): any
            config `AutoModelForCausalLM` builds (Llama, OPT/Galactica, GPT-2, Qwen, or BERT with
            `is_decoder=True`). A dict needs its `model_type`. Unused by the encoder and the property head.
        graph_token_id (`int`, *optional*):
            Id of the `<graph>` placeholder token in the language model's vocabulary: every prompt holds
            `num_graph_tokens` of them, replaced by the projected HSA-Net tokens (as LLaVA's `image_token_id`).
        text_projector_hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the two-layer projection from HSA-Net tokens to the language model's embeddings.

    Example:
    ```python
    >>> from modeling_hsanet import HSANetConfig, HSANetModel
    >>> config = HSANetConfig(hidden_size=32, num_gnn_layers=2, num_attention_heads=2, fusion_intermediate_size=64)
    >>> model = HSANetModel(config)
    ```
    """

    model_type = "hsanet"
    sub_configs = {"text_config": AutoConfig}

    def __init__(
        self,
        feature_scheme: str = "ogb",
        hidden_size: int = 300,
        num_gnn_layers: int = 5,
        gnn_dropout: float = 0.0,
        gin_variant: str = "gine",
        gin_self_loop_bond_features: list[int] | None = None,
        num_query_tokens: int = 8,
        num_attention_heads: int = 4,
        projector_mode: str = "adaptive",
        gumbel_temperature: float = 1.0,
        mamba_d_state: int = 16,
        mamba_d_conv: int = 4,
        mamba_expand: int = 1,
        mamba_dt_rank: int | None = None,
        max_scan_distance: int = 8,
        graph_mamba_bidirectional: bool | None = None,
        use_mamba_kernels: bool = True,
        num_motif_tokens: int = 4,
        num_functional_groups: int = len(FUNCTIONAL_GROUP_NAMES),
        fusion: str = "moe",
        num_fusion_experts: int = 4,
        fusion_top_k: int = 2,
        fusion_intermediate_size: int = 600,
        router_aux_loss_coef: float = 0.01,
        classifier_dropout: float = 0.1,
        initializer_range: float = 0.02,
        text_config: dict | PreTrainedConfig | None = None,
        graph_token_id: int | None = None,
        text_projector_hidden_act: str = "gelu",
        **kwargs,
    ):
        self.feature_scheme = feature_scheme
        self.hidden_size = hidden_size
        self.num_gnn_layers = num_gnn_layers
        self.gnn_dropout = gnn_dropout
        self.gin_variant = gin_variant
        self.gin_self_loop_bond_features = (
            list(gin_self_loop_bond_features) if isinstance(gin_self_loop_bond_features, tuple)
            else gin_self_loop_bond_features
        )
        self.num_query_tokens = num_query_tokens
        self.num_attention_heads = num_attention_heads
        self.projector_mode = projector_mode
        self.gumbel_temperature = gumbel_temperature
        self.mamba_d_state = mamba_d_state
        self.mamba_d_conv = mamba_d_conv
        self.mamba_expand = mamba_expand
        default_dt_rank = -(-hidden_size // 16) if isinstance(hidden_size, int) else None  # a bad size: _validate
        self.mamba_dt_rank = mamba_dt_rank if mamba_dt_rank is not None else default_dt_rank
        self.max_scan_distance = max_scan_distance
        if graph_mamba_bidirectional is None:  # a config.json from before the field (has `transformers_version`)
            graph_mamba_bidirectional = "transformers_version" in kwargs
        self.graph_mamba_bidirectional = graph_mamba_bidirectional
        self.use_mamba_kernels = use_mamba_kernels
        self.num_motif_tokens = num_motif_tokens
        self.num_functional_groups = num_functional_groups
        self.fusion = fusion
        self.num_fusion_experts = num_fusion_experts
        self.fusion_top_k = fusion_top_k
        self.fusion_intermediate_size = fusion_intermediate_size
        self.router_aux_loss_coef = router_aux_loss_coef
        self.classifier_dropout = classifier_dropout
        self.initializer_range = initializer_range
        check_base_kwargs("HSANetConfig", kwargs)  # before transformers builds `id2label` (a huge one would hang)
        if isinstance(text_config, dict):
            if "model_type" not in text_config:
                raise ValueError("HSANetConfig: `text_config` given as a dict needs its `model_type` (e.g. 'llama')")
            _check_text_config_dict(text_config)
            try:
                text_config = CONFIG_MAPPING[text_config["model_type"]](**text_config)
            except StrictDataclassError as error:  # transformers' field check: a ValueError naming text_config
                raise ValueError(f"HSANetConfig: `text_config` is not a valid {text_config['model_type']!r} config: "
                                 f"{error}") from error
        elif isinstance(text_config, PreTrainedConfig):
            text_config = copy.deepcopy(text_config)  # the base class resets a sub-config's attention setting
        elif text_config is not None:
            raise ValueError(f"HSANetConfig: `text_config` must be None, a dict or a PreTrainedConfig, got a "
                             f"{type(text_config).__name__}")
        self.text_config = text_config
        self.graph_token_id = graph_token_id
        self.text_projector_hidden_act = text_projector_hidden_act
        try:
            super().__init__(**kwargs)
        except StrictDataclassError as error:  # transformers' own fields (e.g. `return_dict`): a ValueError
            raise ValueError(f"HSANetConfig: {error}") from error
        self._validate()

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """`PreTrainedConfig.from_dict`; the saved `custom_pipelines` leave out the tasks this package registered in
        this process, which `pipeline()` then serves without `trust_remote_code` (`drop_registered_pipelines`)."""
        if config_dict.get("custom_pipelines"):
            config_dict = {**config_dict,
                           "custom_pipelines": drop_registered_pipelines(cls, config_dict["custom_pipelines"])}
        return super().from_dict(config_dict, **kwargs)

    @property
    def num_levels(self) -> int:
        """Levels the projector sees: the atom embedding and every GIN layer."""
        return self.num_gnn_layers + 1

    @property
    def num_graph_tokens(self) -> int:
        """Tokens per molecule: `num_query_tokens` per level, then the motif tokens."""
        return self.num_levels * self.num_query_tokens + self.num_motif_tokens

    @property
    def atom_vocabulary_sizes(self) -> tuple[int, ...]:
        return FEATURE_SCHEMES[self.feature_scheme].atom_vocabulary_sizes

    @property
    def bond_vocabulary_sizes(self) -> tuple[int, ...]:
        return FEATURE_SCHEMES[self.feature_scheme].bond_vocabulary_sizes

    @property
    def self_loop_bond_features(self) -> tuple[int, ...] | None:
        """Bond feature row of the GIN's self-loop edges (`gin_variant="pretrain_gnns"`); None for `"gine"`."""
        if self.gin_variant != "pretrain_gnns":
            return None
        if self.gin_self_loop_bond_features is not None:
            return tuple(self.gin_self_loop_bond_features)
        return FEATURE_SCHEMES[self.feature_scheme].self_loop_bond_features

    def _validate(self) -> None:
        def require(condition: bool, argument: str, expected: str) -> None:
            if not condition:
                raise ValueError(f"HSANetConfig: `{argument}` must be {expected}, got {getattr(self, argument)!r}")

        def positive_int(argument: str, minimum: int = 1) -> None:
            value = getattr(self, argument)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= minimum, argument,
                    f"an integer >= {minimum}")
            if argument in UPPER_BOUNDS:
                require(value <= UPPER_BOUNDS[argument], argument,
                        f"at most {UPPER_BOUNDS[argument]:,} (UPPER_BOUNDS in configuration_hsanet.py)")

        def finite_number(argument: str) -> None:
            value = getattr(self, argument)
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                    argument, "a finite number")

        require(isinstance(self.feature_scheme, str) and self.feature_scheme in FEATURE_SCHEMES, "feature_scheme",
                f"one of {sorted(FEATURE_SCHEMES)}")
        require(self.gin_variant in GIN_VARIANTS, "gin_variant", f"one of {GIN_VARIANTS}")
        self_loop, bond_sizes = self.gin_self_loop_bond_features, self.bond_vocabulary_sizes
        if self_loop is not None:
            require(self.gin_variant == "pretrain_gnns", "gin_self_loop_bond_features",
                    'None unless gin_variant="pretrain_gnns" (the only GIN with self-loop edges)')
            require(isinstance(self_loop, list) and len(self_loop) == len(bond_sizes)
                    and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < size
                            for v, size in zip(self_loop, bond_sizes)),
                    "gin_self_loop_bond_features", f"{len(bond_sizes)} integers (one per bond column of "
                    f"feature_scheme={self.feature_scheme!r}), each below its vocabulary size {bond_sizes}")
        elif self.gin_variant == "pretrain_gnns":
            require(FEATURE_SCHEMES[self.feature_scheme].self_loop_bond_features is not None,
                    "gin_self_loop_bond_features", 'set with gin_variant="pretrain_gnns": feature_scheme='
                    f"{self.feature_scheme!r} reserves no self-loop bond row (the 'pretrain_gnns' scheme does)")
        for argument in ("hidden_size", "num_gnn_layers", "num_query_tokens", "num_attention_heads",
                         "mamba_d_state", "mamba_d_conv", "mamba_expand", "mamba_dt_rank", "max_scan_distance",
                         "num_functional_groups", "num_fusion_experts", "fusion_top_k", "fusion_intermediate_size"):
            positive_int(argument)
        positive_int("num_motif_tokens", minimum=0)
        if self.num_graph_tokens > MAX_NUM_GRAPH_TOKENS:
            raise ValueError(
                f"HSANetConfig: num_graph_tokens = (num_gnn_layers + 1) * num_query_tokens + num_motif_tokens = "
                f"{self.num_graph_tokens:,} is above MAX_NUM_GRAPH_TOKENS={MAX_NUM_GRAPH_TOKENS:,}; lower "
                "`num_query_tokens` or `num_gnn_layers`"
            )
        for argument in ("gumbel_temperature", "gnn_dropout", "classifier_dropout", "router_aux_loss_coef",
                         "initializer_range"):
            finite_number(argument)
        require(self.initializer_range >= 0, "initializer_range", ">= 0")
        require(isinstance(self.use_mamba_kernels, bool), "use_mamba_kernels", "a bool")
        require(isinstance(self.graph_mamba_bidirectional, bool), "graph_mamba_bidirectional", "a bool")
        require(isinstance(self.text_projector_hidden_act, str) and self.text_projector_hidden_act in ACT2FN,
                "text_projector_hidden_act", "an activation name of transformers' ACT2FN (e.g. 'gelu')")
        require(self.hidden_size % self.num_attention_heads == 0, "hidden_size",
                f"divisible by num_attention_heads={self.num_attention_heads}")
        require(self.projector_mode in PROJECTOR_MODES, "projector_mode", f"one of {PROJECTOR_MODES}")
        require(self.fusion in FUSION_TYPES, "fusion", f"one of {FUSION_TYPES}")
        require(self.fusion_top_k <= self.num_fusion_experts, "fusion_top_k",
                f"<= num_fusion_experts={self.num_fusion_experts}")
        require(self.gumbel_temperature > 0, "gumbel_temperature", "> 0")
        for argument in ("gnn_dropout", "classifier_dropout"):
            require(0.0 <= getattr(self, argument) < 1.0, argument, "in [0, 1)")
        require(self.router_aux_loss_coef >= 0, "router_aux_loss_coef", ">= 0")
        require(self.problem_type in PROBLEM_TYPES, "problem_type", f"one of {PROBLEM_TYPES}")
        require(self.text_config is None or isinstance(self.text_config, PreTrainedConfig), "text_config",
                "None, a dict or a PreTrainedConfig")
        for argument, bound in TEXT_CONFIG_UPPER_BOUNDS.items():
            value = getattr(self.text_config, argument, None)
            if isinstance(value, int) and value > bound:
                raise ValueError(f"HSANetConfig: `text_config.{argument}` must be at most {bound:,} "
                                 f"(TEXT_CONFIG_UPPER_BOUNDS in configuration_hsanet.py), got {value:,}")
        if self.graph_token_id is not None:
            positive_int("graph_token_id", minimum=0)
            vocab_size = getattr(self.text_config, "vocab_size", None)
            require(vocab_size is None or self.graph_token_id < vocab_size, "graph_token_id",
                    f"a token id below text_config.vocab_size={vocab_size}")
