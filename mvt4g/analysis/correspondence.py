"""Correspondence metrics of one attention layer at one timestep (paper Sec. 4.2, App. A.2).

Input: the tapped query and key of one block for one (reference, target) pair,
``q, k [2, F, h, w, H, d]`` (view 0 reference, view 1 target), and ground-truth tracks of the
same pair at the latent frames, ``tracks [2, F, N, 2]`` pixel (x, y) at the analysed
resolution, ``visible [2, F, N]``.

Definitions implemented (documented choices marked "choice"):

* Query points: every (track ``n``, view ``v1``, latent frame ``i``) where the track is
  visible and inside the image. The query vector is the token whose pixel footprint holds the
  point (``floor(x / stride)``, the convention of :mod:`mvt4g.model.correspondence`).
* Attention per frame (Eq. 3): ``C^{v1,v2}_{i,j} = softmax over the keys of frame j of view
  v2 of q . k / sqrt(d)``, per head; choice: heads are averaged after the softmax
  (``heads="mean"``), or one head is analysed (``heads=h``).
* Forward match: the argmax of ``C_{i,j}`` over frame ``j``'s tokens (Eq. 5), placed at the
  token centre ``((tx + 0.5) * stride_x, (ty + 0.5) * stride_y)``. Backward match: the argmax of
  ``C_{j,i}`` from the forward-match token back over frame ``i`` of view ``v1``.
* Reliable (Eq. 6): the backward match lies within ``delta_px`` of the query point.
* Correct (Eq. 7): reliable AND the forward match lies within ``delta_px`` of the co-visible
  ground-truth point ``p^{v2}_j``. PCK = correct / (query, frame) pairs whose match is
  co-visible (visible in frame ``j`` of ``v2`` and inside the image).
* Types (choice of frame pairs): reference temporal = ``v1 = v2 = ref``, every ``j != i``;
  target temporal = ``v1 = v2 = tgt``, every ``j != i``; cross-view = query in the target
  (generated) view, keys in the reference view (``v1 = tgt, v2 = ref``, as in the paper's Fig. 3
  and 15), every ``j`` including ``j = i``.
* Confidence score: per (query, frame) pair, the maximum of ``C_{i,j}`` (the attention
  re-normalised over the keys of the ground-truth frame ``j``), averaged over the same pairs
  as PCK. It is 1 when the frame's attention collapses on one key, ``1 / (h w)`` when uniform.
* Attention score: the model's own attention row (softmax over ALL ``2 F h w`` keys, per head,
  heads averaged as above) read at the ground-truth tokens. Choice: per query, the mass on its
  correct matches of the type is summed over the type's co-visible frames ("how much of the
  query's attention lands on its correct matches in that view"), then averaged over query
  points that have at least one such frame. The types' scores of one query add up to at most 1,
  so the score shows where attention is routed (temporal vs cross-view), as in the paper's Fig. 8.

Memory: the ``S x S`` attention (S = 2 F h w) is never built. Queries are processed in chunks;
a chunk holds ``H x chunk x S`` logits (forward) and as many backward logits, so peak memory is
``O(H * chunk * S)`` on top of Q and K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from mvt4g.errors import InputError
from mvt4g.model.correspondence import footprint_token, token_strides

CORRESPONDENCE_TYPES = ("ref_temporal", "tgt_temporal", "cross_view")
#: (query view, key view) of each type; view 0 is the reference, 1 the target.
TYPE_VIEWS = {"ref_temporal": (0, 0), "tgt_temporal": (1, 1), "cross_view": (1, 0)}
#: Default budget of logits held at once (floats) when choosing the chunk size.
DEFAULT_CHUNK_ELEMENTS = 1 << 24


@dataclass
class TypeSums:
    """Pooled sums of one correspondence type (means are ratios of these)."""

    pairs: int = 0  # (query, frame) pairs with a co-visible ground-truth match
    correct: int = 0  # pairs counted by PCK
    reliable: int = 0  # pairs passing the cycle-consistency check
    confidence: float = 0.0  # sum of per-pair confidence
    queries: int = 0  # query points with >= 1 pair of this type
    attention: float = 0.0  # sum over those queries of their attention mass on the correct matches
    # Per-query second moments of (correct c_q, pairs p_q), for PCK's standard error over queries.
    correct_sq: int = 0  # sum of c_q^2
    pairs_sq: int = 0  # sum of p_q^2
    correct_pairs: int = 0  # sum of c_q p_q

    def add(self, other: TypeSums) -> None:
        for name in ("pairs", "correct", "reliable", "confidence", "queries", "attention", "correct_sq", "pairs_sq",
                     "correct_pairs"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def pck_se(self) -> float:
        """Standard error of PCK over query points (ratio estimator, delta method):

            se^2 = sum_q (c_q - PCK p_q)^2 / (n (n - 1) pbar^2),  pbar = mean p_q

        Pairs of one query point share its token, so they are not independent trials: the query
        point, not the pair, is the unit of the spread. NaN with fewer than 2 query points.
        """
        n = self.queries
        if n < 2 or not self.pairs:
            return math.nan
        r = self.correct / self.pairs
        resid = self.correct_sq - 2 * r * self.correct_pairs + r * r * self.pairs_sq
        pbar = self.pairs / n
        return math.sqrt(max(resid, 0.0) / (n * (n - 1) * pbar * pbar))

    def means(self) -> dict:
        """{"pck", "pck_se", "attention", "confidence", "reliable", "pairs", "queries"}; NaN without pairs."""
        pairs, queries = self.pairs, self.queries
        return {
            "pck": self.correct / pairs if pairs else math.nan,
            "pck_se": self.pck_se(),
            "attention": self.attention / queries if queries else math.nan,
            "confidence": self.confidence / pairs if pairs else math.nan,
            "reliable": self.reliable / pairs if pairs else math.nan,
            "pairs": pairs,
            "queries": queries,
        }


@dataclass
class MetricSums:
    """One :class:`TypeSums` per correspondence type; ``add`` pools clips and pairs."""

    types: dict[str, TypeSums] = field(default_factory=lambda: {t: TypeSums() for t in CORRESPONDENCE_TYPES})

    def add(self, other: MetricSums) -> None:
        for name in CORRESPONDENCE_TYPES:
            self.types[name].add(other.types[name])

    def means(self) -> dict[str, dict]:
        return {name: self.types[name].means() for name in CORRESPONDENCE_TYPES}


def default_delta_px(token_stride: float) -> float:
    """The paper's delta (16 px) scaled by the token size: 16 px where a token spans 16 px.

    The paper measures delta = 16 px on 480x832 video whose tokens span 16 px, i.e. one token.
    Matches are token centres, so what delta means is "within about one token"; keeping that
    ratio gives ``delta = 16 * stride / 16 = stride`` pixels at any analysed resolution.
    """
    return 16.0 * float(token_stride) / 16.0


def auto_chunk(num_heads: int, num_keys: int, match_values: int = 0, budget: int = DEFAULT_CHUNK_ELEMENTS) -> int:
    """Queries per chunk so that a chunk's temporaries stay within about ``budget`` floats.

    Per query and head: forward logits, per-frame probabilities and backward logits (``S``
    each) and the query vectors gathered at its forward matches (``match_values = 2 F d``).
    """
    per_query = num_heads * (3 * num_keys + match_values)
    return max(1, budget // max(1, per_query))


def _select_heads(x: torch.Tensor, heads: str | int) -> torch.Tensor:
    if heads == "mean":
        return x
    num = x.shape[-2]
    if not isinstance(heads, int) or not 0 <= heads < num:
        raise InputError(f"head must be 'mean' or an index in 0..{num - 1}, got {heads!r}")
    return x[..., heads : heads + 1, :]


def _check_inputs(q, k, tracks, visible) -> tuple[int, int, int, int, int, int]:
    if q.ndim != 6 or q.shape != k.shape or q.shape[0] != 2:
        raise InputError(f"q and k must both be [2, F, h, w, H, d], got {tuple(q.shape)} and {tuple(k.shape)}")
    _, frames, h, w, heads, dim = q.shape
    n = tracks.shape[2] if tracks.ndim == 4 else -1
    if tuple(tracks.shape) != (2, frames, n, 2) or tuple(visible.shape) != (2, frames, n):
        raise InputError(
            f"tracks must be [2, {frames}, N, 2] and visible [2, {frames}, N], got {tuple(tracks.shape)} and {tuple(visible.shape)}"
        )
    return frames, h, w, heads, dim, n


def _token_centres(tokens: torch.Tensor, w: int, strides: tuple[float, float]) -> torch.Tensor:
    """Flat token indices [...] -> pixel centres [..., 2] (float64)."""
    tx = (tokens % w).double()
    ty = torch.div(tokens, w, rounding_mode="floor").double()
    return torch.stack([(tx + 0.5) * strides[0], (ty + 0.5) * strides[1]], dim=-1)


def correspondence_sums(
    q: torch.Tensor,
    k: torch.Tensor,
    tracks: torch.Tensor,
    visible: torch.Tensor,
    image_size: tuple[int, int],
    *,
    delta_px: float,
    heads: str | int = "mean",
    chunk_size: int | None = None,
) -> MetricSums:
    """Pooled PCK / attention / confidence sums of one layer and timestep (module docstring).

    Args:
        q, k: ``[2, F, h, w, H, d]`` tapped query and key (view 0 reference).
        tracks: ``[2, F, N, 2]`` ground-truth pixel positions at the latent frames.
        visible: ``[2, F, N]`` bool.
        image_size: ``(H, W)`` pixels the tracks live in (the analysed video size).
        delta_px: cycle-consistency and PCK threshold in those pixels.
        heads: ``"mean"`` (average the per-head attention) or a head index.
        chunk_size: queries per chunk (default: :func:`auto_chunk`).
    """
    frames, h, w, _, _, n = _check_inputs(q, k, tracks, visible)
    q, k = _select_heads(q, heads), _select_heads(k, heads)
    num_heads, dim = q.shape[-2], q.shape[-1]
    hw, vf = h * w, 2 * frames
    strides = token_strides(image_size, (h, w))
    device = q.device
    tracks = tracks.to(device=device, dtype=torch.float64)
    visible = visible.to(device=device, dtype=torch.bool)
    tok, inside = footprint_token(tracks, strides, (h, w))  # [2, F, N]
    usable = visible & inside
    scale = 1.0 / math.sqrt(dim)
    q_flat = q.reshape(vf, hw, num_heads, dim)
    k_frames = k.reshape(vf, hw, num_heads, dim)
    keys_t = k.reshape(vf * hw, num_heads, dim).permute(1, 2, 0).float()  # [H, d, S]
    chunk = chunk_size or auto_chunk(num_heads, vf * hw, vf * dim)
    out = MetricSums()
    for v1 in (0, 1):
        # (v2, j) columns used, as sequence frames v2 * F + j: reference queries only feed
        # ref-temporal (the reference's F frames), target queries use both views (all 2F).
        cols = torch.arange(frames if v1 == 0 else vf, device=device)
        query_frame, query_track = torch.nonzero(usable[v1], as_tuple=True)  # sorted by frame
        for start in range(0, len(query_track), chunk):
            sl = slice(start, start + chunk)
            _accumulate(out, q_flat, k_frames, keys_t, tracks, usable, tok, query_track[sl], query_frame[sl],
                        v1, cols, frames, w, strides, scale, delta_px)  # fmt: skip
    return out


def _accumulate(
    out, q_flat, k_frames, keys_t, tracks, usable, tok, idx, fr, v1, cols, frames, w, strides, scale, delta_px
):
    """Metrics of the query points (track ``idx[r]`` in frame ``fr[r]`` of view ``v1``); adds to ``out``."""
    num_heads, hw = keys_t.shape[0], q_flat.shape[1]
    vf = 2 * frames
    c = len(idx)
    qv = q_flat[v1 * frames + fr, tok[v1, fr, idx]].float() * scale  # [c, H, d]
    logits = torch.matmul(qv.transpose(0, 1), keys_t)  # [H, c, S]
    # Attention score: the full row's softmax read at the ground-truth token of every (v2, j).
    gt_tok = tok.reshape(vf, -1)[:, idx].T  # [c, VF] token inside each frame
    gt_flat = gt_tok + torch.arange(vf, device=idx.device)[None, :] * hw
    lse_row = torch.logsumexp(logits, dim=-1, keepdim=True)  # [H, c, 1]
    row_at_gt = torch.exp(logits.gather(-1, gt_flat[None].expand(num_heads, c, vf)) - lse_row).mean(0)  # [c, VF]
    # Per-frame attention C_{i,j}: softmax over each frame's keys, then the head mean, for the
    # M used columns (a prefix of the sequence's frames).
    m = len(cols)
    per_frame = torch.softmax(logits.view(num_heads, c, vf, hw)[:, :, :m], dim=-1).mean(0)  # [c, M, hw]
    del logits
    confidence, forward = per_frame.max(dim=-1)  # [c, M]
    del per_frame
    # Backward: from each forward match back over the query's own frame of view v1. Queries
    # come sorted by frame, so each run of equal frames shares one key matrix.
    q_back = q_flat[cols[None, :], forward].float() * scale  # [c, M, H, d]
    backward = torch.empty_like(forward)
    frames_in_chunk, counts = torch.unique_consecutive(fr, return_counts=True)
    start = 0
    for f, count in zip(frames_in_chunk.tolist(), counts.tolist(), strict=True):
        rows = slice(start, start + count)
        start += count
        keys_f = k_frames[v1 * frames + f].float().permute(1, 2, 0)  # [H, d, hw]
        q_rows = q_back[rows].permute(2, 0, 1, 3).reshape(num_heads, count * m, -1)  # [H, n*M, d]
        back_probs = torch.softmax(torch.matmul(q_rows, keys_f), dim=-1).mean(0)  # [n*M, hw]
        backward[rows] = back_probs.argmax(dim=-1).view(count, m)
    del q_back

    query_px = tracks[v1, fr, idx]  # [c, 2]
    col_view = torch.div(cols, frames, rounding_mode="floor")
    col_frame = cols % frames
    gt_px = tracks.reshape(vf, -1, 2)[cols][:, idx].transpose(0, 1)  # [c, M, 2]
    valid = usable.reshape(vf, -1)[cols][:, idx].T  # [c, M]
    fwd_px = _token_centres(forward, w, strides)
    back_px = _token_centres(backward, w, strides)
    reliable = torch.linalg.vector_norm(back_px - query_px[:, None], dim=-1) <= delta_px
    near_gt = torch.linalg.vector_norm(fwd_px - gt_px, dim=-1) <= delta_px
    correct = reliable & near_gt
    row_cols = row_at_gt[:, cols].double()
    confidence = confidence.double()
    for name, (qv1, kv2) in TYPE_VIEWS.items():
        if qv1 != v1:
            continue
        in_type = valid & (col_view == kv2)[None, :]
        if kv2 == v1:
            in_type = in_type & (col_frame[None, :] != fr[:, None])
        sums = out.types[name]
        pairs_q = in_type.sum(dim=1).long()  # [c] per query point
        correct_q = (correct & in_type).sum(dim=1).long()
        sums.pairs += int(pairs_q.sum())
        sums.correct += int(correct_q.sum())
        sums.correct_sq += int((correct_q * correct_q).sum())
        sums.pairs_sq += int((pairs_q * pairs_q).sum())
        sums.correct_pairs += int((correct_q * pairs_q).sum())
        sums.reliable += int((reliable & in_type).sum())
        sums.confidence += float(confidence[in_type].sum())
        sums.queries += int(in_type.any(dim=1).sum())
        sums.attention += float((row_cols * in_type).sum())


def query_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    view: int,
    frame: int,
    xy_px: tuple[float, float],
    image_size: tuple[int, int],
    *,
    heads: str | int = "mean",
) -> dict[str, np.ndarray]:
    """One query point's attention over both views and all frames (for the Fig. 3/15 picture).

    Returns ``{"per_frame": [2, F, h, w]`` (``C_{i,j}``, each frame sums to 1),
    ``"row": [2, F, h, w]`` (the full attention row, sums to 1 over everything),
    ``"token": (ty, tx)`` of the query}; float32 numpy, head-averaged unless ``heads`` is an index.
    """
    q, k = _select_heads(q, heads), _select_heads(k, heads)
    _, frames, h, w, num_heads, dim = q.shape
    strides = token_strides(image_size, (h, w))
    xy = torch.tensor([xy_px], dtype=torch.float64, device=q.device)
    tok, inside = footprint_token(xy, strides, (h, w))
    if not bool(inside.all()):
        raise InputError(f"query point {tuple(xy_px)} is outside the {image_size[1]}x{image_size[0]} image")
    qv = q[view, frame].reshape(h * w, num_heads, dim)[tok[0]].float() / math.sqrt(dim)  # [H, d]
    keys = k.reshape(-1, num_heads, dim).float()  # [S, H, d]
    logits = torch.einsum("hd,shd->hs", qv, keys)  # [H, S]: one row, never S x S
    row = torch.softmax(logits, dim=-1).mean(0).view(2, frames, h, w)
    per_frame = torch.softmax(logits.view(num_heads, 2 * frames, h * w), dim=-1).mean(0).view(2, frames, h, w)
    t = int(tok[0])
    return {"per_frame": per_frame.cpu().numpy(), "row": row.cpu().numpy(), "token": (t // w, t % w)}
