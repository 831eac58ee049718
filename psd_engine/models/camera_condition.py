"""Camera features for priors conditioned on the view (the shapes prior, as multi-view priors are).

A text-only prior is told the view by a word ("front", "side", "overhead"), but not how the
object is turned: the shapes world spins every object about the vertical axis, so from a
given camera a cube's square top can sit at any angle in the picture (a suspected cause of
the distilled cube's round top). A camera-conditioned prior also gets the camera's
elevation and its azimuth relative to the object's yaw, meant to make every view of a run
agree on one pose; the priors trained with it so far did not square the cube
(training/README.md). The features are

    [sin el, cos el, sin(k az), cos(k az) for k in harmonics]

with az the azimuth relative to the object's front (camera azimuth minus object yaw; the
engine's object has yaw 0). Harmonics above 1 let a small network see 90-degree symmetry
(a cube) directly. All zeros means "camera unknown" (the training drops it at a rate, as it
drops the caption for classifier-free guidance). The UNet reads them through diffusers'
`class_embed_type="projection"` input (`class_labels`).

A camera *map* is the spatial form of the same information: per pixel, the point of its ray
closest to the object's centre, in the object's frame (3 channels, about -1..1), fed to the
UNet as extra input channels beside the noisy image. A cube's faces lie along the map's
constant-x and constant-z lines from every camera, so a convolution can read the pose
locally instead of through one global vector (ray maps are how multi-view priors such as
CAT3D and SV3D take their cameras). The map priors trained so far read it no more than the
features, and did not square the cube either.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch

CAMERA_MAP_CHANNELS = 3


def camera_feature_dim(harmonics: Sequence[int]) -> int:
    """Length of the feature vector for these azimuth harmonics."""
    return 2 + 2 * len(harmonics)


def camera_features(
    elevation_deg: torch.Tensor, azimuth_deg: torch.Tensor, harmonics: Sequence[int]
) -> torch.Tensor:
    """(B, 2 + 2 len(harmonics)) float32 features of cameras at these elevations and relative azimuths."""
    el = torch.as_tensor(elevation_deg, dtype=torch.float32).reshape(-1) * (math.pi / 180.0)
    az = torch.as_tensor(azimuth_deg, dtype=torch.float32).reshape(-1) * (math.pi / 180.0)
    if el.shape != az.shape:
        raise ValueError(f"camera_features: {el.numel()} elevations but {az.numel()} azimuths")
    parts = [torch.sin(el), torch.cos(el)]
    for k in harmonics:
        parts += [torch.sin(k * az), torch.cos(k * az)]
    return torch.stack(parts, dim=1)


def camera_unet_config(harmonics: Sequence[int]) -> dict[str, Any]:
    """UNet2DConditionModel arguments that give it the camera input ({} for a text-only prior)."""
    if not harmonics:
        return {}
    return {"class_embed_type": "projection", "projection_class_embeddings_input_dim": camera_feature_dim(harmonics)}


def camera_map(
    elevation_deg: torch.Tensor,
    azimuth_deg: torch.Tensor,
    distance: torch.Tensor,
    fovy_deg: torch.Tensor,
    resolution: int,
) -> torch.Tensor:
    """(B, 3, R, R) per pixel, the ray's point closest to the origin (object frame, yaw 0)."""
    from psd_engine.scene.cameras import get_rays, make_cameras  # models need scene only here

    def flat(x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32).reshape(-1).cpu()

    el, az, dist, fovy = flat(elevation_deg), flat(azimuth_deg), flat(distance), flat(fovy_deg)
    if not el.shape == az.shape == dist.shape == fovy.shape:
        raise ValueError("camera_map: elevation, azimuth, distance and fovy need one value per camera each")
    origins, dirs = get_rays(make_cameras(el, az, dist, fovy), int(resolution))
    along = (origins * dirs).sum(-1, keepdim=True)
    closest = origins - along * dirs
    return closest.permute(0, 3, 1, 2).contiguous()


def camera_input(
    elevation_deg: torch.Tensor,
    azimuth_deg: torch.Tensor,
    distance: torch.Tensor,
    fovy_deg: torch.Tensor,
    harmonics: Sequence[int],
    use_map: bool,
    resolution: int,
) -> torch.Tensor | None:
    """What a prior with these camera inputs takes for these cameras: its map, its features, or None (text only)."""
    if use_map:
        return camera_map(elevation_deg, azimuth_deg, distance, fovy_deg, resolution)
    if harmonics:
        return camera_features(elevation_deg, azimuth_deg, harmonics)
    return None
