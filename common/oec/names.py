"""One canonical key per spelling of a star or planet name, so catalogues can meet OEC.

``normalise(name)`` turns a name into a key: equal keys mean "the same designation, spelt
differently"; different designations must keep different keys. The key is a sequence of
lowercase tokens joined by single spaces (``"HD 1234b"`` -> ``"hd 1234 b"``), ASCII for every
name in OEC and the catalogues. On the 2026-08 snapshot the rules merge no two objects of
``systems/`` that plain case/space folding keeps apart, except the six microlensing events OEC
holds twice (rule 9), and 430 OEC objects list two spellings that they make one key. The
rules, in the order they are applied, and why each is safe:

1. HTML entities are decoded (``"24 Bo&ouml;"`` -> ``"24 Boö"``): exoplanet.eu exports them.
2. Unicode NFKC: superscripts and compatibility forms become plain characters
   (``"ρ¹ Cnc"`` -> ``"ρ1 Cnc"``, no-break space -> space, ``µ`` -> ``μ``). Every dash-like
   character (en dash, minus sign ...) becomes ``-``: OEC writes ``2MASSJ13251211–6456207``.
3. Greek letters become their spelt names (``α`` -> ``alpha``), then diacritics are folded
   (``Boötis`` -> ``Bootis``) and the text is case-folded. OEC mixes ``α Cen``, ``Alpha Cen``
   and ``Rho¹ Cancri``; NASA writes ``alf Cen``-style Bayer abbreviations.
4. Apostrophes are dropped (``Barnard's`` = ``Barnards`` = ``Barnard’s``): OEC file names
   drop them, catalogues vary between straight and curly quotes.
5. Tokens: letters and digits are split apart (``"hd1234b"`` -> ``hd 1234 b``) and every
   other character except ``+`` separates tokens, so spaces, hyphens, dots, underscores,
   parentheses and ``°`` are all the same (``Kepler-11`` = ``Kepler 11``, ``KOI-157.06`` =
   ``KOI-157 06``, ``BD-10°3166`` = ``BD-10 3166``). ``+`` is kept as a token of its own
   because it is a sign in coordinate names (``2M 0441+23`` differs from ``2M 0441-23``); a
   ``-`` sign is lost, which is harmless since nothing is named with a bare space instead.
   A two-letter capital + small token is a component and a planet (``HD 11964 Ab`` =
   ``HD 11964 A b``, exoplanet.eu's spelling); OEC names stars ``Kepler-64 Ab`` too, which
   is harmless as planets and hosts are looked up separately (Greek ``Mu Nu Xi Pi`` excepted).
   Letter runs glued to a coordinate (``2MASSJ1325`` / ``2MASS J1325``) are split where a
   known survey prefix ends with ``J``; 2MASS short forms get their ``J`` (``2M 1252+2735``
   = ``2MASS 1252+2735`` = ``2MASS J1252+2735``; all three spellings are in OEC).
6. Numbers lose leading zeros (``KOI-0001`` = ``KOI-1``, ``KOI-0001 01`` = ``KOI-1.01``):
   the Kepler files pad KOI numbers to four digits and candidate numbers to two.
7. Catalogue prefixes with several spellings get one token: ``Gliese`` / ``Gl`` / ``GJ`` ->
   ``gj`` (SIMBAD treats them as one catalogue), NASA's ``K00001.01`` -> ``koi 1 1``.
8. The first token, when it is a Bayer letter spelt out or abbreviated (``alf``, ``eps``,
   ``nu.``, ``ksi``), becomes the spelt Greek name. Only the first token: ``Del`` and
   ``Tau`` are also constellations (``18 Del``).
9. Microlensing events drop the lens suffix ``L`` (``KMT-2018-BLG-0030L`` = OEC's
   ``KMT-2018-BLG-0030``): NASA names the lens, OEC often the event; one event, one lens.
10. Constellation genitives become the IAU abbreviation (``Alpha Centauri`` = ``α Cen``,
   ``Ursae Majoris`` = ``UMa``), two-word genitives first.

Case folding means a star ``X B`` and a planet ``X b`` share a key; the index keeps object
kinds apart, so that is not a collision there. What is *not* made equal: a component letter
and its absence (``HD 41004 A b`` vs ``HD 41004 b``), different catalogues for one star
(``HD 127243`` vs ``24 Boo``) — those are aliases, the index's business.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache

__all__ = ["normalise", "split_planet_name"]

_GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ε": "epsilon",
    "ϵ": "epsilon",
    "ζ": "zeta",
    "η": "eta",
    "θ": "theta",
    "ϑ": "theta",
    "ι": "iota",
    "κ": "kappa",
    "ϰ": "kappa",
    "λ": "lambda",
    "μ": "mu",
    "ν": "nu",
    "ξ": "xi",
    "ο": "omicron",
    "π": "pi",
    "ϖ": "pi",
    "ρ": "rho",
    "ϱ": "rho",
    "σ": "sigma",
    "ς": "sigma",
    "τ": "tau",
    "υ": "upsilon",
    "φ": "phi",
    "ϕ": "phi",
    "χ": "chi",
    "ψ": "psi",
    "ω": "omega",
}
# Capital letters too (``Σ 2398`` is Struve's catalogue, spelt "Sigma 2398" elsewhere).
_GREEK.update({k.upper(): v for k, v in list(_GREEK.items()) if k.upper() != k})

# Spelt and SIMBAD-abbreviated Bayer letters -> spelt name; applied to the first token only.
_BAYER = {v: v for v in _GREEK.values()} | {
    "alf": "alpha",
    "alp": "alpha",
    "bet": "beta",
    "gam": "gamma",
    "del": "delta",
    "eps": "epsilon",
    "zet": "zeta",
    "tet": "theta",
    "the": "theta",
    "iot": "iota",
    "kap": "kappa",
    "lam": "lambda",
    "ksi": "xi",
    "omi": "omicron",
    "sig": "sigma",
    "ups": "upsilon",
    "ome": "omega",
}

_CONSTELLATIONS = {
    "andromedae": "and",
    "antliae": "ant",
    "apodis": "aps",
    "aquarii": "aqr",
    "aquilae": "aql",
    "arae": "ara",
    "arietis": "ari",
    "aurigae": "aur",
    "bootis": "boo",
    "caeli": "cae",
    "camelopardalis": "cam",
    "cancri": "cnc",
    "canum venaticorum": "cvn",
    "canis majoris": "cma",
    "canis minoris": "cmi",
    "capricorni": "cap",
    "carinae": "car",
    "cassiopeiae": "cas",
    "centauri": "cen",
    "cephei": "cep",
    "ceti": "cet",
    "chamaeleontis": "cha",
    "circini": "cir",
    "columbae": "col",
    "comae berenices": "com",
    "coronae australis": "cra",
    "coronae borealis": "crb",
    "corvi": "crv",
    "crateris": "crt",
    "crucis": "cru",
    "cygni": "cyg",
    "delphini": "del",
    "doradus": "dor",
    "draconis": "dra",
    "equulei": "equ",
    "eridani": "eri",
    "fornacis": "for",
    "geminorum": "gem",
    "gruis": "gru",
    "herculis": "her",
    "horologii": "hor",
    "hydrae": "hya",
    "hydri": "hyi",
    "indi": "ind",
    "lacertae": "lac",
    "leonis": "leo",
    "leonis minoris": "lmi",
    "leporis": "lep",
    "librae": "lib",
    "lupi": "lup",
    "lyncis": "lyn",
    "lyrae": "lyr",
    "mensae": "men",
    "microscopii": "mic",
    "monocerotis": "mon",
    "muscae": "mus",
    "normae": "nor",
    "octantis": "oct",
    "ophiuchi": "oph",
    "orionis": "ori",
    "pavonis": "pav",
    "pegasi": "peg",
    "persei": "per",
    "phoenicis": "phe",
    "pictoris": "pic",
    "piscis austrini": "psa",
    "piscium": "psc",
    "puppis": "pup",
    "pyxidis": "pyx",
    "reticuli": "ret",
    "sagittae": "sge",
    "sagittarii": "sgr",
    "scorpii": "sco",
    "sculptoris": "scl",
    "scuti": "sct",
    "serpentis": "ser",
    "sextantis": "sex",
    "tauri": "tau",
    "telescopii": "tel",
    "trianguli": "tri",
    "trianguli australis": "tra",
    "tucanae": "tuc",
    "ursae majoris": "uma",
    "ursae minoris": "umi",
    "velorum": "vel",
    "virginis": "vir",
    "volantis": "vol",
    "vulpeculae": "vul",
}
_CONSTELLATIONS_2 = {tuple(k.split()): v for k, v in _CONSTELLATIONS.items() if " " in k}
_CONSTELLATIONS_1 = {k: v for k, v in _CONSTELLATIONS.items() if " " not in k}
_GENITIVES = frozenset(w for k in _CONSTELLATIONS for w in k.split())

_PREFIXES = {"gliese": "gj", "gl": "gj"}

# Microlensing surveys: ``OGLE-2005-BLG-390L`` is the lens star of event OGLE-2005-BLG-390.
_LENSING = frozenset({"ogle", "moa", "kmt", "kmtnet"})

# Surveys whose names glue a "J" (J2000 coordinates) to the prefix in some spellings.
_J_SURVEYS = ("2mass", "sdss", "wise", "wisea", "wisep", "cwise", "ulas", "pso", "denis", "mass")

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"), "-")
_APOSTROPHES = dict.fromkeys(map(ord, "'\u2018\u2019\u02bc\u2032`\u00b4"), None)
_TOKEN = re.compile(r"[^\W\d_]+|[0-9]+|\+")
_NASA_KOI = re.compile(r"^\s*K(\d{5})\.(\d{2})\s*$")
# exoplanet.eu glues a component to the planet letter: "HD 11964 Ab" is "HD 11964 A b".
_COMPONENT_PLANET = re.compile(r"(?<=[\s\d)])(?!Mu|Nu|Xi|Pi)([A-Z])([a-z])(?=\s|$)")
_GLUED_J = frozenset(f"{survey}j" for survey in _J_SURVEYS)
_SPECIAL = frozenset(_PREFIXES) | _GLUED_J
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")


def _fold(text: str) -> str:
    """Greek letters spelt out, diacritics removed, case folded (ASCII when possible)."""
    if text.isascii():
        return text.casefold()
    text = "".join(f" {_GREEK[c]} " if c in _GREEK else c for c in text)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@lru_cache(maxsize=1 << 17)
def normalise(name: str) -> str:
    """The canonical key of a star, system or planet name (see the module docstring)."""
    if "&" in name:
        name = html.unescape(name)
    if not name.isascii():
        name = unicodedata.normalize("NFKC", name).translate(_DASHES)
    if koi := _NASA_KOI.match(name):
        name = f"KOI-{koi[1]}.{koi[2]}"
    name = _COMPONENT_PLANET.sub(r"\1 \2", name)
    text = _LEADING_ZEROS.sub("", _fold(name).translate(_APOSTROPHES))
    tokens = _TOKEN.findall(text)
    if not _SPECIAL.isdisjoint(tokens):
        tokens = _prefixes(tokens)
    if tokens and tokens[0] in _BAYER:
        tokens[0] = _BAYER[tokens[0]]
    if len(tokens) > 2 and tokens[0] == "2" and tokens[1] in ("m", "mass"):
        if tokens[2] == "j":
            tokens[1] = "mass"
        elif tokens[2].isdigit():
            tokens[1:2] = ["mass", "j"]
    if len(tokens) > 4 and tokens[0] in _LENSING and tokens[4] == "l" and tokens[3].isdigit():
        del tokens[4]
    if _GENITIVES.isdisjoint(tokens):
        return " ".join(tokens)
    return " ".join(_constellations(tokens))


def _prefixes(raw: list[str]) -> list[str]:
    tokens: list[str] = []
    for i, token in enumerate(raw):
        if token in _PREFIXES:
            token = _PREFIXES[token]
        elif token in _GLUED_J and i + 1 < len(raw) and raw[i + 1][0].isdigit():
            tokens.append(token[:-1])
            token = "j"
        tokens.append(token)
    return tokens


def _constellations(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        pair = tuple(tokens[i : i + 2])
        if len(pair) == 2 and pair in _CONSTELLATIONS_2:
            out.append(_CONSTELLATIONS_2[pair])
            i += 2
            continue
        out.append(_CONSTELLATIONS_1.get(tokens[i], tokens[i]))
        i += 1
    return out


_PLANET_SPACED = re.compile(r"^(?P<host>.*\S)\s+(?P<letter>[a-z])$")
_PLANET_GLUED = re.compile(r"^(?P<host>.*[0-9\)])(?P<letter>[b-z])$")
_PLANET_COMPONENT = re.compile(r"^(?P<host>.*[\s\d)](?!Mu|Nu|Xi|Pi)[A-Z])(?P<letter>[a-z])$")
_PLANET_UPPER = re.compile(r"^(?P<host>.*\S)\s+(?P<letter>[A-Z])$")
_KOI_CANDIDATE = re.compile(
    r"^(?P<host>(?:KOI|TOI|K2|EPIC|TIC)[- ]?\d+)[. ](?P<letter>\d{1,2})$", re.I
)


@lru_cache(maxsize=1 << 16)
def split_planet_name(name: str, *, uppercase: bool = False) -> tuple[str, str] | None:
    """``(host, letter)`` of a planet designation, or None when it has no planet letter.

    ``"Kepler-11 b"`` -> ``("Kepler-11", "b")``, ``"HD 1234b"`` -> ``("HD 1234", "b")``,
    ``"HD 11964 Ab"`` -> ``("HD 11964 A", "b")``, ``"KOI-157.06"`` -> ``("KOI-157", "06")``
    (candidate numbers only after KOI, TOI, K2, EPIC and TIC numbers). Uppercase letters name
    stellar components (``"HD 41004 B"`` is a star) and count only with ``uppercase=True``,
    for names known to be planets (OEC calls the companion of DH Tau ``DH Tau B``). A glued
    letter needs a digit or ``)`` before it so that words (``"Barnard's star"``) stay whole.
    """
    name = name.strip()
    for pattern in (_PLANET_SPACED, _PLANET_GLUED, _PLANET_COMPONENT, _KOI_CANDIDATE):
        if m := pattern.match(name):
            return m["host"].strip(), m["letter"]
    if uppercase and (m := _PLANET_UPPER.match(name)):
        return m["host"].strip(), m["letter"]
    return None
