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
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
ENTRYPOINT ["breakglass"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
