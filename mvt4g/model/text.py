"""Text conditioning: a learned null embedding, or umT5 prompt embeddings when available.

The DiT reads text as ``[B, L, text_dim]`` embeddings. Without a text encoder the model uses
:class:`NullTextEmbedding`, a learned ``[L, text_dim]`` tensor (zero at first: the embedding
Wan sees at padded text positions). With ``transformers`` installed and a local umT5 (the
``text_encoder`` + ``tokenizer`` folders of a diffusers Wan directory),
:func:`encode_prompts` computes Wan-style embeddings: ``max_length`` positions, the encoder's
output over the prompt's tokens and zeros after them. Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mvt4g.errors import InputError


class NullTextEmbedding(nn.Module):
    """A learned ``[length, text_dim]`` embedding; ``forward(batch)`` -> ``[batch, length, text_dim]``."""

    def __init__(self, length: int, text_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(length, text_dim))

    def forward(self, batch: int) -> torch.Tensor:
        return self.weight.unsqueeze(0).expand(batch, -1, -1)


def _encoder_dirs(path: str | Path) -> tuple[Path, Path]:
    root = Path(path)
    if not root.is_dir():
        raise InputError("text encoder directory does not exist", path=root)
    if (root / "text_encoder").is_dir():
        return root / "tokenizer", root / "text_encoder"
    return root, root


def load_text_encoder(path: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """Load a local umT5 tokenizer and encoder; raises InputError when that is impossible."""
    try:
        from transformers import AutoTokenizer, UMT5EncoderModel
    except ImportError:
        raise InputError(
            "prompt encoding needs the 'transformers' package (pip install transformers); "
            "without it the model uses its learned null text embedding"
        ) from None
    from transformers.utils import logging as hf_logging

    # The core prints nothing: transformers' own progress bars and notices would write to the
    # terminal mid-command (the CLI draws its own progress).
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    tok_dir, enc_dir = _encoder_dirs(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
        encoder = UMT5EncoderModel.from_pretrained(enc_dir, local_files_only=True, torch_dtype=dtype)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load a umT5 text encoder: {exc}".splitlines()[0], path=path) from None
    return tokenizer, encoder.to(device).eval()


@torch.no_grad()
def encode_prompts(prompts: list[str], tokenizer, encoder, *, max_length: int = 512) -> torch.Tensor:
    """Wan-style prompt embeddings ``[B, max_length, text_dim]``: zeros after each prompt's tokens."""
    batch = tokenizer(
        prompts,
        padding="max_length",
        max_length=max_length,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    device = next(encoder.parameters()).device
    ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
    hidden = encoder(ids, mask).last_hidden_state
    # Zero every position after the prompt's own tokens, as Wan's pipelines do.
    return hidden * mask.unsqueeze(-1).to(hidden.dtype)


def text_encoder_parameters(path: str | Path | None) -> int | None:
    """Parameter count of a local umT5 encoder, built on the meta device from its config.

    None when there is no encoder (``path`` empty or missing) or ``transformers``, which
    defines the architecture, is not installed.
    """
    if not path or not Path(path).is_dir():
        return None
    try:
        from transformers import UMT5Config, UMT5EncoderModel
    except ImportError:
        return None
    _, enc_dir = _encoder_dirs(path)
    try:
        config = UMT5Config.from_pretrained(enc_dir, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable umT5 config: {exc}".splitlines()[0], path=enc_dir) from None
    with torch.device("meta"):
        encoder = UMT5EncoderModel(config)
    return sum(p.numel() for p in encoder.parameters())
