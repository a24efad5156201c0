"""Will a generation fit on the device? The memory plan (:mod:`mvt4g.model.plan`) against the
device's memory, before anything is loaded.

:func:`check_device_fits` plans a video under the chosen ``--offload`` mode, decodes the VAE in
tiles when whole frames would not fit (planned, not found by running out of memory), and refuses
what cannot fit with one line naming what would: the offload modes that save enough, fewer
frames, half the size, bf16, the CPU.
"""

from __future__ import annotations

import math

import torch

from mvt4g.errors import InputError
from mvt4g.model.placement import OFFLOAD_MODES
from mvt4g.model.plan import GIB, PlanShape, generate_plan, use_tiles

# Fraction of device memory the plan may fill: the CUDA context, cuBLAS workspaces and
# allocator fragmentation take the rest.
HEADROOM = 0.9

# How a refusal names the mode it planned for.
_MODE_PHRASE = {"none": "with no offload (DiT and VAE resident)", "model": "with --offload model",
                "sequential": "with --offload sequential"}  # fmt: skip


def check_generate_fits(plan: dict, device_bytes: float, *, dtype: torch.dtype = torch.bfloat16,
                        device: str = "cuda", fit=None) -> None:  # fmt: skip
    """InputError when a generate plan's peak (under its offload mode) exceeds ``HEADROOM`` of
    the device's memory, naming what would fit: the offload modes that save enough, then
    ``fit(frames, height, width) -> bytes`` re-plans smaller videos at the same mode (largest
    4k+1 frame count at this size, then half the size)."""
    mode = plan.get("offload", "none")
    need = plan.get("peak_bytes", plan["peak_bytes_resident"])
    usable = HEADROOM * device_bytes
    if need <= usable:
        return
    shape = plan["shape"]
    by_offload = plan.get("peak_bytes_by_offload", {})
    options = [f"--offload {m} (~{by_offload[m] / GIB:.1f} GiB)" for m in OFFLOAD_MODES
               if m != mode and by_offload.get(m, math.inf) <= usable]  # fmt: skip
    if dtype == torch.float32:
        options.append("--dtype bfloat16")
    if fit is not None:
        frames = _largest_fitting_frames(shape, usable, fit, tf=plan.get("temporal_factor", 4))
        if frames:
            options.append(f"--frames {frames}")
        h, w = shape["height"] // 2, shape["width"] // 2
        if fit(shape["frames"], h, w) <= usable:
            options.append(f"--size {h}x{w}")
    options.append("--device cpu")
    tiles = " and the VAE decoding in tiles" if plan.get("tiled_decode") else ""
    raise InputError(f"generating {shape['frames']}x{shape['height']}x{shape['width']} needs ~{need / GIB:.1f} GiB on "
                     f"{device} {_MODE_PHRASE[mode]}{tiles}, which has {device_bytes / GIB:.1f} GiB ({HEADROOM:.0%} usable); "
                     f"would fit: {', '.join(options)}")  # fmt: skip


def _largest_fitting_frames(shape: dict, usable: float, fit, tf: int = 4) -> int | None:
    """The most frames (tf*k+1, below the asked count) whose plan fits, by bisection on k."""
    lo, hi = 0, (shape["frames"] - 1) // tf - 1
    if hi < 0 or fit(1, shape["height"], shape["width"]) > usable:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fit(tf * mid + 1, shape["height"], shape["width"]) <= usable:
            lo = mid
        else:
            hi = mid - 1
    return tf * lo + 1


def check_device_fits(config, *, frames: int, height: int, width: int, steps: int, guidance: bool,
                      dtype: torch.dtype, device: torch.device | str, device_bytes: float | None = None,
                      offload: str = "none") -> dict:  # fmt: skip
    """Plan generation under ``offload`` and refuse (InputError) what cannot fit on ``device``;
    returns the plan, with ``tiled_decode`` True when the VAE must decode in tiles to fit (planned
    up front, not found by running out of memory). ``device_bytes`` defaults to the CUDA
    device's total memory (tests pass a fake size)."""
    if device_bytes is None:
        device_bytes = float(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    usable = HEADROOM * device_bytes

    def plan_for(f: int, h: int, w: int) -> dict:
        plan = generate_plan(config, PlanShape(f, h, w), steps=steps, guidance=guidance, dtype=dtype, offload=offload)
        if plan["peak_bytes"] <= usable or not any(s["name"] == "VAE decode" for s in plan["stages"]):
            return plan
        tiled = use_tiles(generate_plan(config, PlanShape(f, h, w), steps=steps, guidance=guidance, dtype=dtype,
                                        offload=offload, tiled=True))  # fmt: skip
        return tiled if tiled["peak_bytes"] < plan["peak_bytes"] else plan

    result = plan_for(frames, height, width)
    stride = config.token_stride

    def fit(f: int, h: int, w: int) -> float:
        if h % stride or w % stride:  # half the size must still be whole tokens
            return float("inf")
        return plan_for(f, h, w)["peak_bytes"]

    check_generate_fits(result, device_bytes, dtype=dtype, device=str(device), fit=fit)
    return result
