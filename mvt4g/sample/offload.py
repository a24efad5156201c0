"""Offloading a generation's models to the CPU (``--offload none|model|sequential``), in the
style of diffusers' ``enable_model_cpu_offload`` / ``enable_sequential_cpu_offload``.

Which component goes where per mode is :data:`mvt4g.model.placement.PLACEMENT` (the memory
plan prices the same table). Here the weights are moved:

    offload = Offloader("model", torch.device("cuda"))
    offload.add("dit", model, blocks=model.transformer.blocks)
    with offload.stage("dit"):          # staged: the whole DiT on the device inside the block
        ...
    offload.remove()                    # hooks off, every component back where it was stored

Weights are moved by swapping tensors, not with ``module.to``: a component's parameters keep
their identity (optimisers, tied weights and ``next(model.parameters())`` still work), the CPU
copy is kept, so dropping a component from the device is free (no device -> host copy), and
the device copy is released as soon as it is swapped out. Streamed (``blocks``) units do the
same in forward pre/post hooks, which also move the unit's tensor inputs to the device; the
component's root moves its outputs back to where its inputs came from (callers such as
``encode_prompts`` put inputs next to the first parameter: on the CPU).

On a CPU the execution device is the storage device and every move is a no-op; ``transfer``
(``tensor, device -> tensor``) is what copies, so tests can see each move.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

import torch
from torch import nn

from mvt4g.model.placement import OFFLOAD_MODES, PLACEMENT, check_offload, own_tensors, streaming_units

__all__ = ["OFFLOAD_MODES", "Offloader"]

STORAGE = torch.device("cpu")


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    return tensor.to(device, non_blocking=True)


class _Weights:
    """The parameters and buffers of one module (all inside it, or its own only), kept on the
    storage device, with copies on the execution device swapped in by :meth:`load`."""

    def __init__(self, module: nn.Module, whole: bool, device: torch.device, transfer: Callable):
        owners = module.modules() if whole else [module]
        seen: set[int] = set()
        self.entries = []
        for owner in owners:
            for o, name, is_param in own_tensors(owner):
                tensor = getattr(o, name)
                if id(tensor) not in seen:  # a tied weight moves once
                    seen.add(id(tensor))
                    self.entries.append((o, name, is_param, tensor.data if is_param else tensor))
        self.device, self.transfer = device, transfer
        self.loaded = False

    def load(self) -> None:
        if not self.loaded:
            self._set([self.transfer(stored, self.device) for *_, stored in self.entries])
            self.loaded = True

    def unload(self) -> None:
        if self.loaded:
            self._set([stored for *_, stored in self.entries])
            self.loaded = False

    def _set(self, tensors: list[torch.Tensor]) -> None:
        for (owner, name, is_param, _), tensor in zip(self.entries, tensors, strict=True):
            if is_param:
                owner._parameters[name].data = tensor
            else:
                owner._buffers[name] = tensor


def _move(obj, device: torch.device):
    """``obj`` with every tensor in it (tuples, lists, mappings) on ``device``; new containers
    for inputs, but a transformers ``ModelOutput`` (a mapping that is also an object) in place."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(_move(v, device) for v in obj)
    if isinstance(obj, list):
        return [_move(v, device) for v in obj]
    if isinstance(obj, dict) and type(obj) is not dict:  # ModelOutput and the like
        for key in list(obj.keys()):
            obj[key] = _move(obj[key], device)
        return obj
    if isinstance(obj, Mapping):
        return {k: _move(v, device) for k, v in obj.items()}
    return obj


def _first_device(args, kwargs) -> torch.device | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value.device
    return None


class Offloader:
    """Places a pipeline's components (``text_encoder``, ``dit``, ``autoencoder``) per offload
    mode and moves their weights (see the module docstring)."""

    def __init__(self, mode: str, device: str | torch.device, *, transfer: Callable | None = None):
        self.mode = check_offload(mode)
        self.device = torch.device(device)
        self.transfer = transfer or _to_device
        self.placement: dict[str, str] = {}
        self._staged: dict[str, _Weights] = {}
        self._streamed: list[_Weights] = []
        self._handles: list = []

    def add(self, name: str, module: nn.Module, *, blocks=()) -> nn.Module:
        """Place ``module`` as component ``name``: on the device (resident) or on the CPU with
        its stage (staged) or forward hooks (blocks) moving it. ``blocks``: the units a
        ``blocks`` placement streams whole (e.g. the DiT's transformer blocks)."""
        placement = PLACEMENT[self.mode][name]
        self.placement[name] = placement
        if placement == "resident":
            return nn.Module.to(module, self.device)  # nn.Module's: diffusers' .to warns about dtypes
        nn.Module.to(module, STORAGE)
        if placement == "staged":
            self._staged[name] = _Weights(module, True, self.device, self.transfer)
        else:
            self._stream(module, blocks)
        return module

    @contextlib.contextmanager
    def stage(self, name: str):
        """Component ``name`` on the device inside the ``with`` (a staged one is copied in and
        dropped after; resident and streamed ones need nothing here)."""
        weights = self._staged.get(name)
        if weights is None:
            yield
            return
        weights.load()
        try:
            yield
        finally:
            weights.unload()

    def _stream(self, module: nn.Module, blocks) -> None:
        # The root first: its pre-hook runs before any unit's, its post-hook after.
        self._handles.append(module.register_forward_pre_hook(self._root_pre, with_kwargs=True))
        self._handles.append(module.register_forward_hook(self._root_post, with_kwargs=True, always_call=True))
        for unit, whole in streaming_units(module, blocks):
            weights = _Weights(unit, whole, self.device, self.transfer)
            self._streamed.append(weights)
            self._handles.append(unit.register_forward_pre_hook(self._unit_pre(weights), with_kwargs=True))
            self._handles.append(unit.register_forward_hook(self._unit_post(weights), always_call=True))

    def _unit_pre(self, weights: _Weights):
        def hook(module, args, kwargs):
            weights.load()
            return _move(args, self.device), _move(kwargs, self.device)

        return hook

    @staticmethod
    def _unit_post(weights: _Weights):
        def hook(module, args, output):
            weights.unload()

        return hook

    def _root_pre(self, module, args, kwargs):
        # Where the caller's inputs were: the outputs go back there (nested calls keep the outermost).
        if getattr(module, "_mvt4g_caller_device", None) is None:
            module._mvt4g_caller_device = _first_device(args, kwargs) or self.device
        return _move(args, self.device), _move(kwargs, self.device)

    @staticmethod
    def _root_post(module, args, kwargs, output):
        device = module.__dict__.pop("_mvt4g_caller_device", None)
        return output if device is None else _move(output, device)

    def remove(self) -> None:
        """Remove every hook and leave each component's weights where they are stored."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for weights in (*self._staged.values(), *self._streamed):
            weights.unload()
