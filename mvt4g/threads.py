"""Torch's CPU thread count for a block of work, restored after (every layer may use it).

Small tensors on a shared 2-core machine run faster on one thread than with thread hand-offs,
and a command's ``--threads`` must not leak into the caller's process (tests, notebooks).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` torch CPU threads inside the block (0: leave the count as it is), then restore it."""
    import torch  # here, so importing this module stays free for the CLI

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
