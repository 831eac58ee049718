"""The shapes world: deterministic sampling, correct colours and silhouettes, captions, held-out pairs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from psd_engine.config import PromptConfig
from psd_engine.prompts import view_direction, view_prompt
from psd_engine.shapes import world
from psd_engine.shapes.world import COLORS, SHAPES, ShapeSpec

DEMO_PAIRS = [("cube", "red"), ("sphere", "blue"), ("cone", "green"), ("torus", "yellow"), ("cylinder", "purple")]


def _front(shape: str, color: str = "red", **kw) -> ShapeSpec:
    base = dict(size=1.0, yaw_deg=30.0, elevation_deg=15.0, azimuth_deg=0.0, light_azimuth_deg=0.0,
                light_elevation_deg=45.0)
    base.update(kw)
    return ShapeSpec(shape, color, **base)


def test_sampling_and_rendering_are_deterministic_by_seed():
    a = world.sample_specs(12, np.random.default_rng(7))
    b = world.sample_specs(12, np.random.default_rng(7))
    c = world.sample_specs(12, np.random.default_rng(8))
    assert a == b
    assert a != c
    img_a = world.render_specs(a, 32)
    img_b = world.render_specs(b, 32)
    assert img_a.shape == (12, 32, 32, 3) and img_a.dtype == np.float32
    assert np.array_equal(img_a, img_b)
    assert 0.0 <= img_a.min() and img_a.max() <= 1.0


@pytest.mark.parametrize("shape", SHAPES)
def test_foreground_has_the_named_colour_on_white(shape):
    specs = [_front(shape, c) for c in COLORS]
    rgb, alpha = world.render_specs(specs, 32, return_alpha=True)
    assert alpha.shape == (len(COLORS), 32, 32)
    names = list(COLORS)
    palette = np.array([COLORS[n] for n in names])
    palette /= np.linalg.norm(palette, axis=1, keepdims=True)
    for i, name in enumerate(names):
        fg = alpha[i] > 0.99
        bg = alpha[i] == 0.0
        assert fg.sum() > 60, f"{shape}: too few foreground pixels ({fg.sum()})"
        assert np.all(rgb[i][bg] == 1.0), "background must be pure white"
        mean = rgb[i][fg].mean(0)
        # Lambertian + ambient shading scales the albedo, so the colour's direction is kept.
        cos = palette @ (mean / np.linalg.norm(mean))
        assert names[int(np.argmax(cos))] == name
        assert cos[i] > 0.99
        assert int(np.argmax(mean)) == int(np.argmax(COLORS[name]))
        assert mean.max() < 0.999, "foreground must not be white"


def test_silhouettes_tell_the_shapes_apart():
    overhead = [_front(s, elevation_deg=89.0) for s in SHAPES]
    _, top = world.render_specs(overhead, 32, return_alpha=True)
    centre = {s: top[i, 14:18, 14:18].mean() for i, s in enumerate(SHAPES)}
    assert centre["torus"] == 0.0, "the torus has a hole seen from above"
    for s in ("cube", "sphere", "cylinder", "cone"):
        assert centre[s] == 1.0

    side = [_front(s, yaw_deg=0.0, elevation_deg=0.0) for s in SHAPES]
    _, a = world.render_specs(side, 32, return_alpha=True)
    area = {s: a[i].sum() for i, s in enumerate(SHAPES)}
    # Pinhole projection (distance 2.4, fovy 45, 16 px half-image): the cube's front face
    # square and the sphere's disc, computed from their sizes.
    px_per_tan = 16.0 / np.tan(np.radians(22.5))
    cube_side = 2 * world.CUBE_HALF / (2.4 - world.CUBE_HALF) * px_per_tan
    sphere_r = np.tan(np.arcsin(world.SPHERE_RADIUS / 2.4)) * px_per_tan
    assert area["cube"] == pytest.approx(cube_side**2, rel=0.05)
    assert area["sphere"] == pytest.approx(np.pi * sphere_r**2, rel=0.05)
    cone = a[SHAPES.index("cone")]
    assert cone[:16].sum() < 0.5 * cone[16:].sum(), "the cone's tip points up (image row 0 is the top)"
    cube_rows = a[SHAPES.index("cube")].sum(1)
    assert cube_rows[cube_rows > 0].std() < 1.0, "a cube seen square-on has rows of equal width"
    for i in range(len(SHAPES)):
        for j in range(i + 1, len(SHAPES)):
            inter = np.minimum(a[i], a[j]).sum()
            union = np.maximum(a[i], a[j]).sum()
            assert inter / union < 0.9, f"{SHAPES[i]} and {SHAPES[j]} look alike"


def test_camera_follows_the_engine_convention():
    specs = [_front("sphere", azimuth_deg=0.0, elevation_deg=0.0, distance=2.4),
             _front("sphere", azimuth_deg=90.0, elevation_deg=0.0, distance=2.4),
             _front("sphere", azimuth_deg=0.0, elevation_deg=90.0, distance=2.0)]
    eye, dirs = world.camera_rays(specs, 2)
    np.testing.assert_allclose(eye[0].numpy(), [0, 0, 2.4], atol=1e-5)
    np.testing.assert_allclose(eye[1].numpy(), [2.4, 0, 0], atol=1e-5)
    np.testing.assert_allclose(eye[2].numpy(), [0, 2.0, 0], atol=1e-5)
    mean_dir = dirs[0].mean(0).numpy()
    assert mean_dir[2] < -0.9 and abs(mean_dir[0]) < 1e-5
    # Pixel (row 0, col 1) is top-right: +Y up and +X to the right for the front camera.
    top_right = dirs[0, 1].numpy()
    assert top_right[0] > 0 and top_right[1] > 0


def test_held_out_pairs_are_never_sampled_by_default():
    held = world.held_out_pairs()
    assert len(held) >= 4
    data = json.loads(world.HELD_OUT_FILE.read_text())
    assert [(p["shape"], p["color"]) for p in data["pairs"]] == held
    assert {s for s, _ in held} == set(SHAPES), "held-out pairs are spread over all shapes"
    assert len({c for _, c in held}) == len(held), "held-out pairs are spread over colours"
    for pair in DEMO_PAIRS:
        assert pair in world.train_pairs()
    assert len(world.train_pairs()) == len(SHAPES) * len(COLORS) - len(held)
    seen = {(s.shape, s.color) for s in world.sample_specs(3000, np.random.default_rng(0))}
    assert seen == set(world.train_pairs())
    only_held = world.sample_specs(50, np.random.default_rng(0), pairs=held)
    assert {(s.shape, s.color) for s in only_held} <= set(held)


def test_captions_name_the_view_of_the_camera():
    assert world.base_prompt("cube", "red") == "a red cube"
    assert world.caption(_front("cube", azimuth_deg=0.0, elevation_deg=10.0)) == "a red cube, front view"
    assert world.caption(_front("cube", azimuth_deg=180.0, elevation_deg=10.0)) == "a red cube, back view"
    assert world.caption(_front("cube", azimuth_deg=-90.0, elevation_deg=10.0)) == "a red cube, side view"
    assert world.caption(_front("cone", "green", elevation_deg=75.0)) == "a green cone, overhead view"
    assert world.caption(_front("cube", azimuth_deg=180.0), with_view=False) == "a red cube"
    cfg = PromptConfig()
    for spec in world.sample_specs(200, np.random.default_rng(3)):
        view = view_direction(spec.elevation_deg, spec.azimuth_deg - spec.yaw_deg, cfg)
        assert world.caption(spec) == view_prompt(f"a {spec.color} {spec.shape}", view, cfg)


SECTORS = PromptConfig(azimuth_views=world.AZIMUTH_VIEWS)


def test_a_caption_names_the_view_relative_to_the_object_as_the_engine_sees_it():
    """A cube turned by 45 degrees seen from azimuth 45 is the unturned cube seen from the front: the
    same picture and the same caption, which is what a run (objects never turned) asks the prior for."""
    turned = _front("cube", yaw_deg=45.0, azimuth_deg=45.0, light_azimuth_deg=45.0)
    straight = _front("cube", yaw_deg=0.0, azimuth_deg=0.0, light_azimuth_deg=0.0)
    np.testing.assert_allclose(world.render_specs([turned], 32), world.render_specs([straight], 32), atol=2e-3)
    assert world.caption(turned, prompt_cfg=SECTORS) == world.caption(straight, prompt_cfg=SECTORS) == \
        "a red cube, front view"
    edge = _front("cube", yaw_deg=45.0, azimuth_deg=0.0, light_azimuth_deg=0.0)
    assert world.caption(edge, prompt_cfg=SECTORS) == "a red cube, front-left view"
    above = _front("cube", yaw_deg=10.0, azimuth_deg=100.0, elevation_deg=70.0)
    assert world.caption(above, prompt_cfg=SECTORS) == "a red cube, right view from above"
    assert world.caption(above, prompt_cfg=SECTORS, relative=False) == "a red cube, right view from above"
    assert world.caption(edge, prompt_cfg=SECTORS, relative=False) == "a red cube, front view", \
        "relative=False: the camera's own azimuth (the shipped reward's captions)"


def test_a_mirrored_picture_is_the_view_from_the_mirrored_azimuth():
    """Training mirrors images at random, so a mirrored image must get the mirrored view word."""
    from psd_engine.prompts import mirror_view

    right = _front("cube", yaw_deg=0.0, azimuth_deg=30.0, light_azimuth_deg=30.0)
    left = _front("cube", yaw_deg=0.0, azimuth_deg=-30.0, light_azimuth_deg=-30.0)
    np.testing.assert_allclose(world.render_specs([right], 32)[:, :, ::-1], world.render_specs([left], 32), atol=2e-3)
    assert world.view_of(right, SECTORS) == "front-right"
    assert mirror_view(world.view_of(right, SECTORS), SECTORS) == world.view_of(left, SECTORS) == "front-left"


def test_parse_prompt_finds_shape_and_colour_words():
    assert world.parse_prompt("a red cube, front view") == ("cube", "red")
    assert world.parse_prompt("A Crimson Box") == ("cube", "red")
    assert world.parse_prompt("two blue doughnuts") == ("torus", "blue")
    assert world.parse_prompt("a violet traffic cone") == ("cone", "purple")
    assert world.parse_prompt("a photo of a dog") == (None, None)
    assert world.parse_prompt("a boxer") == (None, None), "words inside other words do not count"
    assert world.parse_prompt("can you make a golden sphere") == ("sphere", "yellow")
    assert world.parse_prompt("a ball, not a cube") == ("cube", None), "the world's own words come first"


def test_bad_specs_say_what_is_wrong():
    with pytest.raises(ValueError, match="unknown shape 'pyramid'; choose one of cube"):
        ShapeSpec("pyramid", "red")
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        ShapeSpec("cube", "pink")
    with pytest.raises(ValueError, match="at least one"):
        world.sample_specs(3, np.random.default_rng(0), pairs=[])


def test_paraphrases_keep_the_meaning():
    rng = np.random.default_rng(1)
    for spec in world.sample_specs(100, np.random.default_rng(2)):
        text = world.paraphrase(spec, rng)
        assert text.endswith(world.caption(spec)[len(world.base_prompt(spec.shape, spec.color)):])
        shape, color = world.parse_prompt(text)
        assert color == spec.color
        # "can" is a cylinder synonym too common in other senses for the parser to trust.
        assert shape == spec.shape or (shape is None and " can," in text)
