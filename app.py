"""psd-3d web app: a thin Gradio Blocks UI over psd_engine.engine.generate().

Run `python app.py` and open http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT and
the PSD3D_* variables of psd_engine.app_support.AppSettings are read from the environment).
All logic that is not wiring lives in psd_engine/app_support.py.
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import pandas as pd

from psd_engine import app_support as sup
from psd_engine.config import METHODS, config_to_dict, preset_info, resolve_config
from psd_engine.engine import default_preset

EXAMPLE_PROMPTS = ["a red cube", "a blue sphere", "a green cone", "a yellow torus", "a purple cylinder"]
METHOD_LABELS = {
    "psd": "PSD (adaptive negative)",
    "psd-fixed-neg": "PSD, fixed negative",
    "sds": "SDS (baseline)",
    "reward-grad": "Reward gradient (baseline)",
}
REWARD_COLORS = {"render": "#3b6fd4", "winner": "#2e9e44", "loser": "#d9534f", "mean": "#999999"}
DEVICE_QUEUE = "device"  # every generation event shares one worker: one run at a time per device
QUEUED = "Waiting for the device (other runs first)…"
CSS = """
.psd-label {background:#fff4d6; border:2px solid #e0a100; color:#6b4700; padding:8px 12px;
            border-radius:8px; font-weight:600; font-size:1.05em}
.psd-bar {height:12px; background:var(--neutral-200); border-radius:6px; overflow:hidden}
.psd-bar > div {height:100%; background:var(--color-accent); transition:width .3s}
.psd-bar.failed > div {background:#d9534f}
"""


# ----------------------------------------------------------------------------- small view helpers

def progress_html(fraction: float, state: str = "running") -> str:
    """A progress bar filled to `fraction`."""
    return (f'<div class="psd-bar {html.escape(state)}" role="progressbar" aria-valuenow="{fraction * 100:.0f}" '
            f'aria-valuemin="0" aria-valuemax="100"><div style="width:{fraction * 100:.1f}%"></div></div>')


def label_html(label: str) -> str:
    """A prominent banner for labelled (e.g. random-weight) runs, or nothing."""
    return f'<div class="psd-label">⚠ {html.escape(label)}</div>' if label else ""


class LivePlots:
    """Values for streaming gr.LinePlots: the one place that works around Gradio 6.31 LinePlot bugs.

    The plot fixes its set of series (its colour domain) when it is first drawn: after an empty
    DataFrame it never draws lines, and series that appear later are never drawn. A None value
    clears it and the next DataFrame draws it from scratch. So an empty curve is sent as None,
    and when the set of series changes (e.g. method B's curve joins method A's), None goes first.
    """

    def __init__(self, count: int) -> None:
        self.series: list[frozenset] = [frozenset()] * count

    def values(self, *frames: pd.DataFrame) -> list[tuple]:
        """One tuple of plot values to send, or two when the plots must be cleared first."""
        out = tuple(frame if len(frame) else None for frame in frames)
        now = [frozenset(frame["series"]) for frame in frames]
        reset = any(old and new != old for old, new in zip(self.series, now))
        self.series = now
        return [(None,) * len(frames), out] if reset else [out]


def reward_plot(title: str, **kw: Any) -> gr.LinePlot:
    """An empty reward-vs-step line plot (see LivePlots for why it starts as None)."""
    return gr.LinePlot(
        None, x="step", y="value", color="series",
        title=title, x_title="step", y_title=kw.pop("y_title", "reward"), height=260, **kw,
    )


def preset_markdown(preset: str) -> str:
    """The preset's description and whether its weights are here."""
    info = preset_info(preset)
    problem = sup.preset_problem(preset, SETTINGS.preset_recheck_seconds)
    where = "runs offline on a CPU" if info["offline"] else "needs a GPU and hub weights"
    text = f"**{preset}** ({where}): {info['description']}"
    if problem:
        text += f"\n\n❌ **Not available here:** {problem}"
    return text


def session_key(request: gr.Request | None, slot: str) -> str:
    """Registry key of this browser session's (or API client's) run in `slot`."""
    session = getattr(request, "session_hash", None) or "local"
    return f"{session}:{slot}"


def result_files(outputs: dict[str, str]) -> list[str]:
    """Downloadable files of a run, GLB first, each once."""
    order = ["glb", "video", "views", "config", "metrics"]
    names = sorted(outputs, key=lambda k: (order.index(k) if k in order else len(order), k))
    paths = [outputs[k] for k in names if Path(outputs[k]).is_file()]
    return list(dict.fromkeys(paths))


# ----------------------------------------------------------------------------- starting and stopping runs

def prepare_run(request: gr.Request | None, slot: str, **params: Any) -> tuple[Any, sup.ActiveRun]:
    """Check the request, clean old outputs, make the run's folder and register its stop flag."""
    try:
        cfg = sup.build_run_config(SETTINGS, **params)
    except sup.InputError as err:
        raise gr.Error(str(err)) from None
    problem = sup.preset_problem(cfg.preset, SETTINGS.preset_recheck_seconds)
    if problem:
        raise gr.Error(f"Preset '{cfg.preset}' cannot run here: {problem}")
    sup.cleanup_outputs(SETTINGS.outputs_root, SETTINGS.keep_runs, SETTINGS.max_age_hours,
                        sup.REGISTRY.active_dirs())
    cfg.out_dir = sup.make_run_dir(SETTINGS.outputs_root)
    return cfg, sup.REGISTRY.start(session_key(request, slot), cfg.out_dir)


def stop_runs(request: gr.Request | None, slot: str | None) -> str:
    """Set the stop flag of this session's run(s) and wait briefly for them to end."""
    session = session_key(request, "").rstrip(":")
    runs = sup.REGISTRY.stop(f"{session}:{slot}" if slot else session)
    if not runs:
        return "Stopped."  # it was still waiting in the queue (cancels= removed it) or had ended
    for run in runs:
        run.done.wait(SETTINGS.stop_wait_seconds)
    run = runs[0]
    return f"Stopped by user at step {run.step}/{run.total}." if run.done.is_set() else "Stopping…"


def failure(update: sup.RunUpdate) -> gr.Error:
    """The error shown when a run failed mid-way (its partial outputs are already on screen)."""
    kept = " What was made so far is offered below." if update.outputs else ""
    return gr.Error(f"The run failed at step {update.step}/{update.total}: {update.message.rstrip('.')}.{kept}")


# ----------------------------------------------------------------------------- event handlers

def run_single(
    prompt: str, negative_prompt: str, preset: str, method: str, guidance_scale: float,
    preference_scale: float, neg_lr: float, steps: float, preview_every: float, seed: float,
    random_seed: bool, resolution: float, request: gr.Request,
) -> Iterator[tuple]:
    """Generate tab: stream renders, curves and status; the last value of `final` feeds show_result."""
    cfg, run = prepare_run(
        request, "single", prompt=prompt, negative_prompt=negative_prompt, preset=preset, method=method,
        guidance_scale=guidance_scale, preference_scale=preference_scale, neg_lr=neg_lr, steps=steps,
        preview_every=preview_every, seed=sup.RANDOM_SEED if random_seed else seed, resolution=resolution,
    )
    config_json = config_to_dict(cfg)
    plots = LivePlots(2)
    update = None
    try:
        for update in sup.stream_run(cfg, run):
            final = {"state": update.state, "outputs": update.outputs} if update.state != "running" else None
            for rewards, losses in plots.values(update.curve.reward_frame(), update.curve.loss_frame()):
                yield (update.images, rewards, losses, progress_html(update.fraction, update.state), update.status,
                       label_html(update.label), config_json, cfg.seed, final)
    finally:
        sup.REGISTRY.finish(run)
    if update is not None and update.state == "failed":
        raise failure(update)


def show_result(final: dict | None) -> tuple:
    """Final outputs of the Generate tab; a plain function so that gr.Model3D mounts its viewer."""
    outputs = (final or {}).get("outputs", {})
    glb = outputs.get("glb") if outputs.get("glb") and Path(outputs["glb"]).is_file() else None
    video = outputs.get("video") if outputs.get("video") and Path(outputs["video"]).is_file() else None
    files = result_files(outputs) or None
    return glb, gr.DownloadButton(value=glb, visible=glb is not None), video, files


def show_failed_result(final: dict | None) -> tuple:
    """show_result after a failed run (renders left as they are), or a note if it never started."""
    status = gr.skip() if final else "Not started: see the error message."
    return (*show_result(final), gr.skip(), status)


def run_compare(
    prompt: str, negative_prompt: str, preset: str, method_a: str, method_b: str, steps: float,
    preview_every: float, seed: float, random_seed: bool, request: gr.Request,
) -> Iterator[tuple]:
    """Compare tab: the same prompt and seed with two methods, one after the other."""
    if method_a == method_b:
        raise gr.Error(f"Pick two different methods to compare (both are '{method_a}').")
    common = dict(prompt=prompt, negative_prompt=negative_prompt, preset=preset, steps=steps,
                  preview_every=preview_every, seed=sup.RANDOM_SEED if random_seed else seed)
    cfg_a, run = prepare_run(request, "compare", method=method_a, **common)
    root = cfg_a.out_dir
    try:
        cfg_b = sup.build_run_config(SETTINGS, method=method_b, **{**common, "seed": cfg_a.seed})
    except sup.InputError as err:
        sup.REGISTRY.finish(run)
        raise gr.Error(str(err)) from None
    cfgs = [cfg_a, cfg_b]
    for cfg in cfgs:
        cfg.out_dir = os.path.join(root, cfg.guidance.method)
    curves = [sup.MetricCurve(cfg.guidance.method) for cfg in cfgs]
    galleries: list[list] = [[], []]
    results: list[dict] = [{}, {}]
    config_json = {cfg.guidance.method: config_to_dict(cfg) for cfg in cfgs}
    plots = LivePlots(2)
    update = None
    try:
        for index, cfg in enumerate(cfgs):
            for update in sup.stream_run(cfg, run, curves[index]):
                galleries[index] = update.images
                results[index] = update.outputs
                fraction = (index + update.fraction) / len(cfgs)
                status = f"{cfg.guidance.method} (run {index + 1} of 2): {update.status}"
                final = {"outputs": results} if update.state != "running" else None
                rewards = pd.concat([c.frame(sup.RENDER_REWARD) for c in curves], ignore_index=True)
                losses = pd.concat([c.loss_frame() for c in curves], ignore_index=True)
                for reward_value, loss_value in plots.values(rewards, losses):
                    yield (galleries[0], galleries[1], reward_value, loss_value, progress_html(fraction, update.state),
                           status, label_html(update.label), config_json, cfg_a.seed, final)
            if update is None or update.state != "done":
                break
    finally:
        sup.REGISTRY.finish(run)
    if update is not None and update.state == "failed":
        raise failure(update)


def show_compare(final: dict | None) -> tuple:
    """Final models of the Compare tab (plain function: see show_result)."""
    results = (final or {}).get("outputs", [{}, {}])
    out = []
    for outputs in results:
        glb = outputs.get("glb") if outputs.get("glb") and Path(outputs["glb"]).is_file() else None
        out += [glb, gr.DownloadButton(value=glb, visible=glb is not None)]
    return tuple(out)


def show_failed_compare(final: dict | None) -> tuple:
    """show_compare after a failed comparison (renders left as they are), or a note if it never started."""
    status = gr.skip() if final else "Not started: see the error message."
    return (*show_compare(final), gr.skip(), gr.skip(), status)


def on_preset(preset: str) -> tuple:
    """Reset method and sliders to the preset's own defaults and ranges."""
    cfg = resolve_config(preset)
    values = sup.ui_defaults(cfg)
    ranges = sup.ranges_for(cfg, SETTINGS)

    def slider(name: str) -> gr.Slider:
        r = ranges[name]
        return gr.Slider(minimum=r.minimum, maximum=r.maximum, step=r.step, value=values[name])

    return (preset_markdown(preset), gr.Dropdown(value=values["method"]), slider("guidance_scale"),
            slider("preference_scale"), slider("neg_lr"), slider("steps"), slider("preview_every"),
            slider("resolution"))


def on_compare_preset(preset: str) -> tuple[gr.Slider, gr.Slider]:
    """Compare tab: reset the steps and preview sliders to the preset's defaults and ranges."""
    cfg = resolve_config(preset)
    values, ranges = sup.ui_defaults(cfg), sup.ranges_for(cfg, SETTINGS)
    return tuple(
        gr.Slider(minimum=ranges[k].minimum, maximum=ranges[k].maximum, step=ranges[k].step, value=values[k])
        for k in ("steps", "preview_every")
    )


def api_generate(
    prompt: str, negative_prompt: str, preset: str, method: str, guidance_scale: float | None,
    preference_scale: float | None, neg_lr: float | None, steps: int | None, preview_every: int | None,
    seed: int | None, request: gr.Request,
) -> Iterator[tuple]:
    """The /generate endpoint: yields (renders, progress dict with the curve, glb, video, config.json)."""
    cfg, run = prepare_run(
        request, "api", prompt=prompt, negative_prompt=negative_prompt, preset=preset, method=method,
        guidance_scale=guidance_scale, preference_scale=preference_scale, neg_lr=neg_lr, steps=steps,
        preview_every=preview_every, seed=seed,
    )
    update = None
    try:
        for update in sup.stream_run(cfg, run):
            outputs = update.outputs
            yield (update.images, update.as_dict(), outputs.get("glb"), outputs.get("video"),
                   outputs.get("config"))
    finally:
        sup.REGISTRY.finish(run)
    if update is not None and update.state == "failed":
        raise failure(update)


def stop_single(request: gr.Request) -> str:
    """Stop button of the Generate tab."""
    return stop_runs(request, "single")


def stop_compare(request: gr.Request) -> str:
    """Stop button of the Compare tab."""
    return stop_runs(request, "compare")


def api_stop(request: gr.Request) -> str:
    """The /stop endpoint: stop every run of the calling session (client)."""
    return stop_runs(request, None)


# ----------------------------------------------------------------------------- layout

def slider_for(name: str, ranges: dict[str, sup.ParamRange], values: dict[str, Any], label: str,
               info: str = "", elem_id: str | None = None) -> gr.Slider:
    """A slider with the preset's range and default."""
    r = ranges[name]
    return gr.Slider(r.minimum, r.maximum, value=values[name], step=r.step, label=label, info=info or None,
                     elem_id=elem_id)


def build_demo(settings: sup.AppSettings | None = None) -> gr.Blocks:
    """The whole UI; module-level SETTINGS are used by the handlers."""
    global SETTINGS
    if settings is not None:
        SETTINGS = settings
    preset0 = SETTINGS.default_preset or default_preset()
    cfg0 = resolve_config(preset0)
    values0 = sup.ui_defaults(cfg0)
    ranges0 = sup.ranges_for(cfg0, SETTINGS)
    presets = sup.preset_choices()
    methods = [(METHOD_LABELS.get(m, m), m) for m in METHODS]

    with gr.Blocks(title="psd-3d: text to 3D", analytics_enabled=False,
                   delete_cache=(SETTINGS.cache_sweep_seconds, SETTINGS.cache_max_age_seconds)) as demo:
        gr.Markdown("# psd-3d · text to 3D with Preference Score Distillation\n"
                    "Type a prompt, press **Generate**, watch the renders and reward curves, "
                    "then download the mesh (GLB).")
        with gr.Tabs():
            with gr.Tab("Generate"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=320):
                        prompt = gr.Textbox(label="Prompt", placeholder="a red cube", lines=2,
                                            max_length=SETTINGS.max_prompt_chars, elem_id="prompt")
                        negative = gr.Textbox(label="Negative prompt", placeholder="(optional)",
                                              max_length=SETTINGS.max_prompt_chars)
                        with gr.Row():
                            preset = gr.Dropdown(presets, value=preset0, label="Preset", elem_id="preset")
                            method = gr.Dropdown(methods, value=values0["method"], label="Method")
                        preset_md = gr.Markdown(preset_markdown(preset0), elem_id="preset-info")
                        cfg_scale = slider_for("guidance_scale", ranges0, values0, "CFG scale")
                        pref_scale = slider_for("preference_scale", ranges0, values0, "Preference scale (λ)",
                                                "PSD's push from the losing towards the winning sample")
                        steps = slider_for("steps", ranges0, values0, "Steps", elem_id="steps")
                        with gr.Row():
                            seed = gr.Number(values0["seed"], label="Seed", precision=0, minimum=0,
                                             maximum=sup.MAX_SEED)
                            random_seed = gr.Checkbox(False, label="Random seed")
                        with gr.Accordion("Advanced", open=False):
                            neg_lr = slider_for("neg_lr", ranges0, values0, "Negative-embedding learning rate (η)")
                            preview_every = slider_for("preview_every", ranges0, values0,
                                                       "Preview every N steps", elem_id="preview-every")
                            resolution = slider_for("resolution", ranges0, values0, "Render resolution (px)")
                        with gr.Row():
                            go = gr.Button("Generate", variant="primary", elem_id="generate")
                            stop = gr.Button("Stop", variant="stop", elem_id="stop")
                        gr.Examples([[p] for p in EXAMPLE_PROMPTS], inputs=[prompt], cache_examples=False)
                    with gr.Column(scale=3, min_width=400):
                        banner = gr.HTML("", elem_id="run-label")
                        bar = gr.HTML(progress_html(0.0), padding=False)
                        status = gr.Markdown("Ready.", elem_id="status")
                        renders = gr.Gallery(label="Current renders", columns=4, height=200, format="png",
                                             object_fit="contain", allow_preview=True)
                        with gr.Row():
                            rewards_plot = reward_plot("Reward", color_map=REWARD_COLORS)
                            loss_plot = reward_plot("Loss", y_title="loss")
                        gr.Markdown("<small>Reward of *render*: the current render; *winner / loser / mean*: "
                                    "of the step's noisy samples (PSD methods only).</small>")
                        with gr.Row():
                            model = gr.Model3D(label="Mesh (GLB)", height=340, elem_id="model3d",
                                               clear_color=(0.95, 0.95, 0.95, 1.0))
                            video = gr.Video(label="Turntable", height=340, autoplay=True, loop=True)
                        with gr.Row():
                            download = gr.DownloadButton("Download GLB", visible=False, variant="primary")
                        files = gr.File(label="All outputs of this run", file_count="multiple")
                        with gr.Accordion("Resolved config (JSON): reproduces this run", open=False):
                            config_view = gr.JSON()
                final = gr.State(None)

                preset.change(on_preset, [preset],
                              [preset_md, method, cfg_scale, pref_scale, neg_lr, steps, preview_every, resolution],
                              api_visibility="private")
                clear = go.click(
                    lambda: (None, gr.DownloadButton(visible=False), None, None, None, QUEUED, progress_html(0.0)),
                    None, [model, download, video, files, final, status, bar], queue=False, api_visibility="private")
                run_event = clear.then(
                    run_single,
                    [prompt, negative, preset, method, cfg_scale, pref_scale, neg_lr, steps, preview_every,
                     seed, random_seed, resolution],
                    [renders, rewards_plot, loss_plot, bar, status, banner, config_view, seed, final],
                    concurrency_limit=1, concurrency_id=DEVICE_QUEUE, show_progress="full",
                    show_progress_on=[renders], api_visibility="private",
                )
                # .then() runs only after success; .failure() shows what a failed run made so far and,
                # by writing to the renders, clears the error badge Gradio puts over them.
                run_event.then(show_result, [final], [model, download, video, files], api_visibility="private")
                run_event.failure(show_failed_result, [final], [model, download, video, files, renders, status],
                                  api_visibility="private")
                stop.click(stop_single, None, [status], queue=False,
                           cancels=[run_event], api_visibility="private")

            with gr.Tab("Compare"):
                gr.Markdown("Run two methods on the same prompt and seed, one after the other, and compare "
                            "their reward curves and meshes. Other settings are the preset's defaults.")
                with gr.Row():
                    c_prompt = gr.Textbox(label="Prompt", placeholder="a red cube", scale=3, elem_id="c-prompt",
                                          max_length=SETTINGS.max_prompt_chars)
                    c_negative = gr.Textbox(label="Negative prompt", placeholder="(optional)", scale=2,
                                            max_length=SETTINGS.max_prompt_chars)
                with gr.Row():
                    c_preset = gr.Dropdown(presets, value=preset0, label="Preset", elem_id="c-preset")
                    c_method_a = gr.Dropdown(methods, value="sds", label="Method A")
                    c_method_b = gr.Dropdown(methods, value="psd", label="Method B")
                with gr.Row():
                    c_steps = slider_for("steps", ranges0, values0, "Steps", elem_id="c-steps")
                    c_preview = slider_for("preview_every", ranges0, values0, "Preview every N steps")
                    c_seed = gr.Number(values0["seed"], label="Seed", precision=0, minimum=0, maximum=sup.MAX_SEED)
                    c_random = gr.Checkbox(False, label="Random seed")
                with gr.Row():
                    c_go = gr.Button("Compare", variant="primary", elem_id="c-go")
                    c_stop = gr.Button("Stop", variant="stop", elem_id="c-stop")
                c_banner = gr.HTML("", elem_id="c-run-label")
                c_bar = gr.HTML(progress_html(0.0), padding=False)
                c_status = gr.Markdown("Ready.", elem_id="c-status")
                with gr.Row():
                    c_renders_a = gr.Gallery(label="Method A renders", columns=4, height=200, format="png",
                                             object_fit="contain")
                    c_renders_b = gr.Gallery(label="Method B renders", columns=4, height=200, format="png",
                                             object_fit="contain")
                with gr.Row():
                    c_rewards = reward_plot("Reward of the render, both methods")
                    c_losses = reward_plot("Loss, both methods", y_title="loss")
                with gr.Row():
                    with gr.Column():
                        c_model_a = gr.Model3D(label="Method A mesh", height=300,
                                               clear_color=(0.95, 0.95, 0.95, 1.0))
                        c_dl_a = gr.DownloadButton("Download A (GLB)", visible=False)
                    with gr.Column():
                        c_model_b = gr.Model3D(label="Method B mesh", height=300,
                                               clear_color=(0.95, 0.95, 0.95, 1.0))
                        c_dl_b = gr.DownloadButton("Download B (GLB)", visible=False)
                with gr.Accordion("Resolved configs (JSON)", open=False):
                    c_config = gr.JSON()
                c_final = gr.State(None)

                c_preset.change(on_compare_preset, [c_preset], [c_steps, c_preview], api_visibility="private")
                c_clear = c_go.click(
                    lambda: (None, gr.DownloadButton(visible=False), None, gr.DownloadButton(visible=False), None,
                             QUEUED, progress_html(0.0)),
                    None, [c_model_a, c_dl_a, c_model_b, c_dl_b, c_final, c_status, c_bar], queue=False,
                    api_visibility="private")
                c_event = c_clear.then(
                    run_compare,
                    [c_prompt, c_negative, c_preset, c_method_a, c_method_b, c_steps, c_preview, c_seed, c_random],
                    [c_renders_a, c_renders_b, c_rewards, c_losses, c_bar, c_status, c_banner, c_config, c_seed,
                     c_final],
                    concurrency_limit=1, concurrency_id=DEVICE_QUEUE, show_progress="full",
                    show_progress_on=[c_renders_a, c_renders_b], api_visibility="private",
                )
                c_event.then(show_compare, [c_final], [c_model_a, c_dl_a, c_model_b, c_dl_b],
                             api_visibility="private")
                c_event.failure(show_failed_compare, [c_final],
                                [c_model_a, c_dl_a, c_model_b, c_dl_b, c_renders_a, c_renders_b, c_status],
                                api_visibility="private")
                c_stop.click(stop_compare, None, [c_status], queue=False,
                             cancels=[c_event], api_visibility="private")

            with gr.Tab("API"):
                gr.Markdown(API_HELP)

        # The public API: exactly the 10 documented inputs, on components that are never shown.
        with gr.Column(visible=False):
            a_inputs = [
                gr.Textbox(label="prompt"), gr.Textbox("", label="negative_prompt"),
                gr.Textbox(preset0, label="preset"), gr.Textbox("", label="method"),
                gr.Number(None, label="guidance_scale"), gr.Number(None, label="preference_scale"),
                gr.Number(None, label="neg_lr"), gr.Number(None, label="steps", precision=0),
                gr.Number(None, label="preview_every", precision=0), gr.Number(None, label="seed", precision=0),
            ]
            a_outputs = [gr.Gallery(label="renders", format="png"), gr.JSON(label="progress"),
                         gr.File(label="glb"), gr.Video(label="video"), gr.File(label="config")]
            a_stop_out = gr.Textbox(label="stopped")
        a_go = gr.Button("api-generate", visible=False)
        a_go.click(api_generate, a_inputs, a_outputs, api_name="generate", concurrency_limit=1,
                   concurrency_id=DEVICE_QUEUE)
        a_stop = gr.Button("api-stop", visible=False)
        a_stop.click(api_stop, None, a_stop_out, api_name="stop", queue=False)
    return demo


API_HELP = """
### Drive the app from Python (`pip install gradio_client`)

```python
from gradio_client import Client

client = Client("http://127.0.0.1:7860/")
job = client.submit(
    "a red cube",        # prompt
    "",                  # negative_prompt
    "shapes",            # preset
    "psd",               # method: psd, psd-fixed-neg, sds or reward-grad
    None, None, None,    # guidance_scale, preference_scale, neg_lr (None = the preset's value)
    200, 25,             # steps, preview_every
    -1,                  # seed (-1 = random; the seed used is in config.json)
    api_name="/generate",
)
for renders, progress, glb, video, config in job:      # one item per preview, then the result
    print(progress["status"], len(progress["curve"]), "curve points")
renders, progress, glb, video, config = job.outputs()[-1]
print(progress["state"], glb)                           # "done" and the local path of the GLB
```
`client.predict(api_name="/stop")` stops the runs of that client. Out-of-range values are refused
with a message naming the parameter and its range. More in `docs/app.md`.
"""

SETTINGS = sup.AppSettings.from_env()


def main() -> None:
    """Serve the app (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT respected, default 127.0.0.1:7860)."""
    demo = build_demo()
    demo.queue(max_size=SETTINGS.queue_size, default_concurrency_limit=1)
    demo.launch(allowed_paths=[SETTINGS.outputs_root], css=CSS, footer_links=["api", "gradio"])


if __name__ == "__main__":
    main()
