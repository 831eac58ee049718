"""The 3D scene: fields (built by kind from a registry), cameras, background, volume renderer, regularisers."""
from psd_engine.scene.background import Background
from psd_engine.scene.cameras import Cameras, get_rays, orbit_cameras, sample_cameras
from psd_engine.scene.field import Field, GridField
from psd_engine.scene.registry import build_field, field_kinds, register_field
from psd_engine.scene.regularisers import entropy_loss, opacity_loss, orient_loss, tv_loss
from psd_engine.scene.renderer import VolumeRenderer

__all__ = [
    "Background", "Cameras", "Field", "GridField", "VolumeRenderer", "build_field", "entropy_loss",
    "field_kinds", "get_rays", "opacity_loss", "orbit_cameras", "orient_loss", "register_field",
    "sample_cameras", "tv_loss",
]
