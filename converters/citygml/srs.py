"""Where a CityGML file's coordinates are: ``srsName`` declarations, their consistency, and the
frame the data is read in.

Rules (see docs/citygml.md):

* the CRS is the root ``gml:boundedBy/gml:Envelope/@srsName``, else the first ``srsName`` on any
  envelope or geometry of the first city object that has one;
* any later ``srsName`` naming a different CRS raises :class:`CrsContradictionError` naming both
  (spellings of the same EPSG code agree; a 2D code agrees with a compound code of the same
  horizontal CRS);
* a placement given by the user (``ConvertOptions.frame``) wins, with a warning if the file
  declared something else;
* without a usable CRS (none, or only a local engineering CRS such as ``#local-CRS-1``) and without
  a placement, :class:`CrsMissingError` tells the user to pass ``--crs`` or ``--origin``.
"""
from __future__ import annotations

from cim.conversion import ConversionReport
from cim.crs import CrsFrame, Frame, LocalFrame, crs_frame, is_local_reference, parse_crs
from cim.errors import CrsContradictionError, CrsMissingError, CrsUnknownError

_Key = tuple[str, int, int | None]  # ("epsg", horizontal, vertical) or ("local"/"unknown", 0, None)


class SrsTracker:
    """Collects ``srsName`` values as the file is read and decides the dataset's frame."""

    def __init__(self, file_name: str, report: ConversionReport, user_frame: Frame | None) -> None:
        self.file_name = file_name
        self.report = report
        self.user_frame = user_frame
        self.declared: str | None = None
        self.where: str = ""
        self._key: _Key | None = None
        self._keys: dict[str, _Key] = {}
        self._frame: Frame | None = None

    def _key_of(self, text: str) -> _Key:
        key = self._keys.get(text)
        if key is None:
            if is_local_reference(text):
                key = ("local:" + text.strip(), 0, None)
            else:
                try:
                    ref = parse_crs(text)
                    key = ("epsg", ref.horizontal, ref.vertical)
                except CrsUnknownError:
                    key = ("unknown:" + text.strip(), 0, None)
            if len(self._keys) < 1000:
                self._keys[text] = key
        return key

    def seen(self, text: str, where: str) -> None:
        """Note an ``srsName`` found at ``where`` (e.g. "line 12")."""
        if text == self.declared:
            return
        text = text.strip()
        if not text:
            return
        key = self._key_of(text)
        if self._key is None:
            self.declared, self.where, self._key = text, where, key
            return
        old = self._key
        if key == old or (key[0] == old[0] == "epsg" and key[1] == old[1] and None in (key[2], old[2])):
            return
        raise CrsContradictionError(
            f"{self.file_name} mixes coordinate reference systems: '{self.declared}' ({self.where}) and "
            f"'{text}' ({where}); a dataset must be in one CRS: split the file or fix its srsName",
            file=self.file_name, first=self.declared, second=text)

    @property
    def known(self) -> bool:
        return self._key is not None

    def frame(self) -> Frame:
        """The frame to read the data in; raises :class:`CrsMissingError` when there is none."""
        if self._frame is not None:
            return self._frame
        declared, key = self.declared, self._key
        if self.user_frame is not None:
            self._frame = self.user_frame
            given = self.user_frame.describe()
            if declared is None:
                self.report.georeferencing = f"placement given by the user: {given} (the file declares no CRS)"
            else:
                same = ((isinstance(self.user_frame, CrsFrame) and key is not None and key[0] == "epsg"
                         and key[1] == self.user_frame.crs.horizontal)
                        or (isinstance(self.user_frame, LocalFrame) and key is not None and key[0].startswith("local:")))
                self.report.georeferencing = (f"placement given by the user: {given}; the file declares "
                                              f"srsName '{declared}' ({self.where})")
                if not same:
                    self.report.warn(f"the file declares srsName '{declared}' ({self.where}) but the placement you "
                                     f"gave ({given}) is used instead")
            return self._frame
        if declared is None or key is None:
            raise CrsMissingError(
                f"{self.file_name} has no coordinate reference system (no srsName on its envelope or on the "
                "geometry of its first city objects), so it cannot be placed on the Earth; pass --crs EPSG:N if the "
                "coordinates are in a known CRS, or --origin LON,LAT,HEIGHT [--rotation DEG] to place local "
                "coordinates", file=self.file_name)
        if key[0].startswith("local:"):
            raise CrsMissingError(
                f"{self.file_name} uses the local engineering CRS '{declared}' defined inside the file ({self.where}), "
                "which has no EPSG code; place it with --origin LON,LAT,HEIGHT [--rotation DEG] (the position of the "
                "local origin), or with --crs EPSG:N if the coordinates are really in that CRS",
                file=self.file_name, crs=declared)
        frame = crs_frame(declared)  # raises CrsUnknownError with the text for unknown names
        self._frame = frame
        self.report.georeferencing = f"srsName '{declared}' ({self.where}): {frame.describe()}"
        return frame
