"""Turntable video: render an orbit of the object and write it as MP4 (H.264), or GIF when MP4 cannot be written."""
from __future__ import annotations

import logging
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch

from psd_engine.config import CameraConfig, ExportConfig
from psd_engine.scene.background import Background
from psd_engine.scene.cameras import orbit_cameras
from psd_engine.scene.field import Field
from psd_engine.scene.renderer import VolumeRenderer
from psd_engine.export.views import to_uint8

log = logging.getLogger(__name__)
VIDEO_FORMATS = ("mp4", "gif")


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad a frame by edge replication to even height and width (yuv420p needs both even)."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frame


def _write_mp4(frames: list[np.ndarray], path: Path, fps: int) -> None:
    # macro_block_size=2: only even sides are required (ensured above), so imageio does not rescale to 16.
    with imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                            pixelformat="yuv420p", macro_block_size=2, ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(_even(frame))


def _write_gif(frames: list[np.ndarray], path: Path, fps: int) -> None:
    imageio.mimsave(path, frames, format="GIF", duration=1000.0 / fps, loop=0)


def write_turntable(frames: list[np.ndarray], path_without_suffix: str | Path, fps: int, fmt: str = "mp4") -> Path:
    """Write uint8 HxWx3 frames as <path>.mp4 (libx264, yuv420p), or <path>.gif if MP4 fails or fmt="gif"."""
    if fmt not in VIDEO_FORMATS:
        raise ValueError(f"video format must be one of {', '.join(VIDEO_FORMATS)}; got '{fmt}'")
    if not frames:
        raise ValueError("write_turntable needs at least one frame; got none (export.video_frames must be >= 1)")
    if fps < 1:
        raise ValueError(f"fps must be >= 1; got {fps} (export.video_fps)")
    frames = [np.ascontiguousarray(f, dtype=np.uint8) for f in frames]
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mp4":
        path = base.with_name(base.name + ".mp4")
        try:
            _write_mp4(frames, path, fps)
            return path
        # ImportError: imageio-ffmpeg is not installed; RuntimeError: it found no ffmpeg executable;
        # OSError (incl. BrokenPipeError): ffmpeg exited, e.g. a build without libx264. GIF needs none of it.
        except (ImportError, RuntimeError, OSError) as err:
            log.warning("MP4 export failed (%s); writing a GIF instead", err)
            path.unlink(missing_ok=True)
    path = base.with_name(base.name + ".gif")
    _write_gif(frames, path, fps)
    return path


@torch.no_grad()
def render_orbit(renderer: VolumeRenderer, field: Field, background: Background | None, n: int, resolution: int,
                 camera_cfg: CameraConfig, batch: int) -> list[np.ndarray]:
    """n albedo views evenly spaced in azimuth at the preview elevation/distance/fovy, as uint8 frames."""
    if batch < 1:
        raise ValueError(f"render batch must be >= 1; got {batch} (export.render_batch)")
    param = next(field.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    cameras = orbit_cameras(n, camera_cfg.preview_elevation, camera_cfg.preview_distance, camera_cfg.preview_fovy,
                            device=device)
    background = background.display() if background is not None else None
    frames: list[np.ndarray] = []
    for start in range(0, n, batch):
        out = renderer.render(field, cameras[start:start + batch], resolution, background=background, shading="albedo")
        frames.extend(to_uint8(out["rgb"]))
    return frames


def render_turntable(renderer: VolumeRenderer, field: Field, background: Background | None, cfg: ExportConfig,
                     camera_cfg: CameraConfig) -> list[np.ndarray]:
    """cfg.video_frames orbit frames at cfg.video_resolution (uint8 HxWx3)."""
    if cfg.video_frames < 1:
        raise ValueError(f"export.video_frames must be >= 1; got {cfg.video_frames}")
    return render_orbit(renderer, field, background, cfg.video_frames, cfg.video_resolution, camera_cfg,
                        cfg.render_batch)
