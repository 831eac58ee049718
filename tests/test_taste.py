"""The ground-truth taste: it ranks clean renders above each artefact, counts floaters, averages views."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from psd_engine.shapes import degrade, world
from psd_engine.shapes.taste import COMPONENTS, TasteConfig, count_floaters, taste_2d, taste_3d, taste_components


@pytest.fixture(scope="module")
def clean() -> tuple[np.ndarray, np.ndarray]:
    """Eight seeded shapes-world renders (48 px) with their alpha."""
    specs = world.sample_specs(8, np.random.default_rng(3), pairs=world.all_pairs())
    return world.render_specs(specs, 48, return_alpha=True)


def red_disc(side: int = 48, radius: float = 12.0) -> np.ndarray:
    """A white image with one opaque red disc in the middle."""
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    image = np.ones((side, side, 3), dtype=np.float32)
    image[np.hypot(yy - side / 2, xx - side / 2) < radius] = (0.9, 0.1, 0.1)
    return image


def test_clean_renders_score_high_and_components_lie_in_unit_range(clean):
    images, _ = clean
    parts = taste_components(images)
    assert set(parts) == set(COMPONENTS) | {"taste"}
    for name, values in parts.items():
        assert values.shape == (8,) and np.all(values >= 0.0) and np.all(values <= 1.0), name
    assert parts["taste"].min() > 0.85
    assert np.all(parts["floaters"] == 1.0) and np.all(parts["fog"] > 0.99)


@pytest.mark.parametrize(
    "kind, component",
    [("floaters", "floaters"), ("fog", "fog"), ("desaturate", "saturation"), ("washout", "saturation"),
     ("shift", "centring"), ("shrink", "size"), ("blur", "sharpness")],
)
def test_each_artefact_lowers_taste_through_its_component(clean, kind, component):
    images, alpha = clean
    rng = np.random.default_rng(0)
    degraded = degrade.apply(images, kind, 0.7, rng, alpha)
    before, after = taste_components(images), taste_components(degraded)
    assert np.all(after["taste"] < before["taste"]), kind
    assert np.all(after[component] < before[component] - 0.05), (kind, component)


def test_stronger_artefacts_taste_worse(clean):
    images, alpha = clean
    rng = np.random.default_rng(1)
    for kind in ("fog", "floaters", "desaturate", "shift"):
        mild = taste_2d(degrade.apply(images, kind, 0.0, rng, alpha))
        strong = taste_2d(degrade.apply(images, kind, 1.0, rng, alpha))
        assert strong.mean() < mild.mean() - 0.02, kind


def test_count_floaters_counts_separate_blobs_exactly():
    image = red_disc()
    assert count_floaters(image).tolist() == [0]
    with_blobs = image.copy()
    for y, x in ((3, 3), (3, 42), (42, 5)):
        with_blobs[y : y + 2, x : x + 2] = 0.1
    assert count_floaters(np.stack([image, with_blobs])).tolist() == [0, 3]
    parts = taste_components(with_blobs)
    assert parts["floaters"][0] < 0.5 and parts["taste"][0] < taste_2d(image)[0]


def test_count_floaters_counts_painted_floaters(clean):
    images, alpha = clean
    assert count_floaters(images).tolist() == [0] * 8
    for k in (1, 2, 4):
        painted = degrade.add_floaters(images, k, np.random.default_rng(k), alpha, radius=(0.03, 0.05))
        assert count_floaters(painted).tolist() == [k] * 8


def test_taste_3d_is_the_mean_over_views_and_accepts_torch(clean):
    images, alpha = clean
    fogged = degrade.add_fog(images[:2], 1.0, np.random.default_rng(0), alpha[:2])
    views = [images[0], images[1], fogged[0], fogged[1]]
    expected = float(np.mean([taste_2d(v)[0] for v in views]))
    assert taste_3d(views) == pytest.approx(expected)
    as_torch = torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2)
    assert taste_3d(as_torch) == pytest.approx(expected)
    assert np.allclose(taste_2d(as_torch), taste_2d(np.stack(views)))


def test_empty_frame_has_no_taste():
    blank = np.ones((32, 32, 3), dtype=np.float32)
    assert taste_2d(blank).tolist() == [0.0]
    assert count_floaters(blank).tolist() == [0]


def test_weights_come_from_the_config():
    image = red_disc()
    image[2:4, 2:4] = 0.0  # one floater
    only_floaters = TasteConfig(weights={"floaters": 1.0})
    parts = taste_components(image, only_floaters)
    assert taste_2d(image, only_floaters)[0] == pytest.approx(parts["floaters"][0])
    with pytest.raises(ValueError, match="unknown taste weight"):
        taste_2d(image, TasteConfig(weights={"floater": 1.0}))


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="divide uint8"):
        taste_2d(np.full((1, 8, 8, 3), 255.0))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        taste_2d(np.ones((2, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        taste_2d(torch.ones(2, 8, 8, 3))
    with pytest.raises(ValueError, match="empty"):
        taste_3d([])
