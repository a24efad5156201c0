"""File-system helpers every layer may use: atomic writes, run locks and JSON reading.

This is the bottom layer with :mod:`mvt4g.errors`: it imports nothing else from mvt4g, so the
camera, io and everything above can write outputs the same way (docs/ARCHITECTURE.md, "Layers").
"""
