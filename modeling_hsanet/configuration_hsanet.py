"""HSA-Net configuration."""

from __future__ import annotations

import copy

from transformers import AutoConfig, PreTrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from .featurization_hsanet import FEATURE_SCHEMES, FUNCTIONAL_GROUP_NAMES

PROJECTOR_MODES = ("adaptive", "cross_attention", "graph_mamba")
FUSION_TYPES = ("moe", "mlp")
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")


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
        use_mamba_kernels (`bool`, *optional*, defaults to `True`):
            Use `mamba_ssm`'s CUDA selective scan when it is importable and the tensors are on CUDA.
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
        num_query_tokens: int = 8,
        num_attention_heads: int = 4,
        projector_mode: str = "adaptive",
        gumbel_temperature: float = 1.0,
        mamba_d_state: int = 16,
        mamba_d_conv: int = 4,
        mamba_expand: int = 1,
        mamba_dt_rank: int | None = None,
        max_scan_distance: int = 8,
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
        self.num_query_tokens = num_query_tokens
        self.num_attention_heads = num_attention_heads
        self.projector_mode = projector_mode
        self.gumbel_temperature = gumbel_temperature
        self.mamba_d_state = mamba_d_state
        self.mamba_d_conv = mamba_d_conv
        self.mamba_expand = mamba_expand
        self.mamba_dt_rank = mamba_dt_rank if mamba_dt_rank is not None else -(-hidden_size // 16)
        self.max_scan_distance = max_scan_distance
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
        if isinstance(text_config, dict):
            if "model_type" not in text_config:
                raise ValueError("HSANetConfig: `text_config` given as a dict needs its `model_type` (e.g. 'llama')")
            text_config = CONFIG_MAPPING[text_config["model_type"]](**text_config)
        elif isinstance(text_config, PreTrainedConfig):
            text_config = copy.deepcopy(text_config)  # the base class resets a sub-config's attention setting
        self.text_config = text_config
        self.graph_token_id = graph_token_id
        self.text_projector_hidden_act = text_projector_hidden_act
        super().__init__(**kwargs)
        self._validate()

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

    def _validate(self) -> None:
        def require(condition: bool, argument: str, expected: str) -> None:
            if not condition:
                raise ValueError(f"HSANetConfig: `{argument}` must be {expected}, got {getattr(self, argument)!r}")

        def positive_int(argument: str, minimum: int = 1) -> None:
            value = getattr(self, argument)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= minimum, argument,
                    f"an integer >= {minimum}")

        require(self.feature_scheme in FEATURE_SCHEMES, "feature_scheme", f"one of {sorted(FEATURE_SCHEMES)}")
        for argument in ("hidden_size", "num_gnn_layers", "num_query_tokens", "num_attention_heads",
                         "mamba_d_state", "mamba_d_conv", "mamba_expand", "mamba_dt_rank", "max_scan_distance",
                         "num_functional_groups", "num_fusion_experts", "fusion_top_k", "fusion_intermediate_size"):
            positive_int(argument)
        positive_int("num_motif_tokens", minimum=0)
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
        if self.graph_token_id is not None:
            positive_int("graph_token_id", minimum=0)
            vocab_size = getattr(self.text_config, "vocab_size", None)
            require(vocab_size is None or self.graph_token_id < vocab_size, "graph_token_id",
                    f"a token id below text_config.vocab_size={vocab_size}")
