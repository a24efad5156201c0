"""The train module: the model plus its losses, so one forward call returns every loss.

``TrainModule(model, ...)(batch) -> {"loss", "diff", "track", "corr", "seq", "conf", "vis"}``
(scalars; each the MEAN over the batch's samples of that sample's loss). Wrapping this
module (not the bare model) in DDP / FSDP keeps every trainable parameter, including a
learned L_corr head, under the data-parallel wrapper.

Per sample b (paper Sec. 5.3, App. B.5)::

    x_t = (1 - sigma) x0 + sigma eps;  v = eps - x0
    L_diff(b)  = w(t_b) * mean over the target's latent elements of (v_pred - v)^2
    L_track(b) = 0.05 L_seq + L_conf + L_vis  on the head's tracks of this sample's queries
    L_corr(b)  = cross-entropy of the tapped attention at the ground-truth tokens
    L(b)       = L_diff(b) + lambda_track L_track(b) + lambda_corr L_corr(b)

Every loss is computed per sample and then averaged, so a batch split over processes (DDP
averages gradients over equal local batches) gives the gradient of the same global mean.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from mvt4g.model.correspondence import CorrespondenceLoss, CorrespondenceLossConfig
from mvt4g.model.flow_matching import RectifiedFlow, diffusion_loss
from mvt4g.model.losses import TotalLossConfig, TrackLossConfig, total_loss, track_loss

LOSS_KEYS = ("loss", "diff", "track", "corr", "seq", "conf", "vis")


def _sample_slice(prediction: dict, b: int) -> dict:
    return {k: ([t[b : b + 1] for t in v] if isinstance(v, list) else v[b : b + 1]) for k, v in prediction.items()}


class TrainModule(nn.Module):
    """See the module docstring. ``image_size`` = (H, W) pixels of the samples."""

    def __init__(self, model: nn.Module, *, image_size: tuple[int, int], use_track: bool, use_corr: bool,
                 total: TotalLossConfig, corr: CorrespondenceLossConfig | None = None,
                 track: TrackLossConfig | None = None, bf16: bool = False):  # fmt: skip
        super().__init__()
        self.model = model
        self.image_size = tuple(int(s) for s in image_size)
        self.use_track = use_track and getattr(model, "tracking_head", None) is not None
        self.use_corr = use_corr
        self.total_config = total
        self.track_config = track or TrackLossConfig()
        self.corr_loss = CorrespondenceLoss(corr) if use_corr else None
        self.bf16 = bf16

    def _autocast(self, device: torch.device):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        x0, noise, ref = batch["target"], batch["noise"], batch["reference"]
        noisy = RectifiedFlow.add_noise(x0, noise, batch["sigma"])
        velocity_target = RectifiedFlow.velocity_target(x0, noise)
        queries = batch.get("queries")
        with self._autocast(x0.device):
            out = self.model(
                ref, noisy, batch["timestep"],
                plucker=batch.get("plucker"), camera_pose=batch.get("camera_pose"), text_embeds=batch.get("text"),
                queries=queries if self.use_track else None, image_size=self.image_size,
                tap=self.use_track or self.use_corr,
            )  # fmt: skip
        rows = []
        for b in range(x0.shape[0]):
            s = slice(b, b + 1)
            diff = diffusion_loss(out.velocity[s], velocity_target[s], batch["weight"][s])
            parts = {"seq": None, "conf": None, "vis": None}
            track = corr = None
            if self.use_track:
                t = track_loss(_sample_slice(out.tracks, b), batch["tracks"][s], batch["visible"][s], self.track_config)
                track = t["loss"]
                parts = {k: t[k] for k in ("seq", "conf", "vis")}
            if self.use_corr:
                corr = self.corr_loss(out.tap.q[s], out.tap.k[s], queries[s], batch["tracks"][s], batch["visible"][s],
                                      self.image_size)  # fmt: skip
            total = total_loss(diff, track, corr, self.total_config)
            zero = total["loss"].new_zeros(())
            rows.append([total["loss"], total["diff"], total["track"], total["corr"]]
                        + [zero if parts[k] is None else parts[k].to(zero.dtype) for k in ("seq", "conf", "vis")])  # fmt: skip
        stacked = torch.stack([torch.stack(r) for r in rows])  # [B, 7]
        means = stacked.mean(dim=0)
        # Fresh tensors, not views of ``means``: FSDP2 hooks the root module's outputs for backward,
        # and an in-place op on a view would silently drop that hook (it warns about views).
        return {key: value.clone() for key, value in zip(LOSS_KEYS, means.unbind(0))}
