# breakglass service image: build a wheel in one stage, run it as a non-root user in a slim one.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine engine
COPY cards cards
COPY adapters adapters
COPY bot bot
RUN python -m pip install --no-cache-dir --upgrade pip build \
 && python -m build --wheel --outdir /wheels \
 && python -m pip wheel --no-cache-dir --wheel-dir /wheels /wheels/breakglass-*.whl

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/breakglass --create-home breakglass
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir --no-index --find-links /wheels breakglass \
 && rm -rf /wheels
USER breakglass
ENV BREAKGLASS_HOME=/var/lib/breakglass PYTHONUNBUFFERED=1
WORKDIR /var/lib/breakglass
# Only the PUBLIC listener is exposed: chat webhooks, /healthz, /readyz. The internal one
# (model proxy, registry, /metrics, console) stays on 127.0.0.1:8081 inside the container.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz')"
ENTRYPOINT ["breakglass"]
# Keys are made by `breakglass keys init` on the same volume first (compose.yaml does it).
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
