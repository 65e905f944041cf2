#!/usr/bin/env bash
# Runs on the GPU machine (or any machine with python3 + torch): LoRA SFT and DPO steps on the
# Qwen2.5-0.5B shape (random weights) through PrefLoop's trainer on this machine's own libtorch,
# then the same steps through PEFT + PyTorch, and prints tokens/s, peak memory and the loss
# difference per step.
#
#   ./run.sh [MODEL] [SEQ] [SFT_BATCH] [DPO_PAIRS] [STEPS] [LR]
#   defaults: qwen2.5-0.5b 512 4 2 5 1e-4; MODEL may be a Hugging Face directory (the demo model)
#
# Environment: PYTHON (python3), DEVICE (gpu when torch sees CUDA, else cpu), OUT (./out),
# JOBS (parallel compiler jobs for the one-time JNI build, 1), REFERENCE_DTYPES (float32, plus
# bfloat16 on CUDA: the base in bf16 with float32 adapters, as PEFT + TRL's bf16: true).
set -euo pipefail
KIT=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
MODEL=${1:-qwen2.5-0.5b}; SEQ=${2:-512}; SFT_BATCH=${3:-4}; DPO_PAIRS=${4:-2}; STEPS=${5:-5}; LR=${6:-1e-4}
OUT=$(mkdir -p "${OUT:-$PWD/out}" && cd "${OUT:-$PWD/out}" && pwd)
[[ -d "$MODEL" ]] && MODEL=$(cd "$MODEL" && pwd)
cuda=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))')
DEVICE=${DEVICE:-$([[ $cuda == 1 ]] && echo gpu || echo cpu)}
TORCH_DEVICE=$([[ $DEVICE == gpu ]] && echo cuda || echo cpu)
REFERENCE_DTYPES=${REFERENCE_DTYPES:-$([[ $DEVICE == gpu ]] && echo "float32 bfloat16" || echo float32)}

# 1. A libdjl_torch.so for this torch, built once.
want=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
if [[ ! -f "$KIT/jni/libdjl_torch.so" || ! -f "$KIT/jni/torch.env" ]] || ! grep -qx "TORCH_VERSION=$want" "$KIT/jni/torch.env"; then
  "$KIT/build-jni.sh" "$KIT" "$PY"
fi
# shellcheck disable=SC1091
source "$KIT/jni/torch.env"

# 2. Point DJL at this torch. LibUtils: PYTORCH_LIBRARY_PATH names libtorch's directory, and the
# JNI library is looked up as ENGINE_CACHE_DIR/pytorch/VERSION-FLAVOR-CLASSIFIER/DJLVERSION-libdjl_torch.so
# with VERSION and FLAVOR from PYTORCH_VERSION / PYTORCH_FLAVOR (a "cu" flavor makes DJL load
# libtorch_cuda and c10_cuda). pip's torch/lib also holds test libraries DJL would load: excluded.
export PYTORCH_LIBRARY_PATH=$TORCH_LIB PYTORCH_VERSION=$TORCH_VERSION PYTORCH_FLAVOR=$TORCH_FLAVOR
export ENGINE_CACHE_DIR=$KIT/cache DJL_CACHE_DIR=$KIT/cache
jni_dir="$ENGINE_CACHE_DIR/pytorch/$TORCH_VERSION-$TORCH_FLAVOR-linux-x86_64"
mkdir -p "$jni_dir" && cp "$KIT/jni/libdjl_torch.so" "$jni_dir/0.36.0-libdjl_torch.so"
export PYTORCH_LIBRARY_EXCLUSION=$(cd "$TORCH_LIB" && ls | grep -E 'test|aoti_custom_ops|backend_with_compiler|torch_python' | paste -sd, -)

# DJL counts GPUs through libcudart (JNA's "cudart"); pip keeps it under nvidia/cuda_runtime/lib.
cudart=$("$PY" - <<'PY'
import glob, os, site, torch
dirs = [os.path.join(os.path.dirname(torch.__file__), "lib")] + [os.path.join(p, "nvidia", "cuda_runtime", "lib") for p in site.getsitepackages()]
print(next((d for d in dirs if glob.glob(os.path.join(d, "libcudart.so*"))), ""))
PY
)
JAVA_OPTS="${JAVA_OPTS:-} ${cudart:+-Djna.library.path=$cudart}"

# 3. Peak GPU memory of a process as nvidia-smi sees it (context + allocator cache), both sides alike.
watch_gpu() { # PID FILE
  local peak=0 used
  while kill -0 "$1" 2>/dev/null; do
    used=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null | awk -F', ' -v p="$1" '$1==p {print $2}')
    [[ -n "$used" && "$used" -gt "$peak" ]] && peak=$used && echo "$peak" > "$2"
    sleep 0.2
  done
}
run_watched() { # NAME CMD...
  local name=$1; shift
  "$@" &
  local pid=$!
  if [[ $DEVICE == gpu ]] && command -v nvidia-smi >/dev/null; then watch_gpu "$pid" "$OUT/$name.gpu-peak-mib" & fi
  wait "$pid"
}

echo "== PrefLoop (DJL 0.36 on torch $TORCH_VERSION, $TORCH_FLAVOR), $MODEL, $DEVICE, $SEQ tokens, SFT batch $SFT_BATCH, DPO $DPO_PAIRS pairs, $STEPS steps"
run_watched prefloop "$KIT/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -Dai.djl.offline=true ${JAVA_OPTS:-} -cp "$KIT/classes:$KIT/lib/*" \
  org.prefloop.train.KitTrainingRun "$MODEL" "$OUT" "$DEVICE" "$SEQ" "$SFT_BATCH" "$DPO_PAIRS" "$STEPS" "$LR"

for dtype in $REFERENCE_DTYPES; do
  echo "== PEFT + PyTorch $("$PY" -c 'import torch; print(torch.__version__)'), base in $dtype"
  run_watched "peft-$dtype" "$PY" "$KIT/python/kit_reference.py" "$OUT" "$TORCH_DEVICE" "$dtype"
done
# TRL's own trainers on the same checkpoint and shapes (random-letter text of SEQ tokens): tokens/s only
model_dir=$MODEL
[[ -d "$OUT/model-$MODEL" ]] && model_dir="$OUT/model-$MODEL"
if "$PY" -c 'import trl, datasets' 2>/dev/null; then
  for dtype in $REFERENCE_DTYPES; do
    echo "== TRL $("$PY" -c 'import trl; print(trl.__version__)') SFTTrainer/DPOTrainer + PEFT, $dtype"
    run_watched "trl-$dtype" "$PY" "$KIT/python/trl_bench.py" "$model_dir" "$(nproc)" "$SEQ" "$SFT_BATCH" "$DPO_PAIRS" "$STEPS" "$TORCH_DEVICE" "$dtype" \
      | grep '^{"stage"' | tee "$OUT/trl-$dtype.jsonl" || echo "TRL run failed (above)"
  done
else
  echo "TRL comparison skipped: $PY has no trl or datasets"
fi
"$PY" "$KIT/compare.py" "$OUT" $REFERENCE_DTYPES
