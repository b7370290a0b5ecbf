# adapterlab: top-level commands. `make help` lists them.
SHELL := /bin/bash
UV ?= uv
PKG ?=
# Real data / weights for the main jobs (empty = embedded synthetic data + tiny random model).
DATA ?=
MODEL ?=
PRETRAINED ?=
OUT ?=
export PYOPENGL_PLATFORM ?= egl

TEST_PATHS := $(if $(PKG),packages/$(PKG),packages/ tests/)

.PHONY: help setup test lint format train-clip2point train-ast train-vl train-vl-multitask train-graphadapter train-code train-text train-llm bench bench-core bench-render bench-clip2point bench-audio bench-vl bench-graph bench-code bench-llm

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup:  ## install uv if missing, then sync the locked workspace (bytecode compiled once: imports stay fast where PYTHONDONTWRITEBYTECODE is set)
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --all-packages --locked --compile-bytecode

test: setup  ## run the test suite (PKG=core|pointclip|audio|vl|graph|code|text|llm for one package)
	$(UV) run --all-packages --locked pytest $(TEST_PATHS)

lint: setup  ## ruff check + format check
	$(UV) run --all-packages --locked ruff check .
	$(UV) run --all-packages --locked ruff format --check .

format: setup  ## apply ruff fixes and formatting
	$(UV) run --all-packages --locked ruff check --fix .
	$(UV) run --all-packages --locked ruff format .

train-clip2point: setup  ## main job: CLIP2Point end to end (DATA=, MODEL=, PRETRAINED=, OUT=)
	$(UV) run --all-packages --locked adapterlab-clip2point run-all \
		$(if $(DATA),--data "$(DATA)") $(if $(MODEL),--model "$(MODEL)") \
		$(if $(PRETRAINED),--pretrained "$(PRETRAINED)") $(if $(OUT),--out "$(OUT)")

train-ast: setup  ## PETL for AST: pre-trained tiny AST on real Debian speech, methods compared on digits (DATA=, MODEL=, OUT=)
	$(UV) run --all-packages --locked adapterlab-ast sweep \
		$(if $(DATA),--data "$(DATA)") $(if $(MODEL),--model "$(MODEL)") $(if $(OUT),--out "$(OUT)")

train-vl: setup  ## p-adapter on BLIP: pre-train a tiny BLIP, sweep methods on VQA + captioning (DATA=, OUT=)
	$(UV) run --all-packages --locked adapterlab-vl sweep \
		$(if $(DATA),--data "$(DATA)") $(if $(OUT),--out "$(OUT)")

train-vl-multitask: setup  ## VL-Adapter on BLIP: VQA + captioning in one model, per-task/shared adapters, Hyperformer, Compacter, prompt, full (DATA=, OUT=)
	$(UV) run --all-packages --locked adapterlab-vl multitask \
		$(if $(DATA),--data "$(DATA)") $(if $(OUT),--out "$(OUT)")

train-graphadapter: setup  ## GraphAdapter: WordNet TAG + SmolLM2-135M, pre-train, fine-tune, baselines (DATA=, MODEL=, OUT=)
	$(UV) run --all-packages --locked adapterlab-graph run-all \
		$(if $(DATA),--data "$(DATA)") $(if $(MODEL),--model "$(MODEL)") --out "$(if $(OUT),$(OUT),runs/graphadapter-$$(date +%Y%m%d-%H%M%S))"

train-code: setup  ## CodeBERTER: TTC NER adapters + summarization variants on the CPython stdlib (MODEL=, OUT=)
	$(UV) run --all-packages --locked adapterlab-code run-all \
		$(if $(MODEL),--model "$(MODEL)") $(if $(OUT),--out "$(OUT)")

train-text: setup  ## language adaptation: seq_bn vs seq_bn_inv vs LoRA by MLM on WordNet text, MiniLM, 3 seeds (MODEL=, DATA=, OUT=)
	$(UV) run --all-packages --locked adapterlab-text run-all \
		$(if $(MODEL),--model "$(MODEL)") $(if $(DATA),--data "$(DATA)") $(if $(OUT),--out "$(OUT)")

train-llm: setup  ## LLM adapters on SmolLM2-135M: LLM-Adapters methods, Trans-LoRA to Gemma 3 270M, Generative Adapter (OUT=)
	$(UV) run --all-packages --locked adapterlab-llm run-all $(if $(OUT),--out "$(OUT)")

bench: bench-core bench-render bench-clip2point bench-audio bench-vl bench-graph bench-code bench-llm  ## all benchmarks

bench-core: setup  ## core: LoRA vs PEFT, bottleneck vs AdapterHub, adapter vs full FT, MoSA/low-bit
	$(UV) run --all-packages --locked python bench/bench_core.py

bench-render: setup  ## pointclip: batched depth renderer vs per-view loop, render vs encoder time
	$(UV) run --all-packages --locked python bench/bench_render.py

bench-clip2point: setup  ## pointclip: ViT-B/32 CLIP2Point pre-training, retrieval before/after (GPU: 300 steps; CPU: 12)
	$(UV) run --all-packages --locked python bench/bench_clip2point.py

bench-audio: setup  ## audio: batched fbank vs ASTFeatureExtractor per clip
	$(UV) run --all-packages --locked python bench/bench_audio.py

bench-vl: setup  ## vl: p-adapter vs adapter vs LoRA step time / peak memory at BLIP-base size; cross-attn pooling
	$(UV) run --all-packages --locked python bench/bench_vl.py

bench-graph: setup  ## graph: LLM cache throughput/memory vs nodes, GraphAdapter vs LoRA step time
	$(UV) run --all-packages --locked python bench/bench_graph.py

bench-code: setup  ## code: preprocessing 1 proc vs all cores; TTC step time/memory vs full FT
	$(UV) run --all-packages --locked python bench/bench_code.py

bench-llm: setup  ## llm: series/parallel/LoRA/prefix vs full FT at 8x1024 tokens; Generative Adapter vs a 4k-token prompt
	$(UV) run --all-packages --locked python bench/bench_llm.py
