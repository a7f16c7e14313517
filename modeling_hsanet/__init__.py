"""HSA-Net for Hugging Face transformers.

Importing this package registers HSA-Net with the Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForSequenceClassification` for property prediction, `AutoModelForCausalLM` for molecule-to-text,
`AutoFeatureExtractor`, `AutoProcessor`) and the pipelines `molecular-property-prediction`,
`molecular-feature-extraction` and `molecule-captioning`.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoProcessor,
)
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_hsanet import HSANetConfig
from .featurization_hsanet import MolecularGraph, smiles_batch_to_graphs, smiles_to_graph
from .modeling_hsanet import (
    CrossAttentionProjector,
    GraphMambaProjector,
    HierarchicalAdaptiveProjector,
    HSANetForMolecularPropertyPrediction,
    HSANetModel,
    HSANetPreTrainedModel,
    SourceAwareFusion,
)
from .modeling_text_hsanet import HSANetCausalLMOutputWithPast, HSANetForConditionalGeneration, HSANetTextProjector
from .pipeline_hsanet import (
    MolecularFeatureExtractionPipeline,
    MolecularPropertyPredictionPipeline,
    MoleculeCaptioningPipeline,
)
from .processing_hsanet import HSANetFeatureExtractor, HSANetProcessor


def _register() -> None:
    AutoConfig.register(HSANetConfig.model_type, HSANetConfig, exist_ok=True)
    AutoModel.register(HSANetConfig, HSANetModel, exist_ok=True)
    AutoModelForSequenceClassification.register(HSANetConfig, HSANetForMolecularPropertyPrediction, exist_ok=True)
    AutoModelForCausalLM.register(HSANetConfig, HSANetForConditionalGeneration, exist_ok=True)
    AutoFeatureExtractor.register(HSANetConfig, HSANetFeatureExtractor, exist_ok=True)
    AutoProcessor.register(HSANetConfig, HSANetProcessor, exist_ok=True)
    # `save_pretrained` / `push_to_hub` also write the code and an `auto_map`, so a saved folder or Hub repo loads
    # with `trust_remote_code=True` where this package is not installed (rdkit and torch_geometric still needed).
    # A model's folder also gets its base model's `auto_map` entry and `custom_pipelines`, derived from the pipeline
    # registrations below (`remote_code_hsanet`).
    HSANetConfig.register_for_auto_class()
    HSANetModel.register_for_auto_class("AutoModel")
    HSANetForMolecularPropertyPrediction.register_for_auto_class("AutoModelForSequenceClassification")
    HSANetForConditionalGeneration.register_for_auto_class("AutoModelForCausalLM")
    HSANetFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
    HSANetProcessor.register_for_auto_class("AutoProcessor")
    PIPELINE_REGISTRY.register_pipeline(
        "molecular-property-prediction",
        pipeline_class=MolecularPropertyPredictionPipeline,
        pt_model=AutoModelForSequenceClassification,
        type="multimodal",
    )
    PIPELINE_REGISTRY.register_pipeline(
        "molecular-feature-extraction",
        pipeline_class=MolecularFeatureExtractionPipeline,
        pt_model=AutoModel,
        type="multimodal",
    )
    PIPELINE_REGISTRY.register_pipeline(
        "molecule-captioning",
        pipeline_class=MoleculeCaptioningPipeline,
        pt_model=AutoModelForCausalLM,
        type="multimodal",
    )


_register()

__all__ = [
    "HSANetConfig",
    "HSANetModel",
    "HSANetPreTrainedModel",
    "HSANetForMolecularPropertyPrediction",
    "HSANetForConditionalGeneration",
    "HSANetCausalLMOutputWithPast",
    "HSANetTextProjector",
    "HSANetFeatureExtractor",
    "HSANetProcessor",
    "CrossAttentionProjector",
    "GraphMambaProjector",
    "HierarchicalAdaptiveProjector",
    "SourceAwareFusion",
    "MolecularGraph",
    "MolecularPropertyPredictionPipeline",
    "MolecularFeatureExtractionPipeline",
    "MoleculeCaptioningPipeline",
    "smiles_to_graph",
    "smiles_batch_to_graphs",
]
