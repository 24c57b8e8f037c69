#!/usr/bin/env bash
# Writes Strimzi 0.47.0's CustomResourceDefinitions for Kafka, KafkaNodePool and KafkaTopic into
# DIR, from Maven Central alone: Strimzi's CRD generator (io.strimzi:crd-generator) run on the
# model classes of the operator's API (io.strimzi:api:0.47.0), with the arguments api-0.47.0.pom
# gives it for the CRDs the operator installs (its executions generate-crd-co-install-v1 and
# generate-crd-co-install-v1-eo). Needs Maven and Java 21 or newer (set JAVA to pick one).
#
#     infra/k8s/schemas/strimzi-crds.sh DIR
set -euo pipefail

STRIMZI_API=io.strimzi:api:0.47.0
CRD_GENERATOR=io.strimzi:crd-generator:1.2.0
JAVA=${JAVA:-java}

out=${1:?usage: strimzi-crds.sh DIR}
version=$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
if [ "${version%%.*}" -lt 21 ]; then
    echo "Strimzi's CRD generator needs Java 21 or newer; $JAVA is $version (set JAVA)" >&2
    exit 2
fi

mkdir -p "$out"
jars=$(mktemp -d)
trap 'rm -rf "$jars"' EXIT

for artifact in "$STRIMZI_API" "$CRD_GENERATOR"; do
    mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$artifact" -DoutputDirectory="$jars" >&2
done

generate() {
    "$JAVA" -cp "$jars/*" io.strimzi.crdgenerator.CrdGenerator \
        --label app:strimzi --label strimzi.io/crd-install:true --target-kube 1.16+ \
        --crd-api-version v1 --storage-version v1beta2 --yaml "$@"
}
generate --api-versions v1beta2 \
    "io.strimzi.api.kafka.model.kafka.Kafka=$out/040-Crd-kafka.yaml" \
    "io.strimzi.api.kafka.model.nodepool.KafkaNodePool=$out/045-Crd-kafkanodepool.yaml"
generate --api-versions v1alpha1,v1beta1,v1beta2 \
    "io.strimzi.api.kafka.model.topic.KafkaTopic=$out/043-Crd-kafkatopic.yaml"
ls "$out"/04?-Crd-*.yaml
