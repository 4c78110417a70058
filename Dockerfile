# One image for the four services; the command picks which one (`radar serve NAME`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY shared ./shared
COPY services ./services
COPY deploy/radar.yaml /etc/radar/radar.yaml
# /var/lib/radar/signals: the signals worker's RocksDB tables (a volume in deploy/); owned by the user, so a
# fresh named volume mounted there is writable too
RUN pip install --no-cache-dir . && useradd --system --uid 10001 radar \
    && mkdir -p /var/lib/radar/signals && chown 10001 /var/lib/radar/signals
# numeric, so Kubernetes' runAsNonRoot can verify it (deploy/k8s sets runAsUser: 10001 too)
USER 10001
ENV RADAR_CONFIG=/etc/radar/radar.yaml RADAR_HOST=0.0.0.0 RADAR_LOG_FORMAT=json PYTHONUNBUFFERED=1
# ingest, scoring, notifier, signals; each serves /metrics, /healthz and /readyz on its port
EXPOSE 8080 8081 8082 8083
# every service finishes in-flight work, commits and closes on SIGTERM (give it the grace period)
STOPSIGNAL SIGTERM
ENTRYPOINT ["radar"]
