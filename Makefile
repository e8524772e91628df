# The two commands of the README:
#   make demo   set everything up from nothing, start Apache Pulsar, run the demo
#   make test   set everything up from nothing, run the whole test suite against a real broker
BIN := .venv/bin

.PHONY: setup demo test lint bench drills-cluster soak clean
setup:
	./scripts/bootstrap.sh

demo: setup
	$(BIN)/paceline demo

# The suite starts (and stops) its own Apache Pulsar standalone on free ports for the broker tests.
test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/paceline bench codec

# On a Pulsar cluster of their own (ZooKeeper, three bookies, two brokers): a broker and a bookie killed.
drills-cluster: setup
	$(BIN)/paceline drill all-cluster

# A desk's day: 1,000 parents through every service, the leading health-checker killed at 15:00.
soak: setup
	$(BIN)/paceline soak --kill-leader-at 15:00

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache *.egg-info
