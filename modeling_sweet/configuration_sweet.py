"""SweetTokenizer configuration."""

from __future__ import annotations

from transformers import PreTrainedConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)

RECONSTRUCTION_LOSSES = ("l1", "l2", "l1+l2")
# Fields that configs saved by earlier versions carried: the training recipe (perceptual loss, discriminator,
# curriculum), which now lives in `training_sweet.SweetTokenizerTrainingArguments`. They are dropped on load, with a
# warning, so that an old `config.json` still loads and is saved again without them.
RECIPE_FIELDS = ("perceptual_loss_weight", "perceptual_model_name_or_path", "discriminator_start_step",
                 "discriminator_weight", "discriminator_channels", "curriculum")


class SweetTokenizerConfig(PreTrainedConfig):
    r"""
    Configuration of a SweetTokenizer: a Cross-attention Query AutoEncoder (CQAE) whose spatial and temporal query
    tokens are quantised with codebooks made of a language model's word embeddings.

    A clip has `num_frames = 1 + k * temporal_patch_size` frames: the first frame is cut into `patch_size` patches,
    the others into `temporal_patch_size x patch_size x patch_size` tubes. An image is the one-frame case.

    Args:
        image_size (`int`, *optional*, defaults to 256): height and width of the (square) input.
        num_channels (`int`, *optional*, defaults to 3): input channels.
        patch_size (`int`, *optional*, defaults to 8): spatial patch size; must divide `image_size`.
        num_frames (`int`, *optional*, defaults to 17): frames of a video clip (1 + 16, as the authors).
        temporal_patch_size (`int`, *optional*, defaults to 4): frames per tube; must divide `num_frames - 1`.
        hidden_size (`int`, *optional*, defaults to 512): width of every transformer.
        num_attention_heads (`int`, *optional*, defaults to 8): heads; must divide `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 2048): MLP width.
        num_encoder_layers (`int`, *optional*, defaults to 8): patch transformer depth.
        num_query_layers (`int`, *optional*, defaults to 4): depth of each query (cross-attention) transformer.
        num_temporal_layers (`int`, *optional*, defaults to 4): causal temporal transformer depth.
        num_decoder_layers (`int`, *optional*, defaults to 8): decoder depth; odd layers read the temporal latents.
        num_spatial_queries (`int`, *optional*, defaults to 256): spatial tokens per image / clip.
        num_temporal_queries (`int`, *optional*, defaults to 1024): temporal tokens per clip.
        codebook_dim (`int`, *optional*, defaults to 256): width of the L2-normalised quantisation space.
        spatial_words (`list[str]`, *optional*): the spatial codebook's words (nouns and adjectives), in code order;
            set by `SweetTokenizerModel.from_language_model`.
        temporal_words (`list[str]`, *optional*): the temporal codebook's words (verbs and adverbs).
        spatial_codebook_size (`int`, *optional*, defaults to 1024): used when `spatial_words` is not given.
        temporal_codebook_size (`int`, *optional*, defaults to 1024): used when `temporal_words` is not given.
        language_model_name_or_path (`str`, *optional*): where the codebooks came from (provenance).
        language_embedding_dim (`int`, *optional*, defaults to 384): width of the language model's embeddings.
        commitment_cost (`float`, *optional*, defaults to 0.25): weight of the codebook term of the VQ loss
            `||sg(z_q) - z||^2 + commitment_cost * ||z_q - sg(z)||^2` (the authors' code).
        entropy_loss_weight (`float`, *optional*, defaults to 0.0): weight of an entropy term added to the VQ loss in
            training (MaskGIT / MAGVIT-v2 style: mean per-token entropy of the soft code assignment minus the entropy
            of its batch average), which spreads tokens over more words; 0 is the authors' loss.
        entropy_temperature (`float`, *optional*, defaults to 0.05): temperature of that soft assignment (a softmax
            of the cosine similarities to the codes).
        vq_loss_weight (`float`, *optional*, defaults to 1.0): weight of the VQ loss in the total loss.
        reconstruction_loss (`str`, *optional*, defaults to `"l2"`): `"l1"`, `"l2"` or `"l1+l2"`.
        vocabulary_min_word_length (`int`, *optional*, defaults to 3): shortest word `from_language_model` puts in a
            codebook (3 leaves out "ph", "rs", "ye", "ax").
        vocabulary_min_zipf_frequency (`float`, *optional*, defaults to 3.0): least English frequency of a codebook
            word, on the Zipf scale of the `wordfreq` package (log10 of occurrences per billion words: 3.0 = once per
            million words); 0 keeps every word.
        vocabulary_lemmas_only (`bool`, *optional*, defaults to `True`): keep a word only when it is a lemma of its
            word class ("worked", "processed" and "processing" go; "work" and "process" stay).
        vocabulary_class_disjoint (`bool`, *optional*, defaults to `True`): put each word in one codebook only, the one
            of its most frequent part of speech (see `codebook_sweet.primary_word_class`); `False` puts a word in every
            codebook one of its classes belongs to (the first version's vocabulary).
        vocabulary_verb_share (`float`, *optional*, defaults to 0.5): how `primary_word_class` tells a verb from a noun
            or adjective spelled alike: a verb when the verb's other forms ("walked", "walking") are together at least
            this many times as frequent as the word itself.
        initializer_range (`float`, *optional*, defaults to 0.02): standard deviation of the normal initialiser.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6): LayerNorm epsilon.

    The `vocabulary_*` fields say how `SweetTokenizerModel.from_language_model` chose the words; the chosen words are
    `spatial_words` / `temporal_words`, so a saved model needs neither the language model nor these filters. The
    training recipe (perceptual loss, discriminator, curriculum, EMA) is not part of the tokenizer: see
    `training_sweet.SweetTokenizerTrainingArguments`; configs saved with those fields by earlier versions load with a
    warning and without them.
    """

    model_type = "sweet_tokenizer"

    def __init__(
        self,
        image_size: int = 256,
        num_channels: int = 3,
        patch_size: int = 8,
        num_frames: int = 17,
        temporal_patch_size: int = 4,
        hidden_size: int = 512,
        num_attention_heads: int = 8,
        intermediate_size: int = 2048,
        num_encoder_layers: int = 8,
        num_query_layers: int = 4,
        num_temporal_layers: int = 4,
        num_decoder_layers: int = 8,
        num_spatial_queries: int = 256,
        num_temporal_queries: int = 1024,
        codebook_dim: int = 256,
        spatial_words: list[str] | None = None,
        temporal_words: list[str] | None = None,
        spatial_codebook_size: int = 1024,
        temporal_codebook_size: int = 1024,
        language_model_name_or_path: str | None = None,
        language_embedding_dim: int = 384,
        commitment_cost: float = 0.25,
        entropy_loss_weight: float = 0.0,
        entropy_temperature: float = 0.05,
        vq_loss_weight: float = 1.0,
        reconstruction_loss: str = "l2",
        vocabulary_min_word_length: int = 3,
        vocabulary_min_zipf_frequency: float = 3.0,
        vocabulary_lemmas_only: bool = True,
        vocabulary_class_disjoint: bool = True,
        vocabulary_verb_share: float = 0.5,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-6,
        **kwargs,
    ):
        self.image_size = image_size
        self.num_channels = num_channels
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.temporal_patch_size = temporal_patch_size
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.num_encoder_layers = num_encoder_layers
        self.num_query_layers = num_query_layers
        self.num_temporal_layers = num_temporal_layers
        self.num_decoder_layers = num_decoder_layers
        self.num_spatial_queries = num_spatial_queries
        self.num_temporal_queries = num_temporal_queries
        self.codebook_dim = codebook_dim
        self.spatial_words = list(spatial_words) if spatial_words is not None else None
        self.temporal_words = list(temporal_words) if temporal_words is not None else None
        self.spatial_codebook_size = len(spatial_words) if spatial_words is not None else spatial_codebook_size
        self.temporal_codebook_size = len(temporal_words) if temporal_words is not None else temporal_codebook_size
        self.language_model_name_or_path = language_model_name_or_path
        self.language_embedding_dim = language_embedding_dim
        self.commitment_cost = commitment_cost
        self.entropy_loss_weight = entropy_loss_weight
        self.entropy_temperature = entropy_temperature
        self.vq_loss_weight = vq_loss_weight
        self.reconstruction_loss = reconstruction_loss
        self.vocabulary_min_word_length = vocabulary_min_word_length
        self.vocabulary_min_zipf_frequency = vocabulary_min_zipf_frequency
        self.vocabulary_lemmas_only = vocabulary_lemmas_only
        self.vocabulary_class_disjoint = vocabulary_class_disjoint
        self.vocabulary_verb_share = vocabulary_verb_share
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        recipe = sorted(field for field in RECIPE_FIELDS if field in kwargs)
        if recipe:
            for field in recipe:
                kwargs.pop(field)
            logger.warning(
                f"SweetTokenizerConfig: ignoring the training-recipe fields {recipe} (written by an earlier version "
                "of SweetTokenizer). The recipe is not part of the tokenizer any more: set it with "
                "SweetTokenizerTrainingArguments (modeling_sweet.training_sweet). Save the model again to drop them "
                "from config.json."
            )
        super().__init__(**kwargs)
        self._validate()

    def to_dict(self) -> dict:
        output = super().to_dict()
        # transformers' `custom_object_save` takes every class whose name contains "Tokenizer" for a (slow, fast)
        # text-tokenizer pair and writes `auto_map` entries as pairs; SweetTokenizerConfig / SweetTokenizerModel are
        # a config and a model: keep their entries plain, or `trust_remote_code` loading fails.
        if output.get("auto_map"):
            output["auto_map"] = {auto_class: reference[0] if isinstance(reference, (list, tuple)) else reference
                                  for auto_class, reference in output["auto_map"].items()}
        return output

    @property
    def grid_size(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """Spatial positions per frame group."""
        return self.grid_size**2

    @property
    def num_frame_groups(self) -> int:
        """Frame groups of a clip: the first frame, then one per tube."""
        return 1 + (self.num_frames - 1) // self.temporal_patch_size

    def _validate(self) -> None:
        def require(condition: bool, argument: str, expected: str) -> None:
            if not condition:
                raise ValueError(
                    f"SweetTokenizerConfig: `{argument}` must be {expected}, got {getattr(self, argument)!r}"
                )

        for argument in ("spatial_words", "temporal_words"):
            words = getattr(self, argument)
            require(words is None or (len(words) > 0 and all(isinstance(w, str) for w in words)), argument,
                    "a non-empty list of strings or None")
        for argument in ("image_size", "num_channels", "patch_size", "num_frames", "temporal_patch_size",
                         "hidden_size", "num_attention_heads", "intermediate_size", "num_encoder_layers",
                         "num_query_layers", "num_temporal_layers", "num_decoder_layers", "num_spatial_queries",
                         "num_temporal_queries", "codebook_dim", "spatial_codebook_size", "temporal_codebook_size",
                         "language_embedding_dim"):
            value = getattr(self, argument)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, argument, "an integer >= 1")
        require(self.image_size % self.patch_size == 0, "image_size", f"divisible by patch_size={self.patch_size}")
        require((self.num_frames - 1) % self.temporal_patch_size == 0, "num_frames",
                f"1 + a multiple of temporal_patch_size={self.temporal_patch_size}")
        require(self.hidden_size % self.num_attention_heads == 0, "hidden_size",
                f"divisible by num_attention_heads={self.num_attention_heads}")
        require(self.commitment_cost >= 0, "commitment_cost", ">= 0")
        require(self.entropy_loss_weight >= 0, "entropy_loss_weight", ">= 0")
        require(self.entropy_temperature > 0, "entropy_temperature", "> 0")
        require(self.vq_loss_weight >= 0, "vq_loss_weight", ">= 0")
        require(self.reconstruction_loss in RECONSTRUCTION_LOSSES, "reconstruction_loss",
                f"one of {RECONSTRUCTION_LOSSES}")
        require(isinstance(self.vocabulary_min_word_length, int) and self.vocabulary_min_word_length >= 1,
                "vocabulary_min_word_length", "an integer >= 1")
        require(isinstance(self.vocabulary_min_zipf_frequency, (int, float))
                and 0 <= self.vocabulary_min_zipf_frequency <= 8, "vocabulary_min_zipf_frequency",
                "a number in [0, 8] (the Zipf scale: 3.0 = once per million words)")
        require(isinstance(self.vocabulary_lemmas_only, bool), "vocabulary_lemmas_only", "a bool")
        require(isinstance(self.vocabulary_class_disjoint, bool), "vocabulary_class_disjoint", "a bool")
        require(isinstance(self.vocabulary_verb_share, (int, float)) and self.vocabulary_verb_share > 0,
                "vocabulary_verb_share", "a number > 0")
