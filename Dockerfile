# psd-3d web app (app.py) as a self-hosted container.
#   docker build -t psd-3d .
#   docker run -p 7860:7860 -v psd3d-hf:/data/huggingface psd-3d          (CPU: offline presets)
#   docker run --gpus all -p 7860:7860 -v psd3d-hf:/data/huggingface psd-3d  (GPU: SD presets)
# Hub weights (GPU presets) are downloaded on first use into the HF_HOME volume and kept there.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HOME=/data/huggingface \
    PSD3D_OUTPUTS=/tmp/psd3d-outputs

# Hugging Face Spaces and most hosts expect the app to run as uid 1000.
RUN useradd --create-home --uid 1000 user \
    && mkdir -p /data/huggingface \
    && chown -R user:user /data

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=user:user . .

USER 1000
VOLUME ["/data/huggingface"]
EXPOSE 7860
CMD ["python", "app.py"]
