"""Field -> coloured triangle mesh (marching cubes on the density) -> GLB file with vertex colours."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from psd_engine.config import ExportConfig
from psd_engine.scene.field import Field
from psd_engine.scene.renderer import composite_weights

if TYPE_CHECKING:
    import trimesh

# trimesh and mcubes are imported by the functions that use them, not here: together they take
# ~0.5 s to import, and a run needs them only at export, after its first preview.


class ExportError(RuntimeError):
    """An export could not be made; the message says why and what to change.

    `written` maps output names ("views", "video", ...) to the files that were made before the failure.
    """

    def __init__(self, message: str, written: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.written: dict[str, str] = dict(written or {})


def _field_device(field: Field) -> torch.device:
    param = next(field.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def sample_density_lattice(field: Field, resolution: int, chunk: int) -> np.ndarray:
    """Density on a resolution^3 lattice spanning the field's box, as a float32 array indexed [x, y, z]."""
    device = _field_device(field)
    lin = torch.linspace(-field.bound, field.bound, resolution, device=device)
    xs, ys, zs = torch.meshgrid(lin, lin, lin, indexing="ij")
    points = torch.stack([xs, ys, zs], dim=-1).reshape(-1, 3)
    values = [field.density(points[i:i + chunk]).float() for i in range(0, points.shape[0], chunk)]
    return torch.cat(values).view(resolution, resolution, resolution).cpu().numpy()


@torch.no_grad()
def vertex_colours(field: Field, vertices: np.ndarray, normals: np.ndarray, cfg: ExportConfig) -> np.ndarray:
    """Colour a head-on volume-render ray sees at each vertex, as uint8 RGBA (V, 4), alpha opaque.

    The marching-cubes surface lies where the density crosses export.density_threshold, in the
    soft outer shell of the object, where the field's colour is not what renders show: a volume
    render's ray goes on compositing well inside that surface. So each vertex gets the colour
    of a ray along its inward normal, from `colour_ray_outside` outside the surface to
    `colour_ray_inside` inside it (world units, `colour_ray_samples` samples), composited as the
    renderer does and normalised by its opacity. colour_ray_samples = 1 samples the vertex itself.
    """
    device = _field_device(field)
    points = torch.as_tensor(np.array(vertices, dtype=np.float32), device=device)  # copies: trimesh's are read-only
    inward = -torch.as_tensor(np.array(normals, dtype=np.float32), device=device)
    n = int(cfg.colour_ray_samples)
    if n == 1:
        depths = torch.zeros(1, device=device)
    else:
        depths = torch.linspace(-cfg.colour_ray_outside, cfg.colour_ray_inside, n, device=device)
    delta = torch.full((1, 1), float(depths[-1] - depths[0]) / max(n - 1, 1), device=device)
    per_chunk = max(cfg.mesh_chunk // n, 1)
    rgb = []
    for i in range(0, points.shape[0], per_chunk):
        ray = points[i:i + per_chunk, None, :] + inward[i:i + per_chunk, None, :] * depths[None, :, None]
        sigma, colour = field(ray.reshape(-1, 3))
        sigma, colour = sigma.float().view(-1, n), colour.float().view(-1, n, 3)
        weights = composite_weights(sigma, delta) if n > 1 else torch.ones_like(sigma)
        rgb.append((weights[..., None] * colour).sum(1) / weights.sum(1, keepdim=True).clamp_min(1e-8))
    rgb = torch.cat(rgb) if rgb else torch.zeros(0, 3, device=device)
    rgba = torch.cat([rgb.clamp(0, 1), torch.ones_like(rgb[:, :1])], dim=1)
    return (rgba * 255).round().to(torch.uint8).cpu().numpy()


def extract_mesh(field: Field, cfg: ExportConfig) -> trimesh.Trimesh:
    """Marching cubes of the field's density at cfg.density_threshold, in world units, with vertex colours."""
    import mcubes
    import trimesh

    if cfg.mesh_resolution < 4:
        raise ExportError(f"export.mesh_resolution must be >= 4; got {cfg.mesh_resolution}")
    if cfg.density_threshold <= 0:
        raise ExportError(f"export.density_threshold must be > 0 (densities are >= 0); got {cfg.density_threshold}")
    if cfg.colour_ray_samples < 1:
        raise ExportError(f"export.colour_ray_samples must be >= 1 (1 = the colour at the vertex); "
                          f"got {cfg.colour_ray_samples}")
    if min(cfg.colour_ray_outside, cfg.colour_ray_inside) < 0:
        raise ExportError("export.colour_ray_outside and export.colour_ray_inside must be >= 0 (world units); "
                          f"got {cfg.colour_ray_outside} and {cfg.colour_ray_inside}")
    if cfg.colour_ray_samples > 1 and cfg.colour_ray_outside + cfg.colour_ray_inside == 0:
        raise ExportError("export.colour_ray_samples > 1 needs a ray: set export.colour_ray_inside > 0 "
                          "(or colour_ray_samples=1 for the colour at the vertex)")
    was_training = field.training
    field.eval()
    try:
        density = sample_density_lattice(field, cfg.mesh_resolution, cfg.mesh_chunk)
        # A border of empty cells closes surfaces that reach the box, so the mesh stays watertight.
        padded = np.pad(density, 1, mode="constant", constant_values=0.0)
        vertices, faces = mcubes.marching_cubes(padded.astype(np.float64), float(cfg.density_threshold))
        if len(faces) == 0:
            raise ExportError(
                f"no surface at density threshold {cfg.density_threshold:g}: the object is empty "
                f"(largest density {float(density.max()):.3g}); lower export.density_threshold or run more steps"
            )
        spacing = 2 * field.bound / (cfg.mesh_resolution - 1)
        vertices = (vertices - 1.0) * spacing - field.bound
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=True)
        # glTF viewers cull and light by winding, so normals must point out of the object. PyMCubes 0.1.6
        # already winds them outwards for "inside = higher value"; the volume sign guards that assumption.
        if mesh.volume < 0:
            mesh.invert()
        if cfg.keep_largest_component:
            parts = mesh.split(only_watertight=False)
            if len(parts) > 1:
                mesh = max(parts, key=lambda part: len(part.faces))
        colours = vertex_colours(field, mesh.vertices, mesh.vertex_normals, cfg)
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colours)
        return mesh
    finally:
        field.train(was_training)


def _add_pbr_material(cfg: ExportConfig):
    """A trimesh tree post-processor giving every primitive one white, non-metallic PBR material.

    Without a material, glTF's default is fully metallic and renders near-black in viewers; vertex
    colours (COLOR_0) multiply baseColorFactor, so a white factor shows them unchanged.
    """

    def postprocess(tree: dict[str, Any]) -> None:
        tree["materials"] = [{
            "name": "vertex_colour",
            "pbrMetallicRoughness": {
                "baseColorFactor": [1.0, 1.0, 1.0, 1.0],
                "metallicFactor": float(cfg.material_metallic),
                "roughnessFactor": float(cfg.material_roughness),
            },
            "doubleSided": True,
        }]
        for mesh in tree.get("meshes", []):
            for primitive in mesh.get("primitives", []):
                primitive["material"] = 0

    return postprocess


def write_glb(mesh: trimesh.Trimesh, path: str | Path, cfg: ExportConfig | None = None) -> Path:
    """Write `mesh` as a binary glTF with vertex colours (COLOR_0), normals and a PBR material."""
    import trimesh

    cfg = cfg or ExportConfig()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = trimesh.exchange.gltf.export_glb(
        trimesh.Scene(mesh), include_normals=True, tree_postprocessor=_add_pbr_material(cfg)
    )
    path.write_bytes(data)
    return path


def read_glb(path: str | Path) -> tuple[trimesh.Trimesh, np.ndarray]:
    """The mesh in a GLB file (primitives merged, node transforms applied) and its RGBA colours (V, 4) uint8."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no GLB file at {path}; pass the model.glb a run wrote")
    scene = trimesh.load(path, force="scene")
    parts, colours = [], []
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        geom = scene.geometry[name]
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        # trimesh keeps COLOR_0 as `vertex_colors` when a primitive has no material, and as a vertex
        # attribute of the material's TextureVisuals when it has one (as ours does). Scene.dump() drops
        # the latter, so the colours are read here and the transform applied by hand.
        if isinstance(geom.visual, trimesh.visual.ColorVisuals):
            rgba = np.asarray(geom.visual.vertex_colors)
        else:
            rgba = np.asarray(geom.visual.vertex_attributes.get("color", np.zeros((0, 4))))
        if len(rgba) != len(geom.vertices):
            rgba = np.full((len(geom.vertices), 4), 255, dtype=np.uint8)  # no colours in the file: white
        vertices = trimesh.transformations.transform_points(geom.vertices, transform)
        parts.append(trimesh.Trimesh(vertices=vertices, faces=geom.faces, process=False))
        colours.append(rgba.astype(np.uint8))
    if not parts:
        raise ValueError(f"{path} holds no triangles")
    mesh = parts[0] if len(parts) == 1 else trimesh.util.concatenate(parts)
    return mesh, np.concatenate(colours)
