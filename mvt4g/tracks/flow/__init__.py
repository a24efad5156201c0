"""The weight-free flow method (``mvt4g tracks --method flow``): tracks from synchronized videos and their cameras.

Each query is chained through its own view by dense optical flow, matched into the other views
by a multi-view plane sweep and chained there too; known cameras then prove points static
(one world point), check every chain against the query view's epipolar line and fill lost
chains with the best guess they can vouch for. The steps are listed in
:mod:`mvt4g.tracks.flow.pipeline`.

Modules, bottom up:

- ``config``: :class:`~mvt4g.tracks.flow.config.FlowConfig` (the method's settings) and
  :class:`~mvt4g.tracks.flow.config.MvsConfig` (the plane sweep's);
- ``optical_flow``: dense flow of one view's frames and one forward-backward-checked step;
- ``chains``: temporal tracks in one view, chained forward and backward (with re-acquisition);
- ``sweep_geometry``: plane homographies, swept plane ranges and orientations, the world's down;
- ``ground``: the ground plane among the sweep's points (refines the world's down);
- ``association``: the multi-view plane sweep and cross-view association of points;
- ``static_points``: static hypotheses for a track and their checks;
- ``dynamic_points``: per-frame triangulation of points that are not static;
- ``neighbours``: lost chains moved like the chains around them;
- ``local_plane``: lost points placed on the static surface around them;
- ``epipolar``: the epipolar drift check;
- ``pipeline``: :func:`~mvt4g.tracks.flow.pipeline.flow_tracks`, the method as its steps.

The exact method (:mod:`mvt4g.tracks.exact`) uses ``optical_flow`` and ``chains`` for points on
moving objects; nothing here imports it.
"""
