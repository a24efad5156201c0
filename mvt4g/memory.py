"""Memory estimates: refuse sizes and counts this machine cannot hold, before any work.

One estimate per stage (bytes it holds at its peak, a lower bound: the real peak is higher),
and :func:`require_memory`, which turns an estimate above the machine's memory into an
:class:`InputError` naming the option: ``--size 100000x100000 needs ~251 GiB for the frames;
this machine has 23 GiB``. ``MVT4G_MEMORY_BYTES`` overrides the machine's memory (tests, or
a job with a smaller share than the machine).
"""

from __future__ import annotations

import os

from mvt4g.errors import InputError

GIB = 1024**3

# bytes per pixel of one rendered frame that a synth scene keeps until it is written:
# RGB uint8 (3) + depth float32 (4) + object mask uint8 (1)
_SYNTH_KEPT_PER_PIXEL = 8
# bytes per colour ray while a frame renders (origins, directions, hits, colours: float32)
_SYNTH_RAY_BYTES = 64
# float32 RGB frame
_FRAME_F32 = 3 * 4


def machine_memory_bytes() -> int:
    """The memory a run may use: ``MVT4G_MEMORY_BYTES`` if set, else the machine's physical memory."""
    env = os.environ.get("MVT4G_MEMORY_BYTES", "").strip()
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise InputError(f"MVT4G_MEMORY_BYTES must be a number of bytes, got {env!r}") from None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this platform: do not refuse anything
        return 1 << 62


def format_bytes(n: float) -> str:
    if n >= GIB:
        return f"{n / GIB:,.0f} GiB"
    return f"{n / 1024**2:,.0f} MiB"


def require_memory(needed: float, option: str, what: str) -> None:
    """InputError ``"{option} needs ~X GiB for {what}; this machine has Y GiB"`` when ``needed``
    exceeds the memory of this machine (:func:`machine_memory_bytes`)."""
    have = machine_memory_bytes()
    if needed > have:
        raise InputError(f"{option} needs ~{format_bytes(needed)} for {what}; this machine has {format_bytes(have)}")


def synth_bytes(*, views: int, frames: int, height: int, width: int, supersample: int = 1, points: int = 0,
                workers: int = 1) -> int:  # fmt: skip
    """A synth run: every worker holds one scene's frames, depth and masks for all views, plus
    one frame's colour rays while it renders, plus the tracks."""
    pixels = height * width
    kept = views * frames * pixels * _SYNTH_KEPT_PER_PIXEL
    rays = pixels * supersample * supersample * _SYNTH_RAY_BYTES
    tracks = points * views * frames * 3 * 4
    return workers * (kept + rays + tracks)


def plucker_bytes(*, frames: int, height: int, width: int) -> int:
    """One view's Plücker map: [F, 6, H, W] float32, computed and then converted (two copies)."""
    return 2 * frames * 6 * height * width * 4


def trajectory_bytes(*, frames: int) -> int:
    """A camera trajectory: a few [F, 4, 4] float64 arrays (poses, interpolation, output)."""
    return 8 * frames * 16 * 8


def generate_bytes(*, frames: int, height: int, width: int, views: int = 2) -> int:
    """Sampling one video: the reference and the generated views as float32 RGB frames, each
    held about three times (input, decoded output, the encoded copy) while it is written."""
    return 3 * views * frames * height * width * _FRAME_F32


def demo_bytes(*, views: int, frames: int, height: int, width: int) -> int:
    """The demo's largest stage: rendering a scene, or sampling a clip of all its views."""
    return max(synth_bytes(views=views, frames=frames, height=height, width=width),
               generate_bytes(frames=frames, height=height, width=width, views=views))  # fmt: skip


def check_synth(*, views: int, frames: int, height: int, width: int, supersample: int = 1, points: int = 0,
                workers: int = 1) -> None:  # fmt: skip
    """InputError naming the option that drives a synth run past this machine's memory."""
    needed = synth_bytes(views=views, frames=frames, height=height, width=width, supersample=supersample,
                         points=points, workers=workers)  # fmt: skip
    require_memory(needed, _drive(views=views, frames=frames, height=height, width=width), "the frames")


def _drive(*, frames: int, height: int, width: int, views: int = 1) -> str:
    """The option furthest above its usual value (81 frames, 480x832, 8 views), as typed."""
    ratios = {f"--frames {frames}": frames / 81, f"--size {height}x{width}": height * width / (480 * 832),
              f"--views {views}": views / 8}  # fmt: skip
    return max(ratios, key=ratios.__getitem__)


def check_video(*, frames: int, height: int, width: int, views: int = 2, what: str = "the frames") -> None:
    """InputError naming the option that drives sampling ``views`` videos past this machine's memory."""
    needed = generate_bytes(frames=frames, height=height, width=width, views=views)
    require_memory(needed, _drive(views=views, frames=frames, height=height, width=width), what)


def check_demo(*, views: int, frames: int, height: int, width: int) -> None:
    needed = demo_bytes(views=views, frames=frames, height=height, width=width)
    require_memory(needed, _drive(views=views, frames=frames, height=height, width=width), "the frames")


def check_plucker(*, frames: int, height: int, width: int, option: str) -> None:
    require_memory(plucker_bytes(frames=frames, height=height, width=width), option, "the ray maps")


def check_trajectory(frames: int) -> None:
    require_memory(trajectory_bytes(frames=frames), f"--frames {frames}", "the camera poses")
