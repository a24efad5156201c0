"""synth --preset-views: cam01 moved along presets exactly as generate moves a reference."""

from __future__ import annotations

import numpy as np
import pytest

from mvt4g.camera.trajectories import preset_trajectory
from mvt4g.errors import InputError
from mvt4g.synth.pipeline import SynthSettings, build_scene, scene_provenance


def test_preset_views_follow_the_preset_from_cam01s_first_pose():
    plain = SynthSettings(views=2, frames=5, height=16, width=16, points=16, seed=3)
    with_presets = SynthSettings(views=2, frames=5, height=16, width=16, points=16, seed=3, preset_views=("arc-left", "zoom-in"))
    scene, renders, _ = build_scene(with_presets, 0)
    base, _, _ = build_scene(plain, 0)
    assert scene.views == ["cam01", "cam02", "arc-left", "zoom-in"]
    np.testing.assert_array_equal(scene.cameras["cam02"].c2w, base.cameras["cam02"].c2w)  # other views unchanged
    ref = scene.cameras["cam01"].c2w[0]
    for name in ("arc-left", "zoom-in"):
        want = np.einsum("ij,tjk->tik", ref, preset_trajectory(name, 5))
        np.testing.assert_allclose(scene.cameras[name].c2w, want, atol=1e-12)
        assert renders[name].rgb.shape == (5, 16, 16, 3)
    np.testing.assert_array_equal(renders["arc-left"].rgb[0], renders["cam01"].rgb[0])


def test_provenance_of_runs_without_presets_is_unchanged_and_bad_names_are_refused():
    assert "preset_views" not in scene_provenance(SynthSettings(), 0)["settings"]
    assert scene_provenance(SynthSettings(preset_views=("zoom-in",)), 0)["settings"]["preset_views"] == ["zoom-in"]
    with pytest.raises(InputError, match="unknown preset view 'arc-lef'"):
        SynthSettings(preset_views=("arc-lef",)).validate()
    with pytest.raises(InputError, match="twice"):
        SynthSettings(preset_views=("zoom-in", "zoom-in")).validate()


def test_analysis_reads_preset_view_tracks_by_name(tmp_path):
    """The clip lists views sorted (arc-left before cam01), the track file in rendering order:
    the analysis must pick the named view's tracks, not the one at the same position."""
    from mvt4g.analysis.inputs import load_pair, open_clip_source
    from mvt4g.io.clip import read_clip
    from mvt4g.synth.pipeline import SynthSettings, synthesize
    from mvt4g.tracks.format import read_tracks

    scene = synthesize(SynthSettings(views=2, frames=5, height=16, width=16, points=32, preset_views=("arc-left",)),
                       tmp_path / "s", 1)[0]  # fmt: skip
    clip = read_clip(scene)
    exact = read_tracks(clip.tracks_path)
    assert clip.views[0] == "arc-left" and list(exact.views)[0] == "cam01"
    source = open_clip_source(scene, (16, 16), 5, 4)
    pair = load_pair(source, "cam01", "arc-left", 32, seed=0)
    arc = list(exact.views).index("arc-left")
    frames = pair.camera_frames
    want = exact.tracks[arc][frames][:, pair.track_ids]
    seen = pair.visible[1]
    np.testing.assert_allclose(pair.tracks[1][seen], want[seen], atol=1e-6)
