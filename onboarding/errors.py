"""Errors of city onboarding: bad files, CRSs, mappings and areas (all `InvalidInput`, exit 1 in the CLI)."""

from __future__ import annotations

from geo.errors import Conflict, InvalidInput, NotFound


class OnboardingError(InvalidInput):
    """A city's file cannot be imported as given; ``code`` says which rule it broke."""

    code = "onboarding_invalid"


class UnknownCrs(OnboardingError):
    """The file carries no coordinate system and none was given with ``--crs``."""

    code = "unknown_crs"


class CrsOutOfArea(OnboardingError):
    """The declared CRS / projection zone puts the data far from the declared district (in the sea…)."""

    code = "crs_out_of_area"


class NoGeometry(OnboardingError):
    """A layer file has no geometry (or no coordinate columns)."""

    code = "no_geometry"


class MappingColumnMissing(OnboardingError):
    """The field mapping names a column the file does not have."""

    code = "mapping_column_missing"


class BadMapping(OnboardingError):
    """The field mapping file is unreadable or names an unknown layer or field."""

    code = "bad_mapping"


class NoRoads(OnboardingError):
    """The OSM file holds no road (``highway``) ways."""

    code = "no_roads"


class GarbledText(OnboardingError):
    """Attribute text read with the wrong encoding (GB18030 read as UTF-8…)."""

    code = "garbled_text"


class UnreadableFile(OnboardingError):
    """The file is missing or not in a format the importer reads."""

    code = "unreadable_file"


class UnknownDistrict(OnboardingError):
    """The declared district code is not a GB/T 2260 code in the database (or has no boundary)."""

    code = "unknown_district"


class CityNotFound(NotFound):
    """No imported city of that name."""

    code = "city_not_found"


class RowsOfAnotherCity(Conflict):
    """Rows with the same source ids already belong to another city (or to the demo)."""

    code = "rows_of_another_city"
