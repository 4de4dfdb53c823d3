"""infra/: the BentoCloud deployment config and the Knative manifests agree with the code.

Static checks only (no cluster, no BentoCloud account): every YAML file under infra/ parses;
the autoscaling, timeout and GPU numbers match the @bentoml.service decorator in
service/app.py (read from its source, so torch is never imported); probe paths and the port are
BentoML's; the image is the bento of bentofile.yaml; every ATELIER_* name is a setting of
service/config.py; secrets arrive only by reference; the BentoCloud file loads into BentoML's
own deployment schema without a key being dropped.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
BENTOCLOUD = INFRA / "bentocloud" / "deployment.yaml"

# Env names whose values are secrets: never a literal value in a manifest.
SECRET_ENV = {"ATELIER_DB_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
# Settings that point at key material: their values must be file paths, never the keys.
KEY_FILE_ENV = {"ATELIER_C2PA_KEY", "ATELIER_AUDIT_KEY"}
# A placeholder a person cannot mistake for a real value.
PLACEHOLDER = "REPLACE-ME"
GI = 1024**3
# SQLAlchemy's default pool (5 + 10 overflow) per replica, within a stock PostgreSQL's 100
# connections less 10 for the migration Job, the admin CLI and superusers.
MAX_REPLICAS_FOR_DB = (100 - 10) // (5 + 10)


# -- loading -------------------------------------------------------------------------------------


class _TolerantLoader(yaml.SafeLoader):
    """Safe loading that also accepts application tags (CloudFormation's !Ref and the like)."""


_TolerantLoader.add_multi_constructor("!", lambda loader, suffix, node: (
    loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
    else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
    else loader.construct_mapping(node)))


def load_all(path: Path) -> list:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=_TolerantLoader) if doc is not None]


def yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def service_decorator() -> dict:
    """The literal keyword arguments of @bentoml.service(...) on class Atelier in service/app.py."""
    tree = ast.parse((ROOT / "service" / "app.py").read_text())
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Atelier"]
    for deco in cls.decorator_list:
        if isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr == "service":
            config = {}
            for kw in deco.keywords:
                try:
                    config[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:  # e.g. labels carrying __version__
                    pass
            return config
    raise AssertionError("class Atelier has no @bentoml.service(...) decorator")


def service_methods() -> set[str]:
    tree = ast.parse((ROOT / "service" / "app.py").read_text())
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Atelier"]
    return {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


SERVICE = service_decorator()
TRAFFIC = SERVICE["traffic"]
BENTOFILE = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
SETTINGS = set(re.findall(r"ATELIER_[A-Z0-9_]+", (ROOT / "service" / "config.py").read_text()))


def k8s_docs() -> list[dict]:
    return [doc for path in yaml_files(K8S) if path.name != "kustomization.yaml" for doc in load_all(path)]


def k8s_object(kind: str, name: str | None = None) -> dict:
    found = [d for d in k8s_docs() if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in infra/k8s, found {len(found)}"
    return found[0]


def ksvc() -> dict:
    doc = k8s_object("Service", "atelier")
    assert doc["apiVersion"] == "serving.knative.dev/v1"
    return doc


def ksvc_container() -> dict:
    [container] = ksvc()["spec"]["template"]["spec"]["containers"]
    return container


def annotations() -> dict:
    return ksvc()["spec"]["template"]["metadata"]["annotations"]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def configmap() -> dict[str, str]:
    return k8s_object("ConfigMap", "atelier-config")["data"]


def kustomization() -> dict:
    [doc] = load_all(K8S / "kustomization.yaml")
    return doc


def bentocloud() -> dict:
    [doc] = load_all(BENTOCLOUD)
    return doc


def quantity_bytes(value: str) -> int:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": GI, "Ti": 1024**4, "K": 1000, "M": 1000**2, "G": 1000**3}
    match = re.fullmatch(r"(\d+)([KMGT]i?)?", str(value))
    assert match, f"not a byte quantity: {value!r}"
    return int(match.group(1)) * units.get(match.group(2) or "", 1)


def duration_seconds(value: str) -> int:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", value)
    assert match and value, f"not a duration: {value!r}"
    h, m, s = (int(x or 0) for x in match.groups())
    return 3600 * h + 60 * m + s


def bentoml_source(module: str) -> str:
    """The source of an installed BentoML module (read, not imported)."""
    spec = importlib.util.find_spec(module)
    assert spec and spec.origin
    return Path(spec.origin).read_text()


def bentoml_file(package: str, name: str) -> str:
    """A data file shipped inside an installed BentoML package."""
    spec = importlib.util.find_spec(package)
    assert spec and spec.origin
    return (Path(spec.origin).parent / name).read_text()


# -- every file ----------------------------------------------------------------------------------


def test_every_yaml_file_under_infra_parses():
    files = yaml_files(INFRA)
    names = {p.relative_to(INFRA).as_posix() for p in files}
    expected = {"bentocloud/deployment.yaml", "k8s/knative-service.yaml", "k8s/configmap.yaml",
                "k8s/secret.example.yaml", "k8s/serviceaccount.yaml", "k8s/migrate-job.yaml",
                "k8s/kustomization.yaml"}
    assert expected <= names, f"missing: {sorted(expected - names)}"
    for path in files:
        docs = load_all(path)
        assert docs, f"{path} holds no document"
        if path.is_relative_to(K8S) or path == BENTOCLOUD:  # infra/aws/ is another tool's format
            assert all(isinstance(doc, dict) for doc in docs), f"{path}: every document is a mapping"


def test_every_kubernetes_manifest_is_a_named_object():
    docs = k8s_docs()
    assert len(docs) >= 6
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), doc
        # kubectl refuses non-string label and annotation values.
        for field in ("labels", "annotations"):
            for key, value in (doc["metadata"].get(field) or {}).items():
                assert isinstance(value, str), f"{doc['kind']} {field} {key}: {value!r} must be a string"


# -- Knative: autoscaling, timeouts, GPU ---------------------------------------------------------


def test_knative_scales_to_zero_on_the_decorators_concurrency():
    notes = annotations()
    assert all(isinstance(v, str) for v in notes.values()), "annotation values must be strings"
    assert notes["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"  # the one that scales to 0
    assert notes["autoscaling.knative.dev/min-scale"] == "0"
    assert 1 <= int(notes["autoscaling.knative.dev/max-scale"]) <= MAX_REPLICAS_FOR_DB
    assert int(notes["autoscaling.knative.dev/initial-scale"]) >= 1
    assert notes["autoscaling.knative.dev/metric"] == "concurrency"
    assert int(notes["autoscaling.knative.dev/target"]) == TRAFFIC["concurrency"]
    assert notes["autoscaling.knative.dev/target-utilization-percentage"] == "100"
    retention = duration_seconds(notes["autoscaling.knative.dev/scale-to-zero-pod-retention-period"])
    assert 60 <= retention <= 3600
    duration_seconds(notes["autoscaling.knative.dev/scale-down-delay"])


def test_knative_request_limits_are_the_decorators():
    spec = ksvc()["spec"]["template"]["spec"]
    assert spec["containerConcurrency"] == TRAFFIC["max_concurrency"]
    assert spec["timeoutSeconds"] == TRAFFIC["timeout"]
    assert TRAFFIC["concurrency"] <= spec["containerConcurrency"]


def test_a_scaled_down_pod_has_the_request_timeout_to_finish():
    spec = ksvc()["spec"]["template"]["spec"]
    # Knative's webhook refuses terminationGracePeriodSeconds in a Service: it sets the pod's
    # grace period to timeoutSeconds, which must therefore cover the longest request.
    assert "terminationGracePeriodSeconds" not in spec
    assert spec["timeoutSeconds"] >= TRAFFIC["timeout"]


def test_one_gpu_per_pod_with_its_toleration():
    spec = ksvc()["spec"]["template"]["spec"]
    resources = ksvc_container()["resources"]
    assert SERVICE["resources"]["gpu"] == 1 and SERVICE["workers"] == 1
    assert int(resources["limits"]["nvidia.com/gpu"]) == SERVICE["resources"]["gpu"]
    assert int(resources["requests"].get("nvidia.com/gpu", 1)) == SERVICE["resources"]["gpu"]
    assert any(t.get("key") == "nvidia.com/gpu" and t.get("effect") in (None, "NoSchedule")
               and (t.get("operator") == "Exists" or "value" in t) for t in spec["tolerations"])
    assert spec["nodeSelector"]


def test_probes_are_bentomls_health_routes_on_the_serving_port():
    container = ksvc_container()
    [port] = container["ports"]
    assert port["containerPort"] == 3000
    expected = {"startupProbe": "/readyz", "readinessProbe": "/readyz", "livenessProbe": "/livez"}
    for probe, path in expected.items():
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"]) == (path, port["containerPort"]), probe
    # BentoML serves these routes on its default port; /readyz asks Atelier.__is_ready__.
    routes = bentoml_source("bentoml._internal.server.base_app")
    assert '"/livez"' in routes and '"/readyz"' in routes
    defaults = yaml.safe_load(bentoml_file("bentoml._internal.configuration", "v2/default_configuration.yaml"))
    assert defaults["services"]["http"]["port"] == port["containerPort"]
    assert "__is_ready__" in service_methods()


def test_the_startup_probe_waits_long_enough_for_a_cold_start():
    probe = ksvc_container()["startupProbe"]
    budget = probe.get("initialDelaySeconds", 0) + probe["periodSeconds"] * probe["failureThreshold"]
    assert budget >= 300, f"{budget} s cannot cover weight load, compile and warm-up"
    # Knative fails a revision whose pods are not ready within its progress deadline.
    assert duration_seconds(annotations()["serving.knative.dev/progress-deadline"]) > budget
    # Liveness must not restart a pod in the middle of a generation for one slow answer.
    live = ksvc_container()["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 30


# -- image ---------------------------------------------------------------------------------------


def test_the_image_is_the_bento_and_kustomize_points_it_at_a_registry():
    bento = BENTOFILE["name"]
    job = k8s_object("Job", "atelier-db-upgrade")
    assert ksvc_container()["image"] == bento
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == bento
    [entry] = [i for i in kustomization()["images"] if i["name"] == bento]
    assert entry["newName"].rsplit("/", 1)[-1] == bento
    assert entry.get("newTag") or entry.get("digest")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_and_rewrites_every_image():
    done = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rendered = list(yaml.safe_load_all(done.stdout))
    images = []
    for doc in rendered:
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        images += [c["image"] for c in pod.get("containers", []) + pod.get("initContainers", [])]
    assert len(images) == 3  # the service, its init container, the migration Job
    assert all(":" in image.rsplit("/", 1)[-1] for image in images), images  # every one pinned to a tag
    assert {d["kind"] for d in rendered} == {"ServiceAccount", "ConfigMap", "Job", "Service"}
    assert all(d["metadata"]["labels"]["app.kubernetes.io/name"] == "atelier" for d in rendered)


# -- configuration and secrets -------------------------------------------------------------------


def manifest_env_names() -> set[str]:
    names = set(configmap())
    for doc in k8s_docs():
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            names |= set(env_of(container))
    return names


def test_every_atelier_name_in_the_manifests_is_a_setting():
    k8s = {n for n in manifest_env_names() if n.startswith("ATELIER_")}
    cloud = {e["name"] for e in bentocloud()["envs"] if e["name"].startswith("ATELIER_")}
    assert len(SETTINGS) > 30 and len(k8s) >= 10 and len(cloud) >= 5
    assert not k8s - SETTINGS, f"unknown settings in infra/k8s: {sorted(k8s - SETTINGS)}"
    assert not cloud - SETTINGS, f"unknown settings in infra/bentocloud: {sorted(cloud - SETTINGS)}"
    # Every variable a manifest refers to as $(NAME) is defined before use or by the ConfigMap.
    container = ksvc_container()
    defined = set(configmap())
    for entry in container["env"]:
        for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", entry.get("value", "")):
            assert ref in defined, f"{entry['name']} refers to $({ref}), which is not defined before it"
        defined.add(entry["name"])


def test_secrets_arrive_only_by_reference():
    for doc in k8s_docs():
        if doc["kind"] == "Secret":
            continue
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            for name, entry in env_of(container).items():
                if name in SECRET_ENV:
                    assert "value" not in entry and entry["valueFrom"].get("secretKeyRef"), name
    assert not SECRET_ENV & set(configmap()), "a secret in the ConfigMap"
    assert env_of(ksvc_container())["ATELIER_DB_URL"]["valueFrom"]["secretKeyRef"]["name"] == "atelier-secrets"
    cloud = {e["name"]: e["value"] for e in bentocloud()["envs"]}
    assert not SECRET_ENV & set(cloud), "a secret inline in infra/bentocloud/deployment.yaml"
    for path in yaml_files(K8S) + [BENTOCLOUD]:
        text = path.read_text()
        assert "-----BEGIN" not in text, f"{path}: key material"
        assert not re.search(r"AKIA[0-9A-Z]{16}", text), f"{path}: an AWS access key id"
        assert not re.search(r"postgres(ql)?://[^\s\"']*:[^\s\"'@]*@", text.replace("USER:PASSWORD@", "")), \
            f"{path}: a database URL with a password"


def test_key_material_is_mounted_from_a_secret_as_files():
    container = ksvc_container()
    volumes = {v["name"]: v for v in ksvc()["spec"]["template"]["spec"]["volumes"]}
    secret_mounts = {m["mountPath"]: volumes[m["name"]]["secret"]["secretName"]
                     for m in container["volumeMounts"] if "secret" in volumes[m["name"]]}
    signing = k8s_object("Secret", "atelier-signing")["stringData"]
    env = env_of(container)
    for name in KEY_FILE_ENV | {"ATELIER_C2PA_CHAIN"}:
        path = Path(env[name]["value"])
        assert secret_mounts.get(str(path.parent)) == "atelier-signing", f"{name} is not a file of atelier-signing"
        assert path.name in signing, f"{name}: {path.name} is not a key of atelier-signing"
    assert all(m.get("readOnly") for m in container["volumeMounts"] if m["mountPath"] in secret_mounts)
    assert volumes["atelier-signing"]["secret"]["defaultMode"] & 0o004  # readable by the bento's uid
    for name, value in {e["name"]: e["value"] for e in bentocloud()["envs"]}.items():
        if name in KEY_FILE_ENV:
            assert value.startswith("/") and value.endswith(".pem"), f"{name} must be a path to a mounted file"


def test_the_secret_example_holds_placeholders_only_and_is_never_applied():
    docs = load_all(K8S / "secret.example.yaml")
    assert {d["metadata"]["name"] for d in docs} == {"atelier-secrets", "atelier-signing"}
    for doc in docs:
        assert doc["kind"] == "Secret" and "data" not in doc  # base64 would hide what it holds
        assert doc["stringData"]
        for key, value in doc["stringData"].items():
            assert value.startswith(PLACEHOLDER), f"{doc['metadata']['name']}.{key} is not an obvious placeholder"
    assert set(docs[0]["stringData"]) >= {"ATELIER_DB_URL"}
    assert "secret.example.yaml" not in kustomization()["resources"]


def test_kustomization_lists_every_manifest_in_the_folder():
    listed = kustomization()["resources"]
    present = {p.name for p in yaml_files(K8S)} - {"kustomization.yaml", "secret.example.yaml"}
    assert len(listed) == len(set(listed))
    assert set(listed) == present


def test_replicas_do_not_migrate_and_the_job_does():
    env = env_of(ksvc_container())
    assert env["ATELIER_DB_MIGRATE"]["value"] == "0"
    job = k8s_object("Job", "atelier-db-upgrade")
    [container] = job["spec"]["template"]["spec"]["containers"]
    command = container.get("command", []) + container.get("args", [])
    assert command[-2:] == ["db", "upgrade"] and "service.cli" in command
    cli = (ROOT / "service" / "cli.py").read_text()
    assert 'add_parser("upgrade"' in cli and '__name__ == "__main__"' in cli  # `python -m service.cli db upgrade`
    assert env_of(container)["ATELIER_DB_URL"]["valueFrom"]["secretKeyRef"]["name"] == "atelier-secrets"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_the_scratch_volume_holds_the_caches_and_the_pod_the_host_tier():
    container = ksvc_container()
    data = configmap()
    volumes = {v["name"]: v for v in ksvc()["spec"]["template"]["spec"]["volumes"]}
    [home] = [m for m in container["volumeMounts"] if m["mountPath"] == data["ATELIER_HOME"]]
    scratch = quantity_bytes(volumes[home["name"]]["emptyDir"]["sizeLimit"])
    assert data["ATELIER_BASE_MODEL"].startswith(data["ATELIER_HOME"] + "/")
    weights = 16 * GI  # SDXL base with fp32 variants
    assert scratch >= int(data["ATELIER_CACHE_DISK_BYTES"]) + weights
    assert quantity_bytes(container["resources"]["requests"]["ephemeral-storage"]) >= scratch
    assert quantity_bytes(container["resources"]["requests"]["memory"]) >= int(data["ATELIER_CACHE_HOST_BYTES"]) + weights


def test_each_pod_ships_its_audit_log_under_its_own_prefix():
    env = ksvc_container()["env"]
    names = [e["name"] for e in env]
    audit = env[names.index("ATELIER_AUDIT_S3")]["value"]
    assert "$(POD_NAME)" in audit and audit.startswith("$(AUDIT_S3_BASE)/")
    assert configmap()["AUDIT_S3_BASE"].startswith("s3://")
    pod_name = env[names.index("POD_NAME")]
    assert names.index("POD_NAME") < names.index("ATELIER_AUDIT_S3")
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


# -- BentoCloud ----------------------------------------------------------------------------------


def test_bentocloud_config_loads_into_bentomls_deployment_schema_without_losing_a_key():
    from bentoml._internal.cloud.deployment import DeploymentAPI
    from bentoml._internal.cloud.schemas.schemasv2 import CreateDeploymentSchema
    from bentoml._internal.utils.cattr import bentoml_cattr

    config = bentocloud()
    struct = bentoml_cattr.structure(config, CreateDeploymentSchema)
    DeploymentAPI._fix_and_validate_schema(struct)  # what `bentoml deployment apply` runs

    def leaves(node, path=()):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from leaves(value, path + (key,))
        else:
            yield path, node

    for path, value in leaves(config):
        obj = struct
        for part in path:
            # A key the schema does not know is dropped silently by the client: fail here instead.
            obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
        assert bentoml_cattr.unstructure(obj) == value, path


def test_bentocloud_scales_from_zero_within_bounds():
    config = bentocloud()
    [(name, service)] = config["services"].items()
    assert name == SERVICE["name"]  # the key BentoCloud matches against the bento's service
    scaling = service["scaling"]
    assert scaling["min_replicas"] == 0
    assert 1 <= scaling["max_replicas"] <= MAX_REPLICAS_FOR_DB
    policy = scaling["policy"]
    assert isinstance(policy["scale_up_stabilization_window"], int) and policy["scale_up_stabilization_window"] >= 0
    assert isinstance(policy["scale_down_stabilization_window"], int)
    assert policy["scale_down_stabilization_window"] >= 60  # a cold start costs minutes
    assert service["instance_type"].startswith("gpu.")
    assert TRAFFIC["external_queue"] is True  # what holds requests while scaling from zero


def test_bentocloud_deploys_this_bento_with_its_secrets():
    from bentoml._internal.tag import Tag

    config = bentocloud()
    assert Tag.from_taglike(config["bento"]).name == BENTOFILE["name"]
    assert config["access_authorization"] is False  # the service checks its own API keys
    assert "atelier-registry" in config["secrets"] and len(config["secrets"]) == len(set(config["secrets"]))
    envs = {e["name"]: e["value"] for e in config["envs"]}
    assert all(isinstance(v, str) for v in envs.values())
    assert envs["ATELIER_DB_MIGRATE"] == "1"  # no job step on BentoCloud: replicas migrate under a lock
    # Every env bentofile.yaml declares without a value is set here, comes from a secret, or is
    # left unset on purpose (AWS needs no endpoint URL; prefetching nothing is the default).
    from_secrets = {"ATELIER_DB_URL"}
    unset_on_purpose = {"ATELIER_S3_ENDPOINT_URL", "ATELIER_PREFETCH"}
    required = {e["name"] for e in BENTOFILE["envs"] if not e.get("value")}
    assert required, "bentofile.yaml declares no value-less env?"
    missing = required - set(envs) - from_secrets - unset_on_purpose
    assert not missing, f"infra/bentocloud/deployment.yaml does not set {sorted(missing)}"
