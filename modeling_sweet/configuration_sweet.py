"""SweetTokenizer configuration."""

from __future__ import annotations

import math

import torch
from huggingface_hub.errors import StrictDataclassError
from transformers import PreTrainedConfig
from transformers.utils import logging

from .remote_code_sweet import drop_registered_pipelines

logger = logging.get_logger(__name__)

RECONSTRUCTION_LOSSES = ("l1", "l2", "l1+l2")
# Upper bounds of the fields that size memory (weights, token sequences), checked in `__init__` before anything is
# allocated, so that a hostile or mistyped `config.json` fails in milliseconds with an error naming the field instead
# of exhausting memory. They are generous: every realistic tokenizer is far below them (the authors': 256 x 256,
# 17 frames, hidden 512). To go beyond one, raise its entry here (in the copy of this file that a remote-code
# checkpoint carries) before building the config. The processors bound their `size` and `num_frames` by the same
# MAX_IMAGE_SIZE and MAX_NUM_FRAMES.
MAX_IMAGE_SIZE = 8_192
MAX_NUM_FRAMES = 1_025
UPPER_BOUNDS = {
    "image_size": MAX_IMAGE_SIZE,
    "num_channels": 64,
    "patch_size": MAX_IMAGE_SIZE,
    "num_frames": MAX_NUM_FRAMES,
    "temporal_patch_size": MAX_NUM_FRAMES,
    "hidden_size": 16_384,
    "num_attention_heads": 1_024,
    "intermediate_size": 65_536,
    "num_encoder_layers": 1_024,
    "num_query_layers": 1_024,
    "num_temporal_layers": 1_024,
    "num_decoder_layers": 1_024,
    "num_spatial_queries": 65_536,
    "num_temporal_queries": 262_144,
    "codebook_dim": 16_384,
    "codebook_gcn_hidden_size": 16_384,
    "spatial_codebook_size": 4_194_304,
    "temporal_codebook_size": 4_194_304,
    "language_embedding_dim": 65_536,
    "spatial_graph_num_edges": 100_000_000,
    "temporal_graph_num_edges": 100_000_000,
    "encoder_window_size": MAX_IMAGE_SIZE,
    "pixel_decoder_layers_per_block": 64,
    "pixel_decoder_norm_groups": 16_384,
}
# Positions a clip has (`num_frame_groups * num_patches`): the length of the encoder's and decoder's sequences.
MAX_POSITIONS = 1_048_576
# Classes of a classification head: transformers builds `id2label` with one entry per class, so a huge `num_labels`
# would hang `__init__` / `from_pretrained` (10**12 entries).
MAX_NUM_LABELS = 100_000


# Copied from modeling_hsanet.configuration_hsanet.check_base_kwargs
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


CODEBOOK_FACTORIZATIONS = ("paper", "single")
# Locality options (modeling_sweet/layers_sweet.py); the first value of each is the default, the first version's.
ATTENTION_LAYOUTS = ("full", "frame_group")
SPATIAL_QUERY_CONTEXTS = ("last", "matching")
TEMPORAL_QUERY_LAYOUTS = ("global", "per_location")
PIXEL_DECODERS = ("linear", "conv", "conv_per_frame")
# the pixel decoders that are `layers_sweet.ConvPixelDecoder` (the others: the per-patch linear head)
CONV_PIXEL_DECODERS = ("conv", "conv_per_frame")
CODEBOOK_PROJECTIONS = ("gcn", "linear")
# The paper's factorised codes (authors' code, v3): per branch, the factors in the order their ids come in a token's
# ids, each as (name, word classes of its words, nearest codes it averages). A spatial token is 2 adjectives + 1 noun,
# a temporal token 1 verb + 1 adverb; each factor quantises its own part of the token (see LanguageCodebookQuantizer).
CODEBOOK_FACTORS = {
    "spatial": (("adjective", ("ADJ",), 2), ("noun", ("NOUN",), 1)),
    "temporal": (("verb", ("VERB",), 1), ("adverb", ("ADV",), 1)),
}
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
        codebook_dim (`int`, *optional*, defaults to 256): width of the L2-normalised quantisation space; with
            factorised codes each factor quantises its own `codebook_dim / number of factors` part of it.
        codebook_factorization (`str`, *optional*, defaults to `"paper"`): `"paper"`: factorised codes as the
            authors' code (`CODEBOOK_FACTORS`): a spatial token is 3 ids (2 adjectives + 1 noun), a temporal token 2
            (1 verb + 1 adverb), so `spatial_ids` is `(batch, num_spatial_queries, 3)` and `temporal_ids`
            `(batch, num_temporal_queries, 2)`; `"single"`: one word per token, ids `(batch, length)` (the first
            version). A `config.json` written before this field existed loads as `"single"`.
        codebook_projection (`str`, *optional*, defaults to `"gcn"`): how code vectors come from the frozen word
            embeddings: `"gcn"`, two `torch_geometric` `GCNConv` layers over a word co-occurrence graph (the authors';
            without a graph, on self-loops only, it is a per-word 2-layer MLP); `"linear"`, one linear map (the first
            version). A `config.json` written before this field existed loads as `"linear"`.
        codebook_gcn_hidden_size (`int`, *optional*, defaults to 256): width of the GCN's hidden layer.
        spatial_factor_sizes (`list[int]`, *optional*): with factorised codes, how many of `spatial_words` (in order)
            belong to each factor (adjectives, then nouns); `None` splits the codebook evenly. Set by
            `SweetTokenizerModel.from_language_model`.
        temporal_factor_sizes (`list[int]`, *optional*): the same for `temporal_words` (verbs, then adverbs).
        spatial_graph_num_edges (`int`, *optional*, defaults to 0): directed edges of the spatial codebook's
            co-occurrence graph (saved with the weights); 0 = self-loops only. Set by
            `SweetTokenizerModel.set_codebook_graph`.
        temporal_graph_num_edges (`int`, *optional*, defaults to 0): the same for the temporal codebook.
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
        vocabulary_max_words_per_class (`int`, *optional*): after the other filters, keep only this many words of
            each word class (adjectives, nouns, verbs, adverbs): those of the captions given to
            `SweetTokenizerModel.from_language_model` first, then the most frequent (`wordfreq`; see
            `codebook_sweet.most_frequent_per_class`), to size a codebook to the data; `None` keeps every word.
        encoder_attention (`str`, *optional*, defaults to `"full"`): `"full"`, joint attention over all positions of
            a clip (the first version); `"frame_group"`, attention within each frame group, as the authors (frame
            groups then mix only in the temporal branch and the spatial queries' time average).
        encoder_window_size (`int`, *optional*): with `encoder_attention="frame_group"`, even encoder layers attend
            within `encoder_window_size x encoder_window_size` windows of patches (odd layers: the whole frame group),
            the authors' alternation (window 8); must divide `image_size / patch_size`. `None`: no windows.
        spatial_query_context (`str`, *optional*, defaults to `"last"`): what the spatial query layers read: `"last"`,
            the encoder's output, time-averaged; `"matching"`, layer `i` of `num_query_layers` reads the matching
            encoder layer (evenly spread, the last reads the output), time-averaged, as the authors.
        temporal_queries (`str`, *optional*, defaults to `"global"`): `"global"`, `num_temporal_queries` queries
            attending to all tube positions; `"per_location"`, one query per patch location reading that location's
            temporal steps only (the authors'; needs `num_temporal_queries = (image_size / patch_size)**2`).
        decoder_attention (`str`, *optional*, defaults to `"full"`): `"full"`, decoder self-attention over all
            positions; `"frame_group"`, within each frame group, each decoder layer followed by a causal layer along
            the frame groups of each location (the authors' per-location temporal layers).
        pixel_decoder (`str`, *optional*, defaults to `"linear"`): `"linear"`, a linear map per patch (the first
            version); `"conv"`, diffusers' VAE `Decoder` (`UpDecoderBlock2D` blocks) on each frame group's patch
            grid, a tube's frames as its output channels (`layers_sweet.ConvPixelDecoder`; `patch_size` must be a
            power of 2); `"conv_per_frame"`, the same decoder drawing one frame at a time from one state per frame (a
            linear map per frame of a tube, each starting as the identity), so that every frame goes through the
            weights that images train: with `"conv"` the first and last frames of each tube were 2-3 dB worse than the
            middle ones, and the demo's clips gained about 1 dB (README). The authors train their pixel decoder in a
            second stage, encoder and quantisers frozen: `training_sweet.freeze_for_decoder_stage`.
        pixel_decoder_channels (`list[int]`, *optional*): widths of the convolutional pixel decoder's levels, full
            resolution first, `log2(patch_size) + 1` of them; `None`: 32, 64, 128, 128, ...
        pixel_decoder_layers_per_block (`int`, *optional*, defaults to 1): ResNet layers per up block, minus one (as
            diffusers' `Decoder`); 0 gives one ResNet layer per block.
        pixel_decoder_norm_groups (`int`, *optional*, defaults to 32): GroupNorm groups of the convolutional pixel
            decoder; must divide every width.
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
        codebook_factorization: str | None = None,
        codebook_projection: str | None = None,
        codebook_gcn_hidden_size: int = 256,
        spatial_factor_sizes: list[int] | None = None,
        temporal_factor_sizes: list[int] | None = None,
        spatial_graph_num_edges: int = 0,
        temporal_graph_num_edges: int = 0,
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
        vocabulary_max_words_per_class: int | None = None,
        encoder_attention: str = "full",
        encoder_window_size: int | None = None,
        spatial_query_context: str = "last",
        temporal_queries: str = "global",
        decoder_attention: str = "full",
        pixel_decoder: str = "linear",
        pixel_decoder_channels: list[int] | None = None,
        pixel_decoder_layers_per_block: int = 1,
        pixel_decoder_norm_groups: int = 32,
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
        # `None`: the default, unless the values come from a config.json written before these fields existed (it has
        # `transformers_version`), whose model had one word per token and linear code vectors.
        from_earlier_file = "transformers_version" in kwargs
        if codebook_factorization is None:
            codebook_factorization = "single" if from_earlier_file else "paper"
        if codebook_projection is None:
            codebook_projection = "linear" if from_earlier_file else "gcn"
        self.codebook_factorization = codebook_factorization
        self.codebook_projection = codebook_projection
        self.codebook_gcn_hidden_size = codebook_gcn_hidden_size
        for argument, sizes in (("spatial_factor_sizes", spatial_factor_sizes),
                                ("temporal_factor_sizes", temporal_factor_sizes)):
            if sizes is not None and not isinstance(sizes, (list, tuple)):
                raise ValueError(f"SweetTokenizerConfig: `{argument}` must be a list of integers or None, got a "
                                 f"{type(sizes).__name__}")
        self.spatial_factor_sizes = list(spatial_factor_sizes) if spatial_factor_sizes is not None else None
        self.temporal_factor_sizes = list(temporal_factor_sizes) if temporal_factor_sizes is not None else None
        self.spatial_graph_num_edges = spatial_graph_num_edges
        self.temporal_graph_num_edges = temporal_graph_num_edges
        for argument, words in (("spatial_words", spatial_words), ("temporal_words", temporal_words)):
            if words is not None and not isinstance(words, (list, tuple)):
                raise ValueError(f"SweetTokenizerConfig: `{argument}` must be a non-empty list of strings or None, "
                                 f"got a {type(words).__name__}")
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
        self.vocabulary_max_words_per_class = vocabulary_max_words_per_class
        self.encoder_attention = encoder_attention
        self.encoder_window_size = encoder_window_size
        self.spatial_query_context = spatial_query_context
        self.temporal_queries = temporal_queries
        self.decoder_attention = decoder_attention
        self.pixel_decoder = pixel_decoder
        if pixel_decoder_channels is not None and not isinstance(pixel_decoder_channels, (list, tuple)):
            raise ValueError("SweetTokenizerConfig: `pixel_decoder_channels` must be a list of integers or None, got "
                             f"a {type(pixel_decoder_channels).__name__}")
        self.pixel_decoder_channels = list(pixel_decoder_channels) if pixel_decoder_channels is not None else None
        self.pixel_decoder_layers_per_block = pixel_decoder_layers_per_block
        self.pixel_decoder_norm_groups = pixel_decoder_norm_groups
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
        check_base_kwargs("SweetTokenizerConfig", kwargs)  # before transformers builds `id2label` (a huge one hangs)
        try:
            super().__init__(**kwargs)
        except StrictDataclassError as error:  # transformers' own fields (e.g. `return_dict`): a ValueError
            raise ValueError(f"SweetTokenizerConfig: {error}") from error
        self._validate()

    # Copied from modeling_hsanet.configuration_hsanet.HSANetConfig.from_dict
    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """`PreTrainedConfig.from_dict`; the saved `custom_pipelines` leave out the tasks this package registered in
        this process, which `pipeline()` then serves without `trust_remote_code` (`drop_registered_pipelines`)."""
        if config_dict.get("custom_pipelines"):
            config_dict = {**config_dict,
                           "custom_pipelines": drop_registered_pipelines(cls, config_dict["custom_pipelines"])}
        return super().from_dict(config_dict, **kwargs)

    def to_dict(self) -> dict:
        output = super().to_dict()
        # transformers' `custom_object_save` takes every class whose name contains "Tokenizer" for a (slow, fast)
        # text-tokenizer pair and writes `auto_map` entries as pairs; SweetTokenizerConfig / SweetTokenizerModel are
        # a config and a model: keep their entries plain, or `trust_remote_code` loading fails.
        if output.get("auto_map"):
            output["auto_map"] = {auto_class: reference[0] if isinstance(reference, (list, tuple)) else reference
                                  for auto_class, reference in output["auto_map"].items()}
        return output

    def codebook_factors(self, branch: str) -> tuple[tuple[str, tuple[str, ...], int], ...]:
        """The factors of a branch's codes, in id order, as `(name, word classes, nearest codes averaged)`:
        `CODEBOOK_FACTORS[branch]` with `codebook_factorization="paper"`, one factor named after the branch else."""
        if self.codebook_factorization == "paper":
            return CODEBOOK_FACTORS[branch]
        classes = tuple(word_class for _, classes, _ in CODEBOOK_FACTORS[branch] for word_class in classes)
        return ((branch, classes, 1),)

    def ids_per_token(self, branch: str) -> int:
        """Ids of one token of a branch (3 spatial, 2 temporal with the paper's factorisation; 1 for `"single"`,
        whose ids have no trailing axis)."""
        return sum(count for _, _, count in self.codebook_factors(branch))

    def codebook_factor_sizes(self, branch: str) -> list[int]:
        """Words of each factor of a branch's codebook, in order (consecutive blocks of `{branch}_words`)."""
        size = getattr(self, f"{branch}_codebook_size")
        if len(self.codebook_factors(branch)) == 1:
            return [size]
        sizes = getattr(self, f"{branch}_factor_sizes")
        return list(sizes) if sizes is not None else [size - size // 2, size // 2]

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

    def _validate_locality(self, require) -> None:
        """The locality options (see the class docstring); `require(condition, argument, expected)` raises."""
        for argument, choices in (("encoder_attention", ATTENTION_LAYOUTS), ("decoder_attention", ATTENTION_LAYOUTS),
                                  ("spatial_query_context", SPATIAL_QUERY_CONTEXTS),
                                  ("temporal_queries", TEMPORAL_QUERY_LAYOUTS), ("pixel_decoder", PIXEL_DECODERS)):
            require(getattr(self, argument) in choices, argument, f"one of {choices}")
        window = self.encoder_window_size
        if window is not None:
            require(isinstance(window, int) and not isinstance(window, bool) and window >= 1
                    and self.grid_size % window == 0, "encoder_window_size",
                    f"None or an integer dividing image_size / patch_size = {self.grid_size}")
            require(self.encoder_attention == "frame_group", "encoder_window_size",
                    "None with encoder_attention='full' (windows are a frame_group option)")
        if self.temporal_queries == "per_location":
            require(self.num_temporal_queries == self.num_patches, "num_temporal_queries",
                    f"(image_size / patch_size)**2 = {self.num_patches} with temporal_queries='per_location' (one "
                    "query per patch location)")
        for argument, least in (("pixel_decoder_layers_per_block", 0), ("pixel_decoder_norm_groups", 1)):
            value = getattr(self, argument)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= least, argument,
                    f"an integer >= {least}")
        channels = self.pixel_decoder_channels
        if channels is not None:
            require(len(channels) > 0 and all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 16_384
                                              for c in channels), "pixel_decoder_channels",
                    "None or a list of integers in [1, 16384]")
        if self.pixel_decoder in CONV_PIXEL_DECODERS:
            levels = int(math.log2(self.patch_size)) + 1
            require(2 ** (levels - 1) == self.patch_size, "patch_size",
                    "a power of 2 with a convolutional pixel_decoder (one 2x upsampling per level)")
            require(channels is None or len(channels) == levels, "pixel_decoder_channels",
                    f"None or {levels} widths (log2(patch_size) + 1 levels) with patch_size={self.patch_size}")
            widths = self.pixel_decoder_widths()
            require(all(width % self.pixel_decoder_norm_groups == 0 for width in widths), "pixel_decoder_norm_groups",
                    f"a divisor of every pixel decoder width {widths}")

    def pixel_decoder_widths(self) -> list[int]:
        """Widths of the convolutional pixel decoder's `log2(patch_size) + 1` levels, full resolution first:
        `pixel_decoder_channels`, or by default 32, 64, 128, 128, ... (patch 8: [32, 64, 128, 128])."""
        if self.pixel_decoder_channels is not None:
            return list(self.pixel_decoder_channels)
        return [min(128, 32 * 2**level) for level in range(int(math.log2(self.patch_size)) + 1)]

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
        for argument, bound in UPPER_BOUNDS.items():
            value = getattr(self, argument, None)
            require(not isinstance(value, int) or value <= bound, argument,
                    f"at most {bound:,} (UPPER_BOUNDS in configuration_sweet.py)")
        require(self.image_size % self.patch_size == 0, "image_size", f"divisible by patch_size={self.patch_size}")
        require((self.num_frames - 1) % self.temporal_patch_size == 0, "num_frames",
                f"1 + a multiple of temporal_patch_size={self.temporal_patch_size}")
        require(self.hidden_size % self.num_attention_heads == 0, "hidden_size",
                f"divisible by num_attention_heads={self.num_attention_heads}")
        if self.num_frame_groups * self.num_patches > MAX_POSITIONS:
            raise ValueError(
                f"SweetTokenizerConfig: a clip has num_frame_groups * (image_size / patch_size)**2 = "
                f"{self.num_frame_groups * self.num_patches:,} positions, above MAX_POSITIONS={MAX_POSITIONS:,}; "
                "raise `patch_size` / `temporal_patch_size` or lower `image_size` / `num_frames`"
            )
        self._validate_locality(require)
        require(self.codebook_factorization in CODEBOOK_FACTORIZATIONS, "codebook_factorization",
                f"one of {CODEBOOK_FACTORIZATIONS}")
        require(self.codebook_projection in CODEBOOK_PROJECTIONS, "codebook_projection",
                f"one of {CODEBOOK_PROJECTIONS}")
        require(isinstance(self.codebook_gcn_hidden_size, int) and self.codebook_gcn_hidden_size >= 1,
                "codebook_gcn_hidden_size", "an integer >= 1")
        for branch in ("spatial", "temporal"):
            edges = f"{branch}_graph_num_edges"
            require(isinstance(getattr(self, edges), int) and getattr(self, edges) >= 0, edges, "an integer >= 0")
            factors = self.codebook_factors(branch)
            if len(factors) == 1:
                continue
            require(self.codebook_dim % len(factors) == 0, "codebook_dim",
                    f"divisible by the {len(factors)} factors of codebook_factorization='paper'")
            argument, sizes = f"{branch}_factor_sizes", getattr(self, f"{branch}_factor_sizes")
            if sizes is not None:
                require(len(sizes) == len(factors) and all(isinstance(n, int) for n in sizes), argument,
                        f"{len(factors)} integers (words of the {', '.join(name for name, _, _ in factors)} factors)")
                require(sum(sizes) == getattr(self, f"{branch}_codebook_size"), argument,
                        f"a split of the {getattr(self, f'{branch}_codebook_size')} {branch} words")
            for (name, _, count), size in zip(factors, self.codebook_factor_sizes(branch)):
                require(size >= count, argument if sizes is not None else f"{branch}_codebook_size",
                        f"large enough for {count} {name} code(s) per token (the {name} factor has {size} words)")
        for argument in ("commitment_cost", "entropy_loss_weight", "entropy_temperature", "vq_loss_weight",
                         "initializer_range", "layer_norm_eps"):
            value = getattr(self, argument)
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                    argument, "a finite number")
        require(self.initializer_range >= 0, "initializer_range", ">= 0")
        require(self.layer_norm_eps > 0, "layer_norm_eps", "> 0")
        require(self.language_model_name_or_path is None or isinstance(self.language_model_name_or_path, str),
                "language_model_name_or_path", "a string or None")
        problem_types = (None, "regression", "single_label_classification", "multi_label_classification")
        require(self.problem_type in problem_types, "problem_type", f"one of {problem_types}")
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
        require(self.vocabulary_max_words_per_class is None
                or (isinstance(self.vocabulary_max_words_per_class, int)
                    and not isinstance(self.vocabulary_max_words_per_class, bool)
                    and self.vocabulary_max_words_per_class >= 2), "vocabulary_max_words_per_class",
                "None or an integer >= 2 (a spatial token takes 2 adjectives)")
