"""The shapes world: the synthetic captioned images that the offline prior is trained on."""
from .world import (
    COLORS,
    SHAPES,
    ShapeSpec,
    WorldConfig,
    base_prompt,
    caption,
    held_out_pairs,
    parse_prompt,
    render_specs,
    sample_specs,
    train_pairs,
)

__all__ = [
    "COLORS", "SHAPES", "ShapeSpec", "WorldConfig", "base_prompt", "caption", "held_out_pairs",
    "parse_prompt", "render_specs", "sample_specs", "train_pairs",
]
