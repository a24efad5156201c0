"""Learned metrics: they need network weights the user supplies locally (``--weights-dir``); mvt4g never downloads.

:data:`REGISTRY` lists every learned metric the paper's tables use, the file(s) each needs
under the weights directory, and whether mvt4g implements it. :func:`metric_status` says
``"ready"`` or why it is skipped (``"skipped: needs FILE"``, or that mvt4g does not implement
it yet); nothing is ever scored with made-up or missing weights.

LPIPS (Zhang et al. 2018, v0.1, AlexNet) is implemented here in torch:

* ``alexnet-owt-7be5be79.pth``: torchvision's ImageNet AlexNet state dict (keys
  ``features.{0,3,6,8,10}.{weight,bias}``; ``classifier.*`` keys are ignored). The five
  convolutions are rebuilt with those exact names (torchvision is not needed).
* ``lpips_alex_v0.1.pth``: the LPIPS package's ``lpips/weights/v0.1/alex.pth`` (keys
  ``lin{0..4}.model.1.weight``, shape ``[1, C_k, 1, 1]``), renamed.

Channel widths are read from the files (kernel sizes, strides and paddings are AlexNet's), so
the same code runs the real network and the tiny random stand-in the tests save in the same
format. Computation: pixels to ``[-1, 1]``, LPIPS's input scaling ``(x - shift) / scale``,
features after each of the five ReLUs, unit-normalised over channels (``x / (|x| + 1e-10)``),
squared differences weighted by the linear layers, spatial mean, sum over the five layers. The
video value is the mean over frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mvt4g.errors import InputError
from mvt4g.eval.inputs import check_video_pair

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LPIPS_LINEAR_FILE = "lpips_alex_v0.1.pth"
#: LPIPS's ScalingLayer constants (inputs already in [-1, 1]).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
#: (index in ``features``, kernel, stride, padding) of AlexNet's five convolutions.
ALEX_CONVS = ((0, 11, 4, 2), (3, 5, 1, 2), (6, 3, 1, 1), (8, 3, 1, 1), (10, 3, 1, 1))


@dataclass(frozen=True)
class LearnedMetric:
    """One learned metric: where it comes from, what it needs, whether mvt4g runs it."""

    name: str
    source: str
    files: tuple[str, ...]
    implemented: bool
    note: str = ""


REGISTRY: dict[str, LearnedMetric] = {
    m.name: m
    for m in (
        LearnedMetric("lpips", "LPIPS v0.1 AlexNet (Zhang et al. 2018); lower is better",
                      (ALEXNET_FILE, LPIPS_LINEAR_FILE), True),
        LearnedMetric("subject_consistency", "VBench subject consistency (DINO ViT-B/16 features)",
                      ("dino_vitbase16_pretrain.pth",), False),
        LearnedMetric("background_consistency", "VBench background consistency (CLIP ViT-B/32 features)",
                      ("ViT-B-32.pt",), False),
        LearnedMetric("aesthetic_quality", "VBench aesthetic quality (CLIP ViT-L/14 + LAION aesthetic head)",
                      ("ViT-L-14.pt", "sa_0_4_vit_l_14_linear.pth"), False),
        LearnedMetric("imaging_quality", "VBench imaging quality (MUSIQ trained on SPAQ)",
                      ("musiq_spaq_ckpt-358bb6af.pth",), False),
        LearnedMetric("motion_smoothness", "VBench motion smoothness (AMT-S frame interpolation)",
                      ("amt-s.pth",), False),
        LearnedMetric("met3r", "MEt3R multi-view consistency (MASt3R + DINO + FeatUp)",
                      ("MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric.pth", "featup_dino16_jbu_stack_cocostuff.ckpt"),
                      False, "also needs pytorch3d, which is not on PyPI"),
    )
}  # fmt: skip


def metric_status(name: str, weights_dir: str | Path | None) -> str:
    """``"ready"``, or ``"skipped: ..."`` with the reason (the first missing file, or not implemented)."""
    metric = REGISTRY.get(name)
    if metric is None:
        raise InputError(f"unknown learned metric {name!r} (known: {', '.join(REGISTRY)})")
    if weights_dir is None:
        return f"skipped: needs {metric.files[0]} (no --weights-dir given)"
    root = Path(weights_dir)
    missing = [f for f in metric.files if not (root / f).is_file()]
    if missing:
        return f"skipped: needs {missing[0]} in {root}"
    if not metric.implemented:
        extra = f"; {metric.note}" if metric.note else ""
        return f"skipped: weights found but mvt4g does not implement {name} yet{extra}"
    return "ready"


def all_statuses(weights_dir: str | Path | None) -> dict[str, str]:
    """:func:`metric_status` of every registered metric."""
    return {name: metric_status(name, weights_dir) for name in REGISTRY}


# ----------------------------------------------------------------------------- LPIPS


class _LinearHead(nn.Module):
    """One LPIPS linear layer; ``model.1`` matches the LPIPS file's key names."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class AlexNetFeatures(nn.Module):
    """AlexNet's ``features`` block with torchvision's module indices; returns the five ReLU outputs."""

    def __init__(self, widths: tuple[int, int, int, int, int] = (64, 192, 384, 256, 256)):
        super().__init__()
        c = (3,) + tuple(widths)
        layers: list[nn.Module] = []
        for k, (index, kernel, stride, pad) in enumerate(ALEX_CONVS):
            while len(layers) < index:  # the max-pools sit between the convolution groups
                layers.append(nn.MaxPool2d(3, 2))
            layers += [nn.Conv2d(c[k], c[k + 1], kernel, stride, pad), nn.ReLU()]
        layers.append(nn.MaxPool2d(3, 2))
        self.features = nn.Sequential(*layers)
        self.taps = tuple(index + 1 for index, *_ in ALEX_CONVS)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                outs.append(x)
            if i == self.taps[-1]:
                break
        return outs


class LPIPS(nn.Module):
    """LPIPS distance between image batches ``[B, 3, H, W]`` in ``[-1, 1]`` -> ``[B]``."""

    def __init__(self, widths: tuple[int, int, int, int, int] = (64, 192, 384, 256, 256)):
        super().__init__()
        self.net = AlexNetFeatures(widths)
        self.lins = nn.ModuleList([_LinearHead(w) for w in widths])
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa = self.net((a - self.shift) / self.scale)
        fb = self.net((b - self.shift) / self.scale)
        total = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
        for lin, xa, xb in zip(self.lins, fa, fb):
            na = xa / (torch.sqrt((xa * xa).sum(dim=1, keepdim=True)) + 1e-10)
            nb = xb / (torch.sqrt((xb * xb).sum(dim=1, keepdim=True)) + 1e-10)
            total = total + lin.model((na - nb) ** 2).mean(dim=(1, 2, 3))
        return total


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError("weights file not found", path=path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (torch raises many types for a non-checkpoint file)
        raise InputError(f"not a torch state dict ({' '.join(str(exc).split())[:120]})", path=path) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError("not a state dict of tensors", path=path)
    return state


def load_lpips(weights_dir: str | Path) -> LPIPS:
    """Build :class:`LPIPS` from ``ALEXNET_FILE`` and ``LPIPS_LINEAR_FILE`` in ``weights_dir``.

    Raises :class:`InputError` naming the file and the first missing key or bad shape.
    """
    root = Path(weights_dir)
    alex_path, lin_path = root / ALEXNET_FILE, root / LPIPS_LINEAR_FILE
    alex, lins = _load_state(alex_path), _load_state(lin_path)
    widths = []
    for k, (index, kernel, _, _) in enumerate(ALEX_CONVS):
        for suffix in ("weight", "bias"):
            if f"features.{index}.{suffix}" not in alex:
                raise InputError(f"missing key features.{index}.{suffix} (not a torchvision AlexNet)", path=alex_path)
        w = alex[f"features.{index}.weight"]
        c_in = 3 if k == 0 else widths[-1]
        if w.ndim != 4 or tuple(w.shape[1:]) != (c_in, kernel, kernel):
            raise InputError(f"features.{index}.weight has shape {list(w.shape)}, expected [C, {c_in}, {kernel}, {kernel}]",
                             path=alex_path)  # fmt: skip
        widths.append(int(w.shape[0]))
    model = LPIPS(tuple(widths))  # type: ignore[arg-type]
    for k, width in enumerate(widths):
        key = f"lin{k}.model.1.weight"
        if key not in lins:
            raise InputError(f"missing key {key} (not an LPIPS v0.1 linear-layer file)", path=lin_path)
        if tuple(lins[key].shape) != (1, width, 1, 1):
            raise InputError(f"{key} has shape {list(lins[key].shape)}, expected [1, {width}, 1, 1]", path=lin_path)
    model.net.load_state_dict({k: v for k, v in alex.items() if k.startswith("features.")}, strict=True)
    model.lins.load_state_dict({f"{k}.model.1.weight": lins[f"lin{k}.model.1.weight"] for k in range(5)}, strict=True)
    return model.eval()


def lpips_per_frame(model: LPIPS, pred: object, target: object, *, batch: int = 8) -> np.ndarray:
    """LPIPS of every frame pair of two uint8 videos ``[T, H, W, 3]`` -> float64 ``[T]``."""
    a, b = check_video_pair(pred, target)
    out = []
    with torch.no_grad():
        for s in range(0, a.shape[0], batch):
            ta = torch.from_numpy(a[s : s + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            tb = torch.from_numpy(b[s : s + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            out.append(model(ta, tb).double().numpy())
    return np.concatenate(out)


def lpips(model: LPIPS, pred: object, target: object) -> float:
    """Video LPIPS: the mean over frames of :func:`lpips_per_frame`."""
    return float(lpips_per_frame(model, pred, target).mean())
