# The two commands of the quick start, each doing its own setup:
#   make bench   the benchmark suite and the cost table (cargo bench, standard suite)
#   make test    the test suite
# Mesa prints a warning without XDG_RUNTIME_DIR on headless machines; give it one.
export XDG_RUNTIME_DIR ?= /tmp/priceperf-xdg-$(shell id -u)

.PHONY: setup bench quick test lint

setup:
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	@bash scripts/setup.sh

bench: setup
	cargo bench --bench suite

# The quick suite through the binary (minutes on lavapipe).
quick: setup
	cargo run --release -- run --suite quick

test: setup
	cargo test

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps
