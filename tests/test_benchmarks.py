"""The benchmark scripts: compare_methods (grid parsing, hacking gap, CIs, small real runs on tiny-random),
offline_demo (reading back the views and the GLB a run exported), export_threshold, first_preview,
guidance_colour, shape_basin, implicit_classifier and image_sds."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from benchmarks import compare_methods as cm
from benchmarks import export_threshold
from benchmarks import first_preview, guidance_colour
from benchmarks import offline_demo
from psd_engine.config import resolve_config, save_config
from psd_engine.export import write_glb, write_views_grid
from psd_engine.scene import Field
from psd_engine.shapes import world
from psd_engine.shapes.judge import load_judge
from psd_engine.shapes.taste import taste_3d


def test_grid_parsing_and_points():
    grid = cm.parse_grid(["guidance.preference_scale=0,1", "guidance.neg_lr=0.02"])
    assert grid == [("guidance.preference_scale", ["0", "1"]), ("guidance.neg_lr", ["0.02"])]
    points = cm.grid_points(grid)
    assert points == [["guidance.preference_scale=0", "guidance.neg_lr=0.02"],
                      ["guidance.preference_scale=1", "guidance.neg_lr=0.02"]]
    assert cm.point_label(points[1]) == "preference_scale=1 neg_lr=0.02"
    with pytest.raises(SystemExit, match="expected KEY=v1,v2"):
        cm.parse_grid(["guidance.reward_grad_scale"])


def test_hacking_gap_is_reward_gain_minus_taste_gain_in_std_units():
    rows = [
        {"budget": "b", "method": "sds", "prompt": "p", "seed": 0, "reward": 0.0, "taste": 0.5},
        {"budget": "b", "method": "x", "prompt": "p", "seed": 0, "reward": 1.0, "taste": 0.5},
    ]
    cm.add_hacking_gap(rows)
    # pstdev of reward over the budget = 0.5; taste has no spread (std taken as 1).
    assert rows[0]["hacking_gap"] == 0.0
    assert rows[1]["hacking_gap"] == pytest.approx(2.0)


def test_mean_ci_matches_student_t():
    mean, half = cm.mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert math.isnan(cm.mean_ci([1.0])[1])


def test_compare_equal_steps_and_equal_time_on_tiny_random(tmp_path, one_thread, cache_dir):
    out = tmp_path / "res"
    assert cm.main(["--preset", "tiny-random", "--steps", "3", "--seeds", "1", "--prompts", "a red cube",
                    "--methods", "sds", "psd", "--out", str(out)]) == 0
    rows = json.loads((out / "compare_rows.json").read_text())
    by = {(r["budget"], r["method"]): r for r in rows}
    assert set(by) == {("equal-steps", "sds"), ("equal-steps", "psd"), ("equal-time", "sds"), ("equal-time", "psd")}
    # sds's equal-time budget is its own equal-steps run: reused, not recomputed.
    assert by[("equal-time", "sds")].get("reused") is True
    assert by[("equal-time", "sds")]["taste"] == by[("equal-steps", "sds")]["taste"]
    assert by[("equal-steps", "sds")]["hacking_gap"] == 0.0
    assert all(len(r["curve"]) == r["steps"] for r in rows)
    text = (out / "compare.md").read_text()
    assert "Reproduce: `python benchmarks/compare_methods.py --preset tiny-random" in text
    assert "| equal-time | psd | 1 |" in text
    assert (out / "compare_reward_curves.png").stat().st_size > 1000


@pytest.mark.slow
def test_sweep_of_reward_grad_scale_in_two_worker_processes(tmp_path):
    out = tmp_path / "res"
    assert cm.main(["--preset", "tiny-random", "--steps", "2", "--sweep", "--sweep-method", "reward-grad",
                    "--grid", "guidance.reward_grad_scale=1,100", "--sweep-prompts", "1", "--jobs", "2",
                    "--threads", "1", "--out", str(out)]) == 0
    rows = json.loads((out / "sweep_reward-grad_rows.json").read_text())
    assert [r["method"] for r in rows] == ["reward-grad reward_grad_scale=1", "reward-grad reward_grad_scale=100", "sds"]
    assert "2 job(s) x 1 thread(s)" in (out / "sweep_reward-grad.md").read_text()


def test_offline_demo_reads_back_each_exported_view(tmp_path):
    views = [np.full((8, 8, 3), 40 * i, dtype=np.uint8) for i in range(4)]
    import imageio.v3 as iio

    grid = iio.imread(write_views_grid(views, tmp_path / "views.png"))
    tiles = offline_demo.split_grid(grid, 4)
    assert [t.shape for t in tiles] == [(8, 8, 3)] * 4
    assert [int(t[0, 0, 0]) for t in tiles] == [0, 40, 80, 120]


def test_offline_demo_scores_exported_views_and_glb_with_the_judge_and_the_taste(tmp_path):
    specs = [world.ShapeSpec("cube", "red", yaw_deg=yaw) for yaw in (0.0, 30.0, 60.0, 90.0)]
    images = world.render_specs(specs, 64)
    write_views_grid([(im * 255).round().astype(np.uint8) for im in images], tmp_path / "views.png")
    save_config(resolve_config("shapes", prompt="a red cube"), tmp_path / "config.json")
    box = trimesh.creation.box(extents=(0.9, 0.9, 0.9))
    box.visual = trimesh.visual.ColorVisuals(box, vertex_colors=np.tile([230, 20, 20, 255], (len(box.vertices), 1)))
    write_glb(box, tmp_path / "model.glb")

    score = offline_demo.score_run("a red cube", tmp_path, load_judge())
    volume, mesh = score["volume"], score["mesh"]
    assert volume["judged"] == [("cube", "red")] * 4
    assert volume["right"] == 4
    assert volume["taste"] == pytest.approx(taste_3d(volume["views"]))
    assert 0.0 <= volume["sharpness"] <= 1.0 and volume["floaters"] == pytest.approx(1.0)
    # The GLB is rendered from the same cameras at the same size: a red box, crisp and clean.
    assert [v.shape for v in mesh["views"]] == [(64, 64, 3)] * 4
    assert mesh["right"] == 4
    assert mesh["sharpness"] == pytest.approx(1.0) and mesh["fog"] == pytest.approx(1.0)
    assert len(score["mesh_lit"]) == 4
    # From above (45 and 70 degrees) a box still reads as a red cube; its top face shows, so the
    # silhouette is taller than from the side.
    above = score["mesh_above"]
    assert [v.shape for v in above["views"]] == [(64, 64, 3)] * 4 and above["judged"] == [("cube", "red")] * 4
    rows_covered = [int((v < 0.99).any(-1).any(-1).sum()) for v in (mesh["views"][0], above["views"][2])]
    assert rows_covered[1] > rows_covered[0]
    # The lit views above (for the picture) show the same silhouette, shaded: darker than the flat colour.
    lit = score["mesh_above_lit"]
    assert len(lit) == 4 and np.array_equal((lit[2] < 0.99).any(-1), (above["views"][2] < 0.99).any(-1))
    assert lit[2].mean() < above["views"][2].mean()
    # Seen from straight above, the box's top is a square: its outline's 4-fold harmonic is ~6.9 %.
    assert score["top_squareness"] == pytest.approx(6.9, abs=0.8)
    blue = offline_demo.score_run("a blue cube", tmp_path, load_judge())
    assert blue["volume"]["right"] == 0 and blue["mesh"]["right"] == 0


def test_top_squareness_tells_a_box_from_a_cylinder(tmp_path):
    from benchmarks.outline import top_squareness

    for name, mesh in (("box", trimesh.creation.box(extents=(0.9, 0.9, 0.9))),
                       ("can", trimesh.creation.cylinder(radius=0.45, height=0.9, sections=64,  # axis Z -> Y (up)
                                                         transform=trimesh.transformations.rotation_matrix(
                                                             np.pi / 2, [1, 0, 0])))):
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.tile([230, 20, 20, 255], (len(mesh.vertices), 1)))
        write_glb(mesh, tmp_path / f"{name}.glb")
    box = top_squareness(tmp_path / "box.glb", 2.4, 45.0)
    can = top_squareness(tmp_path / "can.glb", 2.4, 45.0)
    assert box == pytest.approx(6.9, abs=0.8) and can < 0.5


class SoftRedBall(Field):
    """A red ball whose density falls linearly from 10 at its centre to 0 at radius 0.5."""

    def __init__(self):
        super().__init__(bound=1.0)

    def forward(self, points):
        sigma = (10.0 * (1.0 - points.norm(dim=-1) / 0.5)).clamp(min=0.0)
        return sigma, torch.tensor([0.9, 0.08, 0.08]).expand(points.shape[0], 3)


def test_export_threshold_meshes_one_field_at_each_threshold_and_judges_each_mesh(tmp_path):
    cfg = resolve_config("shapes", prompt="a red sphere")
    judge = load_judge()
    field = SoftRedBall()
    # Threshold 2 meshes a ball of radius 0.4, threshold 20 finds no surface; the judge sees a red sphere.
    assert export_threshold.threshold_cells(field, cfg, "a red sphere", [2.0, 20.0], judge, tmp_path) == [
        "4 / 4", "no surface"]
    radius = np.linalg.norm(trimesh.load(tmp_path / "model_2.glb", force="mesh").vertices, axis=1)
    assert radius.mean() == pytest.approx(0.4, abs=0.02)
    assert export_threshold.threshold_cells(field, cfg, "a blue sphere", [2.0], judge, tmp_path) == ["0 / 0"]


@pytest.mark.slow
def test_first_preview_times_the_app_handler_and_a_cold_cli_up_to_their_first_picture(capsys):
    assert first_preview.main(["--repeats", "2", "--cli-runs", "1"]) == 0
    app_line, cli_line = capsys.readouterr().out.strip().splitlines()

    def seconds(line: str, after: str) -> list[float]:
        return [float(w) for w in line.split(after)[1].split(" s")[0].split(", ")]

    assert seconds(app_line, "built in ")[0] > 0
    start, guided = seconds(app_line, "starting shape: "), seconds(app_line, "first guided preview: ")
    assert len(start) == len(guided) == 2 and all(0 < s < g for s, g in zip(start, guided))
    start, guided = seconds(cli_line, "the starting shape: "), seconds(cli_line, "of step 1: ")
    assert len(start) == len(guided) == 1 and 0 < start[0] < guided[0]


def test_guidance_colour_shows_cfg_pushing_a_true_orange_cube_towards_red(capsys):
    # The documented cause of "an orange cube" turning red-orange (docs/results/evidence.md): at mid and
    # high noise the guidance term raises red and lowers green, which moves orange's hue towards red.
    assert guidance_colour.main(["--shape", "cube", "--colour", "orange", "--t", "0.5", "0.8", "--samples", "8"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("prompt 'a orange cube, front view'; true colour (1.0, 0.5, 0.04)")
    rows = [line.strip("|").split("|") for line in out[3:-1]]
    assert [float(r[0]) for r in rows] == [0.5, 0.8]
    # The shipped reward prefers the true colour for this prompt: a reward could steer it back.
    reward = dict(pair.rsplit(" ", 1) for pair in out[-1].split(": ", 1)[1].split(", "))
    assert max(reward, key=lambda c: float(reward[c])) == "orange"
    for _, _, guide in rows:
        red, green, _ = (float(v) for v in guide.split())
        assert red > 0.0 and red - green > 0.01


def test_camera_sensitivity_reports_camera_rows_only_for_a_camera_conditioned_prior(tmp_path):
    from benchmarks import camera_sensitivity
    from psd_engine.models.tiny import build_tiny_pixel

    cam = camera_sensitivity.sensitivity(str(build_tiny_pixel(tmp_path / "cam", camera_harmonics=(1, 2))), [300])
    assert [r["t"] for r in cam] == [300.0]
    assert set(cam[0]) == {"t", "view word, camera +90", "colour word red -> blue", "camera azimuth +45",
                           "camera unknown (zeros)"}
    assert all(math.isfinite(v) and v > 0 for v in cam[0].values())
    cam_map = camera_sensitivity.sensitivity(str(build_tiny_pixel(tmp_path / "map", camera_map=True)), [300])
    assert set(cam_map[0]) == set(cam[0]) and all(math.isfinite(v) and v > 0 for v in cam_map[0].values())
    text_only = camera_sensitivity.sensitivity(str(build_tiny_pixel(tmp_path / "text")), [300, 700])
    assert [set(r) for r in text_only] == [{"t", "view word, camera +90", "colour word red -> blue"}] * 2
    manifest = tmp_path / "text" / "psd_prior.json"  # the same prior, captioned in azimuth sectors
    meta = json.loads(manifest.read_text())
    meta["views"] = {"azimuth_views": list(world.AZIMUTH_VIEWS), "view_format": ", {} view",
                     "overhead_view_format": ", {} view from above"}
    manifest.write_text(json.dumps(meta))
    sectors = camera_sensitivity.sensitivity(str(tmp_path / "text"), [300])
    assert set(sectors[0]) == {"t", "view word, camera +90", "view word, camera +45", "colour word red -> blue"}
    assert all(math.isfinite(v) and v > 0 for v in sectors[0].values())


def test_shape_basin_starts_the_field_as_the_world_shape(tmp_path):
    from benchmarks import shape_basin
    from psd_engine.engine import Run
    from psd_engine.export import extract_mesh

    cfg = resolve_config("shapes", prompt="a red cube", out_dir=str(tmp_path / "run"))
    run = Run(cfg)
    corners = {}
    for shape in ("cube", "cylinder"):
        shape_basin.start_as_shape(run.field, shape, 1.0, 6.0)
        mesh = extract_mesh(run.field, cfg.export)
        # Unit cube half-side 0.45, cylinder radius 0.45 and half-height 0.5 (world.py), meshed on a 48^3 grid.
        assert np.abs(mesh.vertices).max(axis=0) == pytest.approx([0.45, 0.45, 0.45] if shape == "cube"
                                                                  else [0.45, 0.5, 0.45], abs=0.04)
        corners[shape] = float(np.linalg.norm(mesh.vertices[:, [0, 2]], axis=1).max())
        assert float(torch.sigmoid(run.field.color_grid.detach()).std()) == 0.0  # grey everywhere
    assert corners["cube"] == pytest.approx(0.45 * math.sqrt(2), abs=0.04)  # square top: corners
    assert corners["cylinder"] == pytest.approx(0.45, abs=0.04)  # round top
    with pytest.raises(ValueError, match="unknown start shape 'box'; use blob or one of cube, sphere"):
        shape_basin.start_as_shape(run.field, "box", 1.0, 6.0)
    run.close()


def test_shape_basin_writes_a_table_row_per_prompt_and_a_column_per_start(tmp_path):
    from benchmarks import shape_basin

    assert shape_basin.main(["--prompts", "a red cube", "--starts", "blob", "cube", "--preset", "tiny-random",
                             "--size", "1.0", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "shape_basin.md").read_text()
    assert "| prompt | start: blob | start: cube |" in report
    row = next(line for line in report.splitlines() if line.startswith("| a red cube |"))
    cells = [c.strip() for c in row.strip("|").split("|")[1:]]
    assert len(cells) == 2 and all(c.count("/") == 1 and c.replace(" / ", "").isdigit() for c in cells)
    import imageio.v3 as iio

    assert iio.imread(tmp_path / "shape_basin.png").shape[:2] == (64, 64 * 4 * 2)  # views_resolution 64


class _ShapeWordPrior:
    """A stand-in prior for the implicit classifier's bookkeeping: it predicts zero noise for captions
    naming a cube and noise 1 everywhere for any other caption, whatever the image."""

    resolution = 16
    alphas_cumprod = torch.linspace(0.999, 0.01, 1000)

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        return torch.tensor([[[0.0 if " cube" in c else 1.0]] for c in captions])

    def predict_noise(self, x_t, t, emb):
        return emb.view(-1, 1, 1, 1).expand_as(x_t).clone()


def test_implicit_classifier_picks_the_caption_with_the_smaller_noise_error(monkeypatch):
    from benchmarks import implicit_classifier

    monkeypatch.setattr(implicit_classifier, "load_prior", lambda cfg, device: _ShapeWordPrior())
    rows = implicit_classifier.classify("unused", ["cube", "cylinder"], ["red", "blue"], [100, 500], n=32)
    assert [(r["view"], r["shape"], r["t"]) for r in rows] == [
        (view, shape, t) for view in implicit_classifier.BANDS for shape in ("cube", "cylinder") for t in (100, 500)]
    for r in rows:
        # Error with zero prediction: E[noise^2] = 1; with prediction 1: 1 + 1 = 2.
        if r["shape"] == "cube":  # its own caption predicts 0: always right, the wrong one errs by about +100 %
            assert r["accuracy"] == 1.0 and r["gap"] == pytest.approx(100.0, abs=15.0)
        else:  # the wrong (cube) caption always wins: gap about (1 - 2) / 2 = -50 %
            assert r["accuracy"] == 0.0 and r["gap"] == pytest.approx(-50.0, abs=8.0)


def test_implicit_classifier_captions_each_render_as_the_world_does():
    from benchmarks import implicit_classifier

    specs = implicit_classifier.renders("cylinder", ["red", "purple"], (60.0, 80.0), 6, seed=0)
    assert [s.color for s in specs].count("purple") > 0 and {s.shape for s in specs} == {"cylinder"}
    assert all(60.0 <= s.elevation_deg <= 80.0 for s in specs)
    assert all(world.caption(s).endswith(", overhead view") for s in specs)


def test_squareness_tells_a_square_at_any_turn_from_a_disc():
    from benchmarks.outline import squareness

    def antialiased(inside, size=32, supersample=4):
        y, x = (np.mgrid[0:size * supersample, 0:size * supersample] + 0.5) / supersample - size / 2
        return inside(x, y).reshape(size, supersample, size, supersample).mean(axis=(1, 3))

    disc = antialiased(lambda x, y: x ** 2 + y ** 2 < 10 ** 2)
    for turn in (0.0, 20.0, 45.0):
        c, s = math.cos(math.radians(turn)), math.sin(math.radians(turn))
        square = antialiased(lambda x, y: (np.abs(c * x + s * y) < 8) & (np.abs(c * y - s * x) < 8))
        # r(angle) = 8 / cos(...) over each quarter: its 4-fold harmonic is ~6.9 % of its mean.
        assert squareness(square) == pytest.approx(6.9, abs=0.5)
    assert squareness(disc) < 0.5
    specks = disc.copy()
    specks[0, 0] = specks[31, 31] = 1.0  # stray opaque pixels do not count
    assert squareness(specks) == pytest.approx(squareness(disc))
    assert math.isnan(squareness(np.zeros((8, 8))))


def test_image_sds_optimises_one_picture_with_the_presets_guidance(tmp_path):
    from benchmarks import image_sds
    from psd_engine.engine import Run

    colour, alpha = image_sds.start_image("cube", "a blue cube", 75.0, 16)
    assert colour.shape == (1, 3, 16, 16) and alpha.shape == (1, 1, 16, 16)
    rendered = torch.from_numpy(world.render_specs([world.ShapeSpec("cube", "blue", elevation_deg=75.0, yaw_deg=20.0,
                                                                   light_azimuth_deg=0.0, light_elevation_deg=60.0)],
                                                   16)).permute(0, 3, 1, 2)
    assert torch.allclose(alpha * colour + 1 - alpha, rendered, atol=1e-5)  # the layers composite to the render
    cfg = resolve_config("tiny-random", ["guidance.method=sds", "steps=4"], prompt="a blue cube",
                         out_dir=str(tmp_path / "run"))
    run = Run(cfg)
    pictures, final_alpha = image_sds.distil_image(run, (colour, alpha), 75.0, 0.05)
    run.close()
    assert len(pictures) == image_sds.SNAPSHOTS and final_alpha.shape == (16, 16)
    assert np.abs(pictures[0] - rendered[0].permute(1, 2, 0).numpy()).max() < 2e-3  # logit clamp only
    assert np.abs(pictures[-1] - pictures[0]).max() > 1e-3  # the guidance moved it
    assert all(p.min() >= 0.0 and p.max() <= 1.0 for p in pictures)


def test_image_sds_writes_a_row_per_prior_prompt_and_start(tmp_path):
    from benchmarks import image_sds

    assert image_sds.main(["--preset", "tiny-random", "--starts", "cube", "sphere", "--prompts", "a red cube",
                           "--set", "steps=4", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "image_sds.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| preset's prior | a red cube |")]
    assert [r.split("|")[3].strip() for r in rows] == ["cube", "sphere"]
    assert float(rows[0].split("|")[4]) > 5.0 > 1.0 > float(rows[1].split("|")[4])  # cube start, sphere start
    import imageio.v3 as iio

    resolution = resolve_config("tiny-random").render.resolution
    assert iio.imread(tmp_path / "image_sds.png").shape[:2] == (2 * (resolution + 2) * 4,
                                                                image_sds.SNAPSHOTS * (resolution + 2) * 4)


class _FrontWordPrior(_ShapeWordPrior):
    """A stand-in prior that predicts zero noise for captions with a face-on view word ("front view ...") and noise
    1 for any other caption; it records the captions it was given."""

    def __init__(self):
        self.captions = []

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        self.captions.append(list(captions))
        return torch.tensor([[[0.0 if ", front view" in c else 1.0]] for c in captions])


def test_turn_classifier_captions_each_cube_with_its_face_on_and_edge_on_words(monkeypatch, tmp_path):
    from benchmarks import turn_classifier

    specs, face_on = turn_classifier.turned_cubes((60.0, 80.0), 10, np.random.default_rng(0))
    relative = np.array([(s.azimuth_deg - s.yaw_deg) for s in specs])
    assert list(face_on) == [True, False] * 5
    assert np.all(np.abs(relative[face_on]) <= 10.0) and np.all(np.abs(relative[~face_on] - 45.0) <= 10.0)
    assert all(60.0 <= s.elevation_deg <= 80.0 and (s.shape, s.color) == ("cube", "red") for s in specs)

    prior = _FrontWordPrior()
    monkeypatch.setattr(turn_classifier, "load_prior", lambda cfg, device: prior)
    rows = turn_classifier.classify_turns(str(Path(__file__).resolve().parents[1] / "assets" / "shapes-prior"), [100, 500], n=8, repeats=2)
    assert [(r["view"], r["t"]) for r in rows] == [(v, t) for v in turn_classifier.BANDS for t in (100, 500)]
    # The face-on caption always wins here, so exactly the face-on half is right.
    assert all(r["accuracy"] == 0.5 for r in rows)
    assert prior.captions[0][0] == "a red cube, front view" and prior.captions[1][0] == "a red cube, front-right view"
    assert prior.captions[2][0] == "a red cube, front view from above"
    assert rows[0]["words"] == "'a red cube, front view' / 'a red cube, front-right view'"

    assert turn_classifier.main(["--timesteps", "100", "500", "--n", "4", "--repeats", "1", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "turn_classifier.md").read_text().splitlines()
    assert "| view | captions (face-on / edge-on) | t = 100 | t = 500 |" in table
    assert "| above (60-80) | 'a red cube, front view from above' / 'a red cube, front-right view from above' | 50 % | 50 % |" in table
