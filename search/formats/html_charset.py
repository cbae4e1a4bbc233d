"""The encoding an HTML page declares, found and named as browsers do (the WHATWG HTML and Encoding standards).

`declared_encoding` runs the standard's *prescan* over the first 1024 bytes: comments, other tags and
their attributes are stepped over, and the first ``<meta charset=...>`` or ``<meta http-equiv=
"content-type" content="...; charset=...">`` wins. Its label is then looked up in the standard's table
of labels (`WHATWG_LABELS`), which maps, for instance, ``iso-8859-1``, ``latin1`` and ``ascii`` to
windows-1252, ``gb2312`` to GBK (read with Python's gb18030), ``shift_jis`` to windows-31j (cp932) and
``euc-kr`` to windows-949 (cp949). As the standard says, a page that declares UTF-16 is read as UTF-8 (a
page found by a byte scan that far is not UTF-16) and ``x-user-defined`` as windows-1252. Labels of the
standard's *replacement* encoding (ISO-2022-KR, ISO-2022-CN, HZ) are ignored, as unknown labels are:
the bytes then decide.
"""

from __future__ import annotations

from typing import NamedTuple

PRESCAN_BYTES = 1024
_SPACE = b"\t\n\x0c\r "
_LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

# WHATWG encoding -> (the Python codec that decodes it, its labels).
_ENCODINGS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "UTF-8": ("utf-8", ("unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8", "x-unicode20utf8")),
    "IBM866": ("cp866", ("866", "cp866", "csibm866", "ibm866")),
    "ISO-8859-2": ("iso8859-2", ("csisolatin2", "iso-8859-2", "iso-ir-101", "iso8859-2", "iso88592", "iso_8859-2",
                                 "iso_8859-2:1987", "l2", "latin2")),
    "ISO-8859-3": ("iso8859-3", ("csisolatin3", "iso-8859-3", "iso-ir-109", "iso8859-3", "iso88593", "iso_8859-3",
                                 "iso_8859-3:1988", "l3", "latin3")),
    "ISO-8859-4": ("iso8859-4", ("csisolatin4", "iso-8859-4", "iso-ir-110", "iso8859-4", "iso88594", "iso_8859-4",
                                 "iso_8859-4:1988", "l4", "latin4")),
    "ISO-8859-5": ("iso8859-5", ("csisolatincyrillic", "cyrillic", "iso-8859-5", "iso-ir-144", "iso8859-5",
                                 "iso88595", "iso_8859-5", "iso_8859-5:1988")),
    "ISO-8859-6": ("iso8859-6", ("arabic", "asmo-708", "csiso88596e", "csiso88596i", "csisolatinarabic", "ecma-114",
                                 "iso-8859-6", "iso-8859-6-e", "iso-8859-6-i", "iso-ir-127", "iso8859-6", "iso88596",
                                 "iso_8859-6", "iso_8859-6:1987")),
    "ISO-8859-7": ("iso8859-7", ("csisolatingreek", "ecma-118", "elot_928", "greek", "greek8", "iso-8859-7",
                                 "iso-ir-126", "iso8859-7", "iso88597", "iso_8859-7", "iso_8859-7:1987",
                                 "sun_eu_greek")),
    "ISO-8859-8": ("iso8859-8", ("csiso88598e", "csisolatinhebrew", "hebrew", "iso-8859-8", "iso-8859-8-e",
                                 "iso-ir-138", "iso8859-8", "iso88598", "iso_8859-8", "iso_8859-8:1988", "visual")),
    "ISO-8859-8-I": ("iso8859-8", ("csiso88598i", "iso-8859-8-i", "logical")),
    "ISO-8859-10": ("iso8859-10", ("csisolatin6", "iso-8859-10", "iso-ir-157", "iso8859-10", "iso885910", "l6",
                                   "latin6")),
    "ISO-8859-13": ("iso8859-13", ("iso-8859-13", "iso8859-13", "iso885913")),
    "ISO-8859-14": ("iso8859-14", ("iso-8859-14", "iso8859-14", "iso885914")),
    "ISO-8859-15": ("iso8859-15", ("csisolatin9", "iso-8859-15", "iso8859-15", "iso885915", "iso_8859-15", "l9")),
    "ISO-8859-16": ("iso8859-16", ("iso-8859-16",)),
    "KOI8-R": ("koi8-r", ("cskoi8r", "koi", "koi8", "koi8-r", "koi8_r")),
    "KOI8-U": ("koi8-u", ("koi8-ru", "koi8-u")),
    "macintosh": ("mac-roman", ("csmacintosh", "mac", "macintosh", "x-mac-roman")),
    "windows-874": ("cp874", ("dos-874", "iso-8859-11", "iso8859-11", "iso885911", "tis-620", "windows-874")),
    "windows-1250": ("cp1250", ("cp1250", "windows-1250", "x-cp1250")),
    "windows-1251": ("cp1251", ("cp1251", "windows-1251", "x-cp1251")),
    "windows-1252": ("cp1252", ("ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819", "iso-8859-1",
                                "iso-ir-100", "iso8859-1", "iso88591", "iso_8859-1", "iso_8859-1:1987", "l1",
                                "latin1", "us-ascii", "windows-1252", "x-cp1252")),
    "windows-1253": ("cp1253", ("cp1253", "windows-1253", "x-cp1253")),
    "windows-1254": ("cp1254", ("cp1254", "csisolatin5", "iso-8859-9", "iso-ir-148", "iso8859-9", "iso88599",
                                "iso_8859-9", "iso_8859-9:1989", "l5", "latin5", "windows-1254", "x-cp1254")),
    "windows-1255": ("cp1255", ("cp1255", "windows-1255", "x-cp1255")),
    "windows-1256": ("cp1256", ("cp1256", "windows-1256", "x-cp1256")),
    "windows-1257": ("cp1257", ("cp1257", "windows-1257", "x-cp1257")),
    "windows-1258": ("cp1258", ("cp1258", "windows-1258", "x-cp1258")),
    "x-mac-cyrillic": ("mac-cyrillic", ("x-mac-cyrillic", "x-mac-ukrainian")),
    "GBK": ("gb18030", ("chinese", "csgb2312", "csiso58gb231280", "gb2312", "gb_2312", "gb_2312-80", "gbk",
                        "iso-ir-58", "x-gbk")),
    "gb18030": ("gb18030", ("gb18030",)),
    "Big5": ("big5hkscs", ("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5")),
    "EUC-JP": ("euc_jp", ("cseucpkdfmtjapanese", "euc-jp", "x-euc-jp")),
    "ISO-2022-JP": ("iso2022_jp", ("csiso2022jp", "iso-2022-jp")),
    "Shift_JIS": ("cp932", ("csshiftjis", "ms932", "ms_kanji", "shift-jis", "shift_jis", "sjis", "windows-31j",
                            "x-sjis")),
    "EUC-KR": ("cp949", ("cseuckr", "csksc56011987", "euc-kr", "iso-ir-149", "korean", "ks_c_5601-1987",
                         "ks_c_5601-1989", "ksc5601", "ksc_5601", "windows-949")),
    "replacement": (None, ("csiso2022kr", "hz-gb-2312", "iso-2022-cn", "iso-2022-cn-ext", "iso-2022-kr",
                           "replacement")),
    # A page found by scanning its bytes for <meta> is ASCII-compatible, so never UTF-16: read as UTF-8.
    "UTF-16BE": ("utf-8", ("unicodefffe", "utf-16be")),
    "UTF-16LE": ("utf-8", ("csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16", "utf-16le")),
    "x-user-defined": ("cp1252", ("x-user-defined",)),
}
WHATWG_LABELS: dict[str, str] = {label: name for name, (_, labels) in _ENCODINGS.items() for label in labels}
"""Every label of the WHATWG Encoding Standard -> the name of its encoding."""


class Declared(NamedTuple):
    """A page's declared charset: the `label` as written, the WHATWG `encoding` it names ("" when none), and
    the Python `codec` that decodes it (None: unknown, or the replacement encoding)."""

    label: str
    encoding: str
    codec: str | None


def whatwg_codec(label: str) -> Declared:
    """The WHATWG encoding and Python codec of a charset label (ASCII whitespace stripped, any case).

    >>> whatwg_codec(" Latin1 "), whatwg_codec("utf-16").codec, whatwg_codec("undefined").codec
    (Declared(label='Latin1', encoding='windows-1252', codec='cp1252'), 'utf-8', None)
    """
    name = WHATWG_LABELS.get(label.strip("\t\n\x0c\r ").lower(), "")
    return Declared(label.strip(), name, _ENCODINGS[name][0] if name else None)


def declared_encoding(data: bytes) -> Declared | None:
    """The charset the first ``<meta>`` of the page's first 1024 bytes declares, or None (the WHATWG
    prescan; a declaration with an unknown label is skipped and the scan goes on, as browsers do).

    >>> declared_encoding(b'<!-- <meta charset=koi8-r> --><meta http-equiv=Content-Type content="text/html; '
    ...                   b'charset=Shift_JIS">').codec
    'cp932'
    """
    head = data[:PRESCAN_BYTES]
    position = 0
    first_unknown: Declared | None = None
    while position < len(head):
        if head.startswith(b"<!--", position):
            end = head.find(b"-->", position + 2)
            position = len(head) if end == -1 else end + 3
        elif head[position : position + 5].lower() == b"<meta" and head[position + 5 : position + 6] in (
                *[bytes([byte]) for byte in _SPACE], b"/"):
            found, position = _meta(head, position + 6)
            if found is not None:
                if found.codec is not None:
                    return found
                first_unknown = first_unknown or found
        elif head[position : position + 1] == b"<" and (
                head[position + 1 : position + 2] and head[position + 1] in _LETTERS
                or head[position + 1 : position + 2] == b"/" and head[position + 2 : position + 3]
                and head[position + 2] in _LETTERS):
            while position < len(head) and head[position] not in _SPACE and head[position] != 0x3E:
                position += 1
            while (attribute := _attribute(head, position)) is not None:
                position = attribute[2]
            position += 1
        elif head[position : position + 2] in (b"<!", b"</", b"<?"):
            end = head.find(b">", position + 2)
            position = len(head) if end == -1 else end + 1
        else:
            position += 1
    return first_unknown


def _meta(head: bytes, position: int) -> tuple[Declared | None, int]:
    """The charset a <meta> tag whose attributes start at `position` declares, and where the scan goes on."""
    names: set[str] = set()
    pragma = False
    need_pragma: bool | None = None
    charset: str | None = None
    while (attribute := _attribute(head, position)) is not None:
        name, value, position = attribute
        if name in names:
            continue
        names.add(name)
        if name == "http-equiv" and value == "content-type":
            pragma = True
        elif name == "content" and charset is None:
            found = _charset_in_content(value)
            if found is not None:
                charset, need_pragma = found, True
        elif name == "charset":
            charset, need_pragma = value, False
    if need_pragma is None or (need_pragma and not pragma) or charset is None:
        return None, position
    return whatwg_codec(charset), position


def _attribute(head: bytes, position: int) -> tuple[str, str, int] | None:
    """(name, value, position after it) of the attribute at `position` (the standard's "get an attribute",
    names and values lower-cased), or None at the tag's end or the end of the bytes."""
    length = len(head)
    while position < length and (head[position] in _SPACE or head[position] == 0x2F):
        position += 1
    if position >= length or head[position] == 0x3E:
        return None
    name = bytearray()
    while True:
        if position >= length:
            return None
        byte = head[position]
        if byte == 0x3D and name:
            position += 1
            break
        if byte in _SPACE:
            while position < length and head[position] in _SPACE:
                position += 1
            if position >= length or head[position] != 0x3D:
                return _text(name), "", position
            position += 1
            break
        if byte in (0x2F, 0x3E):
            return _text(name), "", position
        name.append(byte)
        position += 1
    while position < length and head[position] in _SPACE:
        position += 1
    if position >= length:
        return None
    value = bytearray()
    quote = head[position]
    if quote in (0x22, 0x27):
        end = head.find(bytes([quote]), position + 1)
        if end == -1:
            return None
        return _text(name), _text(head[position + 1 : end]), end + 1
    if quote == 0x3E:
        return _text(name), "", position
    while position < length and head[position] not in _SPACE and head[position] != 0x3E:
        value.append(head[position])
        position += 1
    if position >= length:
        return None
    return _text(name), _text(value), position


def _text(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("latin-1").lower()


def _charset_in_content(content: str) -> str | None:
    """The standard's "extract a character encoding from a meta element": ``text/html; charset=koi8-r``."""
    position = 0
    while (found := content.find("charset", position)) != -1:
        position = found + 7
        rest = content[position:].lstrip("\t\n\x0c\r ")
        if not rest.startswith("="):
            continue
        rest = rest[1:].lstrip("\t\n\x0c\r ")
        if rest[:1] in ("'", '"'):
            end = rest.find(rest[0], 1)
            return rest[1:end] if end != -1 else None
        value = rest
        for stop in ("\t", "\n", "\x0c", "\r", " ", ";"):
            value = value.split(stop, 1)[0]
        return value or None
    return None
