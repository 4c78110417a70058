# One image for the four services; the command picks which one (`radar serve NAME`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY shared ./shared
COPY services ./services
COPY deploy/radar.yaml /etc/radar/radar.yaml
RUN pip install --no-cache-dir . && useradd --system radar
USER radar
ENV RADAR_CONFIG=/etc/radar/radar.yaml RADAR_HOST=0.0.0.0 RADAR_LOG_FORMAT=json
ENTRYPOINT ["radar"]
