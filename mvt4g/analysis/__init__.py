"""Attention-correspondence analysis (paper Sec. 4, App. A.2; ``mvt4g analyze``).

Modules:

    correspondence  PCK with cycle consistency, attention and confidence scores of one layer
                    and timestep from tapped Q/K (gathered query rows, never S x S)
    taps            Q/K of several blocks in one forward pass (``LayerTaps``)
    inputs          clips, view pairs and ground-truth tracks at the analysed size
    runner          the loop over clips, pairs, timesteps and layers
    summary         layer x timestep tables, min-max normalised harmonic mean, best layer
    plots           heatmaps (Fig. 4/8) and one query's attention across frames (Fig. 3/15)
    report          the JSON report and the output folder

Example::

    from mvt4g.analysis.runner import AnalysisSettings, plan_analysis, run_analysis
    from mvt4g.analysis.report import build_report
    settings = AnalysisSettings(layers="all", timesteps=5)
    plan = plan_analysis("runs/tiny", ["data/synth/scene_0000"], settings)
    report = build_report(run_analysis(plan, settings), settings)
    print(report["best_layer"]["layer"])
"""
