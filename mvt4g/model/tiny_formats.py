"""Tiny random models in the real on-disk formats, to rehearse the full-scale path on a CPU.

The full-scale path (``convert recammaster`` against a diffusers Wan2.1 folder, ``train`` with
captions, ``generate --prompt``, ``eval``) reads files nobody can download here. These
writers make the same formats at toy sizes, with random weights, so the path can be walked
end to end in seconds (the tests do, and ``examples/full_scale_rehearsal.sh``):

- :func:`write_tiny_wan`: a diffusers Wan folder: ``transformer/`` (WanTransformer3DModel),
  ``vae/`` (AutoencoderKLWan), ``text_encoder/`` (transformers UMT5EncoderModel) and
  ``tokenizer/`` (a T5 fast tokenizer, ``tokenizer.json``), as Wan2.1-T2V-1.3B-Diffusers has;
- :func:`recammaster_state_dict` of :func:`tiny_recammaster_source`: a ReCamMaster checkpoint, DiffSynth-Studio key
  names (``blocks.0.self_attn.q.weight``, ``blocks.0.cam_encoder.weight``, ...).

Nothing here is a model anyone should generate with: the weights are random.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mvt4g.errors import InputError
from mvt4g.model.config import BackboneConfig, preset

#: The tiny Wan transformer: 3 blocks of 2 heads x 24 dims, 16 latent channels, 32-wide text.
TINY_WAN = BackboneConfig(
    num_layers=3, num_attention_heads=2, attention_head_dim=24, ffn_dim=96, in_channels=16, out_channels=16,
    text_dim=32, freq_dim=32, rope_max_seq_len=256,
)  # fmt: skip

# A word list for the tiny tokenizer; any other text falls back to single letters (or <unk>).
_WORDS = ("a the of and in on with camera scene video bear dog person walks runs stands moving red green blue "
          "white black cube sphere box ball rock rocks grass snow sky street room light").split()  # fmt: skip


def _transformers():
    try:
        import transformers
    except ImportError:
        raise InputError("a umT5 text encoder needs the 'transformers' package (pip install -e \".[wan]\")") from None
    return transformers


def write_tiny_umt5(folder: str | Path, *, d_model: int = TINY_WAN.text_dim, seed: int = 0) -> Path:
    """``folder/tokenizer`` + ``folder/text_encoder``: a 2-layer random umT5 and a Unigram tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tf = _transformers()
    tf.utils.logging.disable_progress_bar()  # the core prints nothing (transformers draws a bar per save)
    folder = Path(folder)
    pieces = ["<pad>", "</s>", "<unk>"] + [f"\u2581{w}" for w in _WORDS] + ["\u2581", *"abcdefghijklmnopqrstuvwxyz"]
    vocab = [(piece, -float(i)) for i, piece in enumerate(pieces)]  # earlier pieces are more likely
    core = Tokenizer(models.Unigram(vocab, unk_id=2))
    core.pre_tokenizer = pre_tokenizers.Metaspace()
    core.decoder = decoders.Metaspace()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = tf.T5TokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   extra_ids=0)  # fmt: skip
    tokenizer.save_pretrained(str(folder / "tokenizer"))
    config = tf.UMT5Config(vocab_size=len(pieces), d_model=d_model, d_kv=max(d_model // 4, 1), d_ff=2 * d_model,
                           num_layers=2, num_heads=4, relative_attention_num_buckets=8)  # fmt: skip
    torch.manual_seed(seed)
    tf.UMT5EncoderModel(config).save_pretrained(str(folder / "text_encoder"))
    return folder


def tiny_wan_transformer(seed: int = 0, *, in_channels: int = 16):
    """A random diffusers ``WanTransformer3DModel`` of the :data:`TINY_WAN` shape."""
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    kwargs = TINY_WAN.diffusers_kwargs()
    kwargs["in_channels"] = kwargs["out_channels"] = in_channels
    return WanTransformer3DModel(**kwargs)


def write_tiny_wan(folder: str | Path, *, seed: int = 0, vae: bool = True, text: bool = True,
                   in_channels: int = 16) -> Path:  # fmt: skip
    """A diffusers Wan folder at toy size (see the module docstring); returns ``folder``."""
    folder = Path(folder)
    tiny_wan_transformer(seed, in_channels=in_channels).save_pretrained(str(folder / "transformer"))
    if vae:
        from mvt4g.model.autoencoder import build_autoencoder

        config = preset("tiny-wanvae").autoencoder
        config.latent_channels = in_channels
        build_autoencoder(config).vae.save_pretrained(str(folder / "vae"))
    if text:
        write_tiny_umt5(folder, seed=seed)
    return folder


def tiny_recammaster_source(seed: int = 5, *, scale: float = 0.05):
    """A random mvt4g model in ReCamMaster's layout (12-value pose conditioning) over
    :data:`TINY_WAN`, every backbone weight perturbed by ``scale`` so that a conversion that
    drops or swaps a tensor changes the output."""
    from mvt4g.model.mvt4g_model import MVT4GModel

    cfg = preset("tiny")
    cfg.backbone = BackboneConfig(**TINY_WAN.__dict__)
    cfg.autoencoder.kind = "wan_vae"
    cfg.autoencoder.latent_channels = 16
    cfg.autoencoder.spatial_factor = 8
    cfg.video.height = cfg.video.width = 64
    cfg.camera.mode = "recammaster"
    cfg.use_tracking_head = False
    torch.manual_seed(seed)
    model = MVT4GModel(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model


def recammaster_state_dict(model) -> dict[str, torch.Tensor]:
    """The backbone of an mvt4g model under ReCamMaster's (DiffSynth) key names: a checkpoint."""
    from mvt4g.model.convert import composite_to_recammaster

    out = {}
    for key, tensor in model.state_dict().items():
        if key.startswith("backbone."):
            name = composite_to_recammaster(key)
            if name is None:
                raise ValueError(f"{key} has no ReCamMaster name")
            out[name] = tensor.clone()
    return out
