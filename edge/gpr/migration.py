"""Stolt (f-k) migration of a zero-offset B-scan at one velocity: hyperbolas collapse to apexes.

Units and conventions: ``data`` is ``(samples, traces)`` with row ``k`` at ``k * dt_ns`` ns
after time zero (a processed window: time zero at row 0), traces ``dx_m`` m apart; the
velocity ``v`` is the ground's (m/ns). The output has the same shape and axes: row ``k`` is
the migrated two-way time ``k * dt_ns`` (depth ``v k dt / 2``), so a diffraction with its apex
at (trace x0, time t0) focuses at (x0, t0).

Method (Stolt 1978, exploding reflector with ``v_e = v / 2``): the 2-D Fourier transform
``P(f, kx)`` of the zero-padded section (cycles per ns and per m) is mapped to the output
frequency ``f_out`` by ``f = sign(f_out) sqrt(f_out^2 + (v_e kx)^2)`` (linear interpolation
along ``f``), scaled by the obliquity ``|f_out| / |f|``, and transformed back. One velocity for
the whole section: the velocity of a fitted hyperbola or the configured one. Evanescent energy
(``|f| < v_e |kx|``: steeper than the velocity allows) is dropped. Both axes are zero-padded
to at least twice their length (a power of two), so wrap-around stays outside the section.
"""

from __future__ import annotations

import numpy as np


def stolt_migrate(
    data: np.ndarray, dt_ns: float, dx_m: float, velocity_m_per_ns: float
) -> np.ndarray:
    """The migrated section of ``data`` ``(samples, traces)`` (float32, same shape)."""
    if data.ndim != 2 or min(data.shape) < 2:
        raise ValueError(f"migration needs a (samples, traces) section, got shape {data.shape}")
    if not (dt_ns > 0 and dx_m > 0 and velocity_m_per_ns > 0):
        raise ValueError(
            f"migration needs dt_ns, dx_m and velocity > 0 (got {dt_ns}, {dx_m}, "
            f"{velocity_m_per_ns})"
        )
    nt, nx = data.shape
    nt2 = 1 << int(np.ceil(np.log2(2 * nt)))
    nx2 = 1 << int(np.ceil(np.log2(2 * nx)))
    spectrum = np.fft.fftshift(np.fft.fft2(np.asarray(data, np.float64), s=(nt2, nx2)), axes=0)
    f = np.fft.fftshift(np.fft.fftfreq(nt2, dt_ns))  # cycles per ns, increasing
    kx = np.fft.fftfreq(nx2, dx_m)  # cycles per m
    ve = velocity_m_per_ns / 2.0
    out = np.zeros_like(spectrum)
    for j in range(nx2):
        shift = ve * kx[j]
        f_in = np.sign(f) * np.sqrt(f * f + shift * shift)
        column = spectrum[:, j]
        mapped = np.interp(f_in, f, column.real, left=0.0, right=0.0) + 1j * np.interp(
            f_in, f, column.imag, left=0.0, right=0.0
        )
        scale = np.divide(np.abs(f), np.abs(f_in), out=np.zeros_like(f), where=f_in != 0)
        out[:, j] = mapped * scale
    section = np.fft.ifft2(np.fft.ifftshift(out, axes=0)).real
    return section[:nt, :nx].astype(np.float32)
