"""The deployments of infra/ are checked without a cluster or Docker: the Kubernetes manifests
(infra/k8s/) pass kubeconform against the Kubernetes, Strimzi and Scylla Operator schemas
vendored in infra/k8s/schemas/ (`make test` builds kubeconform), their KafkaTopics are the
topics of topics/definitions.py, their settings are Parley's own and their probes answer on a
running gateway and processor; the compose file passes the Compose Specification's schema."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from schemas.settings import Settings
from tests.stack import Process, Stack
from topics.definitions import all_topics

INFRA = Path(__file__).parent.parent / "infra"
K8S = INFRA / "k8s"
SCHEMAS = K8S / "schemas" / "{{ .ResourceKind }}{{ .KindSuffix }}.json"


def kubeconform() -> str:
    path = shutil.which("kubeconform", path=str(Path(sys.executable).parent))
    path = path or shutil.which("kubeconform")
    assert path is not None, "kubeconform is missing: `make test` builds it (make kubeconform)"
    return path


def run_kubeconform(*files: Path) -> subprocess.CompletedProcess[str]:
    """kubeconform on `files`, with the vendored schemas alone (no download), strict: a field
    a schema does not name is an error."""
    options = ["-strict", "-summary", "-schema-location", str(SCHEMAS), "-skip", "Kustomization"]
    return subprocess.run(
        [kubeconform(), *options, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def manifests() -> list[Path]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [K8S / name for name in kustomization["resources"]]


def documents() -> list[dict[str, Any]]:
    return [d for path in manifests() for d in yaml.safe_load_all(path.read_text()) if d]


def one(kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def config() -> dict[str, str]:
    data: dict[str, str] = one("ConfigMap", "parley")["data"]
    return data


def configured() -> Settings:
    """The settings every pod runs with: the ConfigMap's (the Secret's are not needed here)."""
    return Settings.model_validate(
        {key.removeprefix("PARLEY_").lower(): value for key, value in config().items()}
    )


def pod_specs() -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in documents()
        if d["kind"] in ("Deployment", "StatefulSet", "Job")
    }


def test_the_kustomization_lists_every_manifest() -> None:
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert {p.name for p in manifests()} == on_disk


def test_the_kubernetes_manifests_pass_kubeconform() -> None:
    checked = run_kubeconform(*manifests())
    out = checked.stdout + checked.stderr
    assert checked.returncode == 0, out
    # Every resource was checked against a schema: none skipped, none without one.
    found = re.search(r"(\d+) resources found .* Valid: (\d+), Invalid: 0, Errors: 0", out)
    assert found is not None, out
    assert int(found.group(1)) == int(found.group(2)) == len(documents()) >= 20


@pytest.mark.parametrize(
    ("file", "before", "after", "error"),
    [
        (
            "gateway.yaml",
            "readOnlyRootFilesystem: true",
            'readOnlyRootFilesystem: "yes"',
            "boolean",
        ),
        (
            "gateway.yaml",
            "terminationGracePeriodSeconds:",
            "terminationGracePeriod:",
            "not allowed",
        ),
        ("topics.yaml", "  replicas: 3", "  replica: 3", "'replica' not allowed"),
        ("kafka.yaml", "  roles:", "  role:", "roles"),
        ("kafka.yaml", "  jvmOptions:", "  jvmOption:", "'jvmOption' not allowed"),
        ("kafka.yaml", "  entityOperator:", "  entityOperators:", "'entityOperators' not allowed"),
        ("scylla.yaml", "members: 3", "member: 3", "'member' not allowed"),
    ],
)
def test_kubeconform_rejects_a_misspelt_or_mistyped_field(
    tmp_path: Path, file: str, before: str, after: str, error: str
) -> None:
    """The vendored schemas are strict and are the ones used: each kind's check bites."""
    text = (K8S / file).read_text()
    assert before in text
    broken = tmp_path / file
    broken.write_text(text.replace(before, after))
    checked = run_kubeconform(broken)
    assert checked.returncode == 1, checked.stdout
    assert error in checked.stdout


def test_the_kafka_topics_are_the_topic_definitions() -> None:
    settings = configured()
    kafka_topics = {d["metadata"]["name"]: d for d in documents() if d["kind"] == "KafkaTopic"}
    assert set(kafka_topics) == {t.name for t in all_topics(settings)}
    for topic in all_topics(settings):
        spec = kafka_topics[topic.name]["spec"]
        assert kafka_topics[topic.name]["metadata"]["labels"] == {"strimzi.io/cluster": "parley"}
        assert spec["partitions"] == topic.partitions, topic.name
        assert spec["replicas"] == settings.replication_factor == 3, topic.name
        # Retention, cleanup policy, segments, record size: exactly the definition's.
        assert {k: str(v) for k, v in spec["config"].items()} == topic.config, topic.name


def test_kafka_and_scylla_have_three_nodes_and_keep_an_accepted_message_through_a_loss() -> None:
    kafka = one("Kafka", "parley")
    assert kafka["metadata"]["annotations"] == {
        "strimzi.io/node-pools": "enabled",
        "strimzi.io/kraft": "enabled",
    }
    [pool] = [d for d in documents() if d["kind"] == "KafkaNodePool"]
    assert pool["metadata"]["labels"] == {"strimzi.io/cluster": "parley"}
    assert pool["spec"]["replicas"] == 3
    assert set(pool["spec"]["roles"]) == {"broker", "controller"}
    broker = kafka["spec"]["kafka"]["config"]
    assert broker["default.replication.factor"] == 3
    assert broker["min.insync.replicas"] == 2
    assert broker["offsets.topic.replication.factor"] == 3
    assert broker["transaction.state.log.min.isr"] == 2
    assert broker["auto.create.topics.enable"] is False
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    listener = kafka["spec"]["kafka"]["listeners"][0]
    assert configured().kafka_bootstrap == f"parley-kafka-bootstrap:{listener['port']}"

    scylla = one("ScyllaCluster", "parley-scylla")
    assert [r["members"] for r in scylla["spec"]["datacenter"]["racks"]] == [3]
    assert scylla["spec"]["developerMode"] is False
    assert configured().scylla_host_list() == ["parley-scylla-client"]
    assert configured().message_store == "scylla"


def test_every_configured_variable_is_a_parley_setting_and_no_secret_is_in_the_repository() -> None:
    fields = set(Settings.model_fields)
    assert {key.removeprefix("PARLEY_").lower() for key in config()} <= fields
    assert all(key.startswith("PARLEY_") for key in config())
    assert not [d for d in documents() if d["kind"] == "Secret"]
    assert "PARLEY_POSTGRES_DSN" not in config()
    for name, spec in pod_specs().items():
        for container in spec["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            assert set(env) <= {f"PARLEY_{f.upper()}" for f in fields}, name
            # The database credentials come from the Secret `parley`, never a literal.
            dsn = env["PARLEY_POSTGRES_DSN"]
            assert dsn["valueFrom"]["secretKeyRef"]["name"] == "parley", name
            assert all("value" not in e for e in env.values()), name
            assert container["envFrom"] == [{"configMapRef": {"name": "parley"}}], name


def test_every_pod_runs_unprivileged_on_a_read_only_root_with_bounded_memory() -> None:
    for name, spec in pod_specs().items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["limits"]["memory"], name
            assert container["resources"]["requests"]["cpu"], name


def test_the_gateways_and_processors_are_scaled_and_protected_from_disruption() -> None:
    autoscaler = one("HorizontalPodAutoscaler", "parley-gateway")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "parley-gateway"
    assert autoscaler["spec"]["minReplicas"] >= 2
    assert one("Deployment", "parley-processor")["spec"]["replicas"] >= 2
    for name in ("parley-gateway", "parley-processor"):
        selector = one("Deployment", name)["spec"]["selector"]
        budget = one("PodDisruptionBudget", name)["spec"]
        assert budget["selector"] == selector
        assert budget["maxUnavailable"] == 1
    service = one("Service", "parley-gateway")["spec"]
    assert (
        service["selector"]
        == one("Deployment", "parley-gateway")["spec"]["selector"]["matchLabels"]
    )


def test_a_gateway_pod_is_given_the_time_its_drain_takes() -> None:
    """SIGTERM: 0.5 s for the other gateways to read `down`, the drain, up to 5 s for uvicorn
    to stop and the producer to flush (docs/operations.md §2); Kubernetes kills after the
    grace period, which would drop the sockets not yet handed off."""
    grace = pod_specs()["parley-gateway"]["terminationGracePeriodSeconds"]
    assert grace >= 0.5 + configured().gateway_drain_s + 5 + 4


def _ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


async def test_the_probes_answer_on_a_running_gateway_and_processor(
    stack: Stack, gateway: Process
) -> None:
    settings = configured()
    [gateway_container] = pod_specs()["parley-gateway"]["containers"]
    [processor_container] = pod_specs()["parley-processor"]["containers"]
    # The ports the pods expose are the ones the processes listen on with these settings.
    assert _ports(gateway_container) == {
        "http": settings.http_port,
        "metrics": settings.metrics_port,
    }
    assert _ports(processor_container) == {"http": settings.processor_http_port}
    assert settings.metrics_host == settings.processor_http_host == "0.0.0.0"
    assert gateway_container["args"] == ["gateway", "--host", "0.0.0.0"]
    assert processor_container["args"] == ["processor"]

    # A running one: earlier tests kill processors and start others.
    processor = next(
        p for p in reversed(stack.processes) if p.role == "processor" and p.popen.poll() is None
    )
    async with httpx.AsyncClient(timeout=10) as http:
        for container, process in ((gateway_container, gateway), (processor_container, processor)):
            for probe in ("readinessProbe", "livenessProbe"):
                action = container[probe]
                if "tcpSocket" in action:
                    assert action["tcpSocket"]["port"] == "http"
                    continue
                assert action["httpGet"]["port"] == "http"
                answer = await http.get(process.url + action["httpGet"]["path"])
                assert answer.status_code == 200, (process.role, probe, answer.text)


def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((INFRA / "compose-spec.json").read_text())
    validator: jsonschema.protocols.Validator = jsonschema.validators.validator_for(schema)(schema)
    return validator


def test_the_compose_file_passes_the_compose_specification() -> None:
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in compose_validator().iter_errors(compose)
    ]
    assert errors == []
    assert len(compose["services"]) >= 9


def test_the_compose_check_rejects_a_misspelt_key() -> None:
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    compose["services"]["gateway-1"]["healthcheck"] = {"test": ["CMD", "true"], "interval": 5}
    compose["services"]["processor-1"]["stop_grace"] = "20s"
    messages = [e.message for e in compose_validator().iter_errors(compose)]
    assert any("stop_grace" in m for m in messages), messages
    assert any("5 is not of type 'string'" in m for m in messages), messages
