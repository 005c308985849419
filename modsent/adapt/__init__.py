"""Language adaptation (step 3): continued masked-LM training of the source model with the new vocabulary.

``modsent adapt``: :class:`~modsent.adapt.config.AdaptConfig` and :func:`modsent.adapt.stage.run` (``run_adapt``),
on the shared training core (:mod:`modsent.train`); :mod:`modsent.adapt.data` packs and masks the text.
"""

from modsent.adapt.config import AdaptConfig, ModelSourceError
from modsent.adapt.stage import run as run_adapt

__all__ = ["AdaptConfig", "ModelSourceError", "run_adapt"]
