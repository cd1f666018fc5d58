# featurelock — every target creates and uses its own virtual environment in .venv.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=
LOADTEST_ARGS ?=
SCALE_ARGS ?=
SOAK_ARGS ?= --seconds 600
FUZZ_RUNS ?= 1000000

.PHONY: venv js-deps demo docs test self-check test-fast fuzz fuzz-js bench bench-js bench-scale loadtest soak scan-budgets faces faces-scan crafter crafter-scan crafter-bench disguise templates-eval clean

venv: $(STAMP)

# torch==2.13.0 first: that pin resolves to the CPU wheel on this kind of machine, and the
# extras' range (<=2.13.0) then accepts it instead of pulling a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[all]'
	touch $@

# The JS reader's dependencies, exactly as js/package-lock.json pins them, from the npm registry.
JS_STAMP := js/node_modules/.installed
js-deps: $(JS_STAMP)

$(JS_STAMP): js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund
	touch $@

demo: $(STAMP)
	$(VENV)/bin/featurelock demo --workdir out/demo

test: $(STAMP) $(JS_STAMP)
	cd js && node --test test/
	@log=$$($(VENV)/bin/mkdocs build --strict -d out/site 2>&1) || { echo "$$log"; echo "docs: FAILED (mkdocs --strict)"; exit 1; }
	$(PY) -m pytest -m "not selfcheck" $(PYTEST_ARGS)

# The docs site (mkdocs.yml, docs/) into out/site/. --strict: a broken link or anchor, or a page
# missing from nav, fails the build; make test runs the same build.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict -d out/site

# The adversarial self-check: every scheme scanned at the demo's budget must flag every leak the
# project's strongest attacks find, and none on masked, aes-256-gcm, hpke (about 3.5 CPU-min).
self-check: $(STAMP)
	$(PY) -m pytest -m selfcheck -p no:randomly $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not e2e and not slow" $(PYTEST_ARGS)

# Coverage-guided fuzzing of FeatureReader.read (atheris, in the `all` extra): fails on any
# exception but DecryptionError or any non-canonical input that decrypts; the finding and the
# log are left in out/fuzz/.
fuzz: $(STAMP)
	mkdir -p out/fuzz
	$(PY) tests/fuzz/fuzz_reader.py -runs=$(FUZZ_RUNS) 2> out/fuzz/log.txt || \
	  { grep -v '^"' out/fuzz/log.txt | tail -n 25; echo "fuzz: FAILED, see out/fuzz/"; exit 1; }
	@sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/fuzz: \1 inputs in \2 s, only DecryptionError, nothing non-canonical decrypted/p' out/fuzz/log.txt

# The JS reader on 100,000 mutated envelopes (make test runs 3,000): only DecryptionError.
fuzz-js: $(JS_STAMP)
	cd js && node scripts/fuzz.js 100000

# µs per read of one 2048-d aes-256-gcm envelope: Node (js/scripts/bench.js), then Python.
bench-js: $(STAMP) $(JS_STAMP)
	cd js && node scripts/bench.js
	$(PY) -c 'import numpy as np; from featurelock.middleware import Context, Envelope, FeatureProtector, FeatureReader, Keyset; from featurelock.middleware.bench import best_seconds; ks = Keyset.generate(); ctx = Context("reid-compact", "1", "acme"); env = bytes(FeatureProtector(ks).protect(np.random.default_rng(0).standard_normal((1, 2048)).astype(np.float32), ctx)); r = FeatureReader(ks); us = lambda m: best_seconds(lambda: r.read(m, ctx), 7, 0.15) * 1e6; print(f"python: aes-256-gcm 2048-d read, binary {us(env):.1f} µs, JSON text {us(Envelope.from_bytes(env).to_json()):.1f} µs (best of 7 rounds)")'

bench: $(STAMP)
	$(VENV)/bin/featurelock bench
	$(PY) -m featurelock.handlers.bench_endpoint --requests 200 --worker-threads 1

# Headless locust against one engine on 127.0.0.1 (LOADTEST_ARGS="--engine ray|kserve" for the
# others): plaintext vs each scheme, alternating.
loadtest: $(STAMP)
	$(PY) -m load_tests.run $(LOADTEST_ARGS)

# One encrypted endpoint with 1, 2 and 4 replicas, on Ray Serve (a raylet per replica) and on
# TorchServe (workers): requests/s, p50, efficiency per added replica (out/scale-out/).
bench-scale: $(STAMP)
	$(PY) -m load_tests.scale_out $(SCALE_ARGS)

# Steady mixed load on the default endpoint for 10 minutes, with a key rotation and a token
# revocation in the middle: unexpected errors, p50/p99, frontend/worker RSS (out/soak/).
soak: $(STAMP)
	$(PY) -m load_tests.soak $(SOAK_ARGS)

# The longer in-process scan: every scheme beside the plaintext control at 1000 queries, and
# leakage vs budget at 100, 300 and 1000 (report in out/scan-budgets/).
scan-budgets: $(STAMP)
	$(VENV)/bin/featurelock scan --local plaintext --local shufflebits --local shufflebits-otp \
	  --local shufflebits-masked --local aes-256-gcm --budget 1000 --budgets 100,300,1000 \
	  --victim-ids 80 --fail-if never --report out/scan-budgets

# face-compact (README "Faces"): train on synthetic faces with the ArcFace margin loss on
# one thread (deterministic for --seed; rewrites models/weights/face_compact.pt, float16), then the
# face scan: plaintext control and aes-256-gcm on synthetic faces, with TAR at FMR 1e-3 for
# linkability and the template-inversion success rate (report in out/faces-scan/).
FACES_TRAIN ?=
FACES_SCAN  ?= --budget 600 --victim-ids 80
faces: $(STAMP)
	mkdir -p out/faces
	OMP_NUM_THREADS=1 $(VENV)/bin/featurelock train --faces $(FACES_TRAIN) \
	  --metrics-json out/faces/train.json

faces-scan: $(STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/featurelock scan --model face-compact \
	  --dataset synthetic-faces --local plaintext --local aes-256-gcm $(FACES_SCAN) \
	  --report out/faces-scan

# Crafter, the full reproduction (README "Crafter: usable features without keys"): the public
# prior, the inverter and one crafting network per beta (deterministic, one thread), then the
# scan of plaintext, every beta and aes-256-gcm with the privacy-utility picture
# (out/crafter/scan/report.html). CRAFTER_DIR=models/weights/crafter skips nothing but writes
# the packaged weights.
CRAFTER_DIR   ?= out/crafter
CRAFTER_BETAS ?= 0.03,0.3,3,30
CRAFTER_SCAN  ?= --budget 600 --victim-ids 40
comma := ,
crafter: $(STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/featurelock crafter train --out $(CRAFTER_DIR) \
	  --betas $(CRAFTER_BETAS) --distill-images 256 --craft-steps 20
	$(MAKE) --no-print-directory crafter-scan CRAFTER_DIR=$(CRAFTER_DIR)

# The scan part alone (with the inverse attacks on every beta): `make crafter-scan
# CRAFTER_DIR=models/weights/crafter CRAFTER_REPORT=out/crafter/scan` re-measures the README.
CRAFTER_REPORT ?= $(CRAFTER_DIR)/scan
crafter-scan: $(STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/featurelock scan --local plaintext \
	  $(foreach b,$(subst $(comma), ,$(CRAFTER_BETAS)),--local crafter:beta=$(b)) \
	  --local aes-256-gcm --crafter-dir $(CRAFTER_DIR) $(CRAFTER_SCAN) --representations float \
	  --attacks linkability,attributes,reconstruction,basic-decoder,gan-inversion,inversion \
	  --fail-if never --no-progress --report $(CRAFTER_REPORT)

# Serving latency of the amortised crafter vs plaintext on one loopback TorchServe (batch 1).
crafter-bench: $(STAMP)
	$(PY) -m featurelock.handlers.bench_crafter \
	  --crafter-file $(CRAFTER_DIR)/craft-beta$(firstword $(subst $(comma), ,$(CRAFTER_BETAS))).pt \
	  --out $(CRAFTER_DIR)/bench.json

# Disguised-Nets reproduction (about 16 min on 1 core before the learner with labels was added;
# one part alone: disguise_repro --skip-utility --attacks ... --targets REGEX): re-ID rank-1/mAP
# and digits accuracy on plain vs disguised images per variant, noise and block size; then every
# disguise attack at full size beside its control (out/disguise/: utility.json, report.*, picture_*.png).
disguise: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m featurelock.attack_harness.disguise_repro --out out/disguise

# Protected templates judged beside plaintext (docs/templates.md): accuracy, D<->sys across and
# within keys, stolen-key / known-pair inversion, on reid-compact features of synthetic pedestrians.
templates-eval: $(STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/featurelock templates eval --out out/templates/eval.json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
