import numpy as np
from helpers import orbit_cameras

from mvt4g.camera import plucker_rays, relative_to
from mvt4g.model.conditioning import pair_camera_pose, pair_cameras, pair_plucker


def test_pair_plucker_is_relative_to_the_reference_start_and_resized():
    ref, tgt = orbit_cameras(9, 64, 48), orbit_cameras(9, 64, 48, phase=0.7)
    maps = pair_plucker(ref, tgt, [0, 4, 8], (24, 24))
    assert maps.shape == (2, 3, 6, 24, 24)
    # The reference's first camera is the origin looking down +z: the centre ray is +z, m = 0.
    np.testing.assert_allclose(maps[0, 0, 3:], 0.0, atol=1e-6)
    r, t = pair_cameras(ref, tgt, (24, 24))
    np.testing.assert_allclose(r.c2w[0], np.eye(4), atol=1e-12)
    expected = plucker_rays(t.K[[4]], relative_to(tgt.c2w[[4]], ref.c2w[0]), 24, 24)
    np.testing.assert_allclose(maps[1, 1:2], expected, atol=1e-6)
    # Relative maps do not change when the whole rig moves.
    shift = np.eye(4)
    shift[:3, 3] = [5.0, -2.0, 1.0]
    ref.c2w, tgt.c2w = shift @ ref.c2w, shift @ tgt.c2w
    np.testing.assert_allclose(pair_plucker(ref, tgt, [0, 4, 8], (24, 24)), maps, atol=1e-5)


def test_pair_camera_pose_is_recammaster_layout():
    ref, tgt = orbit_cameras(5), orbit_cameras(5, phase=0.2)
    pose = pair_camera_pose(ref, tgt, [0, 4])
    assert pose.shape == (2, 12)
    rel = relative_to(tgt.c2w[4], ref.c2w[0])[0]
    np.testing.assert_allclose(pose[1], rel[:3, :4].reshape(-1), atol=1e-6)
