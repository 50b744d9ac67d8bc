#!/bin/bash
# hdh-spark's entrypoint: one Spark executor of a project's session. Spark on Kubernetes
# starts the executor pods of this image with the argument "executor" and their settings in
# SPARK_* variables (the driver is the project's own pod, hdh-base). Nothing else runs
# here: any other command is refused, so the image is no general-purpose container.
set -euo pipefail

if [ "$#" -ne 1 ] || [ "$1" != executor ]; then
  echo "hdh-spark runs Spark executors only (argument: executor)" >&2
  exit 64
fi

# SPARK_JAVA_OPT_0, _1, ...: the executor's JVM options, in their order
mapfile -t java_opts < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/^[^=]*=//')

# no empty entry: Java would read it as the working folder
classpath="${SPARK_CONF_DIR:-$SPARK_HOME/conf}:${SPARK_HOME}/jars/*"
for extra in "${SPARK_CLASSPATH:-}" "${SPARK_EXTRA_CLASSPATH:-}"; do
  if [ -n "$extra" ]; then
    classpath="$classpath:$extra"
  fi
done

exec "$JAVA_HOME/bin/java" \
  "${java_opts[@]}" \
  "-Xms${SPARK_EXECUTOR_MEMORY:?}" "-Xmx${SPARK_EXECUTOR_MEMORY}" \
  -cp "$classpath" \
  org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
  --driver-url "${SPARK_DRIVER_URL:?}" \
  --executor-id "${SPARK_EXECUTOR_ID:?}" \
  --cores "${SPARK_EXECUTOR_CORES:?}" \
  --app-id "${SPARK_APPLICATION_ID:?}" \
  --hostname "${SPARK_EXECUTOR_POD_IP:?}" \
  --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
  --podName "${SPARK_EXECUTOR_POD_NAME:-$HOSTNAME}"
