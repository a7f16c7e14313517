"""SweetTokenizer for Hugging Face transformers.

Importing this package registers SweetTokenizer with `AutoConfig`, `AutoModel`, `AutoImageProcessor` and
`AutoVideoProcessor`, and the pipelines `image-tokenization` and `video-tokenization`. The training recipe
(`SweetTokenizerTrainer`, `SweetTokenizerTrainingArguments`) is in `training_sweet`, beside the tokenizer.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel
from transformers.models.auto.video_processing_auto import AutoVideoProcessor  # the top-level name needs torchvision
from transformers.pipelines import PIPELINE_REGISTRY

from .codebook_sweet import LanguageCodebook, build_language_codebook
from .configuration_sweet import SweetTokenizerConfig
from .image_processing_sweet import SweetImageProcessor
from .modeling_sweet import (
    LanguageCodebookQuantizer,
    SweetTokenizerEncoderOutput,
    SweetTokenizerModel,
    SweetTokenizerOutput,
    SweetTokenizerPreTrainedModel,
)
from .pipeline_sweet import ImageTokenizationPipeline, VideoTokenizationPipeline
from .training_sweet import SweetCurriculumCollator, SweetTokenizerTrainer, SweetTokenizerTrainingArguments
from .video_processing_sweet import SweetVideoProcessor


def _register() -> None:
    AutoConfig.register(SweetTokenizerConfig.model_type, SweetTokenizerConfig, exist_ok=True)
    AutoModel.register(SweetTokenizerConfig, SweetTokenizerModel, exist_ok=True)
    AutoImageProcessor.register(
        SweetTokenizerConfig,
        image_processor_classes={"pil": SweetImageProcessor, "torchvision": SweetImageProcessor},
        exist_ok=True,
    )
    # AutoVideoProcessor asks for the "torchvision" backend by default; SweetVideoProcessor needs no torchvision.
    AutoVideoProcessor.register(
        SweetTokenizerConfig,
        video_processor_classes={"torchvision": SweetVideoProcessor, "pil": SweetVideoProcessor},
        exist_ok=True,
    )
    # `save_pretrained` / `push_to_hub` also write the code and an `auto_map`, so a saved folder or Hub repo loads
    # with `trust_remote_code=True` where this package is not installed. A model's folder also gets
    # `custom_pipelines`, derived from the pipeline registrations below (`remote_code_sweet`).
    SweetTokenizerConfig.register_for_auto_class()
    SweetTokenizerModel.register_for_auto_class("AutoModel")
    SweetImageProcessor.register_for_auto_class("AutoImageProcessor")
    SweetVideoProcessor.register_for_auto_class("AutoVideoProcessor")
    PIPELINE_REGISTRY.register_pipeline("image-tokenization", pipeline_class=ImageTokenizationPipeline,
                                        pt_model=AutoModel, type="image")
    PIPELINE_REGISTRY.register_pipeline("video-tokenization", pipeline_class=VideoTokenizationPipeline,
                                        pt_model=AutoModel, type="video")


_register()

__all__ = [
    "SweetTokenizerConfig",
    "SweetTokenizerModel",
    "SweetTokenizerPreTrainedModel",
    "SweetTokenizerEncoderOutput",
    "SweetTokenizerOutput",
    "LanguageCodebookQuantizer",
    "LanguageCodebook",
    "build_language_codebook",
    "SweetImageProcessor",
    "SweetVideoProcessor",
    "ImageTokenizationPipeline",
    "VideoTokenizationPipeline",
    "SweetCurriculumCollator",
    "SweetTokenizerTrainer",
    "SweetTokenizerTrainingArguments",
]
