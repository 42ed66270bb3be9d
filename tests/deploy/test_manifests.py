"""Invariants of deploy/: the compose file, the Kubernetes manifests and the cluster config.

Nothing here starts a container or talks to a cluster. The tests read the files a person
deploys and check what would otherwise fail only in production: probes on the right
paths, secrets present only as placeholders, the harvest job running the harvest, pods
mounting the config and CA where the config says they are, and both cluster configs
passing the hub's own validator.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.registry import discover_adapters
from hub.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
NAMESPACE = "imaging-hub"
PLACEHOLDER = "REPLACE-ME"
NOT_SECRET = {"username", "roles", "roles.yml"}  # Secret keys that hold no credential
SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET", "API_KEY", "APIKEY")


def _load(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _k8s() -> dict[tuple[str, str], dict[str, Any]]:
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in _load(path):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


OBJECTS = _k8s()
COMPOSE = _load(DEPLOY / "compose.yaml")[0]


def _pod(kind: str, name: str) -> dict[str, Any]:
    obj = OBJECTS[(kind, name)]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _configmap_toml() -> str:
    return OBJECTS[("ConfigMap", "imaging-hub-config")]["data"]["hub.toml"]


WORKLOADS = [("Deployment", "imaging-hub-api"), ("CronJob", "imaging-hub-harvest")]
CLUSTER_CONFIGS = {
    "compose": lambda: (DEPLOY / "config" / "hub.toml").read_text(),
    "configmap": _configmap_toml,
}


def test_every_yaml_file_parses_into_objects() -> None:
    paths = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert len(paths) >= 10
    for path in paths:
        docs = _load(path)
        assert docs and all(isinstance(d, dict) for d in docs), path
    for (kind, name), obj in OBJECTS.items():
        assert obj["apiVersion"] and obj["metadata"]["name"] == name
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, (kind, name)


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = _load(K8S / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml"}
    assert kustomization["namespace"] == NAMESPACE


def test_api_deployment_probes_resources_and_hardening() -> None:
    deployment = OBJECTS[("Deployment", "imaging-hub-api")]
    assert deployment["spec"]["replicas"] == 3
    pod = _pod("Deployment", "imaging-hub-api")
    (api,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert ports == {"http": 8000}
    assert [*api["command"], *api["args"]][:2] == ["imaging-hub", "serve"]
    assert "0.0.0.0" in api["args"] and "8000" in api["args"]
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"  # never gates on the index
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(api["resources"][part])


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_pods_run_non_root_on_a_read_only_root(kind: str, name: str) -> None:
    spec = _pod(kind, name)["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        # the data dir must be writable: a volume, never the read-only root
        assert _env(container)["HUB_DATA_DIR"] in mounts


def test_service_hpa_and_pdb_select_the_api_pods() -> None:
    labels = _pod("Deployment", "imaging-hub-api")["metadata"]["labels"]
    service = OBJECTS[("Service", "imaging-hub-api")]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == "http"
    pdb = OBJECTS[("PodDisruptionBudget", "imaging-hub-api")]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    hpa = OBJECTS[("HorizontalPodAutoscaler", "imaging-hub-api")]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "imaging-hub-api",
    }
    assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] > hpa["minReplicas"]


def test_harvest_cronjob_runs_the_harvest_alone_on_its_pvc() -> None:
    cronjob = OBJECTS[("CronJob", "imaging-hub-harvest")]["spec"]
    assert cronjob["concurrencyPolicy"] == "Forbid"
    spec = _pod("CronJob", "imaging-hub-harvest")["spec"]
    assert spec["restartPolicy"] in ("Never", "OnFailure")
    (harvest,) = spec["containers"]
    assert [*harvest["command"], *harvest.get("args", [])] == ["imaging-hub", "harvest"]
    assert (
        harvest["image"] == _pod("Deployment", "imaging-hub-api")["spec"]["containers"][0]["image"]
    )
    mounts = {m["mountPath"]: m["name"] for m in harvest["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    snapshots = volumes[mounts[_env(harvest)["HUB_DATA_DIR"]]]
    claim = snapshots["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in OBJECTS


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_pods_find_config_ca_and_secrets_where_the_config_says(kind: str, name: str) -> None:
    settings = tomllib.loads(_configmap_toml())["index"]["elasticsearch"]
    spec = _pod(kind, name)["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    (container,) = spec["containers"]
    env = _env(container)
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}

    config = Path(env["HUB_CONFIG"])
    assert mounts[str(config.parent)]["configMap"]["name"] == "imaging-hub-config"
    assert config.name in OBJECTS[("ConfigMap", "imaging-hub-config")]["data"]

    ca = Path(settings["ca_certs"])
    items = mounts[str(ca.parent)]["secret"]["items"]
    assert ca.name in [item["path"] for item in items]

    password = env[settings["password_env"]]["secretKeyRef"]
    template = OBJECTS[("Secret", password["name"])]
    assert password["key"] in template["stringData"]
    assert template["stringData"]["username"] == settings["username"]
    for source in container.get("envFrom", []):
        assert ("Secret", source["secretRef"]["name"]) in OBJECTS


def test_secrets_are_only_placeholders() -> None:
    secrets = [obj for (kind, _), obj in OBJECTS.items() if kind == "Secret"]
    assert len(secrets) >= 2
    for secret in secrets:
        assert "data" not in secret, "templates use stringData, never base64 values"
        for key, value in secret.get("stringData", {}).items():
            if key not in NOT_SECRET:
                assert value.startswith(PLACEHOLDER), (secret["metadata"]["name"], key)

    assignments = [
        line.split("=", 1)
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert {k for k, _ in assignments} >= {"ELASTIC_PASSWORD", "HUB_ES_PASSWORD"}
    for key, value in assignments:
        if any(word in key for word in SECRET_WORDS):
            assert value.startswith(PLACEHOLDER), key

    for name, service in COMPOSE["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in SECRET_WORDS):
                assert str(value).startswith("${" + key), (name, key)


def test_eck_cluster_has_three_nodes_and_the_hub_role() -> None:
    (cluster,) = [obj for (kind, _), obj in OBJECTS.items() if kind == "Elasticsearch"]
    assert cluster["apiVersion"] == "elasticsearch.k8s.elastic.co/v1"
    assert sum(node_set["count"] for node_set in cluster["spec"]["nodeSets"]) == 3
    assert cluster["spec"]["auth"]["fileRealm"] == [{"secretName": "imaging-hub-es-user"}]
    (roles_ref,) = cluster["spec"]["auth"]["roles"]
    roles = yaml.safe_load(OBJECTS[("Secret", roles_ref["secretName"])]["stringData"]["roles.yml"])
    prefix = tomllib.loads(_configmap_toml())["index"]["elasticsearch"]["index_prefix"]
    (grant,) = roles["imaging_hub"]["indices"]
    assert grant["names"] == [f"{prefix}-*"]
    assert {"read", "write", "manage"} <= set(grant["privileges"])


def test_compose_runs_replicas_a_harvest_es_and_orthanc() -> None:
    services = COMPOSE["services"]
    hub, harvest = services["hub"], services["harvest"]
    assert hub["deploy"]["replicas"] >= 2
    assert "/readyz" in " ".join(hub["healthcheck"]["test"])
    assert hub["depends_on"]["harvest"]["condition"] == "service_completed_successfully"
    assert harvest["command"] == ["harvest"]
    assert harvest["image"] == hub["image"] and harvest["build"] == hub["build"]
    assert (DEPLOY / hub["build"]["context"] / hub["build"]["dockerfile"]).is_file()
    assert services["es"]["image"].startswith("docker.elastic.co/elasticsearch/elasticsearch:")
    assert ":-8." in services["es"]["image"] and services["es"]["healthcheck"]["test"]
    assert services["es"]["environment"]["xpack.security.enabled"] == "true"
    assert services["orthanc"]["environment"]["DICOM_WEB_PLUGIN_ENABLED"] == "true"
    for service in (hub, harvest):
        config = service["environment"]["HUB_CONFIG"]
        assert f"./config/hub.toml:{config}:ro" in service["volumes"]
        assert service["read_only"] is True and service["user"] != "0"
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), name


def test_dockerfile_builds_the_package_as_a_non_root_server() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "RUN pip install ." in text
    assert "USER 10001:10001" in text and "EXPOSE 8000" in text
    assert 'ENTRYPOINT ["imaging-hub"]' in text and '"--host", "0.0.0.0"' in text
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for package in (p.rstrip("*") for p in packages):
        assert f"!{package}/" in ignore and f"COPY {package}/ {package}/" in text


@pytest.mark.parametrize("which", sorted(CLUSTER_CONFIGS))
def test_cluster_config_validates(
    which: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_DATA_DIR", raising=False)
    text = CLUSTER_CONFIGS[which]()
    raw = tomllib.loads(text)
    es = raw["index"]["elasticsearch"]
    assert raw["hub"]["index"] == "elasticsearch"
    assert es["url"].startswith("https://") and es["verify_certs"] is True
    assert es["mode"] in ("auto", "elasticsearch", "opensearch")
    assert es["password_env"] == "HUB_ES_PASSWORD" and es["index_prefix"] == "imaging-hub"
    assert not {"password", "api_key"} & set(es), "secrets are named by env var only"
    assert raw["sources"]["idc"] == {"adapter": "idc", "mode": "harvest"}
    assert raw["sources"]["orthanc"]["adapter"] == "dicomweb"
    assert raw["sources"]["orthanc"]["mode"] == "live"

    # The CA is mounted only inside the pods; the validator wants the file to exist.
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    path = tmp_path / "hub.toml"
    path.write_text(text.replace(f'"{es["ca_certs"]}"', f'"{ca}"', 1))
    config = load_config(path)
    assert config.hub.index == "elasticsearch"
    assert config.index.elasticsearch is not None
    assert config.index.elasticsearch.url == es["url"]
    available = discover_adapters()
    for settings in config.sources.values():
        available[settings.adapter](settings)  # adapter-specific settings are valid


def test_compose_and_kubernetes_configs_agree() -> None:
    compose, configmap = (tomllib.loads(read()) for read in CLUSTER_CONFIGS.values())
    assert compose["sources"].keys() == configmap["sources"].keys()
    differ = {"url", "replicas"}  # the cluster's address, and one node versus three
    left, right = compose["index"]["elasticsearch"], configmap["index"]["elasticsearch"]
    assert {k: v for k, v in left.items() if k not in differ} == {
        k: v for k, v in right.items() if k not in differ
    }
    assert compose["hub"] == configmap["hub"]
