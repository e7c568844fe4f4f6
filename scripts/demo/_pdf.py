"""Small one-page PDFs of Chinese text for the demo's archive (and the tests), written directly.

The text is set in STSong-Light, one of the Chinese fonts every PDF reader supplies (Adobe-GB1,
encoding UniGB-UCS2-H: the codes are the characters' UCS-2 values), so nothing is embedded and a
page is about a kilobyte; a ToUnicode map on the same codes lets text extraction (pypdf) read it
back. Drawing the same page with matplotlib embeds a CJK font and takes seconds per file.
"""

from __future__ import annotations


def _ucs2(text: str) -> str:
    return "".join(f"{ord(c):04X}" for c in text if ord(c) <= 0xFFFF)


def _to_unicode(text: str) -> bytes:
    """Identity on UCS-2 for the characters the text uses (one bfchar each: readers expand ranges code by code)."""
    used = sorted({ord(c) for c in text if ord(c) <= 0xFFFF and not 0xD800 <= ord(c) <= 0xDFFF})
    pairs = [f"<{u:04X}> <{u:04X}>" for u in used]
    blocks = [f"{len(chunk)} beginbfchar\n" + "\n".join(chunk) + "\nendbfchar"
              for chunk in (pairs[i:i + 100] for i in range(0, len(pairs), 100))]
    return ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n" + "\n".join(blocks)
            + "\nendcmap\nCMapName currentdict /CMapResource defineresource pop\nend\nend\n").encode("ascii")


def text_pdf(lines: list[str], *, size_pt: float = 12.0) -> bytes:
    """An A4 page with ``lines`` of text from the top left; the first line larger, as a title."""
    ops = ["BT"]
    y = 780.0
    for i, line in enumerate(lines):
        pt = size_pt * 1.5 if i == 0 else size_pt
        ops.append(f"/F1 {pt:g} Tf 1 0 0 1 60 {y:g} Tm <{_ucs2(line)}> Tj")
        y -= pt * 1.8
    ops.append("ET")
    content = "\n".join(ops).encode("ascii")
    cmap = _to_unicode("".join(lines))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H "
        b"/DescendantFonts [6 0 R] /ToUnicode 7 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor 8 0 R /DW 1000 >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(cmap), cmap),
        b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] "
        b"/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
