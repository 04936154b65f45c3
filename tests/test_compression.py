"""Low rank (ADMM), TT decomposition, distillation, codebook quantization and the codec bridge."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import make_synthetic_lightfield
from lfcomp.codecs.qdlr.decompose import (
    camera_state,
    decompose_model,
    saves_parameters,
    tt_decompose_matrix,
    tt_reconstruct,
)
from lfcomp.codecs.qdlr.distill import model_from_cores
from lfcomp.codecs.qdlr.lowrank import admm_lowrank, admm_rank_projection, check_rank, constrained_weights
from lfcomp.codecs.qdlr.payload import build_model, from_payload, to_payload
from lfcomp.codecs.qdlr.quantize import (
    LEVELS,
    check_centroids,
    dequantize_weight,
    fit_codebook,
    quantize_model,
    quantize_weight,
    uniform16_codes,
    uniform16_values,
)
from lfcomp.config import Config, ModelConfig, load_preset, merge
from lfcomp.errors import LfcompError
from lfcomp.models.camera import initial_camera
from lfcomp.models.scene import SceneModel, make_spec

MODEL = ModelConfig(kind="nerf", depth=3, width=16, skips=(), pos_freqs=2, dir_freqs=1, samples=6)
# weight matrices (not counting biases) a rank-3/rank-4 constraint restricts, and the split ones
CONSTRAINED = {"nerf": {"trunk0", "trunk1", "trunk2", "feature", "color_hidden"}, "nelf": {"trunk0", "trunk1", "trunk2"}}
KEPT = {"nerf": {"sigma", "rgb"}, "nelf": {"rgb"}}


@pytest.fixture(params=["nerf", "nelf"])
def kind(request) -> str:
    return request.param


def tiny_model(kind: str = "nerf", seed: int = 0) -> SceneModel:
    torch.manual_seed(seed)
    spec = make_spec(replace(MODEL, kind=kind), (3, 3), (8, 8), 2.0, 6.0, 10.0)
    return SceneModel(spec, initial_camera(8, 8, (-1, 1), 2.0, 6.0), camera_trainable=False)


def smoke_cfg() -> Config:
    return merge(load_preset("smoke"), {"train": {"eval_views": 1, "batch_rays": 64, "log_every": 5}})


def test_rank_projection_is_best_rank_r_approximation():
    rng = np.random.default_rng(0)
    matrix = torch.from_numpy(rng.standard_normal((20, 12)))
    projected = admm_rank_projection(matrix, 4)
    assert torch.linalg.matrix_rank(projected) == 4
    s = torch.linalg.svdvals(matrix)
    best_error = float(torch.sqrt((s[4:] ** 2).sum()))
    assert float((matrix - projected).norm()) == pytest.approx(best_error, rel=1e-9)
    for _ in range(20):  # no other rank-4 matrix does better
        a, b = torch.randn(20, 4, dtype=torch.float64), torch.randn(4, 12, dtype=torch.float64)
        other = projected + 0.05 * (a @ b)
        assert float((matrix - admm_rank_projection(other, 4)).norm()) >= best_error - 1e-9


def test_check_rank_bounds():
    model = tiny_model()
    for bad in (0, -3, 16, 40):
        with pytest.raises(LfcompError, match="rank must be in 1..15"):
            check_rank(bad, model)
    check_rank(15, model)


def test_admm_gives_rank_r_weights_on_constrained_layers_only(kind):
    model = tiny_model(kind)
    views = make_synthetic_lightfield(3, 3, 8, 8)
    cfg = smoke_cfg()
    model, extras = admm_lowrank(model, views, 3, replace(cfg.lowrank, steps=12, z_update_every=4), cfg.train)
    weights = constrained_weights(model, 3)
    assert set(weights) == CONSTRAINED[kind]  # not the thin output layers
    for w in weights.values():
        assert torch.linalg.matrix_rank(w.detach()) <= 3
    assert [r["step"] for r in extras["admm_residuals"]] == [4, 8, 12]
    assert extras["report"]["stored_params"] < sum(p.numel() for p in model.field.parameters())


def test_tt_cores_reconstruct_a_rank_r_matrix():
    rng = np.random.default_rng(1)
    matrix = (rng.standard_normal((24, 5)) @ rng.standard_normal((5, 30))).astype(np.float32)
    q1, q2 = tt_decompose_matrix(matrix, 5)
    assert q1.shape == (1, 24, 5) and q2.shape == (5, 30, 1)
    assert np.allclose(tt_reconstruct(q1, q2), matrix, atol=1e-4)
    # truncating a full-rank matrix gives its best rank-r approximation
    full = rng.standard_normal((10, 8)).astype(np.float32)
    q1, q2 = tt_decompose_matrix(full, 3)
    expected = admm_rank_projection(torch.from_numpy(full).double(), 3).numpy()
    assert np.allclose(tt_reconstruct(q1, q2), expected, atol=1e-5)


@pytest.mark.parametrize("n1, n2, rank, split", [(64, 64, 31, True), (64, 64, 32, False), (256, 256, 150, False),
                                                 (256, 256, 40, True), (64, 1, 4, False), (37, 16, 8, True)])
def test_layer_split_only_when_it_saves_parameters(n1, n2, rank, split):
    assert saves_parameters(n1, n2, rank) is split


def test_distilled_network_from_cores_renders_like_the_low_rank_one(kind):
    model = tiny_model(kind)
    with torch.no_grad():
        for w in constrained_weights(model, 4).values():
            w.copy_(admm_rank_projection(w, 4))
    layers = decompose_model(model, 4)
    assert {n for n, a in layers.items() if "Q1" in a} == CONSTRAINED[kind]
    assert {n for n, a in layers.items() if "weight" in a} == KEPT[kind]  # splitting them costs more
    attrs = {"spec": model.spec, "camera": model.camera.values(), "camera_state": camera_state(model)}
    slim = model_from_cores(layers, attrs)
    assert sum(p.numel() for p in slim.field.parameters()) < sum(p.numel() for p in model.field.parameters())
    a, _ = model.render_view(0.5, -1.0)
    b, _ = slim.render_view(0.5, -1.0)
    assert np.allclose(a, b, atol=1e-5)


def test_uniform16_quantizer_precision():
    values = torch.tensor([-3.7, -1.2, 1.01, 2.5, 9.0])
    lo, hi = values.min(), values.max()
    codes = uniform16_codes(values, lo, hi)
    assert codes.min() == 0 and codes.max() == LEVELS
    back = uniform16_values(codes, lo, hi)
    assert torch.all((back - values).abs() <= (hi - lo) / LEVELS / 2 + 1e-6)


def test_quantize_weight_codebook_inside_and_16bit_outside():
    rng = np.random.default_rng(2)
    weight = torch.from_numpy(rng.laplace(0, 0.3, (40, 30)).astype(np.float32)).clamp(-0.99, 0.99)
    weight[0, :4] = torch.tensor([1.5, -2.25, 3.0, -1.0001])
    codebook = fit_codebook(weight.numpy().ravel(), 16, 20, seed=0)
    assert torch.all(codebook[1:] > codebook[:-1])
    symbols, value_range = quantize_weight(weight, codebook)
    back = dequantize_weight(symbols, codebook, value_range, list(weight.shape))
    outside = weight.abs() > 1
    assert int(outside.sum()) == 4 and torch.all(symbols.reshape(weight.shape)[outside] >= 16)
    step = float(value_range[1] - value_range[0]) / LEVELS
    assert torch.all((back[outside] - weight[outside]).abs() <= step / 2 + 1e-6)
    inside = ~outside
    nearest = (weight[inside].unsqueeze(1) - codebook).abs().argmin(1)
    assert torch.equal(back[inside], codebook[nearest])


def test_check_centroids_and_too_many_centroids():
    for bad in (1, 0, 65537):
        with pytest.raises(LfcompError, match="2..65536"):
            check_centroids(bad)
    with pytest.raises(LfcompError, match="exceeds"):
        fit_codebook(np.array([0.1, 0.2, 0.1, 0.2]), 3, 20, seed=0)


def test_quantize_model_then_codec_round_trip_is_bit_exact(kind):
    model = tiny_model(kind)
    views = make_synthetic_lightfield(3, 3, 8, 8)
    cfg = smoke_cfg()
    with torch.no_grad():
        model.field.slots["trunk1"].weight[0, 0] = 1.75  # an outlier
    quantized, extras = quantize_model(model, views, 8, replace(cfg.quantize, steps_per_layer=2,
                                                                codebook_steps=3), cfg.train)
    assert quantized.codebook.numel() == 8 and torch.all(quantized.codebook[1:] >= quantized.codebook[:-1])
    assert extras["report"]["outside_fraction"] > 0
    payload = to_payload(model.spec, camera_state(model), quantized)
    spec, cam, back = from_payload(payload, "mem")
    decoded = build_model(spec, cam, back)
    for (name, a), b in zip(model.state_dict().items(), decoded.state_dict().values()):
        assert torch.equal(a, b), name
    assert np.array_equal(model.render_view(1.0, 0.0)[0], decoded.render_view(1.0, 0.0)[0])
