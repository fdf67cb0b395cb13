# Convenience targets; each wraps a script under scripts/.
.PHONY: run test bench migrate
run:
	scripts/run.sh
test:
	scripts/test.sh
bench:
	scripts/bootstrap.sh test && .venv/bin/python tests/bench/bench_projector.py
migrate:
	scripts/bootstrap.sh embedded && .venv/bin/projectord migrate
