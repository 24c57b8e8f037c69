"""Writes the JSON schemas kubeconform checks infra/k8s/ against (tests/test_infra.py), one file
per kind, named as kubeconform looks them up: `{kind}{-group}-{version}.json`.

    python infra/k8s/schemas/generate.py SWAGGER_JSON CRD_YAML...

SWAGGER_JSON is the Kubernetes OpenAPI v2 document (`api/openapi-spec/swagger.json` of the Go
module k8s.io/kubernetes); each CRD_YAML is an operator's CustomResourceDefinition (Strimzi's
are made by strimzi-crds.sh). The schemas are strict: an object that lists its properties takes
no others (as kubeconform's own schemas), so a misspelt field fails the check instead of being
ignored."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
# The Kubernetes kinds infra/k8s/ uses: (definition, group, version).
KINDS = [
    ("io.k8s.api.apps.v1.Deployment", "apps", "v1"),
    ("io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler", "autoscaling", "v2"),
    ("io.k8s.api.batch.v1.Job", "batch", "v1"),
    ("io.k8s.api.core.v1.ConfigMap", "", "v1"),
    ("io.k8s.api.core.v1.Namespace", "", "v1"),
    ("io.k8s.api.core.v1.Service", "", "v1"),
    ("io.k8s.api.core.v1.ServiceAccount", "", "v1"),
    ("io.k8s.api.policy.v1.PodDisruptionBudget", "policy", "v1"),
]
INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
QUANTITY = {"oneOf": [{"type": "string"}, {"type": "number"}]}


def strict(node: Any) -> Any:
    """`node` with `additionalProperties: false` on every object that lists its properties and
    says nothing of others (nor keeps unknown fields, as some CRD fields do)."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def file_name(kind: str, group: str, version: str) -> str:
    # kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}: the group's first label only.
    suffix = f"-{group.split('.')[0]}" if group else ""
    return f"{kind.lower()}{suffix}-{version}.json"


def kubernetes_schema(definitions: dict[str, Any], root: str) -> dict[str, Any]:
    """The root definition by reference, with every definition it reaches."""
    reached: dict[str, Any] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
            reached[name] = INT_OR_STRING
            continue
        if name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
            reached[name] = QUANTITY
            continue
        reached[name] = definitions[name]
        text = json.dumps(definitions[name])
        todo += [part.split('"')[0] for part in text.split('"$ref": "#/definitions/')[1:]]
    gvk = definitions[root]["x-kubernetes-group-version-kind"][0]
    api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
    top = dict(reached[root])
    top["properties"] = dict(top["properties"])
    top["properties"]["apiVersion"] = {"type": "string", "enum": [api_version]}
    top["properties"]["kind"] = {"type": "string", "enum": [gvk["kind"]]}
    top["required"] = sorted({*top.get("required", []), "apiVersion", "kind"})
    reached[root] = top
    schema: dict[str, Any] = strict({"$ref": f"#/definitions/{root}", "definitions": reached})
    return schema


def crd_schemas(crd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The schema of a CustomResourceDefinition's stored version (the one manifests use)."""
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    out = {}
    for version in crd["spec"]["versions"]:
        if not version.get("storage"):
            continue
        schema = dict(version["schema"]["openAPIV3Schema"])
        schema["properties"] = dict(schema["properties"])
        schema["properties"]["apiVersion"] = {
            "type": "string",
            "enum": [f"{group}/{version['name']}"],
        }
        schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
        schema["properties"]["metadata"] = {"type": "object"}
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
        out[file_name(kind, group, version["name"])] = strict(schema)
    return out


def main(swagger: str, *crds: str) -> None:
    definitions = json.loads(Path(swagger).read_text())["definitions"]
    schemas = {}
    for root, group, version in KINDS:
        kind = root.rsplit(".", 1)[1]
        schemas[file_name(kind, group, version)] = kubernetes_schema(definitions, root)
    for path in crds:
        for document in yaml.safe_load_all(Path(path).read_text()):
            schemas.update(crd_schemas(document))
    for name, schema in schemas.items():
        (HERE / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(name)


if __name__ == "__main__":
    main(*sys.argv[1:])
