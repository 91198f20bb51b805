"""Zone-plate point-spread function of a soft X-ray transmission microscope.

Model
-----
A Fresnel zone plate used in its first diffraction order behaves as a thin lens with

* wavelength ``λ = hc / E`` (``λ[nm] = 1239.84198 / E[eV]``, 2.38 nm at 520 eV),
* diameter ``D = 4 N Δr`` for ``N`` zones of outer zone width ``Δr``,
* focal length ``f = D Δr / λ``,
* numerical aperture ``NA = λ / (2 Δr)`` (independent of ``N``),
* Rayleigh resolution ``0.61 λ / NA = 1.22 Δr``,
* depth of field ``DOF = λ / NA²`` (the full width; the in-focus range is ``±λ / (2 NA²)``),
  about 1.05 µm for ``Δr = 25 nm`` at 520 eV.

The point-spread function (PSF) at a defocus ``z`` is computed from the pupil, not from a Gaussian
approximation: the amplitude transfer function is the (optionally centrally obstructed) circular
pupil of radius ``NA / λ`` in spatial frequency multiplied by the angular-spectrum propagation
phase ``exp(2πi z (sqrt(1/λ² - ρ²) - 1/λ))`` (exact scalar free-space propagation; the Fresnel
paraxial phase ``-iπλzρ²`` is its small-angle limit). The intensity PSF is ``|F⁻¹(pupil)|²``,
i.e. incoherent imaging, the usual assumption for a TXM whose condenser fills the objective's
aperture. It is computed on a grid finer than the detector pixel (at most ``Δr / 2`` so that the
intensity cut-off ``2 NA / λ = 1 / Δr`` is sampled) and then integrated over each detector pixel.
Chromatic and other aberrations are ignored (monochromatic illumination with ``E / ΔE > N``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import fft as sfft

__all__ = [
    "ZonePlate",
    "defocus_psf",
    "otf",
    "wavelength_nm",
]

_HC_EV_NM = 1239.841984


def wavelength_nm(energy_ev: float) -> float:
    """Photon wavelength in nm for a photon energy in eV (``λ = hc / E``)."""
    if not np.isfinite(energy_ev) or energy_ev <= 0:
        raise ValueError(f"photon energy must be a positive number of eV, got {energy_ev!r}")
    return _HC_EV_NM / float(energy_ev)


@dataclass(frozen=True)
class ZonePlate:
    """A Fresnel zone-plate objective used in first order.

    Parameters
    ----------
    energy_ev : float
        Photon energy in eV (water window: about 284-543 eV; typically 510-520 eV).
    outer_zone_width_nm : float
        Width of the outermost zone ``Δr`` in nm (e.g. 25 or 40 nm).
    zones : int, optional
        Number of zones ``N``. Give this or ``diameter_um``.
    diameter_um : float, optional
        Zone-plate diameter in µm (``D = 4 N Δr``). Give this or ``zones``.
    central_stop : float
        Diameter of the central stop as a fraction of the zone-plate diameter (0 = none).
    """

    energy_ev: float = 520.0
    outer_zone_width_nm: float = 25.0
    zones: int | None = None
    diameter_um: float | None = None
    central_stop: float = 0.0

    def __post_init__(self) -> None:
        wavelength_nm(self.energy_ev)  # validates energy
        if not np.isfinite(self.outer_zone_width_nm) or self.outer_zone_width_nm <= 0:
            raise ValueError(f"outer zone width must be a positive number of nm, got {self.outer_zone_width_nm!r}")
        if self.zones is not None and self.diameter_um is not None:
            raise ValueError("give either the zone count or the diameter of the zone plate, not both")
        if self.zones is not None and (int(self.zones) != self.zones or self.zones < 1):
            raise ValueError(f"zone count must be a positive integer, got {self.zones!r}")
        if self.diameter_um is not None and not (self.diameter_um > 0):
            raise ValueError(f"zone-plate diameter must be positive, got {self.diameter_um!r}")
        if not (0.0 <= self.central_stop < 1.0):
            raise ValueError(f"central stop must be a fraction in [0, 1), got {self.central_stop!r}")
        if self.numerical_aperture >= 0.5:
            raise ValueError(
                "outer zone width too small for this wavelength (NA >= 0.5); the zone-plate model does not apply"
            )

    # --- derived optics -------------------------------------------------------------------
    @property
    def wavelength_nm(self) -> float:
        """Wavelength in nm."""
        return wavelength_nm(self.energy_ev)

    @property
    def numerical_aperture(self) -> float:
        """``NA = λ / (2 Δr)``."""
        return self.wavelength_nm / (2.0 * self.outer_zone_width_nm)

    @property
    def zone_count(self) -> float | None:
        """Number of zones, from ``zones`` or ``diameter_um`` (``None`` if neither was given)."""
        if self.zones is not None:
            return float(self.zones)
        if self.diameter_um is not None:
            return self.diameter_um * 1e3 / (4.0 * self.outer_zone_width_nm)
        return None

    @property
    def diameter_nm(self) -> float | None:
        """Diameter ``D = 4 N Δr`` in nm."""
        n = self.zone_count
        return None if n is None else 4.0 * n * self.outer_zone_width_nm

    @property
    def focal_length_mm(self) -> float | None:
        """First-order focal length ``f = D Δr / λ`` in mm."""
        d = self.diameter_nm
        return None if d is None else d * self.outer_zone_width_nm / self.wavelength_nm * 1e-6

    @property
    def rayleigh_resolution_nm(self) -> float:
        """Rayleigh resolution ``0.61 λ / NA = 1.22 Δr`` in nm."""
        return 0.61 * self.wavelength_nm / self.numerical_aperture

    @property
    def depth_of_field_um(self) -> float:
        """Full depth of field ``λ / NA²`` in µm (in focus within ``±DOF / 2``)."""
        return self.wavelength_nm / self.numerical_aperture**2 * 1e-3

    @property
    def pupil_cutoff_per_um(self) -> float:
        """Coherent cut-off frequency ``NA / λ`` in cycles per µm."""
        return self.numerical_aperture / (self.wavelength_nm * 1e-3)

    def describe(self) -> str:
        """One-line human summary of the optics."""
        parts = [
            f"E={self.energy_ev:g} eV",
            f"λ={self.wavelength_nm:.3f} nm",
            f"Δr={self.outer_zone_width_nm:g} nm",
            f"NA={self.numerical_aperture:.4f}",
            f"DOF=λ/NA²={self.depth_of_field_um:.3f} µm",
            f"Rayleigh={self.rayleigh_resolution_nm:.1f} nm",
        ]
        if self.zone_count is not None:
            parts.append(f"N={self.zone_count:g}, D={self.diameter_nm * 1e-3:.1f} µm")
            parts.append(f"f={self.focal_length_mm:.3f} mm")
        return ", ".join(parts)


def _check_pixel(pixel_size_um: float) -> float:
    if not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise ValueError(f"pixel size must be a positive number of µm, got {pixel_size_um!r}")
    return float(pixel_size_um)


def psf_half_width(zone_plate: ZonePlate, defocus_um: float, pixel_size_um: float) -> int:
    """Half width in detector pixels of the kernel that :func:`defocus_psf` returns.

    Covers the geometric defocus disc ``|z| NA`` plus three Airy radii.
    """
    pixel = _check_pixel(pixel_size_um)
    na = zone_plate.numerical_aperture
    lam_um = zone_plate.wavelength_nm * 1e-3
    reach = abs(defocus_um) * na + 3.0 * lam_um / na
    return int(math.ceil(reach / pixel)) + 1


@lru_cache(maxsize=4096)
def _psf_cached(zone_plate: ZonePlate, defocus_um: float, pixel_size_um: float, half_width: int) -> np.ndarray:
    na = zone_plate.numerical_aperture
    lam_um = zone_plate.wavelength_nm * 1e-3
    dr_um = zone_plate.outer_zone_width_nm * 1e-3
    # Fine grid: spacing at most Δr/2 (samples the intensity cut-off 1/Δr), odd oversampling so
    # that the central detector pixel is centred on the optical axis.
    s = max(1, int(math.ceil(pixel_size_um / (0.5 * dr_um))))
    if s % 2 == 0:
        s += 1
    q = pixel_size_um / s
    m = (2 * half_width + 1) * s
    mpad = sfft.next_fast_len(2 * m)  # zero padding: the amplitude PSF must not wrap
    f = sfft.fftfreq(mpad, d=q)
    rho2 = f[:, None] ** 2 + f[None, :] ** 2
    cutoff = na / lam_um
    pupil = rho2 <= cutoff**2
    if zone_plate.central_stop > 0:
        pupil &= rho2 >= (zone_plate.central_stop * cutoff) ** 2
    kz = np.sqrt(np.maximum(1.0 / lam_um**2 - rho2, 0.0)) - 1.0 / lam_um
    transfer = np.where(pupil, np.exp(2j * np.pi * defocus_um * kz), 0.0)
    amplitude = sfft.fftshift(sfft.ifft2(transfer))
    intensity = np.abs(amplitude) ** 2
    c = mpad // 2
    lo = c - m // 2
    fine = intensity[lo : lo + m, lo : lo + m]
    k = 2 * half_width + 1
    coarse = fine.reshape(k, s, k, s).sum(axis=(1, 3))
    coarse /= coarse.sum()
    coarse.setflags(write=False)
    return coarse


def defocus_psf(
    zone_plate: ZonePlate,
    defocus_um: float,
    pixel_size_um: float,
    *,
    half_width: int | None = None,
) -> np.ndarray:
    """Intensity point-spread function at a defocus, integrated over detector pixels.

    Parameters
    ----------
    zone_plate : ZonePlate
        The objective.
    defocus_um : float
        Distance of the object point from the focal plane along the beam, in µm (the PSF of this
        aberration-free model is symmetric in the sign of the defocus).
    pixel_size_um : float
        Detector pixel size at the sample, in µm.
    half_width : int, optional
        Half width of the returned kernel in pixels; default from :func:`psf_half_width`.

    Returns
    -------
    numpy.ndarray
        Square kernel of odd size ``2 * half_width + 1``, float64, summing to 1, centred on the
        optical axis.
    """
    if not np.isfinite(defocus_um):
        raise ValueError(f"defocus must be a finite number of µm, got {defocus_um!r}")
    pixel = _check_pixel(pixel_size_um)
    if half_width is None:
        half_width = psf_half_width(zone_plate, defocus_um, pixel)
    if half_width < 0:
        raise ValueError(f"PSF half width must be >= 0, got {half_width}")
    # Round the defocus so that the cache is useful for repeated depth bins.
    return _psf_cached(zone_plate, round(float(defocus_um), 6), pixel, int(half_width)).copy()


def otf(
    zone_plate: ZonePlate,
    defocus_um: float,
    pixel_size_um: float,
    shape: tuple[int, int],
) -> np.ndarray:
    """Optical transfer function on the ``rfft2`` grid of an image of ``shape``.

    The kernel from :func:`defocus_psf` is placed with its centre at pixel (0, 0) (periodic),
    so multiplying ``rfft2(image)`` by this array and inverting is a circular convolution with
    the PSF; pad images by at least :func:`psf_half_width` to make it linear.

    Returns
    -------
    numpy.ndarray
        complex128 array of shape ``(shape[0], shape[1] // 2 + 1)``.
    """
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"OTF shape must be two positive sizes, got {shape!r}")
    hw = psf_half_width(zone_plate, defocus_um, pixel_size_um)
    hw = min(hw, (min(shape) - 1) // 2)
    kernel = defocus_psf(zone_plate, defocus_um, pixel_size_um, half_width=hw)
    full = np.zeros(shape, dtype=np.float64)
    k = kernel.shape[0]
    full[:k, :k] = kernel
    full = np.roll(full, (-hw, -hw), axis=(0, 1))
    return sfft.rfft2(full)
