"""Wave runup, setup and swash: Stockdon et al. (2006).

Inputs are deep-water wave conditions: significant wave height ``H0`` (m), peak period
``Tp`` (s), and the foreshore slope ``tan(beta)`` (dimensionless, positive). With
``L0 = g Tp^2 / 2 pi`` (deep-water wavelength, m) and the Iribarren number
``xi0 = tan(beta) / sqrt(H0 / L0)``:

- setup ``<eta> = 0.35 tan(beta) sqrt(H0 L0)``;
- incident swash ``S_inc = 0.75 tan(beta) sqrt(H0 L0)``, infragravity swash
  ``S_ig = 0.06 sqrt(H0 L0)``, total ``S = sqrt(S_inc^2 + S_ig^2)``;
- 2 % exceedance runup (Eq. 19) ``R2 = 1.1 (<eta> + sqrt(H0 L0 (0.563 tan^2 + 0.004)) / 2)``;
- dissipative beaches (``xi0 < 0.3``): ``R2 = 0.043 sqrt(H0 L0)``, setup
  ``0.016 sqrt(H0 L0)``, swash ``0.046 sqrt(H0 L0)`` (Eqs. 16-18).

Elevations are metres above the still water level.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edge.errors import InputError

G = 9.81  # m/s^2
DISSIPATIVE_IRIBARREN = 0.3


@dataclass(frozen=True)
class Runup:
    """Stockdon (2006) results; lengths in m."""

    H0_m: float
    Tp_s: float
    slope: float
    L0_m: float
    iribarren: float
    dissipative: bool
    setup_m: float
    swash_m: float
    swash_incident_m: float | None
    swash_infragravity_m: float | None
    R2_m: float

    def to_dict(self) -> dict[str, float | bool | None]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def deep_water_wavelength(tp_s: float) -> float:
    """``L0 = g T^2 / 2 pi`` (m) for a period ``tp_s`` (s)."""
    return G * tp_s**2 / (2 * math.pi)


#: Physically possible inputs (exclusive of 0): deep-water Hs (m), peak period Tp (s) and
#: foreshore slope tan(beta). The steepest gravel beaches reach tan(beta) ~ 0.3; Stockdon's
#: own data span 0.01-0.16.
LIMITS = {"Hs": 30.0, "Tp": 30.0, "slope": 0.5}


def stockdon2006(h0_m: float, tp_s: float, slope: float) -> Runup:
    """Setup, swash and R2 for deep-water ``h0_m`` (m), ``tp_s`` (s), ``slope`` = tan(beta).

    Raises InputError for a value that is not positive or beyond :data:`LIMITS`.
    """
    for name, value in (("Hs", h0_m), ("Tp", tp_s), ("slope", slope)):
        if not (value > 0 and math.isfinite(value)):
            raise InputError(f"{name} must be a positive number, got {value}")
        if value > LIMITS[name]:
            raise InputError(
                f"{name} = {value:g} is not physically possible for a beach "
                f"(expected at most {LIMITS[name]:g})"
            )
    l0 = deep_water_wavelength(tp_s)
    root = math.sqrt(h0_m * l0)
    xi0 = slope / math.sqrt(h0_m / l0)
    if xi0 < DISSIPATIVE_IRIBARREN:
        return Runup(
            h0_m, tp_s, slope, l0, xi0, True,
            setup_m=0.016 * root, swash_m=0.046 * root, swash_incident_m=None,
            swash_infragravity_m=None, R2_m=0.043 * root,
        )  # fmt: skip
    setup = 0.35 * slope * root
    s_inc = 0.75 * slope * root
    s_ig = 0.06 * root
    r2 = 1.1 * (setup + math.sqrt(h0_m * l0 * (0.563 * slope**2 + 0.004)) / 2)
    return Runup(
        h0_m, tp_s, slope, l0, xi0, False,
        setup_m=setup, swash_m=math.hypot(s_inc, s_ig), swash_incident_m=s_inc,
        swash_infragravity_m=s_ig, R2_m=r2,
    )  # fmt: skip
