"""SweetTokenizer for Hugging Face transformers (work in progress: model and codebooks; processors, pipelines and
the training curriculum land next). Importing this package registers it with `AutoConfig` and `AutoModel`."""

from transformers import AutoConfig, AutoModel

from .configuration_sweet import SweetTokenizerConfig
from .modeling_sweet import (
    LanguageCodebookQuantizer,
    SweetTokenizerEncoderOutput,
    SweetTokenizerModel,
    SweetTokenizerOutput,
    SweetTokenizerPreTrainedModel,
)

AutoConfig.register(SweetTokenizerConfig.model_type, SweetTokenizerConfig, exist_ok=True)
AutoModel.register(SweetTokenizerConfig, SweetTokenizerModel, exist_ok=True)

__all__ = [
    "SweetTokenizerConfig",
    "SweetTokenizerModel",
    "SweetTokenizerPreTrainedModel",
    "SweetTokenizerEncoderOutput",
    "SweetTokenizerOutput",
    "LanguageCodebookQuantizer",
]
