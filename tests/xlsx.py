"""Workbooks written part by part, for tests of what an .xlsx can hold.

An .xlsx file is a zip archive of XML parts; :func:`write_xlsx` writes the
few parts a workbook needs, streaming each into the archive, so a cell of
64 MB is never held whole by the test either (:class:`Big`).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
TYPES = "application/vnd.openxmlformats-officedocument.spreadsheetml"
SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"


@dataclass(frozen=True)
class Big:
    """A text of *length* characters *char*, written in pieces of 1 Mi."""

    length: int
    char: str = "x"

    def pieces(self) -> Iterator[str]:
        left = self.length
        while left > 0:
            size = min(left, 1 << 20)
            yield self.char * size
            left -= size


Cell = str | int | Big | None


def column_letter(index: int) -> str:
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def write_xlsx(
    path: Path,
    rows: Sequence[Sequence[Cell]],
    *,
    shared: bool = False,
    raw_rows: Mapping[int, str] | None = None,
    parts: Mapping[str, bytes] | None = None,
) -> Path:
    """A workbook of one sheet "People" holding *rows* from A1: texts inline
    (as openpyxl writes them) or, with *shared*, in the shared-string table
    (as Excel does); numbers as numbers. *raw_rows* replaces row N's XML by
    the text given; *parts* adds parts (or replaces them) as they are."""
    strings: list[str | Big] = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in _package(shared).items():
            archive.writestr(name, data)
        with archive.open(SHEET, "w", force_zip64=True) as out:
            out.write(f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}"><sheetData>'.encode())
            for number, row in enumerate(rows, start=1):
                if raw_rows and number in raw_rows:
                    out.write(raw_rows[number].encode())
                    continue
                out.write(f'<row r="{number}">'.encode())
                for index, value in enumerate(row, start=1):
                    ref = f"{column_letter(index)}{number}"
                    if value is None:
                        continue
                    if isinstance(value, int):
                        out.write(f'<c r="{ref}"><v>{value}</v></c>'.encode())
                    elif shared:
                        strings.append(value)
                        out.write(f'<c r="{ref}" t="s"><v>{len(strings) - 1}</v></c>'.encode())
                    else:
                        out.write(f'<c r="{ref}" t="inlineStr"><is><t>'.encode())
                        _text(out, value)
                        out.write(b"</t></is></c>")
                out.write(b"</row>")
            out.write(b"</sheetData></worksheet>")
        if shared:
            with archive.open(STRINGS, "w", force_zip64=True) as out:
                out.write(f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}">'.encode())
                for text in strings:
                    out.write(b"<si><t>")
                    _text(out, text)
                    out.write(b"</t></si>")
                out.write(b"</sst>")
        for name, data in (parts or {}).items():
            archive.writestr(name, data)
    return path


def _text(out: object, value: str | Big) -> None:
    write = out.write  # type: ignore[attr-defined]
    for piece in value.pieces() if isinstance(value, Big) else [value]:
        write(escape(piece).encode())


def _package(shared: bool) -> dict[str, str]:
    strings_type = f'<Override PartName="/{STRINGS}" ContentType="{TYPES}.sharedStrings+xml"/>' if shared else ""
    strings_rel = (
        f'<Relationship Id="rId2" Type="{RELS}/sharedStrings" Target="sharedStrings.xml"/>' if shared else ""
    )
    return {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{TYPES}.sheet.main+xml"/>'
            f'<Override PartName="/{SHEET}" ContentType="{TYPES}.worksheet+xml"/>'
            f"{strings_type}</Types>"
        ),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PACKAGE_RELS}">'
            f'<Relationship Id="rId1" Type="{RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{RELS}">'
            '<sheets><sheet name="People" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PACKAGE_RELS}">'
            f'<Relationship Id="rId1" Type="{RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
            f"{strings_rel}</Relationships>"
        ),
    }
