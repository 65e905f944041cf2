# Finds a Java 21+ installation and exports JAVA_HOME; sourced (POSIX sh) by ./mvnw and ./prefloop,
# so that the README's commands work on a machine whose default `java` is older.
#
# Usage: . .mvn/find-jdk.sh; find_jdk <caller name> <tool: javac to build, java to run>
# Looks, in this order, at: $JAVA_HOME; the system's JVM directory (/usr/lib/jvm/*); SDKMAN
# (~/.sdkman/candidates/java/*); `java` on PATH. Within a directory the newest wins. When none is
# 21 or newer it prints one line saying what to install and exits 1.
# PREFLOOP_JDK_DIRS (space-separated) replaces the two directories searched; the tests use it.

# The major version of the Java home $1 (0 when unknown), from its `release` file or `java -version`.
_find_jdk_major() {
  _fj_v=
  if [ -r "$1/release" ]; then
    _fj_v=$(sed -n 's/^JAVA_VERSION="\([0-9][0-9]*\).*/\1/p' "$1/release")
  fi
  if [ -z "$_fj_v" ]; then
    _fj_out=$("$1/bin/java" -version 2>&1) || _fj_out=
    _fj_v=$(printf '%s\n' "$_fj_out" | sed -n 's/.* version "\([0-9][0-9]*\).*/\1/p')
  fi
  _fj_v=$(printf '%s\n' "$_fj_v" | sed -n '1p')
  # Java 8 and older say 1.x: the major is then below 21 anyway.
  echo "${_fj_v:-0}"
}

# Whether $1 is a Java home of version 21+ that has the tool $2.
_find_jdk_ok() {
  [ -n "$1" ] && [ -x "$1/bin/java" ] && [ -x "$1/bin/$2" ] && [ "$(_find_jdk_major "$1")" -ge 21 ]
}

find_jdk() {
  _fj_who=$1 _fj_tool=$2
  if [ -n "${JAVA_HOME:-}" ] && _find_jdk_ok "$JAVA_HOME" "$_fj_tool"; then
    export JAVA_HOME
    return 0
  fi
  # mvnw runs with globbing off (set -f); switch it on here and back afterwards.
  case $- in *f*) _fj_noglob=1 ;; *) _fj_noglob= ;; esac
  set +f
  _fj_found=
  for _fj_dir in ${PREFLOOP_JDK_DIRS:-/usr/lib/jvm "${SDKMAN_CANDIDATES_DIR:-${HOME:-}/.sdkman/candidates}/java"}; do
    _fj_best= _fj_best_v=0
    for _fj_home in "$_fj_dir"/*; do
      if _find_jdk_ok "$_fj_home" "$_fj_tool"; then
        _fj_home_v=$(_find_jdk_major "$_fj_home")
        if [ "$_fj_home_v" -gt "$_fj_best_v" ]; then _fj_best=$_fj_home _fj_best_v=$_fj_home_v; fi
      fi
    done
    if [ -n "$_fj_best" ]; then _fj_found=$_fj_best; break; fi
  done
  [ -z "$_fj_noglob" ] || set -f
  if [ -z "$_fj_found" ] && _fj_java=$(command -v java 2>/dev/null); then
    # /usr/bin/java is usually a chain of links into the Java home's bin/.
    _fj_java=$(readlink -f "$_fj_java" 2>/dev/null || echo "$_fj_java")
    _fj_home=$(dirname "$(dirname "$_fj_java")")
    if _find_jdk_ok "$_fj_home" "$_fj_tool"; then _fj_found=$_fj_home; fi
  fi
  if [ -z "$_fj_found" ]; then
    echo "$_fj_who: needs a JDK 21 or newer and found none (JAVA_HOME, /usr/lib/jvm, ~/.sdkman, java on PATH); install one, e.g. 'apt-get install openjdk-21-jdk' or 'sdk install java 21-tem', or set JAVA_HOME to it" >&2
    exit 1
  fi
  JAVA_HOME=$_fj_found
  export JAVA_HOME
}
