"""Discovery methods of NASA and exoplanet.eu in OEC's vocabulary.

OEC's CI rejects any ``<discoverymethod>`` outside ``OEC_METHODS``, so a source word that has
no OEC equivalent (``Orbital Brightness Modulation``, ``Other``, exoplanet.eu's old
``Default``) maps to None and the tag is left out rather than guessed.
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
