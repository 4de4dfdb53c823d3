"""infra/: the BentoCloud deployment config and the Knative manifests agree with the code.

Static checks only (no cluster, no BentoCloud account): every YAML file under infra/ parses;
both services of the bento are deployed, each with the autoscaling, timeout, concurrency and GPU
numbers of its @bentoml.service decorator (service/gateway/service.py, service/renderer/
service.py; read from their source and evaluated against service.config's Settings, so torch is
never imported); the renderer's max replicas and concurrency make the gateway's dispatch window;
the gateway reaches the renderer by its URL; probe paths and the port are BentoML's; the image
is the bento of bentofile.yaml; every ATELIER_* name is a setting of service/config.py and goes
to the service that reads it; secrets arrive only by reference; the BentoCloud file loads into
BentoML's own deployment schema without a key being dropped; docs/SCALING.md was simulated with
the manifests' current numbers.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import operator
import re
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
BENTOCLOUD = INFRA / "bentocloud" / "deployment.yaml"
GATEWAY_SOURCE = ROOT / "service" / "gateway" / "service.py"
RENDERER_SOURCE = ROOT / "service" / "renderer" / "service.py"
# The namespace infra/README.md deploys into (`kubectl create namespace atelier`).
NAMESPACE = "atelier"

# Env names whose values are secrets: never a literal value in a manifest.
SECRET_ENV = {"ATELIER_DB_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "ATELIER_INTERNAL_TOKEN"}
# Settings that point at key material: their values must be file paths, never the keys.
KEY_FILE_ENV = {"ATELIER_C2PA_KEY", "ATELIER_AUDIT_KEY"}
# The key files each service reads, by the setting that names them.
# (The signing chain is public: the gateway's keyless /v1/detect pins Atelier's leaf with it.)
KEY_FILES = {"gateway": {"ATELIER_AUDIT_KEY", "ATELIER_C2PA_TRUST_ANCHORS", "ATELIER_C2PA_CHAIN"},
             "renderer": {"ATELIER_C2PA_KEY", "ATELIER_C2PA_CHAIN"}}
# Settings only one service reads: the renderer never writes audit or dispatches, the gateway
# never loads a pipeline, signs an image or caches adapters.
GATEWAY_ONLY = {"ATELIER_AUDIT_S3", "ATELIER_AUDIT_KEY", "ATELIER_C2PA_TRUST_ANCHORS", "ATELIER_RENDERER_MAX_REPLICAS",
                "ATELIER_DISPATCH_WINDOW", "ATELIER_DISPATCH_BATCH", "ATELIER_RENDER_WAIT_S", "ATELIER_JOBS_WORKER"}
RENDERER_ONLY = {"ATELIER_BASE_MODEL", "ATELIER_BASE_MODEL_S3", "ATELIER_BACKEND", "ATELIER_C2PA_KEY",
                 "ATELIER_PREFETCH", "ATELIER_CACHE_DISK_BYTES", "ATELIER_CACHE_HOST_BYTES",
                 "ATELIER_CACHE_DEVICE_BYTES", "ATELIER_ENGINES_S3"}
# A placeholder a person cannot mistake for a real value.
PLACEHOLDER = "REPLACE-ME"
GI = 1024**3
# SQLAlchemy's default pool (5 + 10 overflow) per process, within a stock PostgreSQL's 100
# connections less 10 for the migration Job, the admin CLI and superusers.
POOL = 5 + 10
DB_CONNECTIONS = 100 - 10


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


# -- the decorators, read from source ------------------------------------------------------------

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}


class Unresolved(ValueError):
    """An expression this reader does not evaluate (e.g. labels carrying __version__)."""


def _class(path: Path, name: str) -> tuple[ast.Module, ast.ClassDef]:
    tree = ast.parse(path.read_text())
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
    return tree, cls


def _evaluate(node: ast.AST, settings: Settings, settings_names: set[str]):
    """Literals, + - * //, and attributes of the module's settings object (`_settings.x`)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Dict):
        return {_evaluate(k, settings, settings_names): _evaluate(v, settings, settings_names)
                for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_evaluate(e, settings, settings_names) for e in node.elts]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.left, settings, settings_names),
                                   _evaluate(node.right, settings, settings_names))
    if isinstance(node, ast.Attribute):
        base = node.value
        if (isinstance(base, ast.Name) and base.id in settings_names) or (
                isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "get_settings"):
            return getattr(settings, node.attr)
    raise Unresolved(ast.dump(node))


def service_decorator(path: Path, cls_name: str, env: dict[str, str] | None = None) -> dict:
    """The keyword arguments of @bentoml.service(...) on `cls_name`, as the module computes them
    when imported with `env` (None: an empty environment, as `bentoml build` records them)."""
    tree, cls = _class(path, cls_name)
    settings = Settings.from_env(env or {})
    # Module-level `name = get_settings()`: the settings object the decorator reads.
    settings_names = {t.id for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
                      and isinstance(n.value.func, ast.Name) and n.value.func.id == "get_settings"
                      for t in n.targets if isinstance(t, ast.Name)}
    for deco in cls.decorator_list:
        if isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr == "service":
            config = {}
            for kw in deco.keywords:
                try:
                    config[kw.arg] = _evaluate(kw.value, settings, settings_names)
                except Unresolved:
                    pass
            return config
    raise AssertionError(f"class {cls_name} has no @bentoml.service(...) decorator")


def service_methods(path: Path, cls_name: str) -> set[str]:
    _, cls = _class(path, cls_name)
    return {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def gateway_decorator(env: dict[str, str] | None = None) -> dict:
    return service_decorator(GATEWAY_SOURCE, "Gateway", env)


def renderer_decorator(env: dict[str, str] | None = None) -> dict:
    return service_decorator(RENDERER_SOURCE, "Renderer", env)


# What `bentoml build` records in the bento (with no ATELIER_* set): what BentoCloud scales on.
GATEWAY = gateway_decorator()
RENDERER = renderer_decorator()
BENTOFILE = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
SETTINGS = set(re.findall(r"ATELIER_[A-Z0-9_]+", (ROOT / "service" / "config.py").read_text()))


# -- Kubernetes ----------------------------------------------------------------------------------


def k8s_docs() -> list[dict]:
    return [doc for path in yaml_files(K8S) if path.name != "kustomization.yaml" for doc in load_all(path)]


def k8s_object(kind: str, name: str | None = None) -> dict:
    found = [d for d in k8s_docs() if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in infra/k8s, found {len(found)}"
    return found[0]


def ksvc(role: str) -> dict:
    """The Knative Service of the gateway or the renderer, named as its BentoML service."""
    name = {"gateway": GATEWAY, "renderer": RENDERER}[role]["name"]
    doc = k8s_object("Service", name)
    assert doc["apiVersion"] == "serving.knative.dev/v1"
    return doc


def pod_spec(role: str) -> dict:
    return ksvc(role)["spec"]["template"]["spec"]


def container(role: str) -> dict:
    [only] = pod_spec(role)["containers"]
    return only


def annotations(role: str) -> dict:
    return ksvc(role)["spec"]["template"]["metadata"]["annotations"]


def env_of(entry: dict) -> dict[str, dict]:
    return {e["name"]: e for e in entry.get("env", [])}


def configmaps() -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("data") or {} for d in k8s_docs() if d["kind"] == "ConfigMap"}


def container_env(entry: dict) -> dict[str, str]:
    """The literal environment a container gets: its ConfigMaps (envFrom), then its env values,
    with $(NAME) expanded as the kubelet does (a pod's name is unknown here)."""
    maps = configmaps()
    env: dict[str, str] = {}
    for source in entry.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    for item in entry.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)),
                                       item["value"])
        elif "fieldRef" in item.get("valueFrom", {}):
            env[item["name"]] = "pod"
    return env


def k8s_env(role: str) -> dict[str, str]:
    return container_env(container(role))


def kustomization() -> dict:
    [doc] = load_all(K8S / "kustomization.yaml")
    return doc


# -- BentoCloud ----------------------------------------------------------------------------------


def bentocloud() -> dict:
    [doc] = load_all(BENTOCLOUD)
    return doc


def cloud_service(role: str) -> dict:
    return bentocloud()["services"][{"gateway": GATEWAY, "renderer": RENDERER}[role]["name"]]


def cloud_env(role: str | None = None) -> dict[str, str]:
    """The deployment's envs, with the service's own on top (None: the shared ones only)."""
    env = {e["name"]: e["value"] for e in bentocloud().get("envs") or []}
    if role is not None:
        env.update({e["name"]: e["value"] for e in cloud_service(role).get("envs") or []})
    return env


def platform_env(platform: str, role: str) -> dict[str, str]:
    return k8s_env(role) if platform == "knative" else cloud_env(role)


def renderer_bounds(platform: str) -> tuple[int, int]:
    if platform == "knative":
        notes = annotations("renderer")
        return int(notes["autoscaling.knative.dev/min-scale"]), int(notes["autoscaling.knative.dev/max-scale"])
    scaling = cloud_service("renderer")["scaling"]
    return scaling["min_replicas"], scaling["max_replicas"]


def gateway_bounds(platform: str) -> tuple[int, int]:
    if platform == "knative":
        notes = annotations("gateway")
        return int(notes["autoscaling.knative.dev/min-scale"]), int(notes["autoscaling.knative.dev/max-scale"])
    scaling = cloud_service("gateway")["scaling"]
    return scaling["min_replicas"], scaling["max_replicas"]


# -- units ---------------------------------------------------------------------------------------


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


PLATFORMS = ("bentocloud", "knative")
ROLES = ("gateway", "renderer")


# -- every file ----------------------------------------------------------------------------------


def test_every_yaml_file_under_infra_parses():
    files = yaml_files(INFRA)
    names = {p.relative_to(INFRA).as_posix() for p in files}
    expected = {"bentocloud/deployment.yaml", "k8s/gateway-service.yaml", "k8s/renderer-service.yaml",
                "k8s/configmap.yaml", "k8s/secret.example.yaml", "k8s/serviceaccount.yaml", "k8s/migrate-job.yaml",
                "k8s/kustomization.yaml"}
    assert expected <= names, f"missing: {sorted(expected - names)}"
    assert "k8s/knative-service.yaml" not in names  # the single service is gone
    for path in files:
        docs = load_all(path)
        assert docs, f"{path} holds no document"
        if path.is_relative_to(K8S) or path == BENTOCLOUD:  # infra/aws/ is another tool's format
            assert all(isinstance(doc, dict) for doc in docs), f"{path}: every document is a mapping"


def test_every_kubernetes_manifest_is_a_named_object():
    docs = k8s_docs()
    assert len(docs) >= 9
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), doc
        # kubectl refuses non-string label and annotation values.
        for field in ("labels", "annotations"):
            for key, value in (doc["metadata"].get(field) or {}).items():
                assert isinstance(value, str), f"{doc['kind']} {field} {key}: {value!r} must be a string"


# -- the two services ----------------------------------------------------------------------------


def test_the_bento_is_the_gateway_with_the_renderer_behind_it():
    assert BENTOFILE["service"] == "service.gateway.service:Gateway"
    assert GATEWAY["name"] == "atelier-gateway" and RENDERER["name"] == "atelier-renderer"
    _, cls = _class(GATEWAY_SOURCE, "Gateway")
    depends = [n for n in cls.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
               and isinstance(n.value.func, ast.Attribute) and n.value.func.attr == "depends"]
    assert [ast.unparse(d.value.args[0]) for d in depends] == ["Renderer"]
    assert "gpu" not in (GATEWAY.get("resources") or {})  # the gateway is a CPU service
    assert RENDERER["resources"]["gpu"] == 1


def test_knative_renderer_scales_to_zero_on_the_decorators_concurrency():
    notes = annotations("renderer")
    traffic = renderer_decorator(k8s_env("renderer"))["traffic"]
    assert notes["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"  # the one that scales to 0
    assert notes["autoscaling.knative.dev/min-scale"] == "0"
    assert int(notes["autoscaling.knative.dev/initial-scale"]) >= 1
    assert notes["autoscaling.knative.dev/metric"] == "concurrency"
    assert int(notes["autoscaling.knative.dev/target"]) == traffic["concurrency"] == RENDERER["traffic"]["concurrency"]
    assert notes["autoscaling.knative.dev/target-utilization-percentage"] == "100"
    retention = duration_seconds(notes["autoscaling.knative.dev/scale-to-zero-pod-retention-period"])
    assert 60 <= retention <= 3600
    duration_seconds(notes["autoscaling.knative.dev/scale-down-delay"])
    # No public route: only the gateway calls the renderer.
    assert ksvc("renderer")["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"


def test_knative_gateway_keeps_one_pod_and_is_public():
    notes = annotations("gateway")
    assert notes["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
    assert notes["autoscaling.knative.dev/min-scale"] == "1"  # it holds the queue's clock
    low, high = gateway_bounds("knative")
    assert 1 <= low <= high
    assert int(notes["autoscaling.knative.dev/initial-scale"]) >= 1
    assert notes["autoscaling.knative.dev/metric"] == "concurrency"
    assert 1 <= int(notes["autoscaling.knative.dev/target"]) <= pod_spec("gateway")["containerConcurrency"]
    assert "networking.knative.dev/visibility" not in ksvc("gateway")["metadata"].get("labels", {})


@pytest.mark.parametrize("role", ROLES)
def test_knative_request_limits_are_the_decorators(role):
    spec = pod_spec(role)
    traffic = (gateway_decorator if role == "gateway" else renderer_decorator)(k8s_env(role))["traffic"]
    assert spec["containerConcurrency"] == traffic["max_concurrency"]
    assert spec["timeoutSeconds"] == traffic["timeout"]
    assert traffic.get("concurrency", 1) <= spec["containerConcurrency"]


@pytest.mark.parametrize("role", ROLES)
def test_a_scaled_down_pod_has_the_request_timeout_to_finish(role):
    spec = pod_spec(role)
    traffic = (GATEWAY if role == "gateway" else RENDERER)["traffic"]
    # Knative's webhook refuses terminationGracePeriodSeconds in a Service: it sets the pod's
    # grace period to timeoutSeconds, which must therefore cover the longest request.
    assert "terminationGracePeriodSeconds" not in spec
    assert spec["timeoutSeconds"] >= traffic["timeout"]


def test_the_gateway_waits_longer_than_a_render_call():
    # A synchronous generation holds its gateway request while its render call runs.
    assert GATEWAY["traffic"]["timeout"] > RENDERER["traffic"]["timeout"]
    assert pod_spec("gateway")["timeoutSeconds"] > pod_spec("renderer")["timeoutSeconds"]
    if pod_spec("gateway")["timeoutSeconds"] > 600:  # above Knative's default cap: the cluster must allow it
        readme = (INFRA / "README.md").read_text()
        assert "max-revision-timeout-seconds" in readme
        assert "max-revision-timeout-seconds" in (K8S / "gateway-service.yaml").read_text()


def test_one_gpu_per_renderer_pod_with_its_toleration():
    spec = pod_spec("renderer")
    resources = container("renderer")["resources"]
    decorator = renderer_decorator(k8s_env("renderer"))
    assert decorator["resources"]["gpu"] == 1 and decorator["workers"] == 1
    assert int(resources["limits"]["nvidia.com/gpu"]) == decorator["resources"]["gpu"]
    assert int(resources["requests"].get("nvidia.com/gpu", 1)) == decorator["resources"]["gpu"]
    assert any(t.get("key") == "nvidia.com/gpu" and t.get("effect") in (None, "NoSchedule")
               and (t.get("operator") == "Exists" or "value" in t) for t in spec["tolerations"])
    assert spec["nodeSelector"]


def test_the_gateway_runs_on_cpu():
    spec = pod_spec("gateway")
    resources = container("gateway")["resources"]
    assert not any("gpu" in key for part in resources.values() for key in part)
    assert not spec.get("tolerations") and not spec.get("nodeSelector") and not spec.get("initContainers")
    assert GATEWAY["workers"] == 1
    assert cloud_service("gateway")["instance_type"].startswith("cpu.")


@pytest.mark.parametrize("role", ROLES)
def test_probes_are_bentomls_health_routes_on_the_serving_port(role):
    entry = container(role)
    [port] = entry["ports"]
    assert port["containerPort"] == 3000
    expected = {"startupProbe": "/readyz", "readinessProbe": "/readyz", "livenessProbe": "/livez"}
    for probe, path in expected.items():
        get = entry[probe]["httpGet"]
        assert (get["path"], get["port"]) == (path, port["containerPort"]), probe
    # BentoML serves these routes on its default port; /readyz asks the service's __is_ready__.
    routes = bentoml_source("bentoml._internal.server.base_app")
    assert '"/livez"' in routes and '"/readyz"' in routes
    defaults = yaml.safe_load(bentoml_file("bentoml._internal.configuration", "v2/default_configuration.yaml"))
    assert defaults["services"]["http"]["port"] == port["containerPort"]
    source, cls = (GATEWAY_SOURCE, "Gateway") if role == "gateway" else (RENDERER_SOURCE, "Renderer")
    assert "__is_ready__" in service_methods(source, cls)


def test_the_startup_probe_waits_long_enough_for_a_cold_start():
    for role, least in (("renderer", 300), ("gateway", 30)):
        probe = container(role)["startupProbe"]
        budget = probe.get("initialDelaySeconds", 0) + probe["periodSeconds"] * probe["failureThreshold"]
        assert budget >= least, f"{role}: {budget} s cannot cover its start"
        # Knative fails a revision whose pods are not ready within its progress deadline.
        assert duration_seconds(annotations(role)["serving.knative.dev/progress-deadline"]) > budget
        # Liveness must not restart a pod in the middle of a render call for one slow answer.
        live = container(role)["livenessProbe"]
        assert live["periodSeconds"] * live["failureThreshold"] >= 30


def test_each_pod_runs_its_own_service_and_the_gateway_reaches_the_renderer_by_url():
    # The bento's entrypoint turns `start-http-server ...` into BentoML's standalone server.
    entrypoint = bentoml_file("bentoml._internal.container.frontend.dockerfile", "entrypoint.sh")
    assert "'start-http-server'" in entrypoint and "bentoml_cli._internal.start" in entrypoint
    start = bentoml_source("bentoml_cli._internal.start")
    assert '"--service-name"' in start and '"--depends"' in start
    renderer_args = container("renderer")["args"]
    assert renderer_args == ["start-http-server", "--service-name", RENDERER["name"]]
    args = container("gateway")["args"]
    assert args[:3] == ["start-http-server", "--service-name", GATEWAY["name"]]
    depends = dict(args[i + 1].split("=", 1) for i, arg in enumerate(args) if arg == "--depends")
    assert set(depends) == {RENDERER["name"]}
    url = container_env(container("gateway") | {"env": [{"name": "_DEPENDS", "value": depends[RENDERER["name"]]}]})
    assert url["_DEPENDS"] == f"http://{ksvc('renderer')['metadata']['name']}.{NAMESPACE}.svc.cluster.local"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_gateway_is_ready_without_waiting_for_the_renderer(platform):
    # BentoML's runner probe (on by default) makes a service's /readyz call its dependencies'
    # /readyz: a gateway probed every few seconds would start a renderer from zero and keep it.
    defaults = yaml.safe_load(bentoml_file("bentoml._internal.configuration", "v2/default_configuration.yaml"))
    assert defaults["services"]["runner_probe"]["enabled"] is True
    assert (GATEWAY.get("runner_probe") or {}).get("enabled") is False, "the gateway's /readyz would probe the renderer"
    # and no platform turns it back on through BentoML's config overrides
    overrides = json.loads(platform_env(platform, "gateway").get("BENTOML_CONFIG_OVERRIDES", "{}"))
    assert overrides.get("services", {}).get(GATEWAY["name"], {}).get("runner_probe", {}).get("enabled") is not True


# -- the window and the replicas -----------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_dispatch_window_is_max_replicas_times_concurrency(platform):
    gateway, renderer = platform_env(platform, "gateway"), platform_env(platform, "renderer")
    low, high = renderer_bounds(platform)
    assert low == 0
    window = Settings.from_env(gateway)
    rendered = renderer_decorator(renderer)
    # The renderer's concurrency as its pods read it, as the gateway reads it, and as the bento
    # recorded it at build time (what BentoCloud scales on) are one value.
    assert rendered["traffic"]["concurrency"] == renderer_decorator(gateway)["traffic"]["concurrency"] \
        == RENDERER["traffic"]["concurrency"] == rendered["traffic"]["max_concurrency"]
    assert rendered["workers"] == RENDERER["workers"] == Settings.from_env(gateway).renderer_workers
    assert int(gateway["ATELIER_RENDERER_MAX_REPLICAS"]) == high
    assert gateway.get("ATELIER_DISPATCH_WINDOW", "0") in ("0", str(high * rendered["workers"] *
                                                                    rendered["traffic"]["concurrency"]))
    assert window.window == high * rendered["workers"] * rendered["traffic"]["concurrency"]
    # A full window asks the autoscaler for exactly max replicas.
    assert math.ceil(window.window / (rendered["workers"] * rendered["traffic"]["concurrency"])) == high
    # A group of items stays well inside one render call's timeout (~1.5 s an image on an H100,
    # up to ~6x that elsewhere).
    assert window.dispatch_batch * 1.5 * 6 < rendered["traffic"]["timeout"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_replica_fits_in_the_database(platform):
    gateway_max = gateway_bounds(platform)[1] * GATEWAY["workers"]
    renderer_max = renderer_bounds(platform)[1] * renderer_decorator(platform_env(platform, "renderer"))["workers"]
    assert gateway_bounds(platform)[0] == 1
    assert (gateway_max + renderer_max) * POOL <= DB_CONNECTIONS


def test_both_platforms_deploy_the_same_shape():
    assert renderer_bounds("knative") == renderer_bounds("bentocloud")
    assert gateway_bounds("knative") == gateway_bounds("bentocloud")
    for role in ROLES:
        shared = {name for name in k8s_env(role) if name.startswith(("ATELIER_RENDERER", "ATELIER_DISPATCH"))}
        for name in shared:
            assert k8s_env(role)[name] == cloud_env(role).get(name), f"{role}: {name} differs between platforms"


# -- image ---------------------------------------------------------------------------------------


def test_the_image_is_the_bento_and_kustomize_points_it_at_a_registry():
    bento = BENTOFILE["name"]
    job = k8s_object("Job", "atelier-db-upgrade")
    assert container("gateway")["image"] == container("renderer")["image"] == bento
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
    assert len(images) == 4  # the gateway, the renderer, its init container, the migration Job
    assert all(":" in image.rsplit("/", 1)[-1] for image in images), images  # every one pinned to a tag
    assert {d["kind"] for d in rendered} == {"ServiceAccount", "ConfigMap", "Job", "Service", "NetworkPolicy"}
    assert all(d["metadata"]["labels"]["app.kubernetes.io/name"] == "atelier" for d in rendered)
    # kustomize leaves the NetworkPolicy's selectors as written (its labels never reach selectors).
    [policy] = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    assert policy["spec"] == k8s_object("NetworkPolicy", "atelier-renderer-ingress")["spec"]


def _selected(selector: str, labels: dict) -> bool:
    """kubectl's -l with the operators it documents for apply: =, ==, !=, comma meaning AND."""
    for term in selector.split(","):
        key, op, value = re.fullmatch(r"([^!=]+)(!=|==|=)(.*)", term).groups()
        if (labels.get(key) == value) != (op != "!="):
            return False
    return True


def test_the_migration_step_applies_everything_but_the_two_services():
    for path in (K8S / "migrate-job.yaml", INFRA / "README.md"):
        [selector] = set(re.findall(r"apply -k infra/k8s -l (\S+)", path.read_text()))
        applied = {d["metadata"]["name"] for d in k8s_docs()
                   if d["kind"] != "Secret" and _selected(selector, d["metadata"].get("labels", {}))}
        assert "atelier-db-upgrade" in applied and {"atelier-config", "atelier"} <= applied, path
        assert not applied & {GATEWAY["name"], RENDERER["name"]}, path


# -- configuration and secrets -------------------------------------------------------------------


def manifest_env_names() -> set[str]:
    names = {name for data in configmaps().values() for name in data}
    for doc in k8s_docs():
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for entry in pod.get("containers", []) + pod.get("initContainers", []):
            names |= set(env_of(entry))
    return names


def test_every_atelier_name_in_the_manifests_is_a_setting():
    k8s = {n for n in manifest_env_names() if n.startswith("ATELIER_")}
    cloud = {n for role in ROLES for n in cloud_env(role) if n.startswith("ATELIER_")}
    assert len(SETTINGS) > 30 and len(k8s) >= 15 and len(cloud) >= 12
    assert not k8s - SETTINGS, f"unknown settings in infra/k8s: {sorted(k8s - SETTINGS)}"
    assert not cloud - SETTINGS, f"unknown settings in infra/bentocloud: {sorted(cloud - SETTINGS)}"
    # Every variable a container refers to as $(NAME), in its env or its arguments, is defined
    # before use or by its ConfigMaps.
    maps = configmaps()
    for role in ROLES:
        entry = container(role)
        defined = {name for source in entry["envFrom"] for name in maps[source["configMapRef"]["name"]]}
        for item in entry["env"]:
            for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", item.get("value", "")):
                assert ref in defined, f"{role}: {item['name']} refers to $({ref}), which is not defined before it"
            defined.add(item["name"])
        for arg in entry.get("args", []):
            for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
                assert ref in defined, f"{role}: an argument refers to $({ref}), which is not defined"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_each_service_gets_the_settings_it_reads(platform):
    gateway, renderer = set(platform_env(platform, "gateway")), set(platform_env(platform, "renderer"))
    assert not gateway & RENDERER_ONLY, f"{platform}: renderer settings on the gateway: {sorted(gateway & RENDERER_ONLY)}"
    assert not renderer & GATEWAY_ONLY, f"{platform}: gateway settings on the renderer: {sorted(renderer & GATEWAY_ONLY)}"
    assert {"ATELIER_AUDIT_S3", "ATELIER_RENDERER_MAX_REPLICAS"} <= gateway
    assert {"ATELIER_ADAPTER_STORE", "ATELIER_RENDERER_CONCURRENCY"} <= gateway & renderer
    assert {"ATELIER_BACKEND"} <= renderer and ({"ATELIER_BASE_MODEL", "ATELIER_BASE_MODEL_S3"} & renderer)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_gateway_trusts_its_proxies_so_each_client_is_its_own_source(platform):
    """Behind Knative every request comes from the queue-proxy in the pod (127.0.0.1 / ::1),
    behind BentoCloud from its ingress: unless those are trusted, every client is one source
    for the per-source limits, and X-Forwarded-Proto (Studio's Secure cookie, HSTS) is ignored."""
    import ipaddress

    gateway = platform_env(platform, "gateway")
    networks = [ipaddress.ip_network(c, strict=False) for c in Settings.from_env(gateway).trusted_proxies]
    for loopback in ("127.0.0.1", "::1"):
        assert any(ipaddress.ip_address(loopback) in net for net in networks), f"{platform}: {loopback} not trusted"
    assert any(ipaddress.ip_address("10.1.2.3") in net for net in networks), f"{platform}: no cluster network"
    assert all(net.prefixlen >= 7 for net in networks), f"{platform}: trusts the whole internet"
    assert all(not ipaddress.ip_network(net).is_global for net in networks), f"{platform}: a public range trusted"
    assert "ATELIER_TRUSTED_PROXIES" not in platform_env(platform, "renderer")


def test_secrets_arrive_only_by_reference():
    for doc in k8s_docs():
        if doc["kind"] == "Secret":
            continue
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for entry in pod.get("containers", []) + pod.get("initContainers", []):
            for name, item in env_of(entry).items():
                if name in SECRET_ENV:
                    assert "value" not in item and item["valueFrom"].get("secretKeyRef"), name
    for name, data in configmaps().items():
        assert not SECRET_ENV & set(data), f"a secret in the ConfigMap {name}"
    for role in ROLES:
        assert env_of(container(role))["ATELIER_DB_URL"]["valueFrom"]["secretKeyRef"]["name"] == "atelier-secrets"
        assert not SECRET_ENV & set(cloud_env(role)), "a secret inline in infra/bentocloud/deployment.yaml"
    for path in yaml_files(K8S) + [BENTOCLOUD]:
        text = path.read_text()
        assert "-----BEGIN" not in text, f"{path}: key material"
        assert not re.search(r"AKIA[0-9A-Z]{16}", text), f"{path}: an AWS access key id"
        assert not re.search(r"postgres(ql)?://[^\s\"']*:[^\s\"'@]*@", text.replace("USER:PASSWORD@", "")), \
            f"{path}: a database URL with a password"


@pytest.mark.parametrize("role", ROLES)
def test_key_material_is_mounted_from_a_secret_as_files(role):
    entry = container(role)
    volumes = {v["name"]: v for v in pod_spec(role)["volumes"]}
    secret_mounts = {m["mountPath"]: volumes[m["name"]]["secret"] for m in entry["volumeMounts"]
                     if "secret" in volumes[m["name"]]}
    signing = k8s_object("Secret", "atelier-signing")["stringData"]
    env = env_of(entry)
    assert KEY_FILES[role] <= set(env)
    other = KEY_FILES["gateway" if role == "renderer" else "renderer"] - KEY_FILES[role]
    assert not other & set(env), f"{role} is given key files it never reads"
    mounted = {item["path"] for secret in secret_mounts.values() for item in secret.get("items", [])}
    assert role == "renderer" or "signer_key.pem" not in mounted, "the gateway holds the image signing key"
    for name in KEY_FILES[role]:
        path = Path(env[name]["value"])
        secret = secret_mounts.get(str(path.parent))
        assert secret and secret["secretName"] == "atelier-signing", f"{name} is not a file of atelier-signing"
        assert path.name in signing, f"{name}: {path.name} is not a key of atelier-signing"
        projected = {item["path"]: item["key"] for item in secret.get("items", [])} or {k: k for k in signing}
        assert projected.get(path.name) == path.name, f"{name}: {path.name} is not mounted"
        assert secret["defaultMode"] & 0o004  # readable by the bento's uid
    # Each pod gets only its own service's keys.
    for secret in (s for s in secret_mounts.values() if s["secretName"] == "atelier-signing"):
        assert {item["key"] for item in secret.get("items", [])} == {Path(env[n]["value"]).name for n in KEY_FILES[role]}
    assert all(m.get("readOnly") for m in entry["volumeMounts"] if m["mountPath"] in secret_mounts)
    for name, value in cloud_env(role).items():
        if name in KEY_FILE_ENV | KEY_FILES[role]:
            assert value.startswith("/") and value.endswith(".pem"), f"{name} must be a path to a mounted file"


def test_the_secret_example_holds_placeholders_only_and_is_never_applied():
    docs = load_all(K8S / "secret.example.yaml")
    assert {d["metadata"]["name"] for d in docs} == {"atelier-secrets", "atelier-signing", "atelier-internal"}
    for doc in docs:
        assert doc["kind"] == "Secret" and "data" not in doc  # base64 would hide what it holds
        assert doc["stringData"]
        for key, value in doc["stringData"].items():
            assert value.startswith(PLACEHOLDER), f"{doc['metadata']['name']}.{key} is not an obvious placeholder"
    assert set(docs[0]["stringData"]) >= {"ATELIER_DB_URL"}
    assert "secret.example.yaml" not in kustomization()["resources"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_both_services_read_the_internal_token_from_a_secret_file(platform):
    """The gateway presents the token to the renderer and seals render items with it: both must
    read the same secret file, or every render call is refused (and a token generated per pod
    would never match)."""
    paths = {role: platform_env(platform, role).get("ATELIER_INTERNAL_TOKEN_FILE") for role in ROLES}
    assert paths["gateway"] and paths["gateway"] == paths["renderer"] and paths["gateway"].startswith("/")
    for role in ROLES:
        assert Settings.from_env(platform_env(platform, role)).internal_token_file == Path(paths[role])
    if platform == "bentocloud":
        assert "atelier-internal" in bentocloud()["secrets"]
        return
    [example] = [d for d in load_all(K8S / "secret.example.yaml") if d["metadata"]["name"] == "atelier-internal"]
    assert set(example["stringData"]) == {"internal_token"}
    path = Path(paths["gateway"])
    for role in ROLES:
        entry = container(role)
        volumes = {v["name"]: v for v in pod_spec(role)["volumes"]}
        [mount] = [m for m in entry["volumeMounts"] if m["mountPath"] == str(path.parent)]
        source = volumes[mount["name"]]["secret"]
        assert mount.get("readOnly") and source["secretName"] == "atelier-internal"
        assert {item["key"]: item["path"] for item in source["items"]} == {"internal_token": path.name}
        assert source["defaultMode"] & 0o004  # readable by the bento's uid
    # Nothing else gets it: the migration Job and the init container never talk to a renderer.
    job = k8s_object("Job", "atelier-db-upgrade")["spec"]["template"]["spec"]
    assert all((v.get("secret") or {}).get("secretName") != "atelier-internal" for v in job.get("volumes", []))
    [init] = pod_spec("renderer")["initContainers"]
    assert not any(m["name"] == mount["name"] for m in init.get("volumeMounts", []))


def _matches(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions In/NotIn/Exists) against labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) or \
                (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def test_only_the_gateway_and_knatives_data_path_may_connect_to_the_renderer():
    policy = k8s_object("NetworkPolicy", "atelier-renderer-ingress")
    spec = policy["spec"]
    pairs = {k: v for entry in kustomization()["labels"] for k, v in entry["pairs"].items()}
    pod_labels = {role: {**pairs, **ksvc(role)["spec"]["template"]["metadata"]["labels"]} for role in ROLES}
    # It selects the renderer's pods and no gateway pod, and restricts what comes in.
    assert _matches(spec["podSelector"], pod_labels["renderer"]) and not _matches(spec["podSelector"], pod_labels["gateway"])
    assert spec["policyTypes"] == ["Ingress"]
    [rule] = spec["ingress"]  # one rule: a second, or an empty `from`, would admit more
    peers = rule["from"]
    assert peers and "ports" not in rule
    same_namespace = [p for p in peers if "namespaceSelector" not in p]
    assert [p["podSelector"] for p in same_namespace] == [{"matchLabels": {"app.kubernetes.io/component": "gateway"}}]
    assert _matches(same_namespace[0]["podSelector"], pod_labels["gateway"])
    assert not _matches(same_namespace[0]["podSelector"], pod_labels["renderer"])
    # Every other peer is a named system namespace (Knative's activator and autoscaler, the
    # networking layer's local gateway): never all namespaces, never an IP range.
    others = [p for p in peers if "namespaceSelector" in p]
    namespaces = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in others}
    assert namespaces == {"knative-serving", "kourier-system"}
    assert all(set(p) <= {"namespaceSelector", "podSelector"} for p in peers)
    [knative] = [p for p in others if p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "knative-serving"]
    assert _matches(knative["podSelector"], {"app": "activator"}) and _matches(knative["podSelector"], {"app": "autoscaler"})
    assert not _matches(knative["podSelector"], {"app": "webhook"})
    # Applied in the first step, before the Services (infra/README.md), and by kustomize.
    assert policy["metadata"]["labels"]["app.kubernetes.io/component"] not in ROLES
    assert "renderer-networkpolicy.yaml" in kustomization()["resources"]
    # The renderer stays off the ingress: no route but the cluster-local one.
    assert ksvc("renderer")["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"


def test_kustomization_lists_every_manifest_in_the_folder():
    listed = kustomization()["resources"]
    present = {p.name for p in yaml_files(K8S)} - {"kustomization.yaml", "secret.example.yaml"}
    assert len(listed) == len(set(listed))
    assert set(listed) == present


def test_pods_do_not_migrate_and_the_job_does():
    for role in ROLES:
        assert env_of(container(role))["ATELIER_DB_MIGRATE"]["value"] == "0"
    job = k8s_object("Job", "atelier-db-upgrade")
    [entry] = job["spec"]["template"]["spec"]["containers"]
    command = entry.get("command", []) + entry.get("args", [])
    assert command[-2:] == ["db", "upgrade"] and "service.cli" in command
    cli = (ROOT / "service" / "cli.py").read_text()
    assert 'add_parser("upgrade"' in cli and '__name__ == "__main__"' in cli  # `python -m service.cli db upgrade`
    assert env_of(entry)["ATELIER_DB_URL"]["valueFrom"]["secretKeyRef"]["name"] == "atelier-secrets"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_the_renderers_scratch_volume_holds_the_caches_and_the_pod_the_host_tier():
    entry = container("renderer")
    data = k8s_env("renderer")
    volumes = {v["name"]: v for v in pod_spec("renderer")["volumes"]}
    [home] = [m for m in entry["volumeMounts"] if m["mountPath"] == data["ATELIER_HOME"]]
    scratch = quantity_bytes(volumes[home["name"]]["emptyDir"]["sizeLimit"])
    assert data["ATELIER_BASE_MODEL"].startswith(data["ATELIER_HOME"] + "/")
    weights = 16 * GI  # SDXL base with fp32 variants
    assert scratch >= int(data["ATELIER_CACHE_DISK_BYTES"]) + weights
    assert quantity_bytes(entry["resources"]["requests"]["ephemeral-storage"]) >= scratch
    assert quantity_bytes(entry["resources"]["requests"]["memory"]) >= int(data["ATELIER_CACHE_HOST_BYTES"]) + weights
    # The init container writes the base model where the renderer reads it.
    [init] = pod_spec("renderer")["initContainers"]
    assert container_env(init)["ATELIER_BASE_MODEL"] == data["ATELIER_BASE_MODEL"]
    assert any(m["mountPath"] == data["ATELIER_HOME"] for m in init["volumeMounts"])


def test_the_gateways_disk_holds_an_upload():
    # Uploads above 1 MB are spooled to disk; a twin's adapter may be ATELIER_MAX_UPLOAD_BYTES.
    entry = container("gateway")
    upload = Settings.from_env(k8s_env("gateway")).max_upload_bytes
    assert quantity_bytes(entry["resources"]["requests"]["ephemeral-storage"]) >= upload


def test_each_gateway_pod_ships_its_audit_log_under_its_own_prefix():
    env = container("gateway")["env"]
    names = [e["name"] for e in env]
    audit = env[names.index("ATELIER_AUDIT_S3")]["value"]
    assert "$(POD_NAME)" in audit and audit.startswith("$(AUDIT_S3_BASE)/")
    assert k8s_env("gateway")["ATELIER_AUDIT_S3"].startswith("s3://")
    pod_name = env[names.index("POD_NAME")]
    assert names.index("POD_NAME") < names.index("ATELIER_AUDIT_S3")
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert cloud_env("gateway")["ATELIER_AUDIT_S3"].startswith("s3://")


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
        elif isinstance(node, list) and node and all(isinstance(e, dict) for e in node):
            for n, value in enumerate(node):
                yield from leaves(value, path + (n,))
        else:
            yield path, node

    for path, value in leaves(config):
        obj = struct
        for part in path:
            # A key the schema does not know is dropped silently by the client: fail here instead.
            obj = obj[part] if isinstance(obj, (dict, list)) else getattr(obj, part)
        assert bentoml_cattr.unstructure(obj) == value, path


def test_bentocloud_deploys_both_services():
    services = bentocloud()["services"]
    # The keys BentoCloud matches against the bento's services.
    assert set(services) == {GATEWAY["name"], RENDERER["name"]}
    gateway, renderer = cloud_service("gateway"), cloud_service("renderer")
    assert gateway["instance_type"].startswith("cpu.") and renderer["instance_type"].startswith("gpu.")
    assert gateway["scaling"]["min_replicas"] == 1 <= gateway["scaling"]["max_replicas"]
    for service in services.values():
        assert service["deployment_strategy"] == "RollingUpdate"


def test_bentocloud_scales_the_renderer_from_zero_on_concurrency():
    scaling = cloud_service("renderer")["scaling"]
    assert scaling["min_replicas"] == 0
    assert scaling["max_replicas"] >= 1
    policy = scaling["policy"]
    assert isinstance(policy["scale_up_stabilization_window"], int) and policy["scale_up_stabilization_window"] >= 0
    assert isinstance(policy["scale_down_stabilization_window"], int)
    assert policy["scale_down_stabilization_window"] >= 60  # a cold start costs minutes
    traffic = RENDERER["traffic"]
    assert traffic["external_queue"] is True  # what holds calls while scaling from zero
    assert traffic["concurrency"] >= 1  # what BentoCloud scales on
    assert "concurrency" not in GATEWAY["traffic"]  # the gateway is not scaled on requests


def test_bentocloud_deploys_this_bento_with_its_secrets():
    from bentoml._internal.tag import Tag

    config = bentocloud()
    assert Tag.from_taglike(config["bento"]).name == BENTOFILE["name"]
    assert config["access_authorization"] is False  # the service checks its own API keys
    assert "atelier-registry" in config["secrets"] and len(config["secrets"]) == len(set(config["secrets"]))
    for role in ROLES:
        envs = cloud_env(role)
        assert all(isinstance(v, str) for v in envs.values())
        assert envs["ATELIER_DB_MIGRATE"] == "1"  # no job step on BentoCloud: replicas migrate under a lock
    # A service's envs never repeat a shared one (which value would win is the platform's choice).
    for role in ROLES:
        own = [e["name"] for e in cloud_service(role).get("envs") or []]
        assert len(own) == len(set(own)) and not set(own) & set(cloud_env())
    # Every env bentofile.yaml declares without a value is set for a service here, comes from a
    # secret, or is left unset on purpose (AWS needs no endpoint URL; prefetching nothing is the
    # default).
    from_secrets = {"ATELIER_DB_URL"}
    unset_on_purpose = {"ATELIER_S3_ENDPOINT_URL", "ATELIER_PREFETCH"}
    required = {e["name"] for e in BENTOFILE["envs"] if not e.get("value")}
    assert required, "bentofile.yaml declares no value-less env?"
    missing = required - set(cloud_env("gateway")) - set(cloud_env("renderer")) - from_secrets - unset_on_purpose
    assert not missing, f"infra/bentocloud/deployment.yaml does not set {sorted(missing)}"


# -- the scaling page ----------------------------------------------------------------------------


def test_the_scaling_page_was_simulated_with_the_manifests_numbers():
    """bench/scaling.py reads the manifests; the JSON lines docs/SCALING.md quotes must carry
    the settings it reads now (re-run the bench and paste its output after changing them)."""
    from bench.scaling import platforms

    page = (ROOT / "docs" / "SCALING.md").read_text()
    runs = [json.loads(line) for line in page.splitlines() if line.startswith('{"bench": "scaling"')]
    quoted = [run["platforms"] for run in runs if not any("what if" in p["source"] for p in run["platforms"])]
    assert quoted, "docs/SCALING.md quotes no run of bench/scaling.py on the manifests' settings"
    current = [asdict(p) for p in platforms()]
    assert all(settings == current for settings in quoted), "docs/SCALING.md was simulated with other settings"
    assert {p["name"] for p in current} == {"BentoCloud", "Knative"}
    for p in current:
        assert p["max_replicas"] == renderer_bounds(p["name"].lower())[1]
        assert p["window"] == Settings.from_env(platform_env(p["name"].lower(), "gateway")).window
