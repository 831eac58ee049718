"""Exports of a finished scene: views grid PNG, turntable video, and a vertex-coloured GLB mesh."""
from __future__ import annotations

from pathlib import Path

from psd_engine.config import RunConfig
from psd_engine.export.mesh import ExportError, extract_mesh, read_glb, write_glb
from psd_engine.export.video import render_orbit, render_turntable, write_turntable
from psd_engine.export.views import to_uint8, write_views_grid
from psd_engine.scene.background import Background
from psd_engine.scene.field import Field
from psd_engine.scene.renderer import VolumeRenderer

__all__ = [
    "ExportError", "export_all", "extract_mesh", "read_glb", "render_orbit", "render_turntable", "to_uint8",
    "write_glb", "write_turntable", "write_views_grid",
]


def export_all(field: Field, renderer: VolumeRenderer, background: Background | None, cfg: RunConfig,
               out_dir: str | Path) -> dict[str, str]:
    """Write views.png, turntable.mp4 (or .gif) and model.glb into out_dir; return {"glb", "video", "views"} paths.

    The images are written first, so when the mesh is empty the ExportError raised at the end carries
    the files already made in its `written` attribute and the caller can still show them.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    views = render_orbit(renderer, field, background, cfg.camera.preview_views, cfg.export.views_resolution,
                         cfg.camera, cfg.export.render_batch)
    written["views"] = str(write_views_grid(views, out / "views.png"))
    frames = render_turntable(renderer, field, background, cfg.export, cfg.camera)
    written["video"] = str(write_turntable(frames, out / "turntable", cfg.export.video_fps, cfg.export.video_format))
    try:
        mesh = extract_mesh(field, cfg.export)
    except ExportError as err:
        raise ExportError(str(err), written=written) from err
    written["glb"] = str(write_glb(mesh, out / "model.glb", cfg.export))
    return {key: written[key] for key in ("glb", "video", "views")}
