#!/bin/bash
# hdh-spark's entrypoint: the Spark processes of a project's session on Kubernetes, one per
# pod, and nothing else (any other command is refused, so the image is no general-purpose
# container). The driver is the project's own pod (hdh-base); it never creates pods.
#
#   master    Spark's standalone master, made by the hub in the project's namespace:
#             binds HDH_POD_IP:HDH_SPARK_PORT (7077).
#   worker    a standalone worker, made by the hub: binds HDH_POD_IP:HDH_SPARK_PORT (7080),
#             registers with HDH_SPARK_MASTER_URL (spark://IP:7077), offers HDH_SPARK_CORES
#             and HDH_SPARK_MEMORY (8g) to executors, which it starts as child JVMs; its work
#             folder is under the temporary folder.
#   executor  an executor of Spark's own Kubernetes scheduler (settings in SPARK_*).
#
# master and worker authenticate every connection with the secret in _SPARK_AUTH_SECRET
# (Spark's SecurityManager reads it there; it never appears on a command line) and encrypt
# RPC with it (spark.network.crypto). No DNS in a pod: everything is by address
# (SPARK_LOCAL_IP, SPARK_LOCAL_HOSTNAME). The temporary folder is TMPDIR, else /tmp (the
# root filesystem is read-only). The daemons' heap is SPARK_DAEMON_MEMORY (512m); their web
# UIs listen on HDH_SPARK_WEBUI_PORT (8080 for the master, 8081 for a worker), which no
# NetworkPolicy opens.
set -euo pipefail

if [ "$#" -ne 1 ] || { [ "$1" != executor ] && [ "$1" != master ] && [ "$1" != worker ]; }; then
  echo "hdh-spark runs Spark's master, workers and executors only (argument: master, worker or executor)" >&2
  exit 64
fi
role=$1
if [ "$role" != executor ]; then
  if [ -z "${_SPARK_AUTH_SECRET:-}" ]; then
    echo "hdh-spark: no _SPARK_AUTH_SECRET; a $role never runs without authentication" >&2
    exit 64
  fi
  : "${HDH_POD_IP:?}" "${HDH_SPARK_PORT:?}"
fi

# no empty entry: Java would read it as the working folder
classpath="${SPARK_CONF_DIR:-$SPARK_HOME/conf}:${SPARK_HOME}/jars/*"
for extra in "${SPARK_CLASSPATH:-}" "${SPARK_EXTRA_CLASSPATH:-}"; do
  if [ -n "$extra" ]; then
    classpath="$classpath:$extra"
  fi
done

if [ "$role" = executor ]; then
  # SPARK_JAVA_OPT_0, _1, ...: the executor's JVM options, in their order
  mapfile -t java_opts < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/^[^=]*=//')
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
fi

tmp="${TMPDIR:-/tmp}"
# the worker passes its own environment to the executors it starts: the same address
export SPARK_LOCAL_IP="$HDH_POD_IP" SPARK_LOCAL_HOSTNAME="$HDH_POD_IP" MALLOC_ARENA_MAX=2
# the worker's launcher finds the jars by Spark's Scala version (Spark 4: 2.13 only)
export SPARK_SCALA_VERSION="${SPARK_SCALA_VERSION:-2.13}"
daemon_opts=(
  "-Xms${SPARK_DAEMON_MEMORY:-512m}" "-Xmx${SPARK_DAEMON_MEMORY:-512m}"
  "-Djava.io.tmpdir=$tmp" -XX:+ExitOnOutOfMemoryError
  -Dspark.authenticate=true
  -Dspark.network.crypto.enabled=true
  -Dspark.network.crypto.saslFallback=false
  -Dspark.ui.killEnabled=false
  -Dspark.master.rest.enabled=false
)

if [ "$role" = master ]; then
  exec "$JAVA_HOME/bin/java" "${daemon_opts[@]}" -cp "$classpath" \
    org.apache.spark.deploy.master.Master \
    --host "$HDH_POD_IP" --port "$HDH_SPARK_PORT" \
    --webui-port "${HDH_SPARK_WEBUI_PORT:-8080}"
fi

mkdir -p "$tmp/spark-work"
exec "$JAVA_HOME/bin/java" "${daemon_opts[@]}" "-Dspark.local.dir=$tmp/spark-local" \
  -cp "$classpath" \
  org.apache.spark.deploy.worker.Worker \
  --host "$HDH_POD_IP" --port "$HDH_SPARK_PORT" \
  --webui-port "${HDH_SPARK_WEBUI_PORT:-8081}" \
  --cores "${HDH_SPARK_CORES:?}" --memory "${HDH_SPARK_MEMORY:?}" \
  --work-dir "$tmp/spark-work" \
  "${HDH_SPARK_MASTER_URL:?}"
