"""The vocabulary of OEC system files, in one place.

Sources, in order of authority:

1. OEC's own CI script (``cleanup.py`` in OpenExoplanetCatalogue/open_exoplanet_catalogue):
   the flat list of valid tags and attributes, the numeric tags, the lists, the discovery
   methods, the tags that may repeat, the 60 M_Jup flag. A file it would reject or rewrite
   fails OEC's CI.
2. ``data/README.md`` (format facts checked on all 7,035 files).
3. The 7,035 files of the 2026-08-22 snapshot: the per-object tag sets below are the union of
   the README's lists and what the real files actually hold (e.g. ``separation`` on planets of
   microlensing systems, ``discoveryyear`` on brown-dwarf stars, ``magJ`` on 2 systems).
   CI itself only checks the flat set; the per-object sets are stricter but every real file
   passes them (``tests/oec/test_validate.py`` checks this on the whole snapshot).
"""

from __future__ import annotations

import re

# Objects: the tags that open a nested block rather than hold a value. ``satellite`` (moons)
# and ``asteroid`` occur only in Sun.xml but are valid tags for OEC's CI.
SYSTEM = "system"
BINARY = "binary"
STAR = "star"
PLANET = "planet"
SATELLITE = "satellite"
ASTEROID = "asteroid"
OBJECTS: frozenset[str] = frozenset({SYSTEM, BINARY, STAR, PLANET, SATELLITE, ASTEROID})

# Tags whose text must be a plain decimal number (CI: ``numerictags``).
NUMERIC_TAGS: frozenset[str] = frozenset(
    {
        "mass", "radius", "temperature", "period", "semimajoraxis", "eccentricity",
        "inclination", "periastron", "longitude", "ascendingnode", "meananomaly",
        "transittime", "periastrontime", "maximumrvtime", "impactparameter",
        "spinorbitalignment", "separation", "positionangle", "tilt", "discoveryyear",
        "distance", "age", "metallicity",
        "magB", "magV", "magR", "magI", "magJ", "magH", "magK", "magU",
    }
)  # fmt: skip

# Tags holding free or enumerated text.
TEXT_TAGS: frozenset[str] = frozenset(
    {
        "name", "list", "description", "discoverymethod", "lastupdate", "istransiting", "new",
        "image", "imagedescription", "spectraltype", "rightascension", "declination",
        "constellation", "videolink",
    }
)  # fmt: skip

# CI's ``validtags``: anything else is "most likely a typo" and fails the run.
KNOWN_TAGS: frozenset[str] = OBJECTS | NUMERIC_TAGS | TEXT_TAGS

_MAGNITUDES = frozenset({"magB", "magV", "magR", "magI", "magJ", "magH", "magK", "magU"})
_ORBIT = frozenset(
    {
        "period", "semimajoraxis", "eccentricity", "inclination", "periastron", "longitude",
        "ascendingnode", "meananomaly", "transittime", "periastrontime", "maximumrvtime",
        "separation", "positionangle",
    }
)  # fmt: skip

# Children allowed per object (README lists plus what the snapshot holds).
ALLOWED_CHILDREN: dict[str, frozenset[str]] = {
    SYSTEM: frozenset(
        {"name", "rightascension", "declination", "distance", "constellation", "videolink"}
        # 1 system carries a spectraltype, 2 carry J/H/K magnitudes (snapshot).
        | {"spectraltype", "magJ", "magH", "magK"}
        | {STAR, BINARY, PLANET}
    ),
    BINARY: frozenset({"name"} | _ORBIT | _MAGNITUDES | {BINARY, STAR, PLANET}),
    STAR: frozenset(
        {"name", "mass", "radius", "temperature", "metallicity", "age", "spectraltype"}
        | _MAGNITUDES
        # 45 stars (brown-dwarf hosts found directly) carry a discoveryyear; Sun has a comet.
        | {"discoveryyear", PLANET, ASTEROID}
    ),
    PLANET: frozenset(
        {
            "name",
            "list",
            "mass",
            "radius",
            "temperature",
            "impactparameter",
            "spinorbitalignment",
            "discoverymethod",
            "discoveryyear",
            "istransiting",
            "description",
            "lastupdate",
            "new",
            "image",
            "imagedescription",
        }
        | _ORBIT
        # Directly imaged planets carry their own photometry and spectral type (snapshot).
        | {"spectraltype", "metallicity", "age", "tilt", "magJ", "magH", "magK", "magI"}
        | {SATELLITE}
    ),
    SATELLITE: frozenset(
        {"name", "mass", "radius", "tilt"} | (_ORBIT - {"separation", "positionangle"})
    ),
    ASTEROID: frozenset(
        {"name", "mass", "radius", "description"} | (_ORBIT - {"separation", "positionangle"})
    ),
}

# Attributes (CI's ``validattributes`` minus ``error``, which CI rewrites into
# errorminus/errorplus, so a file holding it would be changed by the CI run).
ERROR_ATTRIBUTES: tuple[str, str] = ("errorminus", "errorplus")
LIMIT_ATTRIBUTES: tuple[str, str] = ("lowerlimit", "upperlimit")
NUMERIC_ATTRIBUTES: frozenset[str] = frozenset(ERROR_ATTRIBUTES + LIMIT_ATTRIBUTES)
ATTRIBUTES: tuple[str, ...] = (*ERROR_ATTRIBUTES, *LIMIT_ATTRIBUTES, "type", "unit")

# ``unit`` only on times and separations (README); CI converts ``me``, ``re`` and ``rad``
# units, so any other unit would be rewritten or misread. Values as found in the snapshot.
TIME_UNITS: frozenset[str] = frozenset({"BJD", "HJD", "JD", "MJD", "D"})
UNITS: dict[str, frozenset[str]] = {
    "transittime": TIME_UNITS,
    "periastrontime": TIME_UNITS,
    "maximumrvtime": TIME_UNITS,
    "separation": frozenset({"AU", "arcsec"}),
}
# The ``type`` of a minimum mass (OEC also writes name type="pri" and spinorbitalignment
# type="3D"; CI does not check types).
MSINI = "msini"

# Lists. Every planet is in exactly one status list (CI: ``oneListOf``).
CONFIRMED = "Confirmed planets"
STATUS_LISTS: tuple[str, ...] = (
    CONFIRMED,
    "Controversial",
    "Kepler Objects of Interest",
    "Solar System",
    "Retracted planet candidate",
)
S_TYPE = "Planets in binary systems, S-type"
P_TYPE = "Planets in binary systems, P-type"
OTHER_LISTS: tuple[str, ...] = (
    S_TYPE,
    P_TYPE,
    "Planets in open clusters",
    "Planets in globular clusters",
    "Orphan planets",
)
LISTS: frozenset[str] = frozenset(STATUS_LISTS + OTHER_LISTS)

DISCOVERY_METHODS: frozenset[str] = frozenset(
    {"RV", "transit", "timing", "imaging", "microlensing", "astrometry", "disk kinematics"}
)
TRANSIT = "transit"

# Tags an object may hold several times (CI: ``tagsallowmultiple``); any other tag twice in
# one planet, star or binary fails CI.
MULTI_VALUED: frozenset[str] = frozenset(
    {"name", "list", PLANET, STAR, BINARY, "separation", SATELLITE}
)

# ``<lastupdate>`` is ``yy/mm/dd`` on planets (CI checks length 8 and three parts).
LASTUPDATE_FORMAT = "%y/%m/%d"
LASTUPDATE_PATTERN = re.compile(r"\d\d/\d\d/\d\d")

# CI's number format: optional minus, digits with an optional fraction (or a bare fraction),
# optional exponent. No ``+``, no surrounding space, no ``inf``/``nan``.
NUMBER_PATTERN = re.compile(r"-?(?=[0-9.])[0-9]*(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")

# ``hh mm ss[.s]`` and ``±dd mm ss[.s]``; one snapshot file writes ``17 54 .19``, which CI's
# constellation code (split on spaces, parsed by astropy) accepts, so a bare fraction is ok.
_SECONDS = r"(?:\d{1,2}(?:\.\d+)?|\.\d+)"
RIGHT_ASCENSION_PATTERN = re.compile(rf"\d{{1,2}} \d{{1,2}} {_SECONDS}")
DECLINATION_PATTERN = re.compile(rf"[+-]\d{{1,2}} \d{{1,2}} {_SECONDS}")

# CI warns about a confirmed planet heavier than this (Jupiter masses).
CONFIRMED_MASS_LIMIT = 60.0

# The file name is the first system name with these characters removed, plus ".xml".
FILE_NAME_REMOVED = "'"
FILE_SUFFIX = ".xml"
# The one system without a position, hence without a constellation (CI skips it by name).
SUN_FILE = "Sun.xml"

# astropy's ``get_constellation`` names (its data file follows Roman 1987, spellings such as
# "Chamaleon" and "Ophiucus" included); OEC's CI writes exactly these.
CONSTELLATIONS: frozenset[str] = frozenset(
    {
        "Andromeda", "Antlia", "Apus", "Aquarius", "Aquila", "Ara", "Aries", "Auriga",
        "Boötes", "Caelum", "Camelopardalis", "Cancer", "Canes Venatici", "Canis Major",
        "Canis Minor", "Capricornus", "Carina", "Cassiopeia", "Centaurus", "Cepheus", "Cetus",
        "Chamaleon", "Circinus", "Columba", "Coma Berenices", "Corona Australis",
        "Corona Borealis", "Corvus", "Crater", "Crux", "Cygnus", "Delphinus", "Dorado",
        "Draco", "Equuleus", "Eridanus", "Fornax", "Gemini", "Grus", "Hercules", "Horologium",
        "Hydra", "Hydrus", "Indus", "Lacerta", "Leo", "Leo Minor", "Lepus", "Libra", "Lupus",
        "Lynx", "Lyra", "Mensa", "Microscopium", "Monoceros", "Musca", "Norma", "Octans",
        "Ophiucus", "Orion", "Pavo", "Pegasus", "Perseus", "Phoenix", "Pictor", "Pisces",
        "Pisces Austrinus", "Puppis", "Pyxis", "Reticulum", "Sagitta", "Sagittarius",
        "Scorpius", "Sculptor", "Scutum", "Serpens", "Sextans", "Taurus", "Telescopium",
        "Triangulum", "Triangulum Australe", "Tucana", "Ursa Major", "Ursa Minor", "Vela",
        "Virgo", "Volans", "Vulpecula",
    }
)  # fmt: skip

# Element order used when OEC Sync writes or inserts fields. The snapshot follows no fixed
# order (e.g. 240 stars put their names after the magnitudes), so this is template.xml's
# order, with the tags template.xml lacks placed next to their closest relatives.
FIELD_ORDER: dict[str, tuple[str, ...]] = {
    SYSTEM: (
        "name", "rightascension", "declination", "distance", "magJ", "magH", "magK",
        "spectraltype", "videolink", "constellation",
    ),
    BINARY: (
        "name", "separation", "positionangle", "semimajoraxis", "period", "eccentricity",
        "inclination", "periastron", "longitude", "ascendingnode", "meananomaly",
        "periastrontime", "transittime", "maximumrvtime",
        "magB", "magV", "magR", "magI", "magJ", "magH", "magK", "magU",
    ),
    STAR: (
        "name", "mass", "radius", "temperature", "magV", "metallicity", "spectraltype", "age",
        "magB", "magU", "magR", "magI", "magJ", "magH", "magK", "discoveryyear",
    ),
    # template.xml: name list mass radius temperature period semimajoraxis eccentricity
    # inclination periastron longitude description discoverymethod istransiting lastupdate
    # discoveryyear image imagedescription spinorbitalignment.
    PLANET: (
        "name", "list", "mass", "radius", "temperature", "period", "semimajoraxis",
        "eccentricity", "inclination", "periastron", "longitude", "ascendingnode",
        "meananomaly", "periastrontime", "transittime", "maximumrvtime", "impactparameter",
        "separation", "positionangle", "tilt", "age", "metallicity", "spectraltype",
        "magI", "magJ", "magH", "magK",
        "description", "discoverymethod", "istransiting", "lastupdate", "discoveryyear",
        "new", "image", "imagedescription", "spinorbitalignment",
    ),
    SATELLITE: (
        "name", "mass", "radius", "period", "semimajoraxis", "eccentricity", "inclination",
        "periastron", "longitude", "ascendingnode", "meananomaly", "periastrontime",
        "transittime", "maximumrvtime", "tilt",
    ),
    ASTEROID: (
        "name", "mass", "radius", "period", "semimajoraxis", "eccentricity", "inclination",
        "periastron", "longitude", "ascendingnode", "meananomaly", "periastrontime",
        "transittime", "maximumrvtime", "description",
    ),
}  # fmt: skip


def file_name_for(system_name: str) -> str:
    """OEC's file name rule, without any safety check (see ``render.system_file_name``)."""
    for character in FILE_NAME_REMOVED:
        system_name = system_name.replace(character, "")
    return system_name + FILE_SUFFIX


def is_number(text: str) -> bool:
    """True for decimal text OEC's CI accepts in a numeric tag or attribute."""
    return NUMBER_PATTERN.fullmatch(text) is not None


def binary_list(parent_tag: str, grandparent_tag: str | None) -> str | None:
    """The binary-system list OEC's CI requires for a planet at this position, if any.

    CI adds "P-type" to every ``.//binary/planet`` and "S-type" to every
    ``.//binary/star/planet``; a planet of a star outside any binary is in neither.
    """
    if parent_tag == BINARY:
        return P_TYPE
    if parent_tag == STAR and grandparent_tag == BINARY:
        return S_TYPE
    return None
