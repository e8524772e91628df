# One image for every Paceline process; the compose file picks the command.
FROM python:3.11-slim-bookworm
# quickfix is a source package: it needs a C++ toolchain to build.
RUN apt-get update && apt-get install -y --no-install-recommends g++ make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY paceline paceline
COPY runtime runtime
COPY models models
COPY market market
COPY saga saga
COPY receiver receiver
COPY worker worker
COPY health_checker health_checker
COPY endpoint endpoint
COPY dashboard dashboard
COPY fixclient fixclient
COPY deploy deploy
COPY policies policies
RUN pip install --no-cache-dir .
ENV PACELINE_LOG_FORMAT=json
CMD ["paceline", "--help"]
