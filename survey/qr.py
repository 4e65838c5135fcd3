"""QR codes rendered on the server as inline SVG."""

from functools import lru_cache

import segno

# Four modules of light border is the quiet zone that the QR standard requires
# for reliable scanning.
QUIET_ZONE_MODULES = 4


@lru_cache(maxsize=64)
def qr_svg(url: str) -> str:
    """Return ``url`` as a QR code in an ``<svg>`` element ready to inline in HTML.

    The SVG has a viewBox and no width or height, so CSS sets its size, and it
    carries the class ``qr``. It has no ``style`` attribute, so a CSP without
    'unsafe-inline' styles allows it. Error correction is at least M (15 %), so
    the code still scans with a glare spot on a glossy screen. Raises ValueError
    for an empty URL.
    """
    if not url:
        raise ValueError("qr_svg needs a URL to encode, got an empty string")
    code = segno.make(url, error="m", micro=False)
    return code.svg_inline(
        scale=1,
        border=QUIET_ZONE_MODULES,
        omitsize=True,
        svgclass="qr",
        lineclass=None,
        dark="#000",
        light="#fff",
    )
