"""Translate English paraphrase corpora into many languages with CTranslate2 NLLB (or Apertium) on Ray Data.

Public API: :func:`run_translate` and :class:`TranslateConfig` (the job), :func:`translate_sentences`
(a few sentences with the job's engine, without Ray), :class:`NllbTranslator` and
:class:`ApertiumTranslator` (one translator, usable without Ray), :func:`prepare_model` (find/convert the model),
:func:`load_source` (unique, length-sorted source sentences), :func:`check_translations`
(quality guards). Importing this package imports neither Ray nor CTranslate2.
"""

from modsent.translate.config import (
    ComputeConfig,
    DecodingConfig,
    ModelConfig,
    QualityConfig,
    RayConfig,
    TranslateConfig,
)
from modsent.translate.apertium import ApertiumTranslator
from modsent.translate.stage import LanguageSummary, TranslationResult, ray_session, translate_sentences
from modsent.translate.stage import run as run_translate
from modsent.translate.model import ModelError, PreparedModel, prepare_model, resolve_device
from modsent.translate.quality import QualityReport, check_translations
from modsent.translate.source import SourceCorpus, load_source
from modsent.translate.translator import NllbTokens, NllbTranslator

__all__ = [
    "ComputeConfig", "DecodingConfig", "ModelConfig", "QualityConfig", "RayConfig", "TranslateConfig",
    "LanguageSummary", "TranslationResult", "ray_session", "run_translate", "ModelError", "PreparedModel",
    "prepare_model", "resolve_device", "QualityReport", "check_translations", "SourceCorpus", "load_source",
    "NllbTokens", "NllbTranslator", "ApertiumTranslator", "translate_sentences",
]
