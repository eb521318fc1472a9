"""The operators' deployment files, checked offline with the real tools, each pinned:
helm v3.22.0 (built from the Go module proxy by deploy/tools/helm.sh, cached under var/),
kubernetes-validate 1.37.0 (the Kubernetes 1.25-1.37 OpenAPI schemas, strict) and
check-jsonschema 0.39.0 (the Compose specification's schema). Each validator is also
shown a broken document, so that a pass means something."""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from shared.service import available, load

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "learnstream"
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
CONTAINER = REPO / "deploy" / "container"
BIN = Path(sys.executable).parent
FERNET = "Cbbl9EeTd4cW-wuGdNYOpe6N8cUD7H5ZMY7mwYHuj24="
SECRETS = ["--set", "secrets.credentials=ops:s3cret", "--set", "secrets.databasePassword=pw",
           "--set", f"secrets.forwardingSecretKeys={FERNET}", "--set", "secrets.dashboardSessionSecret=sess"]
# The oldest and newest Kubernetes the chart is checked against (kubernetes-validate bundles 1.25-1.37).
KUBERNETES_VERSIONS = ("1.25.0", "1.37.0")

# A cold helm build takes 3-7 minutes on a loaded 2-core machine: past the suite's 300 s.
pytestmark = [pytest.mark.deploy, pytest.mark.timeout(1200)]


def parts_of(service: str) -> tuple[str, ...]:
    return load(service).worker_parts


@pytest.fixture(scope="session")
def helm() -> str:
    if shutil.which("go") is None and not any((REPO / "var" / "tools").glob("helm-*/helm")):
        pytest.fail("Go is needed to build the pinned helm (deploy/tools/helm.sh)")
    out = subprocess.run(["bash", str(REPO / "deploy" / "tools" / "helm.sh")], check=True,
                         capture_output=True, text=True, timeout=1100)
    return out.stdout.strip().splitlines()[-1]


def run_helm(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # helm's own state (repositories, plugins) kept off the user's home: nothing outside is read.
    home = REPO / "var" / "tools" / "helm-home"
    env = {**os.environ, **{f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}}
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=check, env=env)


def render(helm: str, *extra: str) -> list[dict]:
    out = run_helm(helm, "template", "ls", str(CHART), *SECRETS, *extra)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="session")
def rendered(helm) -> list[dict]:
    return render(helm)


def named(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


# ---------------------------------------------------------------- helm itself

def test_helm_is_the_pinned_version_built_from_its_module(helm):
    if shutil.which("go") is None:
        pytest.skip("no Go to read the binary's build information")
    info = subprocess.run(["go", "version", "-m", helm], capture_output=True, text=True, check=True).stdout
    assert "\tmod\thelm.sh/helm/v3\tv3.22.0\t" in info


def test_chart_lints_strictly(helm):
    out = run_helm(helm, "lint", "--strict", str(CHART), *SECRETS)
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout


def test_chart_refuses_to_render_without_secrets(helm):
    out = run_helm(helm, "template", "ls", str(CHART), check=False)
    assert out.returncode != 0 and "secrets.credentials" in out.stderr


def test_chart_refuses_more_workers_than_partitions(helm):
    out = run_helm(helm, "template", "ls", str(CHART), *SECRETS, "--set", "services.progress.projections.replicas=7",
                   check=False)
    assert out.returncode != 0 and "exceeds kafka.partitions" in out.stderr
    # ... and allows them once the partitions are raised with them.
    render(helm, "--set", "services.progress.projections.replicas=7", "--set", "kafka.partitions=12")


# ---------------------------------------------------------------- what the chart renders

def test_every_service_gets_a_web_tier_with_service_hpa_pdb_and_probes(rendered):
    deployments, services = named(rendered, "Deployment"), named(rendered, "Service")
    hpas, pdbs = named(rendered, "HorizontalPodAutoscaler"), named(rendered, "PodDisruptionBudget")
    assert available() == ("enrollment", "progress", "assessment", "certification", "forwarding")
    for service in available():
        name = f"ls-learnstream-{service}-web"
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["web", service]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        # The HPA owns the replica count: a replicas field would fight it on every upgrade.
        assert "replicas" not in deployments[name]["spec"]
        assert hpas[name]["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert services[name]["spec"]["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]
        assert pdbs[name]["spec"]["selector"]["matchLabels"] == deployments[name]["spec"]["selector"]["matchLabels"]


def test_every_worker_part_gets_its_own_deployment_and_pdb_and_no_more(rendered):
    deployments, pdbs = named(rendered, "Deployment"), named(rendered, "PodDisruptionBudget")
    expected = {f"ls-learnstream-{s}-{p}": ["worker", s, p] for s in available() for p in parts_of(s)}
    workers = {name: d["spec"]["template"]["spec"]["containers"][0]["args"]
               for name, d in deployments.items() if not name.endswith("-web")}
    assert workers == expected
    assert set(expected) <= set(pdbs)
    selectors = [d["spec"]["selector"]["matchLabels"] for d in deployments.values()]
    assert len({tuple(sorted(s.items())) for s in selectors}) == len(selectors), "two deployments share a selector"


def test_settings_come_from_the_configmap_and_secrets_from_the_secret(rendered):
    (config,) = named(rendered, "ConfigMap").values()
    assert config["data"]["KAFKA_TOPIC_REPLICATION_FACTOR"] == "3"
    assert config["data"]["KAFKA_TOPIC_MIN_INSYNC_REPLICAS"] == "2"
    assert config["data"]["KAFKA_TOPIC_PARTITIONS"] == "6"
    (secret,) = named(rendered, "Secret").values()
    assert secret["stringData"] == {"LEARNSTREAM_CREDENTIALS": "ops:s3cret", "DATABASE_PASSWORD": "pw",
                                    "FORWARDING_SECRET_KEYS": FERNET, "DASHBOARD_SESSION_SECRET": "sess"}
    assert "s3cret" not in yaml.safe_dump(config) and "pw@" not in yaml.safe_dump(rendered)
    pods = [o["spec"]["template"]["spec"] for o in rendered if o["kind"] in ("Deployment", "Job")]
    for pod in pods:
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
            env = {e["name"]: e for e in container["env"]}
            for key in ("LEARNSTREAM_CREDENTIALS", "FORWARDING_SECRET_KEYS", "DASHBOARD_SESSION_SECRET",
                        "DATABASE_PASSWORD"):
                assert env[key]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": key}
            # Kubernetes expands $(VAR) only from variables defined before this one.
            names = list(env)
            assert names.index("DATABASE_PASSWORD") < names.index("DATABASE_URL")
            assert "$(DATABASE_PASSWORD)@" in env["DATABASE_URL"]["value"]


def test_topic_replication_follows_the_values(helm):
    objects = render(helm, "--set", "kafka.replicationFactor=5", "--set", "kafka.minInsyncReplicas=3")
    (config,) = named(objects, "ConfigMap").values()
    assert (config["data"]["KAFKA_TOPIC_REPLICATION_FACTOR"], config["data"]["KAFKA_TOPIC_MIN_INSYNC_REPLICAS"]) \
        == ("5", "3")


def test_migration_runs_as_a_hook_before_new_pods_and_its_inputs_exist_first(rendered):
    (job,) = named(rendered, "Job").values()
    hooks = job["metadata"]["annotations"]
    assert hooks["helm.sh/hook"] == "pre-install,pre-upgrade"
    pod = job["spec"]["template"]["spec"]
    assert [c["args"] for c in pod["initContainers"]] == [["migrate"]]
    assert [c["args"] for c in pod["containers"]] == [["topics"]]
    # The Job reads the ConfigMap and the Secret, so they are earlier hooks (lower weight).
    for kind in ("ConfigMap", "Secret"):
        (obj,) = named(rendered, kind).values()
        assert obj["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(obj["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(hooks["helm.sh/hook-weight"])


# ---------------------------------------------------------------- Kubernetes schemas

@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_objects_match_the_kubernetes_schemas_strictly(rendered, version):
    for obj in rendered:
        kubernetes_validate.validate(obj, version, strict=True)


def first(objects, kind):
    return copy.deepcopy(next(o for o in objects if o["kind"] == kind))


def test_the_schema_check_rejects_a_wrong_type_and_a_misspelt_field(rendered):
    deployment = first(rendered, "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.37.0", strict=True)
    deployment = first(rendered, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {"httpGet": {"path": "/healthz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.37.0", strict=True)


def test_the_cli_checks_a_rendered_file_too(rendered, tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump_all(rendered))
    hpa = first(rendered, "HorizontalPodAutoscaler")
    hpa["spec"]["maxReplica"] = hpa["spec"].pop("maxReplicas")
    bad.write_text(yaml.safe_dump(hpa))
    cli = str(BIN / "kubernetes-validate")
    assert subprocess.run([cli, "--strict", "--quiet", str(good)], capture_output=True).returncode == 0
    assert subprocess.run([cli, "--strict", "--quiet", str(bad)], capture_output=True).returncode != 0


# ---------------------------------------------------------------- compose

def check_compose(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_compose_file_matches_the_compose_specification():
    out = check_compose(COMPOSE)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_compose_check_rejects_a_misspelt_key(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("    restart: unless-stopped\n", "    restarts: unless-stopped\n", 1))
    assert check_compose(broken).returncode != 0


def test_compose_runs_every_web_tier_and_worker_part_after_the_one_shot_migration():
    services = yaml.safe_load(COMPOSE.read_text())["services"]  # safe_load resolves the << merges
    commands = {name: s["command"] for name, s in services.items() if "command" in s}
    expected = {f"{s}-web": ["web", s] for s in available()}
    expected |= {f"{s}-{p}": ["worker", s, p] for s in available() for p in parts_of(s)}
    expected |= {"migrate": ["migrate"], "topics": ["topics"]}
    assert commands == expected
    assert {"kafka", "postgres"} <= set(services)
    for name in set(expected) - {"migrate", "topics"}:
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"},
                                                "topics": {"condition": "service_completed_successfully"}}
    assert services["migrate"]["restart"] == "no"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper


# ---------------------------------------------------------------- the image

def test_image_runs_as_a_fixed_non_root_user_with_a_healthcheck():
    lines = [line.strip() for line in (CONTAINER / "Containerfile").read_text().splitlines()]
    (user,) = [line for line in lines if line.startswith("USER ")]
    assert user == "USER 10001:10001"
    assert any(line.startswith("HEALTHCHECK ") and "/healthcheck.py" in line for line in lines)
    assert 'ENTRYPOINT ["/entrypoint.sh"]' in lines


@pytest.mark.parametrize("argv", [[], ["bogus"], ["web"], ["web", "nosuch"], ["worker", "progress"],
                                  ["worker", "progress", "both"], ["worker", "nosuch", "relay"]])
def test_entrypoint_refuses_what_it_cannot_run(argv):
    out = subprocess.run(["sh", str(CONTAINER / "entrypoint.sh"), *argv], capture_output=True, text=True)
    assert out.returncode == 64 and "usage: web <service>" in out.stderr


def test_entrypoint_hands_worker_and_cli_commands_to_learnstream():
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    out = subprocess.run(["sh", str(CONTAINER / "entrypoint.sh"), "learnstream", "worker", "--help"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert out.returncode == 0 and "--only [relay|projections]" in out.stdout
