"""The exact method (``mvt4g tracks --method geometry``): tracks from depth maps, cameras and, for moving objects, masks.

A query's depth makes it a world point; projected into every view and frame and tested against
that view's depth map it gives exact positions and visibility for the static scene and for any
point at its own instant. Points on moving objects (per-view masks) are moved by their object's
fitted rigid motion, or by chained optical flow lifted with depth (the flow subpackage's
:mod:`mvt4g.tracks.flow.optical_flow` and :mod:`mvt4g.tracks.flow.chains`).

Modules, bottom up:

- ``depth``: a query's depth from a depth map and the depth test (visible or occluded);
- ``rigid_motion``: per-step rigid motion of each masked object (RANSAC + Kabsch);
- ``moving_objects``: tracks of points on moving objects (rigid motion, else per-point flow);
- ``pipeline``: :func:`~mvt4g.tracks.exact.pipeline.geometry_tracks`, the method itself.
"""
