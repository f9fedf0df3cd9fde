"""Notebook widgets over manifests and local trees: gallery, sampler, pair viewer, overview, augmented pairs.

Images come from a local tree (:class:`LocalImages`) or lazily from S3 through the same source
the fetch uses (:class:`S3Images`), with thumbnails made once and cached on disk.
"""

from __future__ import annotations

from ._sampling import UsedSample, draw_sample, use_sample
from .augpairs import AugmentPairs
from .embedding_map import EmbeddingMap
from .errors import ErrorAnalysis
from .gallery import Gallery
from .imagesource import LocalImages, S3Images, image_source
from .overview import Overview, image_stats, overview_table, plot_overview
from .pairs import PairItem, PairViewer, pair_items
from .sampler import Sampler
from .similar import Similar
from .thumbnails import ThumbnailCache, make_thumbnail

__all__ = [
    "AugmentPairs",
    "EmbeddingMap",
    "ErrorAnalysis",
    "Gallery",
    "LocalImages",
    "Overview",
    "PairItem",
    "PairViewer",
    "S3Images",
    "Sampler",
    "Similar",
    "ThumbnailCache",
    "UsedSample",
    "draw_sample",
    "image_source",
    "image_stats",
    "make_thumbnail",
    "overview_table",
    "pair_items",
    "plot_overview",
    "use_sample",
]
