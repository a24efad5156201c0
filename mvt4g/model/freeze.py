"""The fine-tuning scope (paper Sec. 6 / ReCamMaster) and parameter counts per group.

The paper fine-tunes the DiT's 3D self-attention, the camera modules and the tracking head,
and freezes everything else. :func:`freeze_for_finetuning` applies that (or another set of
groups) and reports trainable / total parameters per group. Groups, by parameter name:

    self_attention   backbone.transformer.blocks.*.attn1.*   (Q/K/V/O and their RMSNorms)
    cross_attention  blocks.*.attn2.*, blocks.*.norm2.*      (text cross-attention + its norm)
    feed_forward     blocks.*.ffn.*
    modulation       blocks.*.scale_shift_table              (per-block adaLN tables)
    embeddings       patch_embedding, condition_embedder     (patches, time, text projection)
    output           proj_out, the final scale_shift_table
    camera           backbone.camera.*                        (encoders and projections)
    text             null_text.*                              (learned null text embedding)
    tracking_head    tracking_head.*
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn

GROUPS = (
    "self_attention",
    "cross_attention",
    "feed_forward",
    "modulation",
    "embeddings",
    "output",
    "camera",
    "text",
    "tracking_head",
)
FINETUNE_GROUPS = ("self_attention", "camera", "tracking_head")

_RULES = (
    (re.compile(r"^backbone\.transformer\.blocks\.\d+\.attn1\."), "self_attention"),
    (re.compile(r"^backbone\.transformer\.blocks\.\d+\.(attn2|norm2)\."), "cross_attention"),
    (re.compile(r"^backbone\.transformer\.blocks\.\d+\.ffn\."), "feed_forward"),
    (re.compile(r"^backbone\.transformer\.blocks\.\d+\.scale_shift_table$"), "modulation"),
    (re.compile(r"^backbone\.transformer\.(patch_embedding|condition_embedder)\."), "embeddings"),
    (re.compile(r"^backbone\.transformer\.(proj_out\.|scale_shift_table$)"), "output"),
    (re.compile(r"^backbone\.camera\."), "camera"),
    (re.compile(r"^null_text\."), "text"),
    (re.compile(r"^tracking_head\."), "tracking_head"),
)


def parameter_group(name: str) -> str:
    """The group of a composite-model parameter name (ValueError for an unknown name)."""
    for pattern, group in _RULES:
        if pattern.search(name):
            return group
    raise ValueError(f"parameter {name!r} belongs to no known group")


@dataclass
class ParameterReport:
    """Per-group parameter counts: ``groups[g] = {"trainable": n, "total": m}``."""

    groups: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def trainable(self) -> int:
        return sum(g["trainable"] for g in self.groups.values())

    @property
    def total(self) -> int:
        return sum(g["total"] for g in self.groups.values())

    def to_dict(self) -> dict:
        return {"groups": self.groups, "trainable": self.trainable, "total": self.total}


def parameter_report(model: nn.Module) -> ParameterReport:
    """Counts per group of the model as it is (works on the meta device)."""
    groups = {g: {"trainable": 0, "total": 0} for g in GROUPS}
    for name, param in model.named_parameters():
        entry = groups[parameter_group(name)]
        entry["total"] += param.numel()
        if param.requires_grad:
            entry["trainable"] += param.numel()
    return ParameterReport({g: v for g, v in groups.items() if v["total"]})


def freeze_for_finetuning(model: nn.Module, train_groups: tuple[str, ...] = FINETUNE_GROUPS) -> ParameterReport:
    """Make only ``train_groups`` trainable (default: the paper's scope) and report the counts."""
    unknown = set(train_groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown parameter groups: {sorted(unknown)}")
    for name, param in model.named_parameters():
        param.requires_grad_(parameter_group(name) in train_groups)
    return parameter_report(model)
