"""libvips' process-wide set-up for untrusted uploads: call `init_vips()` once at start-up (it is idempotent).

imgproxy's set-up (vips/vips.go), for the same reasons: only the loaders we accept may run, no
operation cache, one libvips thread per image and parallelism across requests instead.
"""

from __future__ import annotations

import threading

import pyvips

# block_untrusted_set() exists from 8.13; below that the call silently does nothing.
MIN_LIBVIPS = (8, 13)

# The input formats SPEC.md lists, as libvips loader classes (each covers its file, buffer and source
# variants). Everything else (svg, pdf, the raw/vips/csv/matrix formats, ImageMagick) stays blocked,
# so format detection cannot route an upload to a loader we never meant to expose.
ALLOWED_LOADERS = (
    "VipsForeignLoadJpeg",
    "VipsForeignLoadPng",
    "VipsForeignLoadWebp",
    "VipsForeignLoadHeif",
    "VipsForeignLoadNsgif",
    "VipsForeignLoadTiff",
)

_lock = threading.Lock()
_done = False


def init_vips(*, threads_per_image: int = 1) -> None:
    global _done
    with _lock:
        if _done:
            return
        if not pyvips.at_least_libvips(*MIN_LIBVIPS):
            found = f"{pyvips.version(0)}.{pyvips.version(1)}"
            raise RuntimeError(f"libvips >= {MIN_LIBVIPS[0]}.{MIN_LIBVIPS[1]} is needed, found {found}")
        # Loaders libvips itself marks as unsafe for untrusted input (ImageMagick, matload, ...);
        # https://www.libvips.org/2022/05/28/What's-new-in-8.13.html
        pyvips.block_untrusted_set(True)
        pyvips.operation_block_set("VipsForeignLoad", True)
        for loader in ALLOWED_LOADERS:
            pyvips.operation_block_set(loader, False)
        # The operation cache keeps decoded images alive between requests that never share inputs:
        # memory with no hits (imgproxy turns it off for the same reason).
        pyvips.cache_set_max(0)
        pyvips.cache_set_max_mem(0)
        pyvips.cache_set_max_files(0)
        # One thread per image: a bounded pool of conversions uses the cores with less contention
        # than every conversion fanning out to all of them.
        pyvips.concurrency_set(threads_per_image)
        _done = True
