"""What a converter hands to ingestion: a :class:`Reading` (features as they are read, the
frame they are in) and a :class:`ConversionReport` the user sees."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cim.feature import Feature

if TYPE_CHECKING:  # pyproj loads with the first frame, not with every report (the IFC child starts its kernel first)
    from cim.crs import Frame


@dataclass
class ConversionReport:
    """Non-fatal problems and facts about one conversion, shown to the user (CLI, job status)."""

    source: str = ""
    format: str = ""
    georeferencing: str = ""
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def warn(self, message: str) -> None:
        if len(self.warnings) < 200:
            self.warnings.append(message)
        elif len(self.warnings) == 200:
            self.warnings.append("more warnings were left out")

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "georeferencing": self.georeferencing,
                "warnings": list(self.warnings), "counts": dict(self.counts), "skipped": dict(self.skipped)}


class Reading(Protocol):
    """One input file being read.

    ``features()`` yields features as the file is read (streaming). ``frame`` is valid as soon as
    the first feature has been yielded (a converter raises :class:`cim.errors.CrsMissingError`
    before yielding anything when it cannot place the data). ``bytes_read``/``total_bytes`` drive
    progress bars.
    """

    path: Path
    report: ConversionReport
    bytes_read: int
    total_bytes: int

    @property
    def frame(self) -> Frame: ...

    def features(self) -> Iterator[Feature]: ...
