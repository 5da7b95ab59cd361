"""Report warnings given a limited number of times: once per unknown class, unit or skipped
construct, the first five unresolved references, the first three derived ids.

:class:`Notes` remembers which warnings of a :class:`cim.conversion.ConversionReport` were limited
ones (and under which key), so that the parallel reader can merge the reports of file chunks read
in separate processes with the same limits as one sequential read (:func:`merge_report`).
"""
from __future__ import annotations

from collections.abc import Hashable

from cim.conversion import ConversionReport


class Notes:
    """Limited warnings into ``report``."""

    def __init__(self, report: ConversionReport) -> None:
        self.report = report
        self.counts: dict[Hashable, int] = {}
        #: index in ``report.warnings`` -> (key, limit) of the limited warnings
        self.keyed: dict[int, tuple[Hashable, int]] = {}

    def warn(self, key: Hashable, message: str, limit: int = 1) -> None:
        """Warn with ``message`` unless ``limit`` warnings with ``key`` were given already."""
        n = self.counts.get(key, 0)
        if n >= limit:
            return
        self.counts[key] = n + 1
        self.keyed[len(self.report.warnings)] = (key, limit)
        self.report.warn(message)


def merge_report(into: Notes, report: ConversionReport, keyed: dict[int, tuple[Hashable, int]]) -> None:
    """Add the counts, skips and warnings of ``report`` (a later part of the same file) to
    ``into``; limited warnings keep their limits over the whole file."""
    target = into.report
    for i, message in enumerate(report.warnings):
        hit = keyed.get(i)
        if hit is not None:
            into.warn(hit[0], message, hit[1])
        elif i < 200:  # index 200 holds the report's own "more warnings were left out"
            target.warn(message)
    for key, n in report.skipped.items():
        target.skipped[key] = target.skipped.get(key, 0) + n
    for key, n in report.counts.items():
        target.count(key, n)
