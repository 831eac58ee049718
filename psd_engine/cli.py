"""Command line: `python -m psd_engine generate ...` and `python -m psd_engine presets`."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from .config import (
    METHODS, ConfigError, list_presets, load_config, parse_overrides, resolve_config, update_config, validate_config,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    parser = argparse.ArgumentParser(prog="python -m psd_engine", description="Preference Score Distillation text-to-3D")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="turn a prompt into a 3D asset (GLB, turntable, views, metrics)")
    gen.add_argument("--prompt", default=None, help="what to make, e.g. \"a red cube\" (required unless --config gives it)")
    gen.add_argument("--config", default=None, help="a config.json written by an earlier run: reproduce it (other options override it)")
    gen.add_argument("--negative-prompt", default=None)
    gen.add_argument("--preset", default=None, help="preset name (default: the offline 'shapes' model unless a GPU with SD weights is present)")
    gen.add_argument("--method", choices=METHODS, default=None)
    gen.add_argument("--steps", type=int, default=None)
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--preview-every", type=int, default=None,
                     help="steps between previews; each one overwrites <out>/preview.png (the current views)")
    gen.add_argument("--out", default=None, help="output folder (default: outputs/<prompt>-<method>-<seed>)")
    gen.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1, mps")
    gen.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="dotted override, e.g. --set guidance.guidance_scale=50 (repeatable)")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_parser("presets", help="list presets and whether each can run offline here")
    return parser


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:40] or "run"


def _write_preview(images: list, path: Path) -> None:
    """Replace path with a grid of the current views in one step, so a viewer never reads half a file."""
    from .export.views import write_views_grid

    partial = path.with_name(path.stem + ".partial.png")
    write_views_grid(images, partial)
    os.replace(partial, path)


def cmd_generate(args: argparse.Namespace) -> int:
    """Run one generation with a tqdm progress bar; exit code 0 on success, 2 on error."""
    from tqdm import tqdm

    from .engine import default_preset, generate
    from .events import ErrorEvent, FinalEvent, ProgressEvent, WarningEvent

    overrides = list(args.overrides)
    if args.method:
        overrides.append(f"guidance.method={args.method}")
    top = dict(prompt=args.prompt, negative_prompt=args.negative_prompt, steps=args.steps, seed=args.seed,
               preview_every=args.preview_every, device=args.device)
    try:
        if args.config:
            cfg = load_config(args.config)
            update_config(cfg, parse_overrides(overrides))
            update_config(cfg, {k: v for k, v in top.items() if v is not None})
            validate_config(cfg)
        else:
            cfg = resolve_config(args.preset or default_preset(), overrides, **top)
    except (ConfigError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not cfg.prompt.strip():
        print("error: --prompt is empty; describe the object, e.g. --prompt \"a red cube\"", file=sys.stderr)
        return 2
    repro = "-repro" if args.config else ""  # never overwrite the run being reproduced
    cfg.out_dir = args.out or str(Path("outputs") / f"{_slug(cfg.prompt)}-{cfg.guidance.method}-{cfg.seed}{repro}")
    if args.quiet:  # the hub's bars and transformers' ("Loading weights"), which asks the hub when it imports
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    bar = tqdm(total=cfg.steps, disable=args.quiet, unit="step", dynamic_ncols=True)
    preview = Path(cfg.out_dir) / "preview.png"
    if not args.quiet:
        bar.write(f"preview: {preview} (rewritten every {cfg.preview_every} steps)")
    label_shown = False
    code = 0
    for event in generate(cfg):
        if isinstance(event, ProgressEvent):
            if event.label and not label_shown:
                bar.write(f"NOTE: {event.label}")
                label_shown = True
            m = event.metrics
            if m:  # none at step 0, the starting shape
                post = {"loss": f"{m.get('loss', float('nan')):.4g}", "reward": f"{m.get('reward', float('nan')):.4g}"}
                if "reward_win" in m:
                    post["win-lose"] = f"{m['reward_win'] - m['reward_lose']:.3g}"
                bar.set_postfix(post)
                bar.update(event.step - bar.n)
            if event.images:
                _write_preview(event.images, preview)
        elif isinstance(event, WarningEvent):
            bar.write(f"warning: {event.message}")
        elif isinstance(event, FinalEvent):
            bar.update(cfg.steps - bar.n)
            bar.close()
            print(f"done in {event.summary.get('seconds')} s. Wrote to {event.out_dir}:")
            for name in ("glb", "video", "views", "metrics", "config"):
                print(f"  {getattr(event, name)}")
            if event.label:
                print(f"NOTE: {event.label}")
        elif isinstance(event, ErrorEvent):
            bar.close()
            print(f"error: {event.message}", file=sys.stderr)
            if event.outputs:
                print("kept: " + ", ".join(event.outputs.values()), file=sys.stderr)
            code = 2
    return code


def cmd_presets() -> int:
    """Print each preset, its description, and whether it runs here."""
    from .engine import describe_preset

    for name in list_presets():
        info = describe_preset(name)
        status = "available here" if info["available"] else "NOT available here"
        print(f"{name}: {status}{' (offline)' if info['offline'] else ''}")
        print(f"    {info['description']}")
        if not info["available"]:
            print(f"    missing: {info['missing'].splitlines()[0]}")
    return 0


def exit_now(code: int) -> NoReturn:
    """End the process with `code` right away, skipping the interpreter's teardown.

    Called by `python -m psd_engine` once main() has returned, when every output file is written
    and closed. Tearing down the modules diffusers, transformers and open_clip import (thousands)
    takes 1.1-1.5 s on a 2-core CPU and does nothing for the user, so the prompt comes back without it.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m psd_engine`."""
    args = build_parser().parse_args(argv)
    if args.command == "generate":
        return cmd_generate(args)
    return cmd_presets()
