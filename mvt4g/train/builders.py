"""Builders the trainer assembles (torchtitan-style): model config, model, data, optimizer, schedule.

Each builder is a plain function of the :class:`~mvt4g.train.config.TrainConfig`, so a
different model, dataset or optimizer is one function swapped in :class:`Trainer`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from mvt4g.errors import ConfigError, InputError
from mvt4g.model.config import ModelConfig, preset
from mvt4g.train.config import TrainConfig

_PATH_KEYS = ("model.init", "model.autoencoder_path", "model.text_encoder_path", "data.cache_dir", "train.out")


def absolutize_paths(cfg: TrainConfig) -> TrainConfig:
    """Make every path in ``cfg`` absolute (the run's ``config.toml`` must not depend on the CWD)."""
    cfg.data.paths = [str(Path(p).expanduser().resolve()) for p in cfg.data.paths]
    if cfg.model.init:  # a shipped model's name or a run directory -> its model directory (weights checked)
        from mvt4g.model.lookup import resolve_model

        cfg.model.init = str(resolve_model(cfg.model.init))
    for key in _PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value:
            setattr(getattr(cfg, section), name, str(Path(value).expanduser().resolve()))
    return cfg


def resolve_model_config(cfg: TrainConfig) -> ModelConfig:
    """The model's config: the preset (or ``model.init``'s config) with the run's overrides.

    The video size becomes the run's sample size, so a saved model remembers what it was
    trained at (``data.frames/height/width``, 0 = the preset's).
    """
    m, d = cfg.model, cfg.data
    if m.init:
        from mvt4g.model.checkpoint import read_config

        mc = read_config(m.init)
    else:
        mc = preset(m.preset)
    mc = mc.replace()
    if m.tap_layer is not None:
        mc.tap_layer = m.tap_layer
    mc.use_tracking_head = m.tracking_head
    if m.head_preset or m.head_iterations:
        head = {"preset": m.head_preset} if m.head_preset else dict(mc.tracking_head)
        if m.head_iterations:
            head["iterations"] = m.head_iterations
        mc.tracking_head = head
    if m.gradient_checkpointing != "auto":  # "auto" keeps the preset's / model.init's setting
        mc.gradient_checkpointing = bool(m.gradient_checkpointing)
    if m.autoencoder_path:
        mc.autoencoder.path = m.autoencoder_path
    if m.text_encoder_path:
        mc.text.encoder_path = m.text_encoder_path
    mc.video.frames = d.frames or mc.video.frames
    mc.video.height = d.height or mc.video.height
    mc.video.width = d.width or mc.video.width
    try:
        return mc.validate()
    except ConfigError as exc:
        raise ConfigError(f"model config: {exc}") from None


def build_model(cfg: TrainConfig, model_config: ModelConfig) -> nn.Module:
    """The model, seeded by ``train.seed``; with ``model.init``, its weights loaded.

    Weights of ``model.init`` must match except for the tracking head, which may be absent
    there (then it starts from its own initialisation) or unused here.
    """
    from mvt4g.model.mvt4g_model import MVT4GModel

    torch.manual_seed(cfg.train.seed)
    model = MVT4GModel(model_config)
    model.set_gradient_checkpointing(model_config.gradient_checkpointing)
    if cfg.model.init:
        from mvt4g.model.checkpoint import WEIGHTS_NAME, load_state_dict_file

        path = Path(cfg.model.init) / WEIGHTS_NAME
        state = load_state_dict_file(path)
        own = model.state_dict()
        head = "tracking_head."
        missing = [k for k in own if k not in state and not k.startswith(head)]
        extra = [k for k in state if k not in own and not k.startswith(head)]
        if missing or extra:
            raise InputError(f"model.init weights do not match: {len(missing)} missing, {len(extra)} unexpected "
                             f"(e.g. {(missing or extra)[0]})", path=path)  # fmt: skip
        for key, value in state.items():
            if key in own and tuple(value.shape) != tuple(own[key].shape):
                raise InputError(f"model.init weight {key} has shape {list(value.shape)}, the model needs "
                                 f"{list(own[key].shape)}", path=path)  # fmt: skip
        model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return model


def build_dataset(cfg: TrainConfig, model_config: ModelConfig, *, device: str | torch.device = "cpu"):
    """The pair dataset over ``data.paths`` with its feature cache."""
    from mvt4g.model.flow_matching import FlowMatchingConfig, RectifiedFlow
    from mvt4g.train.cache import FeatureCache, SampleShape
    from mvt4g.train.data import PairDataset, PairSettings, open_clips

    clips = open_clips(cfg.data.paths)
    v = model_config.video
    shape = SampleShape(v.frames, v.height, v.width, model_config.autoencoder.temporal_factor)
    cache = FeatureCache(model_config, shape, cache_dir=cfg.data.cache_dir, dtype=cfg.data.cache_dtype,
                         cache_plucker=cfg.data.cache_plucker, text_encoder_path=model_config.text.encoder_path,
                         device=device)  # fmt: skip
    settings = PairSettings(
        queries=cfg.data.queries, reverse_prob=cfg.data.reverse_prob, pairs=cfg.data.pairs, seed=cfg.train.seed,
        need_tracks=model_config.use_tracking_head or cfg.loss.corr,
    )  # fmt: skip
    flow = RectifiedFlow(FlowMatchingConfig(shift=cfg.loss.shift, weighting=cfg.loss.weighting))
    return PairDataset(clips, cache, settings, flow)


def build_train_module(cfg: TrainConfig, model: nn.Module, model_config: ModelConfig, *, bf16: bool) -> nn.Module:
    from mvt4g.model.correspondence import CorrespondenceLossConfig
    from mvt4g.model.losses import TotalLossConfig
    from mvt4g.train.step import TrainModule

    lo = cfg.loss
    corr = CorrespondenceLossConfig(
        head_mode=lo.corr_head_mode, frame_reduction=lo.corr_frame_reduction, query_sampling=lo.corr_query_sampling,
        num_heads=model_config.backbone.num_attention_heads if lo.corr_head_mode == "mlp" else 0,
    )  # fmt: skip
    return TrainModule(
        model, image_size=(model_config.video.height, model_config.video.width),
        use_track=model_config.use_tracking_head, use_corr=lo.corr,
        total=TotalLossConfig(lambda_track=lo.lambda_track, lambda_corr=lo.lambda_corr), corr=corr, bf16=bf16,
    )  # fmt: skip


def build_optimizer(cfg: TrainConfig, module: nn.Module) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters of the train module."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("nothing to train: optim.train_groups leaves every parameter frozen")
    o = cfg.optim
    return torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of ``optim.lr`` for the step after ``step`` completed ones.

    Linear warmup over ``warmup_steps`` (from 1/warmup to 1), then 1 (``constant``) or a
    half cosine from 1 to ``min_lr_ratio`` ending at ``decay_steps`` (0: ``train.steps``).
    """
    o = cfg.optim
    if step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    if o.schedule == "constant":
        return 1.0
    total = o.decay_steps or cfg.train.steps
    progress = min(1.0, (step - o.warmup_steps) / max(1, total - o.warmup_steps))
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda step: lr_factor(step, cfg))
