#!/usr/bin/env bash
# Builds DJL 0.36's JNI library (libdjl_torch.so) against the PyTorch that pip installed on this
# machine, so that PrefLoop's trainer runs on that libtorch (CPU or CUDA) with no download.
#
#   build-jni.sh KIT_DIR [PYTHON]
#
# Needs: g++ (C++17), the kit's JRE (for jni.h), and a python with torch (headers and libraries
# ship in the wheel). No cmake, no CUDA toolkit: DJL's USE_CUDA code only adds a separate
# inference stream and emptyCache, which training does not use; CUDA kernels come from
# libtorch_cuda.so, which DJL loads itself when PYTORCH_FLAVOR starts with "cu".
# Writes KIT_DIR/jni/libdjl_torch.so and KIT_DIR/jni/torch.env (what run.sh needs to point DJL at it).
set -euo pipefail
KIT=$(cd "${1:?usage: build-jni.sh KIT_DIR [PYTHON]}" && pwd)
PY=${2:-python3}
JOBS=${JOBS:-1}

missing=()
command -v g++ >/dev/null || missing+=("g++ (a C++17 compiler)")
"$PY" -c 'import torch' 2>/dev/null || missing+=("torch for $PY")
[[ -f "$KIT/jre/include/jni.h" ]] || missing+=("$KIT/jre/include/jni.h (the kit's JRE)")
if ((${#missing[@]})); then
  echo "build-jni: cannot build libdjl_torch.so: missing ${missing[*]}" >&2
  exit 3
fi

eval "$("$PY" - <<'PY'
import os, torch
d = os.path.dirname(torch.__file__)
print(f"TORCH_DIR={d}")
print(f"TORCH_VERSION={torch.__version__.split('+')[0]}")
print(f"CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}")
print(f"CUDA={torch.version.cuda or ''}")
PY
)"
flavor=cpu
[[ -n "$CUDA" ]] && flavor="cu${CUDA//./}"
write_env() {
  cat > "$KIT/jni/torch.env" <<ENV
TORCH_LIB=$TORCH_DIR/lib
TORCH_VERSION=$TORCH_VERSION
TORCH_FLAVOR=$flavor
ENV
}
# DJL's own JNI builds (Maven Central's pytorch-jni jar: cpu and cu128) fit libtorch 2.7.1 only;
# for any other torch their C++ symbols do not resolve (against 2.13: 7 missing), so build.
prebuilt="$KIT/jni/prebuilt-2.7.1/${flavor/cu12[0-9]/cu128}/libdjl_torch.so"
if [[ "$TORCH_VERSION" == 2.7.1 && -f "$prebuilt" && ( $flavor == cpu || $flavor == cu12* ) ]]; then
  cp "$prebuilt" "$KIT/jni/libdjl_torch.so"
  write_env
  echo "build-jni: torch 2.7.1 ($flavor): DJL's prebuilt $(basename "$(dirname "$prebuilt")") JNI library fits, nothing to build"
  exit 0
fi

SRC="$KIT/jni/src"
OUT="$KIT/jni/build-$TORCH_VERSION"
mkdir -p "$OUT"
FLAGS=(-std=c++17 -O2 -fPIC -w -D_GLIBCXX_USE_CXX11_ABI="$CXX11_ABI"
  -I"$SRC" -I"$SRC/include" -I"$KIT/jre/include" -I"$KIT/jre/include/linux"
  -I"$TORCH_DIR/include" -I"$TORCH_DIR/include/torch/csrc/api/include")
# Every source file includes torch's headers, which take most of the compile time: parse them
# once into a precompiled header that g++ picks up for the forced include.
if [[ ! -f "$OUT/torch_pch.h.gch" ]]; then
  printf '#include <torch/torch.h>\n#include <torch/script.h>\n' > "$OUT/torch_pch.h"
  echo "  precompiling torch's headers"
  g++ "${FLAGS[@]}" -x c++-header "$OUT/torch_pch.h" -o "$OUT/torch_pch.h.gch"
fi
FLAGS+=(-include "$OUT/torch_pch.h" -Winvalid-pch)
echo "build-jni: DJL 0.36 JNI against torch $TORCH_VERSION (${CUDA:+CUDA $CUDA}${CUDA:-CPU}) in $TORCH_DIR, g++ $(g++ -dumpversion), $JOBS job(s)"
objs=() pids=()
for cc in "$SRC"/*.cc; do
  o="$OUT/$(basename "${cc%.cc}").o"
  objs+=("$o")
  [[ -f "$o" && "$o" -nt "$cc" ]] && continue
  echo "  compiling $(basename "$cc")"
  g++ "${FLAGS[@]}" -c "$cc" -o "$o" &
  pids+=($!)
  while (($(jobs -rp | wc -l) >= JOBS)); do sleep 1; done
done
for pid in "${pids[@]}"; do wait "$pid" || { echo "build-jni: a source file did not compile against torch $TORCH_VERSION (above)" >&2; exit 4; }; done
libs=(-ltorch -ltorch_cpu -lc10)
[[ -f "$TORCH_DIR/lib/libtorch_cuda.so" ]] && libs+=(-ltorch_cuda -lc10_cuda)
g++ -shared -o "$KIT/jni/libdjl_torch.so" "${objs[@]}" -L"$TORCH_DIR/lib" -Wl,--no-as-needed "${libs[@]}" -Wl,-rpath,"$TORCH_DIR/lib"
write_env
echo "build-jni: wrote $KIT/jni/libdjl_torch.so (torch $TORCH_VERSION, flavor $flavor)"
