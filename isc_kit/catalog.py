"""The catalog: which image sets exist, their ids, key prefixes and regional buckets.

Values are the publisher's (see the download instructions); every place-naming value is a
default that :func:`isc_kit.config.resolve_source` lets the caller override.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

from .errors import ConfigError, UnknownSetError

DEFAULT_BUCKET = "drivendata-competition-fb-isc-data"

#: Region name -> suffix appended to the bucket name, and the AWS region it lives in.
REGIONS: dict[str, tuple[str, str]] = {
    "us-west": ("", "us-west-2"),
    "eu": ("-eu", "eu-central-1"),
    "asia": ("-asia", "ap-southeast-1"),
}
DEFAULT_REGION = "us-west"


@dataclass(frozen=True)
class ImageSet:
    """One set of the catalog: ``letter`` + ``digits`` zero-padded numbers in ``[first, last]``."""

    name: str
    letter: str
    digits: int
    first: int
    last: int
    prefix: str
    count: int
    approx_bytes: int
    metadata_name: str
    description: str

    @property
    def id_pattern(self) -> str:
        """Regular expression an image id of this set matches."""
        return rf"^{self.letter}\d{{{self.digits}}}$"

    def format_id(self, number: int) -> str:
        return f"{self.letter}{number:0{self.digits}d}"

    @property
    def first_id(self) -> str:
        return self.format_id(self.first)

    @property
    def last_id(self) -> str:
        return self.format_id(self.last)

    def parse_id(self, image_id: str) -> int:
        """Number of an id of this set; raises ConfigError for anything else."""
        if not re.fullmatch(self.id_pattern, image_id):
            raise ConfigError(
                f"{image_id!r} is not a {self.name} id (expected {self.first_id}..{self.last_id})"
            )
        number = int(image_id[1:])
        if not self.first <= number <= self.last:
            raise ConfigError(
                f"{image_id!r} is outside the {self.name} set ({self.first_id}..{self.last_id})"
            )
        return number

    def with_prefix(self, prefix: str) -> ImageSet:
        return replace(self, prefix=normalize_prefix(prefix))


GB = 1_000_000_000

SETS: dict[str, ImageSet] = {
    s.name: s
    for s in (
        ImageSet(
            "query",
            "Q",
            5,
            0,
            49_999,
            "all/query_images/",
            50_000,
            7 * GB,
            "query_images_metadata.csv",
            "Phase-1 queries: edited copies of references, and distractors",
        ),
        ImageSet(
            "reference",
            "R",
            6,
            0,
            999_999,
            "all/reference_images/",
            1_000_000,
            178 * GB,
            "reference_images_metadata.csv",
            "The reference collection queries are matched against",
        ),
        ImageSet(
            "training",
            "T",
            6,
            0,
            999_999,
            "all/training_images/",
            1_000_000,
            175 * GB,
            "training_images_metadata.csv",
            "Unlabelled images for training descriptors",
        ),
        ImageSet(
            "phase2",
            "Q",
            5,
            50_000,
            99_999,
            "all/query_images_phase2/",
            50_000,
            7 * GB,
            "query_images_phase2_metadata.csv",
            "Phase-2 (final) queries (the prefix is not certain in public sources: override it)",
        ),
    )
}


#: Sets isc_kit makes from the bucket's images (not in the bucket: not listed, never fetched from S3).
#: ``augmented``: `isc-kit augment` copies, ``A`` + the source's 6 digits + a 2-digit copy number.
DERIVED: dict[str, ImageSet] = {
    "augmented": ImageSet(
        "augmented", "A", 8, 0, 99_999_999, "augmented/training/", 0, 0, "", "isc-kit augment copies"
    )
}


#: Where the ground-truth files live in the bucket: the embedded S3 and the demo's params.yaml keep them
#: here. The publisher offers them for download from the competition's data page (and in the DISC21
#: release), so real users point at their local copy.
GROUND_TRUTH_PREFIX = "metadata/"
#: ``ISC_KIT_PHASE<n>_GROUND_TRUTH`` (a local path or an ``s3://`` URL) overrides a phase's default file.
GROUND_TRUTH_ENV = "ISC_KIT_PHASE{number}_GROUND_TRUTH"


@dataclass(frozen=True)
class Phase:
    """One phase of the challenge: which query set is scored, against which ground-truth file.

    The references are the same in both phases. ``ground_truth_name`` is the publisher's file name:
    ``public_ground_truth.csv`` for Phase 1 (the DrivenData download), ``final_ground_truth.csv``
    for Phase 2 (the name in the public DISC21 release, where Phase 1 is "dev" and Phase 2 "final").
    """

    number: int
    query_set: str
    ground_truth_name: str
    description: str

    @property
    def queries(self) -> ImageSet:
        return SETS[self.query_set]

    @property
    def env_name(self) -> str:
        return GROUND_TRUTH_ENV.format(number=self.number)

    def ground_truth_url(self, bucket: str = DEFAULT_BUCKET) -> str:
        """The default ground-truth location: ``s3://<bucket>/metadata/<name>``."""
        return f"s3://{base_bucket(bucket)}/{GROUND_TRUTH_PREFIX}{self.ground_truth_name}"

    def ground_truth(self, explicit: str | None = None, bucket: str = DEFAULT_BUCKET) -> str:
        """The ground-truth file to use: ``explicit``, else ``$ISC_KIT_PHASE<n>_GROUND_TRUTH``, else the default."""
        for value in (explicit, os.environ.get(self.env_name, "")):
            if value and value.strip():
                return value.strip()
        return self.ground_truth_url(bucket)


PHASES: dict[int, Phase] = {
    p.number: p
    for p in (
        Phase(
            1,
            "query",
            "public_ground_truth.csv",
            "Phase 1 (dev): queries Q00000-Q49999, public ground truth",
        ),
        Phase(
            2,
            "phase2",
            "final_ground_truth.csv",
            "Phase 2 (final): queries Q50000-Q99999, final ground truth",
        ),
    )
}


def get_phase(value: object) -> Phase:
    """The phase called ``value`` (``1``, ``2``, ``"2"``, ``"phase2"``); a one-line error otherwise."""
    text = str(value).strip().lower().removeprefix("phase")
    if isinstance(value, bool) or not text.isdigit() or int(text) not in PHASES:
        choices = "; ".join(f"{p.number} = {p.description}" for p in PHASES.values())
        raise ConfigError(f"unknown phase {value!r}; choose {choices}")
    return PHASES[int(text)]


def phase_of_set(set_name: str) -> Phase | None:
    """The phase whose queries ``set_name`` holds (None for references and training images)."""
    return next((p for p in PHASES.values() if p.query_set == set_name), None)


def normalize_prefix(prefix: str) -> str:
    """``'all/query_images'`` -> ``'all/query_images/'``; rejects absolute and ``..`` prefixes."""
    p = prefix.strip().lstrip("/")
    if any(part in ("..", ".") for part in p.split("/")):
        raise ConfigError(f"prefix {prefix!r} may not contain '.' or '..' parts")
    return p if not p or p.endswith("/") else p + "/"


def get_set(name: str) -> ImageSet:
    """The catalog entry for ``name``; a clear error listing the known names otherwise."""
    try:
        return SETS[name] if name in SETS else DERIVED[name]
    except KeyError:
        raise UnknownSetError(f"unknown set {name!r}; known sets: {', '.join(SETS)}") from None


def bucket_for_region(bucket: str, region: str) -> str:
    """Bucket name for a region: the publisher appends ``-eu`` or ``-asia`` to the base name."""
    try:
        suffix = REGIONS[region][0]
    except KeyError:
        raise ConfigError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}") from None
    return base_bucket(bucket) + suffix


_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


def valid_bucket_name(bucket: str) -> bool:
    """Whether ``bucket`` is a syntactically valid S3 bucket name."""
    return _BUCKET_NAME.fullmatch(bucket) is not None


def base_bucket(bucket: str) -> str:
    """The bucket name without a regional suffix."""
    for suffix, _ in REGIONS.values():
        if suffix and bucket.endswith(suffix):
            return bucket[: -len(suffix)]
    return bucket


def aws_region(region: str) -> str:
    """The AWS region code (``us-west-2``...) behind a catalog region name."""
    try:
        return REGIONS[region][1]
    except KeyError:
        raise ConfigError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}") from None
