#!/usr/bin/env bash
# Packs the GPU kit: what PrefLoop's trainer needs on a machine that has Python's PyTorch but no
# JDK, no Maven and no network. Run from the repository root after `./mvnw -B -o -q test-compile`:
#
#   gpu/pack.sh            -> target/gpu-kit/ and target/prefloop-gpu-kit.tar.gz (at most 60 MiB)
#
# The kit holds a jlink'ed Java runtime with the modules jdeps finds, the jars the trainer core
# uses (DJL api and PyTorch engine, Jackson, Gson, SLF4J, JNA), PrefLoop's model/lora/train classes
# and the kit's run class, DJL 0.36's JNI sources to build libdjl_torch.so against the target's
# own torch (gpu/build-jni.sh), the Python reference scripts and gpu/run.sh. No libtorch: the
# target's pip wheel is the libtorch.
#
# DJL's JNI sources are not part of this repository: they come from a DJL v0.36.0 source tree,
# DJL_SOURCE (a git checkout at tag v0.36.0, or the unpacked release tarball); without it the
# tarball is downloaded from GitHub.
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
KIT=target/gpu-kit
LIMIT=$((60 * 1024 * 1024))

DJL_TAG=v0.36.0
# DJL's JNI C++ sources, its shared utils.h and license, and the JNI header javac -h generates from
# its PyTorchLibrary (compiled against the engine jar already on the kit's classpath).
djl_jni_sources() { # DIR
  local src=${DJL_SOURCE:-} native=engines/pytorch/pytorch-native/src/main/native
  if [[ -z "$src" ]]; then
    src=target/djl-$DJL_TAG
    if [[ ! -d "$src" ]]; then
      mkdir -p "$src"
      curl -fsSL "https://github.com/deepjavalibrary/djl/archive/refs/tags/$DJL_TAG.tar.gz" | tar -xz -C "$src" --strip-components=1 ||
        { echo "pack: cannot download DJL $DJL_TAG's sources; set DJL_SOURCE to a DJL $DJL_TAG source tree" >&2; rm -rf "$src"; exit 1; }
    fi
  fi
  [[ -f "$src/$native/djl_pytorch_utils.h" ]] || { echo "pack: $src has no $native (DJL_SOURCE must be a DJL $DJL_TAG source tree)" >&2; exit 1; }
  mkdir -p "$1/djl" "$1/include" target/gpu-kit-javah
  cp "$src/$native"/*.cc "$src/$native"/*.h "$1/"
  cp "$src/api/src/main/native/djl/utils.h" "$1/djl/"
  cp "$src/LICENSE" "$1/LICENSE"
  "$JAVA_HOME/bin/javac" -h "$1/include" -d target/gpu-kit-javah -cp "$(cat target/gpu-kit-cp.txt)" \
    "$src/engines/pytorch/pytorch-engine/src/main/java/ai/djl/pytorch/jni/PyTorchLibrary.java"
}

# Temurin 25 ships no jmods/ and is not built for linking from its run-time image, so jlink has
# nothing to link from: rebuild the few jmods needed from the image (lib/modules via jimage, each
# module's native libraries, commands, configuration, headers and legal notices), with java.base's
# record of the original jmods' hashes dropped.
jmods_from_runtime() { # MODULES DIR
  local work=target/gpu-kit-jimage m
  rm -rf "$work" "$2" && mkdir -p "$2" "$work"
  "$JAVA_HOME/bin/jimage" extract --dir "$work/classes" --include "regex:/($(echo "$1" | sed 's/\./\\./g; s/,/|/g'))/.*" "$JAVA_HOME/lib/modules"
  "$JAVA_HOME/bin/java" gpu/StripModuleHashes.java "$work/classes/java.base/module-info.class"
  # what jlink generated into the image describes all of the JDK's modules: its system-modules
  # plugin writes it again for this set (the method-handle species it generated are kept, and its
  # generate-jli-classes plugin is disabled below)
  rm -f "$work/classes/java.base/jdk/internal/module/SystemModules\$"*.class
  mkdir -p "$work/base/lib/server" "$work/base/lib/security" "$work/base/bin" "$work/base/conf"
  (cd "$JAVA_HOME/lib" && cp classlist jexec jrt-fs.jar jspawnhelper jvm.cfg tzdb.dat libjava.so libjimage.so libjli.so libjsig.so \
    libnet.so libnio.so libverify.so libzip.so libsimdsort.so libsyslookup.so "$OLDPWD/$work/base/lib/")
  cp "$JAVA_HOME/lib/server/libjvm.so" "$JAVA_HOME/lib/server/libjsig.so" "$work/base/lib/server/"  # no CDS archives: 15 MiB each
  cp -r "$JAVA_HOME/lib/security/." "$work/base/lib/security/"
  cp "$JAVA_HOME/bin/java" "$work/base/bin/"
  cp -r "$JAVA_HOME/conf/security" "$JAVA_HOME/conf/net.properties" "$work/base/conf/"
  "$JAVA_HOME/bin/jmod" create --class-path "$work/classes/java.base" --libs "$work/base/lib" --cmds "$work/base/bin" \
    --config "$work/base/conf" --header-files "$JAVA_HOME/include" --legal-notices "$JAVA_HOME/legal/java.base" "$2/java.base.jmod"
  for m in ${1//,/ }; do
    [[ $m == java.base ]] && continue
    local extra=()
    [[ $m == java.management ]] && mkdir -p "$work/$m" && cp "$JAVA_HOME/lib/libmanagement.so" "$work/$m/" && extra=(--libs "$work/$m")
    [[ $m == jdk.incubator.vector ]] && mkdir -p "$work/$m" && cp "$JAVA_HOME/lib/libjsvml.so" "$work/$m/" && extra=(--libs "$work/$m")
    [[ $m == java.logging ]] && mkdir -p "$work/$m-conf" && cp "$JAVA_HOME/conf/logging.properties" "$work/$m-conf/" && extra+=(--config "$work/$m-conf")
    "$JAVA_HOME/bin/jmod" create --class-path "$work/classes/$m" "${extra[@]}" --legal-notices "$JAVA_HOME/legal/$m" "$2/$m.jmod"
  done
}

[[ -f target/test-classes/org/prefloop/train/KitTrainingRun.class ]] || {
  echo "pack: build first: ./mvnw -B -o -q test-compile -DskipNpm=true" >&2; exit 2; }
# the runtime classpath (exec-maven-plugin is cached for the offline build; maven-dependency-plugin is not)
./mvnw -B -o -q org.codehaus.mojo:exec-maven-plugin:3.5.0:exec -Dexec.executable=sh \
  "-Dexec.args=-c 'echo %classpath > target/gpu-kit-cp.txt'" -Dexec.classpathScope=runtime
rm -rf "$KIT" && mkdir -p "$KIT"/{lib,classes,jni,python}

# The core's third-party jars (ArchitectureTest keeps model/lora/train to DJL, Jackson and Gson).
tr ':' '\n' < target/gpu-kit-cp.txt | grep -E '/(api|pytorch-engine)-0\.36\.0\.jar$|/jackson-(core|databind|annotations)-[0-9.]+\.jar$|/gson-[0-9.]+\.jar$|/slf4j-api-[0-9.]+\.jar$|/jna-[0-9.]+\.jar$' \
  | while read -r jar; do cp "$jar" "$KIT/lib/"; done

for pkg in model lora train; do
  mkdir -p "$KIT/classes/org/prefloop/$pkg"
  cp -r target/classes/org/prefloop/$pkg/. "$KIT/classes/org/prefloop/$pkg/"
done
rm -rf "$KIT/classes/org/prefloop/train/cli"
# the kit's run class and the benchmark shapes it borrows
cp target/test-classes/org/prefloop/train/{KitTrainingRun,MemoryEstimateBenchmark,TrainingBenchmark,Python}*.class "$KIT/classes/org/prefloop/train/"

# jdeps also names java.desktop (DJL's image classes), java.compiler and java.sql (optional in
# Jackson): none is loaded by training, so they stay out; jdk.unsupported (sun.misc.Unsafe) and
# jdk.incubator.vector (the JVM flag PrefLoop runs with) go in.
found=$("$JAVA_HOME/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps "$KIT/classes" "$KIT"/lib/*.jar 2>/dev/null | tail -1)
echo "pack: jdeps: $found"
modules=$(echo "$found,jdk.unsupported,jdk.incubator.vector" | tr ',' '\n' | grep -vxE 'java\.desktop|java\.compiler|java\.sql' | sort -u | paste -sd, -)
jmods=$JAVA_HOME/jmods
[[ -d "$jmods" ]] || { jmods=target/gpu-kit-jmods; jmods_from_runtime "$modules" "$jmods"; }
echo "pack: jlink $modules"
"$JAVA_HOME/bin/jlink" --module-path "$jmods" --add-modules "$modules" --strip-debug --no-man-pages --compress=zip-9 \
  $([[ $jmods == "$JAVA_HOME/jmods" ]] || echo --disable-plugin generate-jli-classes) --output "$KIT/jre"

djl_jni_sources "$KIT/jni/src"
# DJL's own JNI builds for libtorch 2.7.1 (build-jni.sh uses them when the target has exactly that torch)
jni_jar=$(tr ':' '\n' < target/gpu-kit-cp.txt | grep -E '/pytorch-jni-2\.7\.1-0\.36\.0\.jar$')
for flavor in cpu cu128; do
  mkdir -p "$KIT/jni/prebuilt-2.7.1/$flavor"
  unzip -q -j "$jni_jar" "jnilib/linux-x86_64/$flavor/libdjl_torch.so" -d "$KIT/jni/prebuilt-2.7.1/$flavor"
done
cp gpu/build-jni.sh gpu/run.sh gpu/compare.py gpu/README.md "$KIT/"
cp src/test/python/{kit_reference.py,trl_bench.py,gpu_train_reference.py} "$KIT/python/"
git rev-parse HEAD > "$KIT/COMMIT" 2>/dev/null || true

tar -C target -czf target/prefloop-gpu-kit.tar.gz gpu-kit
size=$(stat -c %s target/prefloop-gpu-kit.tar.gz)
echo "pack: target/prefloop-gpu-kit.tar.gz $((size / 1024 / 1024)) MiB ($(du -sh "$KIT" | cut -f1) unpacked; jre $(du -sh "$KIT/jre" | cut -f1), jars $(du -sh "$KIT/lib" | cut -f1))"
((size <= LIMIT)) || { echo "pack: the kit is over 60 MiB" >&2; exit 1; }
