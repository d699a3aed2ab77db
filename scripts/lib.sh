# SPDX-License-Identifier: Apache-2.0
# Shared by the scripts in this folder: finds a JDK >= 21 and Maven, then runs Maven with it.
# Sourced, not executed.

# java_major JAVA_BIN -> prints the feature version (17, 21, 25, ...) or nothing.
java_major() {
  "$1" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \([0-9][0-9]*\).*/\1/p' | head -n 1
}

# find_jdk: sets JAVA_HOME to a JDK >= 21: $JAVA_HOME if it is one, else the newest under /usr/lib/jvm.
find_jdk() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/javac" ]; then
    v=$(java_major "$JAVA_HOME/bin/java")
    if [ -n "$v" ] && [ "$v" -ge 21 ]; then
      export JAVA_HOME
      return 0
    fi
  fi
  best=""; best_v=0
  for d in /usr/lib/jvm/*/; do
    d=${d%/}
    [ -x "$d/bin/javac" ] || continue
    [ -L "$d" ] && continue
    v=$(java_major "$d/bin/java")
    if [ -n "$v" ] && [ "$v" -gt "$best_v" ]; then best=$d; best_v=$v; fi
  done
  if [ "$best_v" -ge 21 ]; then
    export JAVA_HOME=$best
    return 0
  fi
  echo "error: no JDK >= 21 found (JAVA_HOME=${JAVA_HOME:-unset}; newest under /usr/lib/jvm: ${best_v:-none})." >&2
  echo "       Install one (e.g. apt-get install openjdk-21-jdk-headless) or point JAVA_HOME at it." >&2
  return 1
}

# mvn_run ARGS...: runs Maven from the project root with the JDK found above: the installed mvn if there is one,
# else the Maven wrapper (./mvnw downloads the Maven version .mvn/wrapper/maven-wrapper.properties names from Maven
# Central into ~/.m2/wrapper, once).
mvn_run() {
  if command -v mvn >/dev/null 2>&1; then
    PATH="$JAVA_HOME/bin:$PATH" mvn -B -ntp "$@"
  else
    (cd "$ROOT" && JAVA_HOME="$JAVA_HOME" PATH="$JAVA_HOME/bin:$PATH" ./mvnw -B -ntp "$@")
  fi
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
