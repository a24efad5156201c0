"""Learned-metric registry and LPIPS, tested with a tiny random AlexNet saved in torchvision/LPIPS file formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.lpips import reference_lpips, save_tiny_weights

from mvt4g.errors import InputError
from mvt4g.eval import learned


def test_registry_reports_what_each_metric_needs(tmp_path):
    none = learned.all_statuses(None)
    assert set(none) == {"lpips", "subject_consistency", "background_consistency", "aesthetic_quality",
                         "imaging_quality", "motion_smoothness", "met3r"}  # fmt: skip
    assert all(v.startswith("skipped: needs ") for v in none.values())
    empty = learned.all_statuses(tmp_path)
    assert empty["lpips"] == f"skipped: needs {learned.ALEXNET_FILE} in {tmp_path}"
    assert empty["aesthetic_quality"] == f"skipped: needs ViT-L-14.pt in {tmp_path}"
    (tmp_path / "ViT-B-32.pt").write_bytes(b"x")
    status = learned.metric_status("background_consistency", tmp_path)
    assert status.startswith("skipped: weights found but mvt4g does not implement background_consistency")
    with pytest.raises(InputError, match="unknown learned metric 'fid'"):
        learned.metric_status("fid", tmp_path)


def test_lpips_status_is_ready_with_both_files(tmp_path):
    save_tiny_weights(tmp_path)
    assert learned.metric_status("lpips", tmp_path) == "ready"


def test_lpips_matches_a_float64_step_by_step_reference(tmp_path):
    alex, lins = save_tiny_weights(tmp_path)
    model = learned.load_lpips(tmp_path)
    rng = np.random.default_rng(0)
    a = (rng.random((3, 67, 91, 3)) * 255).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    got = learned.lpips_per_frame(model, a, b, batch=2)
    want = [reference_lpips(alex, lins, a[t], b[t]) for t in range(3)]
    np.testing.assert_allclose(got, want, rtol=2e-4)
    assert learned.lpips(model, a, b) == pytest.approx(np.mean(want), rel=2e-4)
    assert learned.lpips(model, a, a) == 0.0
    np.testing.assert_allclose(learned.lpips_per_frame(model, b, a), got, rtol=1e-5)


def test_full_size_alexnet_shapes_load(tmp_path):
    """The real layer widths (64, 192, 384, 256, 256) load with the same code."""
    model = learned.LPIPS()
    alex = {k: v for k, v in model.net.state_dict().items()}
    torch.save(alex, tmp_path / learned.ALEXNET_FILE)
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, w, 1, 1) for k, w in enumerate((64, 192, 384, 256, 256))},
               tmp_path / learned.LPIPS_LINEAR_FILE)  # fmt: skip
    loaded = learned.load_lpips(tmp_path)
    assert [lin.model[1].weight.shape[1] for lin in loaded.lins] == [64, 192, 384, 256, 256]


def test_wrong_weight_files_are_one_line_errors(tmp_path):
    alex, lins = save_tiny_weights(tmp_path)
    (tmp_path / learned.ALEXNET_FILE).write_text("not a checkpoint")
    with pytest.raises(InputError, match="not a torch state dict") as err:
        learned.load_lpips(tmp_path)
    assert "\n" not in str(err.value) and learned.ALEXNET_FILE in str(err.value)
    torch.save({k: v for k, v in alex.items() if k != "features.3.weight"}, tmp_path / learned.ALEXNET_FILE)
    with pytest.raises(InputError, match="missing key features.3.weight"):
        learned.load_lpips(tmp_path)
    torch.save(alex, tmp_path / learned.ALEXNET_FILE)
    bad = dict(lins)
    bad["lin2.model.1.weight"] = torch.rand(1, 3, 1, 1)
    torch.save(bad, tmp_path / learned.LPIPS_LINEAR_FILE)
    with pytest.raises(InputError, match=r"lin2.model.1.weight has shape \[1, 3, 1, 1\], expected \[1, 8, 1, 1\]"):
        learned.load_lpips(tmp_path)
    (tmp_path / learned.LPIPS_LINEAR_FILE).unlink()
    with pytest.raises(InputError, match="weights file not found"):
        learned.load_lpips(tmp_path)


def test_lpips_refuses_videos_of_different_sizes(tmp_path):
    save_tiny_weights(tmp_path)
    model = learned.load_lpips(tmp_path)
    a = np.zeros((1, 64, 64, 3), np.uint8)
    with pytest.raises(InputError, match="is 64x64 but ground truth is 64x63"):
        learned.lpips(model, a, a[:, :63])
