"""Generation: the flow-matching sampler and the pipeline behind ``mvt4g generate``.

    from mvt4g.sample import GeneratePipeline, ReferenceOptions, SamplingSettings
    from mvt4g.sample import plan_reference, read_reference, target_cameras
    from mvt4g.camera import preset_trajectory

    pipe = GeneratePipeline("runs/tiny")                          # loaded once
    opts = ReferenceOptions(frames=81, height=32, width=32)
    ref = read_reference(plan_reference("bear.mp4", opts), opts)
    tgt = target_cameras(ref.cameras, preset_trajectory("arc-left", ref.num_frames))
    frames = pipe.generate(ref, tgt, settings=SamplingSettings(steps=4), seed=0).frames

    ref = PreparedReference.from_clip(read_clip("scene_0000"), "cam01")   # a clip's view as it is
    frames = pipe.generate(ref, read_clip("scene_0000").cameras["cam02"]).frames  # its other view

Modules: ``sampler`` (Euler / UniPC on the shifted sigma grid, guidance), ``pipeline``
(model + autoencoder + text, one generation), ``reference`` (frame/size policy, reference
cameras), ``targets`` (``--traj`` trajectories and ``--target-cameras`` as targets, target
cameras; the ``--traj`` values themselves are resolved by :mod:`mvt4g.camera.trajectory_source`), ``queries`` (tracking-head
queries and output), ``batch`` (many items, output names and files), ``offload`` (``--offload``:
the models waiting on the CPU, moved to the device per stage or per block). ``--model``
resolution lives with the model: :func:`mvt4g.model.lookup.resolve_model`.
"""

from mvt4g._lazy import lazy_exports

_EXPORTS = {
    "SamplingSettings": "sampler", "EulerFlowSampler": "sampler", "UniPCFlowSampler": "sampler",
    "make_sampler": "sampler", "sample_flow": "sampler", "guided_velocity": "sampler", "SAMPLERS": "sampler",
    "GeneratePipeline": "pipeline", "GenerationResult": "pipeline",
    "Offloader": "offload", "OFFLOAD_MODES": "offload",
    "ReferenceOptions": "reference", "PreparedReference": "reference", "plan_reference": "reference",
    "read_reference": "reference", "DEFAULT_FOCAL_MM": "reference", "read_camera_file": "reference",
    "Target": "targets", "trajectory_targets": "targets", "camera_targets": "targets", "target_cameras": "targets",
    "absolute_target_cameras": "targets",
    "grid_queries": "queries", "load_query_points": "queries",
    "plan_jobs": "batch", "run_jobs": "batch", "item_paths": "batch",
}  # fmt: skip

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports("mvt4g.sample", _EXPORTS, globals())
