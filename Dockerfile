# aptpipe: one image for the three services of docker-compose.yml (luigid, the cron worker and
# the predict service).  Not built in this project's CI (no docker daemon there): the commands
# it runs are the ones tests/test_scheduler.py and tests/test_cron.py exercise.
FROM python:3.11-slim-bookworm

# cron for the worker (flock, which cron_daily.sh uses, is part of util-linux in the base image)
RUN apt-get update \
 && apt-get install -y --no-install-recommends cron \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /home/aptpipe aptpipe
WORKDIR /opt/aptpipe

# the package in its own virtualenv (the layout scripts/crontab.example assumes)
COPY pyproject.toml setup.cfg README.md luigi.cfg ./
COPY aptpipe ./aptpipe
COPY scripts ./scripts
RUN python -m venv /opt/aptpipe/venv \
 && /opt/aptpipe/venv/bin/pip install --no-cache-dir . \
 && /opt/aptpipe/venv/bin/python -c "import sqlalchemy, sys; sys.exit(sqlalchemy.__version__ >= '2')"

# container-only settings over luigi.cfg: workers find luigid by its service name
RUN mkdir -p /etc/aptpipe /opt/aptpipe/data /opt/aptpipe/models /opt/aptpipe/var/log \
             /var/lib/luigid \
 && printf '[core]\nscheduler_host = luigid\nscheduler_port = 8082\n' > /etc/aptpipe/docker.cfg \
 && sed -e 's/^MAILTO=.*/MAILTO=""/' \
        -e 's|^APTPIPE=.*|&\nLUIGI_CONFIG_PATH=/etc/aptpipe/docker.cfg|' \
        scripts/crontab.example > /etc/aptpipe/crontab \
 && crontab -u aptpipe /etc/aptpipe/crontab \
 && chown -R aptpipe:aptpipe /opt/aptpipe/data /opt/aptpipe/models /opt/aptpipe/var \
                             /var/lib/luigid

ENV PATH=/opt/aptpipe/venv/bin:$PATH \
    APTPIPE_HOME=/opt/aptpipe \
    APTPIPE=/opt/aptpipe/venv/bin/aptpipe \
    APTPIPE_PYTHON=/opt/aptpipe/venv/bin/python \
    APTPIPE_SCHEDULER_DIR=/var/lib/luigid \
    LUIGI_CONFIG_PATH=/etc/aptpipe/docker.cfg \
    TZ=Asia/Seoul

USER aptpipe
CMD ["/opt/aptpipe/scripts/cron_daily.sh"]
