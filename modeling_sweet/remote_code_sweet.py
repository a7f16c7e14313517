"""What a saved SweetTokenizer folder needs to load with `trust_remote_code=True` where this package is not installed:
`custom_pipelines` (`image-tokenization`, `video-tokenization`) with the pipelines' code, and `auto_map` entries.
A copy of `modeling_hsanet/remote_code_hsanet.py` (each model folder is self-contained; `utils/check_copies.py`
keeps the copies equal), whose docstring explains the rules.
"""

from __future__ import annotations

import os

from transformers import PreTrainedModel
from transformers.dynamic_module_utils import custom_object_save, get_class_from_dynamic_module


# Copied from modeling_hsanet.remote_code_hsanet._package
def _package(cls: type) -> str:
    return cls.__module__.rpartition(".")[0]


# Copied from modeling_hsanet.remote_code_hsanet._reference
def _reference(cls: type) -> str:
    """`module.Class`, as `auto_map` and `custom_pipelines` name the code of a saved folder."""
    return f"{cls.__module__.rpartition('.')[2]}.{cls.__name__}"


# Copied from modeling_hsanet.remote_code_hsanet.registered_pipelines
def registered_pipelines(package: str) -> dict[str, dict]:
    """Task -> `PIPELINE_REGISTRY` entry (`impl`, `pt`, `type`) of the pipelines registered from `package`."""
    from transformers.pipelines import PIPELINE_REGISTRY

    return {task: info for task, info in PIPELINE_REGISTRY.supported_tasks.items()
            if isinstance(info.get("impl"), type) and _package(info["impl"]) == package}


# Copied from modeling_hsanet.remote_code_hsanet.drop_registered_pipelines
def drop_registered_pipelines(config_class: type, custom_pipelines: dict) -> dict:
    """A saved config's `custom_pipelines` less the tasks this package registered in this process (it is imported,
    not loaded as remote code), so that `pipeline(task, model=folder)` asks for `trust_remote_code` only where it
    would run the folder's code. A config class loaded as remote code is of another package (`transformers_modules.`)
    and keeps them all."""
    if not isinstance(custom_pipelines, dict) or not all(
        isinstance(entry, dict) and isinstance(entry.get("impl"), str) for entry in custom_pipelines.values()
    ):
        raise ValueError(f"{config_class.__name__}: `custom_pipelines` must map each task to an entry with an `impl` "
                         "('module.Class'), as `Pipeline.save_pretrained` writes it; got "
                         f"{str(custom_pipelines)[:200]}")
    registered = registered_pipelines(_package(config_class))
    return {task: entry for task, entry in custom_pipelines.items() if task not in registered}


# Copied from modeling_hsanet.remote_code_hsanet._pipeline_entry
def _pipeline_entry(info: dict) -> dict:
    """A registry entry as `Pipeline.save_pretrained` writes it into `config.custom_pipelines`."""
    return {**info, "impl": _reference(info["impl"]), "pt": tuple(auto_class.__name__ for auto_class in info["pt"])}


# Copied from modeling_hsanet.remote_code_hsanet._listed_pipelines
def _listed_pipelines(model: PreTrainedModel) -> dict[str, dict]:
    """Loaded as remote code: registry-like entries of the pipelines the config lists, their code fetched from where
    the model came from, as `pipeline()` fetches it; a task whose code cannot be fetched is dropped rather than
    written without its code."""
    import transformers

    found = {}
    for task, entry in (getattr(model.config, "custom_pipelines", None) or {}).items():
        try:
            impl = get_class_from_dynamic_module(entry["impl"], model.name_or_path)
            auto_classes = tuple(getattr(transformers, auto) for auto in entry.get("pt", ()))
        except (OSError, ImportError, ValueError, AttributeError):
            continue
        found[task] = {**entry, "impl": impl, "pt": auto_classes}
    return found


# Copied from modeling_hsanet.remote_code_hsanet.add_remote_code_entries
def add_remote_code_entries(model: PreTrainedModel, save_directory: str | os.PathLike) -> None:
    """Called by `save_pretrained` before transformers' own: writes the base model's `auto_map` entry and
    `custom_pipelines` (every task whose Auto class loads the checkpoint) into `model.config`, and copies the
    pipelines' code into `save_directory`."""
    config = model.config
    auto_map = dict(getattr(config, "auto_map", None) or {})
    for loadable in (type(model), type(model.base_model)):
        if loadable._auto_class is not None:
            auto_map[loadable._auto_class] = _reference(loadable)
    config.auto_map = auto_map
    served = registered_pipelines(_package(type(model))) or _listed_pipelines(model)
    served = {task: info for task, info in served.items()
              if any(auto_class.__name__ in auto_map for auto_class in info["pt"])}
    os.makedirs(save_directory, exist_ok=True)
    for info in served.values():
        custom_object_save(info["impl"], save_directory)
    config.custom_pipelines = {task: _pipeline_entry(info) for task, info in served.items()}


# Copied from modeling_hsanet.remote_code_hsanet.keep_only_its_task
def keep_only_its_task(pipe, save_directory: str | os.PathLike) -> None:
    """After `Pipeline.save_pretrained`: `config.json` lists the pipeline's own task only (the model's save listed
    every task the checkpoint serves), as transformers means a saved pipeline to, so that
    `pipeline(model=folder, trust_remote_code=True)` reads the task from it."""
    config = pipe.model.config
    entries = getattr(config, "custom_pipelines", None) or {}
    if pipe.task in entries and len(entries) > 1:
        config.custom_pipelines = {pipe.task: entries[pipe.task]}
        config.save_pretrained(save_directory)
