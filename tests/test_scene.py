"""Camera, sampler, renderer and field: the pieces of the scene model."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from lfcomp.config import PRESETS, ModelConfig
from lfcomp.models.camera import LightFieldCamera, initial_camera
from lfcomp.models.mlp import FactorizedLinear, output_layer, positional_encoding
from lfcomp.models.nerf import NerfField
from lfcomp.models.registry import MODEL_KINDS
from lfcomp.models.renderer import volume_render
from lfcomp.models.sampler import stratified_inverse_depth
from lfcomp.models.scene import SceneModel, grid_offset, make_spec, to_uint8
from lfcomp.models.spec import check_spec, render_precision, vertical_step

MODEL = ModelConfig(kind="nerf", depth=4, width=16, skips=(2,), pos_freqs=3, dir_freqs=1, samples=8)


def test_initial_camera_maps_disparity_range_onto_depth_range():
    values = initial_camera(64, 64, (-1.6, 1.5), near=2.0, far=6.0, focal_px=1462.857)
    cam = LightFieldCamera(64, 64, **values)
    disp_near, disp_far = cam.disparity_per_view(torch.tensor([2.0, 6.0])).detach()
    margin = 0.25 * 3.1
    assert float(disp_near) == pytest.approx(1.5 + margin, rel=1e-5)
    assert float(disp_far) == pytest.approx(-1.6 - margin, rel=1e-5)
    assert values["focal"] == pytest.approx(1462.857)


def test_camera_projection_matches_disparity_convention():
    """A point seen at pixel p in the centre view appears at p − s·d in view s (HCI convention)."""
    cam = LightFieldCamera(32, 32, focal=40.0, baseline=0.05, kappa=0.2)
    depth = 3.0
    d = float(cam.disparity_per_view(torch.tensor(depth)))
    x0, y0 = torch.tensor([10.0]), torch.tensor([12.0])
    o, dirs = cam.rays(torch.zeros(1), torch.zeros(1), x0, y0)
    point = o + dirs * depth
    for s, t in [(2.0, 0.0), (0.0, -3.0), (1.5, 2.5)]:
        # find the pixel of view (s, t) whose ray passes through `point` at that depth
        xs, ys = x0 - s * d, y0 - t * d
        o2, d2 = cam.rays(torch.tensor([s]), torch.tensor([t]), xs, ys)
        assert torch.allclose(o2 + d2 * depth, point, atol=1e-5)


def test_stratified_samples_are_ordered_inside_bins():
    z = stratified_inverse_depth(100, 16, 2.0, 6.0, perturb=True, generator=torch.Generator().manual_seed(0))
    assert z.shape == (100, 16)
    assert torch.all(z[:, 1:] > z[:, :-1])
    assert z.min() >= 2.0 - 1e-6 and z.max() <= 6.0 + 1e-6
    mid = stratified_inverse_depth(3, 4, 2.0, 6.0, perturb=False)
    assert torch.equal(mid[0], mid[2])  # deterministic without perturbation


def test_volume_render_opaque_first_sample_and_empty_ray():
    depths = torch.tensor([[1.0, 2.0, 3.0]] * 2)
    rgb = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]] * 2)
    sigma = torch.tensor([[1e6, 0.0, 0.0], [0.0, 0.0, 0.0]])
    dirs = torch.tensor([[0.0, 0.0, -1.0]] * 2)
    colour, depth, weights = volume_render(rgb, sigma, depths, dirs)
    assert torch.allclose(colour[0], torch.tensor([1.0, 0, 0]), atol=1e-4)
    assert depth[0] == pytest.approx(1.0, abs=1e-4)
    assert torch.all(weights.sum(-1) <= 1.0 + 1e-6)
    assert torch.allclose(colour[1], torch.zeros(3))  # nothing hit: black


def test_positional_encoding_shape_and_values():
    x = torch.tensor([[0.5, -0.25, 0.0]])
    enc = positional_encoding(x, 2)
    assert enc.shape == (1, 3 * 5)
    assert torch.allclose(enc[0, :3], x[0])
    assert enc[0, 3].item() == pytest.approx(np.sin(np.pi * 0.5), abs=1e-6)


def _textbook_encoding(x: torch.Tensor, num_freqs: int) -> torch.Tensor:
    freqs = (2.0 ** torch.arange(num_freqs, dtype=x.dtype)) * np.pi
    angles = x.unsqueeze(-1) * freqs
    return torch.cat([x, torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)], dim=-1)


def test_positional_encoding_is_the_textbook_one_with_its_own_gradient() -> None:
    """The encoding's values are autograd's textbook γ bit for bit (the format's arithmetic), in fp32
    and cast to bf16 under autocast; its hand-written gradient (a learned camera's rays) is γ's."""
    torch.manual_seed(0)
    x = torch.randn(50, 3) * 2
    assert torch.equal(positional_encoding(x, 6), _textbook_encoding(x, 6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        encoded = positional_encoding(x, 6)
    assert encoded.dtype == torch.bfloat16 and torch.equal(encoded, _textbook_encoding(x, 6).bfloat16())
    x64 = torch.randn(20, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: positional_encoding(v, 4), (x64,))
    upstream = torch.randn(20, 4 * 9, dtype=torch.float64)
    positional_encoding(x64, 4).backward(upstream)
    textbook = x64.detach().clone().requires_grad_()
    _textbook_encoding(textbook, 4).backward(upstream)
    assert torch.allclose(x64.grad, textbook.grad, rtol=1e-12, atol=1e-12)


def test_field_skip_and_factorized_slots():
    field = NerfField(depth=4, width=16, skips=[2], pos_freqs=3, dir_freqs=1, factor_ranks={"trunk1": 4})
    assert field.slots["trunk2"].in_features == 16 + 21
    assert isinstance(field.slots["trunk1"], FactorizedLinear)
    rgb, sigma = field(torch.rand(7, 3), torch.rand(7, 3))
    assert rgb.shape == (7, 3) and sigma.shape == (7,)
    assert torch.all((rgb >= 0) & (rgb <= 1)) and torch.all(sigma >= 0)


@pytest.mark.parametrize("ranks", [None, {"feature": 5, "color_hidden": 4}])
def test_training_heads_compute_the_rendered_function(ranks: dict[str, int] | None) -> None:
    """Training merges the heads and adds the direction's share once per ray: the same values and
    gradients as the heads as rendered (the format's arithmetic), up to rounding."""
    torch.manual_seed(0)
    field = NerfField(4, 16, [2], 3, 1, factor_ranks=ranks)
    h, encoded = torch.randn(6 * 8, 16), torch.randn(6, 9)
    values, grads = [], []
    for heads in (field.heads_in_training, field.heads_as_rendered):
        field.zero_grad()
        sigma, hidden = heads(h, encoded)
        (sigma.square().sum() + hidden.sin().sum()).backward()
        values.append(torch.cat([sigma, hidden], dim=-1).detach())
        grads.append({name: p.grad.clone() for name, p in field.named_parameters() if p.grad is not None})
    assert values[0].shape == (48, 1 + 8) and torch.allclose(values[0], values[1], atol=1e-5)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) >= 4
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], atol=1e-4), name


def test_field_takes_the_training_heads_only_with_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    field = NerfField(4, 16, [2], 3, 1)
    taken = []
    monkeypatch.setattr(field, "heads_in_training", lambda *a: taken.append("training") or field.heads_as_rendered(*a))
    field(torch.rand(8, 3), torch.rand(2, 3))
    with torch.no_grad():
        field(torch.rand(8, 3), torch.rand(2, 3))
    assert taken == ["training"]


def test_scene_model_renders_any_viewpoint_deterministically():
    torch.manual_seed(0)
    spec = make_spec(MODEL, (3, 3), (8, 10), 2.0, 6.0, 12.0)
    model = SceneModel(spec, initial_camera(8, 10, (-1, 1), 2.0, 6.0))
    a, depth = model.render_view(0.25, -0.5, chunk_rays=13)
    b, _ = model.render_view(0.25, -0.5, chunk_rays=80)
    assert a.shape == (8, 10, 3) and depth.shape == (8, 10)
    assert np.allclose(a, b, atol=1e-6)  # chunking changes only float rounding
    assert np.array_equal(a, model.render_view(0.25, -0.5, chunk_rays=13)[0])  # same chunking: bit-exact
    assert grid_offset(0, 2, (3, 3)) == (1.0, -1.0)
    assert to_uint8(np.array([0.0, 0.5, 1.2])).tolist() == [0, 128, 255]


def test_spec_states_its_render_precision_only_when_it_is_not_fp32():
    fp32 = make_spec(MODEL, (3, 3), (8, 10), 2.0, 6.0, 12.0)
    bf16 = make_spec(replace(MODEL, render_precision="bf16"), (3, 3), (8, 10), 2.0, 6.0, 12.0)
    assert "render_precision" not in fp32 and render_precision(fp32) == "fp32"  # the specs of older streams
    assert bf16["render_precision"] == "bf16" and render_precision(bf16) == "bf16"
    assert check_spec(bf16) == check_spec(fp32)  # same architecture
    with pytest.raises(ValueError, match="render_precision = 'fp16' is not one of fp32, bf16"):
        check_spec({**fp32, "render_precision": "fp16"})


def test_vertical_step_is_in_the_spec_only_when_the_camera_uses_it():
    square = make_spec(MODEL, (3, 3), (8, 10), 2.0, 6.0, 12.0, vertical_step=1.0)
    flipped = make_spec(MODEL, (3, 3), (8, 10), 2.0, 6.0, 12.0, vertical_step=-1.0)
    assert "vertical_step" not in square and vertical_step(square) == 1.0  # the specs of older streams
    assert flipped["vertical_step"] == -1.0 and check_spec(flipped) == check_spec(square)
    nelf = make_spec(replace(MODEL, kind="nelf"), (3, 3), (8, 10), 2.0, 6.0, 12.0, vertical_step=-1.0)
    assert "vertical_step" not in nelf  # its rays do not come from the camera
    for bad in (0.0, 0.1, 9.0, math.inf, "1", True):
        with pytest.raises(ValueError, match="vertical_step"):
            check_spec({**square, "vertical_step": bad})


def test_a_flipped_vertical_step_mirrors_the_rows_of_views():
    """With ρ = −1 the view t renders as the view −t of the same scene with ρ = 1: a capture whose rows
    run the other way is the same light field."""
    torch.manual_seed(0)
    camera = initial_camera(8, 10, (-1, 1), 2.0, 6.0)
    square = SceneModel(make_spec(MODEL, (3, 3), (8, 10), 2.0, 6.0, 12.0), camera)
    square.field.slots["sigma"].bias.data.fill_(1.0)
    flipped = SceneModel(make_spec(MODEL, (3, 3), (8, 10), 2.0, 6.0, 12.0, vertical_step=-1.0), camera)
    flipped.load_state_dict(square.state_dict())
    for s, t in ((0.5, -1.0), (-1.0, 1.0), (0.25, 0.75)):
        assert np.allclose(flipped.render_view(s, t)[0], square.render_view(s, -t)[0], atol=1e-6)
    assert not np.allclose(square.render_view(0.5, 1.0)[0], square.render_view(0.5, -1.0)[0], atol=1e-3)
    assert np.array_equal(flipped.render_view(0.5, 0.0)[0], square.render_view(0.5, 0.0)[0])


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_bf16_rendering_is_the_specs_and_close_to_fp32(kind: str) -> None:
    """A bf16 spec renders under autocast (not bit-equal to fp32, within rounding of it), whatever
    autocast the caller has on; an fp32 spec renders in fp32 even inside a bf16 autocast."""
    torch.manual_seed(0)
    model_cfg = replace(MODEL, kind=kind, width=32)
    fp32 = SceneModel(make_spec(model_cfg, (3, 3), (8, 10), 2.0, 6.0, 12.0), initial_camera(8, 10, (-1, 1), 2.0, 6.0))
    bf16 = SceneModel(make_spec(replace(model_cfg, render_precision="bf16"), (3, 3), (8, 10), 2.0, 6.0, 12.0),
                      initial_camera(8, 10, (-1, 1), 2.0, 6.0))
    if "sigma" in fp32.field.slots:  # a density everywhere: an untrained NeRF renders black
        fp32.field.slots["sigma"].bias.data.fill_(1.0)
    bf16.load_state_dict(fp32.state_dict())
    reference, _ = fp32.render_view(0.5, -1.0)
    assert reference.std() > 0.01
    low, _ = bf16.render_view(0.5, -1.0)
    assert low.dtype == np.float32 and not np.array_equal(low, reference)
    assert np.abs(low - reference).max() < 0.02
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert np.array_equal(fp32.render_view(0.5, -1.0)[0], reference)
        assert np.array_equal(bf16.render_view(0.5, -1.0)[0], low)


def test_output_layer_computes_in_fp32_under_autocast() -> None:
    torch.manual_seed(0)
    layer, x = torch.nn.Linear(16, 3), torch.randn(5, 16)
    assert torch.equal(output_layer(layer, x), layer(x))  # no autocast: the layer itself
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = x.to(torch.bfloat16)
        out = output_layer(layer, low)
        assert layer(low).dtype == torch.bfloat16 and out.dtype == torch.float32
    assert torch.equal(out, layer(low.float()))


def test_every_model_kind_has_a_field_and_preset_sizes():
    # The registry is the list the workflow and the reports use; each kind's module builds its field.
    assert list(MODEL_KINDS)[0] == "nerf"
    for name, kind in MODEL_KINDS.items():
        module = kind.load()
        assert callable(module.Field) and callable(module.render_rays)
        for kinds in PRESETS.values():
            cfg = kinds[name]
            assert cfg.model.kind == name
            spec = make_spec(cfg.model, (3, 3), (8, 8), 2.0, 6.0, 10.0)
            assert set(spec["field"]) == set(kind.field_keys)
            SceneModel(spec, initial_camera(8, 8, (-1, 1), 2.0, 6.0))  # builds
    for kinds in PRESETS.values():
        assert set(kinds) == set(MODEL_KINDS)


def test_a_kinds_spec_is_json_native():
    spec = make_spec(MODEL, (3, 3), (8, 10), 2.0, 6.0, 12.0)
    assert spec["field"]["skips"] == [2] and isinstance(spec["field"]["skips"], list)


def test_cpu_rendering_keeps_a_chunk_activation_small(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU a chunk holds at most CPU_ACTIVATION_BYTES of one activation (points × widest
    layer); what is rendered does not change with it."""
    import lfcomp.models.scene as scene

    quick = replace(PRESETS["quick"]["nerf"].model, samples=32)  # 4×64: 8 MiB / (4 B · 64 · 32) = 1024 rays
    spec = make_spec(quick, (3, 3), (64, 64), 2.0, 6.0, 80.0)
    model = SceneModel(spec, initial_camera(64, 64, (-1, 1), 2.0, 6.0))
    assert model.rays_per_chunk(4096) == 1024 and model.rays_per_chunk(100) == 100
    nelf = SceneModel(make_spec(PRESETS["quick"]["nelf"].model, (3, 3), (64, 64), 2.0, 6.0, 80.0),
                      initial_camera(64, 64, (-1, 1), 2.0, 6.0))
    assert nelf.rays_per_chunk(65536) == (8 << 20) // (4 * 128)  # one evaluation per ray, width 128
    whole, _ = model.render_view(0.5, 0.5, chunk_rays=4096)
    monkeypatch.setattr(scene, "CPU_ACTIVATION_BYTES", 4 * 64 * 32 * 100)  # 100 rays a chunk
    assert model.rays_per_chunk(4096) == 100
    assert np.array_equal(to_uint8(whole), to_uint8(model.render_view(0.5, 0.5, chunk_rays=4096)[0]))
