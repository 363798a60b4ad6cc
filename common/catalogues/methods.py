"""Discovery methods of NASA and exoplanet.eu in OEC's vocabulary.

OEC's CI rejects any ``<discoverymethod>`` outside ``OEC_METHODS``, so a source word that has
no OEC equivalent (``Other``, exoplanet.eu's old ``Default``: catch-alls holding RV, disk
kinematics and microlensing planets alike) maps to None and the tag is left out rather than
guessed.

NASA's ``Orbital Brightness Modulation`` (a planet found in a Kepler light curve by its
phase curve, beaming or ellipsoidal variation) has no OEC word either, but OEC files every
confirmed planet NASA lists so as ``transit``: Kepler-76 b and the three the maintainer added
in 2021 (KIC 10068024 b, KIC 5479689 b, KIC 8121913 b); found in a transit survey's
photometry. (Only the controversial KOI-55 and KIC 10001893 planets are ``imaging``.)
"""

from __future__ import annotations

OEC_METHODS = frozenset(
    {"RV", "transit", "timing", "imaging", "microlensing", "astrometry", "disk kinematics"}
)

# Keys are lower case: the two catalogues disagree on capitalisation over the years.
_SOURCE_METHODS: dict[str, str] = {
    "radial velocity": "RV",
    "rv": "RV",
    "transit": "transit",
    "primary transit": "transit",
    "orbital brightness modulation": "transit",  # as OEC files them: module docstring
    "timing": "timing",
    "ttv": "timing",
    "pulsar timing": "timing",
    "pulsation timing variations": "timing",
    "eclipse timing variations": "timing",
    "transit timing variations": "timing",
    "imaging": "imaging",
    "microlensing": "microlensing",
    "astrometry": "astrometry",
    "kinematic": "disk kinematics",
    "disk kinematics": "disk kinematics",
}


def oec_method(text: str) -> str | None:
    """The OEC discovery method for a source's method text, or None when none fits.

    exoplanet.eu combines methods in one field (``"Radial Velocity, Astrometry"``) without
    saying which one found the planet; the first part that maps wins, so the choice is at
    least stable from one download to the next.
    """
    for part in text.split(","):
        method = _SOURCE_METHODS.get(part.strip().lower())
        if method is not None:
            return method
    return None
