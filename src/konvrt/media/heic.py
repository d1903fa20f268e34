"""HEVC-coded HEIC/HEIF (every iPhone photo since 2017) decoded by pi-heif into a libvips image.

pyvips-binary's libheif is built without an HEVC decoder (patents), so its heifload reads the
header of an .heic but cannot decode the pixels. pi-heif bundles libheif with libde265; it applies
`irot`/`imir` as it decodes, so the result is upright and carries no orientation to apply again.
The caller has already checked the pixel count from the header.
"""

from __future__ import annotations

from typing import Any

import pyvips

from konvrt.errors import UnreadableMedia

_BANDS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def load_hevc(filename: str) -> pyvips.Image:
    try:
        import pi_heif
    except ImportError:  # pragma: no cover - pi-heif is a dependency; this guards a broken install
        raise UnreadableMedia("This server cannot decode HEVC-coded HEIC images.", code="unreadable_image") from None
    try:
        heif: Any = pi_heif.open_heif(filename, convert_hdr_to_8bit=True)
        width, height = heif.size
        bands = _BANDS[heif.mode]
        data = _packed(heif.data, heif.stride, width * bands, height)
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        raise UnreadableMedia(
            f"The HEIC image could not be decoded: it is corrupt, truncated or uses a variant we cannot read ({exc}).",
            code="unreadable_image",
        ) from exc
    image = pyvips.Image.new_from_memory(data, width, height, bands, "uchar")
    image = image.copy(interpretation="b-w" if bands <= 2 else "srgb")
    profile = heif.info.get("icc_profile")
    if profile:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", bytes(profile))
    return image


def _packed(data: memoryview, stride: int, row_bytes: int, height: int) -> bytes:
    """A copy libvips can own: the memoryview dies with the HeifFile (use after free otherwise),
    and libheif may pad each row while libvips wants rows back to back."""
    if stride == row_bytes:
        return bytes(data)
    return b"".join(data[y * stride : y * stride + row_bytes] for y in range(height))
