# wirefeed on the official Airflow image. Build: docker compose build (or docker build -t wirefeed-airflow .)
# The FROM tag must match apache-airflow in requirements/lock.txt (tests/test_docker.py checks it).
FROM apache/airflow:3.3.2-python3.11

# Direct dependencies; every version comes from the lock (a constraint file), apache-airflow stays at the
# image's version so pip cannot move it.
# The Celery provider, Celery with its Redis client and the PostgreSQL drivers are the deployment's
# (docker-compose.yml): pinned here to the versions the integration tests run.
ARG WIREFEED_REQUIREMENTS="apache-airflow==3.3.2 apache-airflow-providers-amazon apache-airflow-providers-celery celery[redis] redis psycopg2-binary asyncpg feedparser pyarrow boto3 PyYAML ahocorasick-rs lxml python-dateutil rich msgspec"

ENV WIREFEED_HOME=/opt/wirefeed \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/wirefeed

COPY --chown=airflow:0 requirements/lock.txt requirements/lock.txt
RUN pip install -c requirements/lock.txt ${WIREFEED_REQUIREMENTS}

COPY --chown=airflow:0 pyproject.toml README.md ./
COPY --chown=airflow:0 pipeline/ pipeline/
COPY --chown=airflow:0 schemas/ schemas/
COPY --chown=airflow:0 config/ config/
COPY --chown=airflow:0 samples/ samples/
# A C compiler for the tagger's compiled scan (pipeline/tagging/_automaton.c) and its accelerator
# (pipeline/tagging/_accel.c), and the parsing stage's text passes (pipeline/parsing/_accel.c): optional for
# pip, but the image must have them (the pure-Python fallbacks give the same, slower), so the build fails
# without them.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
USER airflow
# Editable, so pipeline.schema finds /opt/wirefeed/schemas next to the package; build deps pinned by the lock;
# byte-compiled as a regular install is (an editable install is not).
RUN PIP_CONSTRAINT=requirements/lock.txt pip install --no-deps -e . \
    && python -m compileall -q pipeline schemas \
    && python -c "import pipeline.schema as s; s.arrow_schema()" \
    && python -c "import pipeline.tagging._automaton" \
    && python -c "import pipeline.tagging._accel" \
    && python -c "import pipeline.parsing._accel" \
    && wirefeed --help >/dev/null

COPY --chown=airflow:0 dags/ /opt/airflow/dags/

ENV WIREFEED_FEEDS=/opt/wirefeed/config/feeds.yaml
