"""Figure checks and metadata stripping (PNG and JPEG only; SVG, PDF, GIF... fail, like ACRO).

The type is read from the file's magic bytes, not trusted from its name. Metadata (EXIF, PNG
text chunks, ICC profiles, comments) and bytes after the image's end marker can hide data, so
they send the figure to review; ``strip_metadata`` re-encodes the pixels alone. An output figure
needs its underlying counts as a supporting table (OpenSAFELY's rule).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from .config import CheckConfig, CheckError
from .report import Flag
from .tables import FlagSink

_MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg"}
_BLOCKED = ("svg", "gif", "pdf", "bmp", "tiff", "webp", "eps", "gph")


def sniff(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def _trailing_bytes(data: bytes, kind: str) -> int:
    if kind == "png":
        end = data.rfind(b"IEND")
        return max(0, len(data) - (end + 8)) if end >= 0 else 0
    end = data.rfind(b"\xff\xd9")
    return max(0, len(data) - (end + 2)) if end >= 0 else 0


def metadata_found(path: Path, config: CheckConfig) -> tuple[str, list[str]]:
    """The figure's type and the metadata items it carries; CheckError if not a safe figure."""
    from PIL import Image

    kind = sniff(path)
    if kind is None or kind not in config.figure_types:
        raise CheckError(f"{path.name}: not an allowed figure ({', '.join(config.figure_types)})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > config.max_figure_pixels:
                    raise CheckError(f"{path.name}: {img.width}x{img.height} pixels is too large")
                img.load()
                found = sorted(
                    str(k)
                    for k in img.info
                    if k
                    not in (
                        "dpi",
                        "aspect",
                        "gamma",
                        "jfif",
                        "jfif_version",
                        "jfif_unit",
                        "jfif_density",
                        "progressive",
                        "progression",
                        "transparency",  # part of the pixels of a palette PNG, kept
                    )
                )
                if img.getexif():
                    found.append("exif")
    except CheckError:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile image bytes
        raise CheckError(f"{path.name}: image cannot be decoded: {exc}") from None
    trailing = _trailing_bytes(path.read_bytes(), kind)
    if trailing:
        found.append(f"{trailing} byte(s) after the end of the image")
    return kind, sorted(set(found))


def check_figure(
    path: Path, ext: str, config: CheckConfig, sink: FlagSink, *, has_counts: bool
) -> None:
    if ext in _BLOCKED or ext not in config.figure_types:
        sink.add(
            Flag(
                "file-type",
                f".{ext} figures are not allowed (use "
                f"{', '.join(config.figure_types)}; SVG/PDF can carry data and scripts)",
            )
        )
        return
    actual = sniff(path)
    if actual != ext:
        sink.add(Flag("file-type", f"named .{ext} but the bytes are {actual or 'not an image'}"))
        return
    try:
        _, found = metadata_found(path, config)
    except CheckError as exc:
        sink.add(Flag("unreadable", str(exc)))
        return
    if found:
        sink.add(
            Flag(
                "figure-metadata",
                "figure carries metadata: " + ", ".join(found) + " (strip it before release)",
                {"metadata": found},
                severity="review",
            )
        )
    if not has_counts:
        sink.add(
            Flag(
                "figure-needs-counts",
                "no supporting table with the figure's underlying counts in the request",
                {},
                severity="review",
            )
        )


def strip_metadata(src: Path, dst: Path, config: CheckConfig | None = None) -> list[str]:
    """Re-encode figure ``src`` into ``dst`` from its pixels alone; return what was removed.

    Raises :class:`CheckError` if ``src`` is not an allowed figure (by its bytes) or cannot be
    decoded; ``dst`` is then not written.
    """
    from PIL import Image

    config = config or CheckConfig()
    kind, found = metadata_found(Path(src), config)
    with Image.open(src) as img:
        img.load()
        mode = img.mode
        if kind == "jpeg" and mode not in ("L", "RGB", "CMYK"):
            mode = "RGB"
        if kind == "png" and mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
            mode = "RGBA"
        pixels = img.convert(mode) if mode != img.mode else img.copy()
        clean = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
        if pixels.mode == "P":
            palette = pixels.getpalette()
            if palette is not None:
                clean.putpalette(palette)
        tmp = Path(dst).with_name(Path(dst).name + ".partial")
        if kind == "png":
            extra = {}
            if "transparency" in img.info and clean.mode in ("P", "L", "RGB"):
                extra["transparency"] = img.info["transparency"]
            clean.save(tmp, format="PNG", optimize=False, **extra)
        else:
            clean.save(tmp, format="JPEG", quality=95)
    tmp.replace(dst)
    return found
