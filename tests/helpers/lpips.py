"""A reference LPIPS in float64 torch and tiny LPIPS weights on disk, for the eval tests."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mvt4g.eval import learned

WIDTHS = (4, 6, 8, 5, 7)


KERNELS = (11, 5, 3, 3, 3)


def save_tiny_weights(folder, seed: int = 0) -> tuple[dict, dict]:
    """A random AlexNet-format state dict (with classifier keys, as torchvision's) and LPIPS linear layers."""
    g = torch.Generator().manual_seed(seed)
    alex, c_in = {}, 3
    for (index, *_), width, k in zip(learned.ALEX_CONVS, WIDTHS, KERNELS):
        alex[f"features.{index}.weight"] = torch.randn(width, c_in, k, k, generator=g) * 0.2
        alex[f"features.{index}.bias"] = torch.randn(width, generator=g) * 0.1
        c_in = width
    alex["classifier.1.weight"] = torch.randn(3, 2, generator=g)  # ignored, as in torchvision's file
    lins = {f"lin{k}.model.1.weight": torch.rand(1, w, 1, 1, generator=g) for k, w in enumerate(WIDTHS)}
    torch.save(alex, folder / learned.ALEXNET_FILE)
    torch.save(lins, folder / learned.LPIPS_LINEAR_FILE)
    return alex, lins


def reference_lpips(alex: dict, lins: dict, a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS of one uint8 image pair, written out step by step in float64."""
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)

    def feats(img):
        x = torch.from_numpy(img).double().permute(2, 0, 1)[None] / 255.0 * 2.0 - 1.0
        x = (x - shift) / scale
        outs = []
        for n, (index, _, stride, pad) in enumerate(learned.ALEX_CONVS):
            if n in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(F.conv2d(x, alex[f"features.{index}.weight"].double(), alex[f"features.{index}.bias"].double(),
                                stride=stride, padding=pad))  # fmt: skip
            outs.append(x)
        return outs

    total = 0.0
    for k, (fa, fb) in enumerate(zip(feats(a), feats(b))):
        na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = lins[f"lin{k}.model.1.weight"].double().view(1, -1, 1, 1)
        total += float(((na - nb) ** 2 * w).sum(1).mean())
    return total
