"""Tests of the 3D scene: field, cameras, background, volume renderer and regularisers (CPU, small sizes)."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from psd_engine.config import CameraConfig, ConfigError, FieldConfig, OptimConfig, RenderConfig
from psd_engine.scene import (
    Background, Field, GridField, VolumeRenderer, build_field, entropy_loss, field_kinds, get_rays, opacity_loss,
    orbit_cameras, orient_loss, register_field, sample_cameras, tv_loss,
)
from psd_engine.scene.cameras import make_cameras
from psd_engine.scene.field import sample_volume


class AnalyticBall(Field):
    """A ball of constant colour (analytic, not a grid): hard-edged, or a sigmoid edge of the given sharpness."""

    def __init__(self, radius: float, centre=(0.0, 0.0, 0.0), colour=(1.0, 0.0, 0.0), density: float = 300.0,
                 sharpness: float | None = None):
        super().__init__(bound=1.0)
        self.radius, self.density_value, self.sharpness = radius, density, sharpness
        self.register_buffer("centre", torch.tensor(centre))
        self.register_buffer("colour", torch.tensor(colour))

    def forward(self, points):
        dist = (points - self.centre).norm(dim=-1)
        if self.sharpness is None:
            sigma = self.density_value * (dist < self.radius).float()
        else:
            sigma = self.density_value * torch.sigmoid(self.sharpness * (self.radius - dist))
        return sigma, self.colour.expand(points.shape[0], 3)


def grid_ball(radius: float, resolution: int = 48, slope: float = 2000.0, colour_logits=(6.0, -6.0, -6.0),
              activation: str = "relu") -> GridField:
    """A GridField whose raw density is slope * (radius - |x|) and whose colour is sigmoid(colour_logits).

    With relu and a steep slope the ball is empty outside and opaque within ~0.03 of its surface.
    """
    field = GridField(FieldConfig(resolution=resolution, blob_density=0.0, density_activation=activation))
    centres = GridField.voxel_centres(resolution, 1.0)
    with torch.no_grad():
        field.density_grid[0, 0] = slope * (radius - centres.norm(dim=-1))
        field.color_grid[0] = torch.tensor(colour_logits)[:, None, None, None]
    return field


def expected_disc_radius_px(radius: float, distance: float, fovy_deg: float, resolution: int) -> float:
    """Pinhole projection of a sphere's silhouette: tan(angular radius) / tan(fovy / 2) * H / 2."""
    tan_alpha = radius / math.sqrt(distance**2 - radius**2)
    return tan_alpha / math.tan(math.radians(fovy_deg) / 2) * resolution / 2


def disc_stats(opacity: torch.Tensor) -> tuple[float, float, float]:
    """(radius from area, centre row, centre col) of the pixels with opacity > 0.5 in a (H, W) image."""
    mask = opacity > 0.5
    rows, cols = torch.nonzero(mask, as_tuple=True)
    return math.sqrt(mask.sum().item() / math.pi), rows.float().mean().item() + 0.5, cols.float().mean().item() + 0.5


# ----------------------------------------------------------------------------- renderer geometry

@pytest.mark.parametrize("make_field", [lambda r: AnalyticBall(r), lambda r: grid_ball(r)], ids=["analytic", "grid"])
@pytest.mark.parametrize("elevation,azimuth,distance,fovy", [(0.0, 0.0, 2.5, 40.0), (30.0, 120.0, 2.0, 55.0)])
def test_ball_renders_as_disc_of_pinhole_radius(make_field, elevation, azimuth, distance, fovy):
    radius, res = 0.6, 64
    field = make_field(radius)
    cams = make_cameras(*(torch.tensor([v]) for v in (elevation, azimuth, distance, fovy)))
    out = VolumeRenderer(RenderConfig(samples_per_ray=96)).render(field, cams, res)
    measured, row, col = disc_stats(out["opacity"][0, 0])
    assert measured == pytest.approx(expected_disc_radius_px(radius, distance, fovy, res), abs=1.5)
    assert (row, col) == pytest.approx((res / 2, res / 2), abs=0.5)
    # Red ball on white: red channel stays 1 everywhere, green is ~0 inside the disc.
    rgb = out["rgb"][0]
    assert rgb[0].min() > 0.99
    assert rgb[1, res // 2, res // 2] < 0.01
    # Depth at the centre pixel is the distance to the ball's front.
    assert out["depth"][0, 0, res // 2, res // 2].item() == pytest.approx(distance - radius, abs=0.04)


def test_image_orientation_right_is_plus_x_and_top_is_plus_y():
    # Seen from the front (az=0, at +Z) a ball moved to +X appears right of centre, one moved to +Y above it.
    cams = orbit_cameras(1, elevation_deg=0.0, distance=2.5, fovy_deg=45.0)
    renderer = VolumeRenderer(RenderConfig(samples_per_ray=64))
    _, row, col = disc_stats(renderer.render(AnalyticBall(0.2, centre=(0.5, 0.0, 0.0)), cams, 48)["opacity"][0, 0])
    assert col > 24 + 5 and row == pytest.approx(24, abs=0.5)
    _, row, col = disc_stats(renderer.render(AnalyticBall(0.2, centre=(0.0, 0.5, 0.0)), cams, 48)["opacity"][0, 0])
    assert row < 24 - 5 and col == pytest.approx(24, abs=0.5)


def test_empty_field_renders_background_only():
    field = GridField(FieldConfig(resolution=16, blob_density=0.0, init_density=-30.0))
    cams = orbit_cameras(2, 15.0, 2.4, 45.0)
    out = VolumeRenderer(RenderConfig()).render(field, cams, 32)
    assert out["opacity"].max() < 1e-6
    assert out["rgb"].min() > 1 - 1e-5  # white background
    assert torch.all(out["depth"] == 0)
    assert out["rgb"].shape == (2, 3, 32, 32) and out["opacity"].shape == (2, 1, 32, 32)


def test_rays_missing_the_box_see_the_background():
    # Far away with a wide view most rays miss the box; they must still get the background colour.
    field = grid_ball(0.5, resolution=16)
    cams = make_cameras(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([3.9]), torch.tensor([90.0]))
    bg = Background(RenderConfig(background="learned", learned_background_logit=-2.0))
    out = VolumeRenderer(RenderConfig(far=6.0)).render(field, cams, 32, background=bg)
    corner = out["rgb"][0, :, 0, 0]
    assert torch.allclose(corner, torch.sigmoid(torch.tensor(-2.0)).expand(3), atol=1e-6)
    assert out["opacity"][0, 0, 16, 16] > 0.99
    assert out["weights"].shape == (32 * 32, RenderConfig().samples_per_ray)


def test_renderer_passes_gradients_to_density_colour_and_background():
    field = GridField(FieldConfig(resolution=16))
    bg = Background(RenderConfig(background="learned"))
    renderer = VolumeRenderer(RenderConfig(samples_per_ray=32))
    gen = torch.Generator().manual_seed(0)
    cams = sample_cameras(CameraConfig(), 2, gen)
    out = renderer.render(field, cams, 24, background=bg, shading="lambertian", generator=gen, perturb=True)
    loss = out["rgb"].mean() + orient_loss(out["weights"], out["normals"], out["dirs"])
    loss.backward()
    for name, param in [("density", field.density_grid), ("colour", field.color_grid), ("background", bg.logit)]:
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_opacity_only_render_matches_the_full_render_and_its_gradient():
    # Camera far and wide so that some rays miss the occupied box (the scatter path is taken).
    field = grid_ball(0.4, resolution=16, slope=100.0)
    renderer = VolumeRenderer(RenderConfig(samples_per_ray=24, skip_density=0.5, far=8.0))
    cams = make_cameras(torch.tensor([10.0, -20.0]), torch.tensor([0.0, 130.0]), torch.tensor([3.0, 3.5]),
                        torch.tensor([40.0, 35.0]))

    def opacity_and_grad(full: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        field.zero_grad()
        gen = torch.Generator().manual_seed(4)
        if full:
            opacity = renderer.render(field, cams, 20, shading="albedo", generator=gen, perturb=True)["opacity"]
        else:
            opacity = renderer.opacity(field, cams, 20, generator=gen, perturb=True)
        (opacity ** 2).sum().backward()
        return opacity.detach(), field.density_grid.grad.clone(), torch.rand(1, generator=gen)

    full, full_grad, full_next = opacity_and_grad(True)
    alone, alone_grad, alone_next = opacity_and_grad(False)
    assert alone.shape == (2, 1, 20, 20)
    assert 0 < int((full < 1e-6).sum()) and int((full > 0.99).sum()) > 0  # both empty and solid pixels
    assert torch.allclose(alone, full, atol=1e-6)
    assert torch.allclose(alone_grad, full_grad, atol=1e-5) and full_grad.abs().sum() > 0
    assert torch.equal(alone_next, full_next)  # same random draws, so a run's later steps are unchanged
    for render in (renderer.opacity, renderer.render):
        with pytest.raises(ValueError, match="resolution must be >= 1 pixel; got 0"):
            render(field, cams, 0)


def test_perturb_is_deterministic_per_generator_and_off_by_default():
    field = GridField(FieldConfig(resolution=16, color_noise=1.0), generator=torch.Generator().manual_seed(3))
    renderer = VolumeRenderer(RenderConfig(samples_per_ray=16))
    cams = orbit_cameras(1, 10.0, 2.4, 45.0)

    def run(seed: int | None, perturb: bool) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return renderer.render(field, cams, 16, generator=gen, perturb=perturb)["rgb"]

    assert torch.equal(run(1, True), run(1, True))
    assert not torch.equal(run(1, True), run(2, True))
    assert torch.equal(run(None, False), run(5, False))


def test_shading_modes():
    field = grid_ball(0.6, colour_logits=(6.0, 6.0, -6.0))  # yellow
    cams = orbit_cameras(1, 0.0, 2.5, 40.0)
    renderer = VolumeRenderer(RenderConfig(samples_per_ray=64, ambient=0.2, textureless_albedo=0.8))
    albedo = renderer.render(field, cams, 32, shading="albedo")
    lit = renderer.render(field, cams, 32, shading="lambertian")
    plain = renderer.render(field, cams, 32, shading="textureless")
    assert "normals" not in albedo and "normals" in lit
    asked = renderer.render(field, cams, 32, shading="albedo", need_normals=True)
    assert asked["normals"].shape == (32 * 32, 64, 3) and torch.equal(asked["rgb"], albedo["rgb"])
    c, edge = (0, slice(None), 16, 16), (0, slice(None), 16, 7)  # centre and near the silhouette (radius ~10.9 px)
    # Headlight: the centre faces the light (full albedo), the rim is darker; blue stays 0 (albedo has none).
    assert torch.allclose(lit["rgb"][c], albedo["rgb"][c], atol=0.03)
    assert lit["rgb"][edge][0] < albedo["rgb"][edge][0] - 0.2
    assert lit["rgb"][c][2] < 0.01
    # Textureless ignores the albedo: grey at the configured level, equal channels.
    assert torch.allclose(plain["rgb"][c], torch.full((3,), 0.8), atol=0.03)
    # A light from behind leaves only the ambient term on the visible side.
    back = renderer.render(field, cams, 32, shading="lambertian", light_dir=torch.tensor([0.0, 0.0, -1.0]))
    assert back["rgb"][c][0].item() == pytest.approx(0.2, abs=0.03)


def test_random_shading_is_seeded_and_follows_probabilities():
    renderer = VolumeRenderer(RenderConfig(shading="random", shading_probs=(0.0, 1.0, 1.0)))
    gen = torch.Generator().manual_seed(0)
    picks = [renderer.pick_shading(None, gen) for _ in range(200)]
    assert "albedo" not in picks and 60 < picks.count("lambertian") < 140
    gen_a, gen_b = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert [renderer.pick_shading("random", gen_a) for _ in range(10)] == [
        renderer.pick_shading("random", gen_b) for _ in range(10)]
    with pytest.raises(ConfigError, match="shading must be one of"):
        renderer.pick_shading("phong", gen)


# ----------------------------------------------------------------------------- cameras

def test_sample_cameras_deterministic_and_in_range():
    cfg = CameraConfig(distance_range=(2.0, 2.6), elevation_range=(-10.0, 45.0), azimuth_range=(-180.0, 180.0),
                       fovy_range=(40.0, 50.0))
    a = sample_cameras(cfg, 64, torch.Generator().manual_seed(7))
    b = sample_cameras(cfg, 64, torch.Generator().manual_seed(7))
    c = sample_cameras(cfg, 64, torch.Generator().manual_seed(8))
    assert torch.equal(a.c2w, b.c2w) and not torch.equal(a.c2w, c.c2w)
    for values, (lo, hi) in [(a.distance, cfg.distance_range), (a.elevation_deg, cfg.elevation_range),
                             (a.azimuth_deg, cfg.azimuth_range), (a.fovy_deg, cfg.fovy_range)]:
        assert values.min() >= lo and values.max() <= hi
        assert values.max() - values.min() > 0.5 * (hi - lo)  # spread over the range, not stuck
    assert torch.allclose(a.positions.norm(dim=-1), a.distance, atol=1e-5)


def test_sample_cameras_rejects_bad_ranges():
    with pytest.raises(ConfigError, match="camera.elevation_range"):
        sample_cameras(CameraConfig(elevation_range=(30.0, 10.0)), 2, torch.Generator())


def test_overhead_prob_mixes_in_high_views_and_leaves_other_draws_alone():
    cfg = CameraConfig(elevation_range=(-10.0, 45.0))
    plain = sample_cameras(cfg, 400, torch.Generator().manual_seed(3))
    u = torch.rand((4, 400), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(plain.elevation_deg, -10.0 + 55.0 * u[0])  # overhead_prob 0: the old draws, no extra ones
    mixed = sample_cameras(replace(cfg, overhead_prob=0.25, overhead_range=(60.0, 80.0)), 400,
                           torch.Generator().manual_seed(3))
    high = mixed.elevation_deg >= 60.0
    assert 0.18 < high.float().mean() < 0.32 and mixed.elevation_deg[high].max() <= 80.0
    assert torch.equal(mixed.elevation_deg[~high], plain.elevation_deg[~high])
    assert torch.equal(mixed.azimuth_deg, plain.azimuth_deg)
    everywhere = sample_cameras(replace(cfg, overhead_prob=1.0), 50, torch.Generator().manual_seed(3))
    assert everywhere.elevation_deg.min() >= 60.0
    with pytest.raises(ConfigError, match=r"camera.overhead_prob must lie within \[0, 1\]; got 1.5"):
        sample_cameras(replace(cfg, overhead_prob=1.5), 2, torch.Generator())
    with pytest.raises(ConfigError, match="camera.overhead_range"):
        sample_cameras(replace(cfg, overhead_prob=0.5, overhead_range=(80.0, 95.0)), 2, torch.Generator())


def test_camera_convention_front_is_plus_z_and_looks_at_origin():
    cams = orbit_cameras(4, elevation_deg=0.0, distance=2.0, fovy_deg=45.0)
    expected = torch.tensor([[0.0, 0, 2], [2, 0, 0], [0, 0, -2], [-2, 0, 0]])  # az 0, 90, 180, -90
    assert torch.allclose(cams.positions, expected, atol=1e-5)
    assert torch.allclose(cams.azimuth_deg, torch.tensor([0.0, 90.0, -180.0, -90.0]))
    front = cams[0]
    assert torch.allclose(front.c2w[0, :3, :3], torch.eye(3), atol=1e-6)  # OpenGL: looks down -Z, +Y up, +X right
    top = make_cameras(torch.tensor([60.0]), torch.tensor([0.0]), torch.tensor([2.0]), torch.tensor([45.0]))
    assert top.positions[0, 1] == pytest.approx(2.0 * math.sin(math.radians(60)), abs=1e-5)
    origins, dirs = get_rays(cams, 9)
    assert origins.shape == dirs.shape == (4, 9, 9, 3)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(4, 9, 9), atol=1e-6)
    centre = dirs[:, 4, 4]
    assert torch.allclose(centre, -cams.positions / 2.0, atol=1e-5)  # the centre ray hits the origin
    # Corner rays make the half-diagonal angle of the field of view with the centre ray.
    tan_half = math.tan(math.radians(45.0) / 2) * (1 - 1 / 9)
    cos_corner = 1 / math.sqrt(1 + 2 * tan_half**2)
    assert (dirs[0, 0, 0] * centre[0]).sum().item() == pytest.approx(cos_corner, abs=1e-5)


def test_orbit_cameras_start_azimuth():
    cams = orbit_cameras(3, 20.0, 2.2, 50.0, start_azimuth_deg=30.0)
    assert torch.allclose(cams.azimuth_deg, torch.tensor([30.0, 150.0, -90.0]))
    assert torch.allclose(cams.elevation_deg, torch.full((3,), 20.0))


# ----------------------------------------------------------------------------- background

def test_background_kinds():
    dirs = torch.randn(2, 4, 4, 3)
    assert torch.equal(Background(RenderConfig(background="white"))(dirs), torch.ones(2, 4, 4, 3))
    rand = Background(RenderConfig(background="random"))
    a = rand(dirs, torch.Generator().manual_seed(1))
    b = rand(dirs, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(a[0], a[1])  # one colour per image
    assert torch.equal(a[0], a[0, :1, :1].expand(4, 4, 3))  # constant within an image
    assert rand.display().kind == "white"
    learned = Background(RenderConfig(background="learned", learned_background_logit=1.0))
    assert torch.allclose(learned(dirs), torch.full((2, 4, 4, 3), torch.sigmoid(torch.tensor(1.0)).item()))
    assert learned.display() is learned
    with pytest.raises(ConfigError, match="render.background"):
        Background(RenderConfig(background="black"))


# ----------------------------------------------------------------------------- field

def test_grid_field_blob_init_and_activations():
    cfg = FieldConfig(resolution=9, init_density=-1.0, blob_density=5.0, blob_radius=0.5)
    field = build_field(cfg)
    assert isinstance(field, GridField) and "grid" in field_kinds()
    raw = field.density_grid[0, 0]
    assert raw[4, 4, 4].item() == pytest.approx(4.0)  # centre voxel: init + blob
    assert raw[0, 0, 0].item() == pytest.approx(-1.0)  # corner, outside the blob
    points = torch.tensor([[0.0, 0.0, 0.0], [0.9, 0.9, 0.9], [1.2, 0.0, 0.0], [0.0, -1.01, 0.0]])
    sigma, rgb = field(points)
    assert sigma[0].item() == pytest.approx(math.log1p(math.exp(4.0)), rel=1e-4)  # softplus(4)
    assert sigma[1].item() == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-4)
    assert sigma[2].item() == 0 and sigma[3].item() == 0  # outside the box
    assert torch.allclose(rgb, torch.full((4, 3), 0.5))  # init_color 0 -> grey
    assert torch.equal(field.density(points), sigma)
    for activation, expected in [("exp", math.exp(4.0)), ("relu", 4.0)]:
        other = build_field(FieldConfig(resolution=9, init_density=-1.0, density_activation=activation, density_scale=2.0))
        assert other.density(points[:1]).item() == pytest.approx(2.0 * expected, rel=1e-4)


def test_blob_norm_makes_the_starting_blob_a_ball_or_a_box():
    def raw(norm: float, point: tuple[int, int, int]) -> float:
        cfg = FieldConfig(resolution=9, init_density=-1.0, blob_density=5.0, blob_radius=1.0, blob_norm=norm)
        return GridField(cfg).density_grid[0, 0][point].item()

    # Voxel (6, 6, 6) sits at (0.5, 0.5, 0.5), voxel (4, 4, 6) at (0.5, 0, 0): same distance for a box.
    assert raw(0, (6, 6, 6)) == pytest.approx(raw(0, (4, 4, 6))) == pytest.approx(-1.0 + 5.0 * 0.5)
    assert raw(2, (6, 6, 6)) == pytest.approx(-1.0 + 5.0 * (1 - math.sqrt(0.75)))  # the ball's Euclidean distance
    assert raw(2, (6, 6, 6)) < raw(4, (6, 6, 6)) < raw(0, (6, 6, 6))  # p = 4 lies between: a rounded box
    ball = GridField(FieldConfig(resolution=9, blob_density=5.0)).density_grid
    assert torch.equal(ball, GridField(FieldConfig(resolution=9, blob_density=5.0, blob_norm=2.0)).density_grid)
    with pytest.raises(ConfigError, match=r"field.blob_norm must be >= 1 \(a p-norm\) or 0 \(the max-norm, a box\); got 0.5"):
        GridField(FieldConfig(blob_norm=0.5))


def test_grid_field_normals_point_outward():
    field = grid_ball(0.5, resolution=32)
    gen = torch.Generator().manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(200, 3, generator=gen), dim=-1)
    points = directions * 0.5
    normals = field.normals(points)
    assert torch.allclose(normals.norm(dim=-1), torch.ones(200), atol=1e-5)
    assert (normals * directions).sum(-1).min() > 0.97
    _, _, fused = field.query(points, need_normals=True)
    assert torch.allclose(fused, normals, atol=1e-5)
    generic = AnalyticBall(0.5, sharpness=50.0).normals(points)
    assert (generic * directions).sum(-1).min() > 0.9


def test_atlas_sampler_matches_grid_sample_3d():
    gen = torch.Generator().manual_seed(0)
    volume = torch.randn(1, 4, 7, 9, 11, generator=gen)
    coords = torch.rand(500, 3, generator=gen) * 2 - 1
    coords[:3] = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [1.0, -1.0, 1.0]])  # exact corners
    reference = sample_volume(volume, coords, "grid_sample_3d")
    assert torch.allclose(sample_volume(volume, coords, "atlas_2d"), reference, atol=1e-4)
    assert torch.allclose(reference[:, 1], volume[0, :, -1, -1, -1])  # (x, y, z) = (1, 1, 1) is the last voxel
    with pytest.raises(ConfigError, match="field.sampler"):
        sample_volume(volume, coords, "cubic")


def test_field_registry_and_config_errors():
    with pytest.raises(ConfigError, match="unknown field.kind 'nerf'.*grid"):
        build_field(FieldConfig(kind="nerf"))
    with pytest.raises(ConfigError, match="field.density_activation"):
        build_field(FieldConfig(density_activation="sigmoid"))

    @register_field("test-constant")
    class ConstantField(Field):
        def __init__(self, cfg: FieldConfig):
            super().__init__(cfg.bound)
            self.value = nn.Parameter(torch.ones(()))

        def forward(self, points):
            return self.value.expand(points.shape[0]), torch.zeros(points.shape[0], 3)

    assert isinstance(build_field(FieldConfig(kind="test-constant")), ConstantField)


def test_parameter_groups_use_density_and_colour_learning_rates():
    field = GridField(FieldConfig(resolution=8))
    groups = field.parameter_groups(OptimConfig(lr=0.1, color_lr=0.02))
    assert [(g["name"], g["lr"]) for g in groups] == [("density", 0.1), ("color", 0.02)]
    assert groups[0]["params"][0] is field.density_grid and groups[1]["params"][0] is field.color_grid
    torch.optim.Adam(groups)  # accepted as Adam parameter groups


# ----------------------------------------------------------------------------- regularisers

def test_regularisers():
    assert opacity_loss(torch.tensor([0.0, 0.5, 1.0, 0.5])).item() == pytest.approx(0.5)
    assert entropy_loss(torch.full((3,), 0.5)).item() == pytest.approx(math.log(2), rel=1e-5)
    assert entropy_loss(torch.tensor([0.0, 1.0])).item() < 1e-4
    weights = torch.tensor([[0.5, 0.5], [0.0, 0.0]], requires_grad=True)
    dirs = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    towards = torch.tensor([0.0, 0.0, 1.0]).expand(2, 2, 3)
    assert orient_loss(weights, towards, dirs).item() == 0.0
    away = torch.tensor([0.0, 0.6, -0.8]).expand(2, 2, 3)
    # Only the first ray sees anything: (0.5 + 0.5) * 0.8^2 over one ray.
    assert orient_loss(weights, away, dirs).item() == pytest.approx(0.64)
    field = GridField(FieldConfig(resolution=8, blob_density=0.0))
    assert tv_loss(field).item() == 0.0
    with torch.no_grad():
        field.density_grid[0, 0, 4, 4, 4] += 1.0
    assert tv_loss(field).item() == pytest.approx(6 / (7 * 8 * 8))  # 2 jumps per axis, mean over 7*8*8 pairs
    with pytest.raises(TypeError, match="lambda_tv=0"):
        tv_loss(AnalyticBall(0.3))


def test_occupied_box_bounds_dense_voxels_and_skipping_keeps_the_picture():
    field = grid_ball(0.4, resolution=33, slope=40.0, activation="softplus")
    low, high = field.occupied_box(0.01)
    # softplus(40 (0.4 - d)) > 0.01 out to d ~ 0.515; one voxel (1/16) of margin on top.
    assert torch.allclose(high, torch.full((3,), 0.5625)) and torch.allclose(low, -high)
    assert GridField(FieldConfig(resolution=8, blob_density=0.0, init_density=-20.0)).occupied_box(0.01) is None
    cams = orbit_cameras(2, 20.0, 2.4, 45.0)
    full = VolumeRenderer(RenderConfig(skip_density=0.0)).render(field, cams, 32)
    skip = VolumeRenderer(RenderConfig(skip_density=0.01)).render(field, cams, 32)
    assert (skip["rgb"] - full["rgb"]).abs().max() < 0.02
    assert (skip["opacity"] - full["opacity"]).abs().max() < 0.02


def test_nearly_flat_density_does_not_blow_up_shading_gradients():
    # A fog with 1e-6 noise has normals of arbitrary direction and |grad| ~ 1e-6; dividing by that
    # would scale gradients by ~1e6 (max |grad| ~ 200 here without the floor, 0.3 with it).
    gen = torch.Generator().manual_seed(0)
    field = GridField(FieldConfig(resolution=16, blob_density=0.0, normal_eps=1e-3))
    with torch.no_grad():
        field.density_grid.add_(1e-6 * torch.randn(field.density_grid.shape, generator=gen))
    out = VolumeRenderer(RenderConfig(samples_per_ray=32)).render(
        field, orbit_cameras(1, 10.0, 2.4, 45.0), 16, shading="lambertian")
    out["rgb"].mean().backward()
    assert field.density_grid.grad.abs().max() < 2.0
    assert out["normals"].norm(dim=-1).max() < 0.01  # flat: the normals fade out


def test_pure_white_background_pixels_still_pass_density_gradients():
    # Opacity ~1e-9 rounds the grey-on-white pixels to exactly 1.0; the gradient that would let density
    # grow there must survive (a clamp on rgb used to zero it).
    field = GridField(FieldConfig(resolution=8, blob_density=0.0, init_density=-20.7))
    out = VolumeRenderer(RenderConfig(samples_per_ray=16)).render(field, orbit_cameras(1, 0.0, 2.4, 45.0), 8)
    assert torch.all(out["rgb"] == 1.0)
    (-out["rgb"].mean()).backward()
    assert field.density_grid.grad.abs().sum() > 0
