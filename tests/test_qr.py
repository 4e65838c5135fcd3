import re

import pytest
import segno

from survey.qr import QUIET_ZONE_MODULES, qr_svg

URL = "https://survey.example.org/s/booth/?via=qr"


def test_qr_svg_is_inline_svg_for_a_csp_page():
    svg = qr_svg(URL)

    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert 'class="qr"' in svg
    assert "style=" not in svg
    assert "<?xml" not in svg
    assert not re.search(r"<svg[^>]*\b(width|height)=", svg)


def test_qr_svg_size_matches_the_encoded_url():
    svg = qr_svg(URL)

    expected = segno.make(URL, error="m", micro=False).symbol_size(
        scale=1, border=QUIET_ZONE_MODULES
    )
    view_box = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)
    assert view_box
    assert (int(view_box.group(1)), int(view_box.group(2))) == expected


def test_qr_svg_differs_per_url():
    assert qr_svg(URL) == qr_svg(URL)
    assert qr_svg(URL) != qr_svg(URL.replace("booth", "other"))


def test_qr_svg_rejects_empty_url():
    with pytest.raises(ValueError, match="empty"):
        qr_svg("")
