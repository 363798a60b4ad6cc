"""k8s/: valid against the Kubernetes schemas, and right where the schemas cannot tell."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runtime.config import Settings
from tests.deploy.manifests import (
    BASE,
    IMAGE_UID,
    JOBS,
    OVERLAY,
    PORTS,
    Manifest,
    clear_settings_environment,
    documented_secrets,
    image_tag,
    load,
    load_all,
    port_option,
    run,
    settings_field,
    tool,
    walk,
)

KUSTOMIZATION = "kustomization.yaml"
BASE_FILES = sorted(p for p in BASE.glob("*.yaml") if p.name != KUSTOMIZATION)
JOB_FILES = sorted(JOBS.glob("*.yaml"))
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "CronJob", "Job"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet"}

base: list[Manifest] = [doc for path in BASE_FILES for doc in load_all(path)]
jobs: list[Manifest] = [doc for path in JOB_FILES for doc in load_all(path)]
everything = base + jobs


def named(kind: str, docs: list[Manifest] = base) -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_template(workload: Manifest) -> Manifest:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]
    return workload["spec"]["template"]


def containers(workload: Manifest) -> list[Manifest]:
    spec = pod_template(workload)["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def workloads(docs: list[Manifest]) -> list[Manifest]:
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS]


def label(workload: Manifest) -> str:
    return f"{workload['kind']}/{workload['metadata'].get('name') or 'generated'}"


# --- the offline validators -------------------------------------------------------------


def validate(*files: Path) -> None:
    done = run(tool("kubernetes-validate"), "--strict", "--quiet", *map(str, files))
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_files_validate_strictly() -> None:
    validate(*BASE_FILES)


def test_overlay_resources_validate_strictly() -> None:
    # Patches are partial by nature: they are validated in the rendered overlay below.
    kustomization = load(OVERLAY / KUSTOMIZATION)
    files = [OVERLAY / r for r in kustomization["resources"] if (OVERLAY / r).is_file()]
    validate(*files)


def test_job_templates_validate_strictly(tmp_path: Path) -> None:
    # kubernetes-validate needs metadata.name; the templates use generateName so that each
    # `kubectl create -f` makes a new Job. Validate a named copy.
    copies = []
    for path in JOB_FILES:
        doc = load(path)
        doc["metadata"]["name"] = doc["metadata"].pop("generateName").rstrip("-")
        copy = tmp_path / path.name
        copy.write_text(yaml.safe_dump(doc))
        copies.append(copy)
    validate(*copies)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Manifest]]:
    kubectl = tool("kubectl")
    done = run(kubectl, "kustomize", str(OVERLAY))
    assert done.returncode == 0, done.stderr
    path = tmp_path_factory.mktemp("kustomize") / "example.yaml"
    path.write_text(done.stdout)
    return path, [d for d in yaml.safe_load_all(done.stdout) if d]


def test_the_example_overlay_renders_and_validates_strictly(
    rendered: tuple[Path, list[Manifest]],
) -> None:
    path, docs = rendered
    validate(path)
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        "oec-sync"
    }
    for workload in workloads(docs):
        for container in containers(workload):
            assert container["image"].startswith("registry.example.org/"), label(workload)
    config = named("ConfigMap", docs)["oec-sync-config"]["data"]
    assert config["OEC_SYNC_GITHUB_FORK"]
    assert config["OEC_SYNC_DATA_DIR"] == "/var/lib/oec-sync"  # the base's keys survive


def test_the_overlay_keeps_the_structure_checks(rendered: tuple[Path, list[Manifest]]) -> None:
    _, docs = rendered
    check_selectors(docs)
    for workload in workloads(docs):
        check_pod_security(workload)


# --- kustomize layout -------------------------------------------------------------------


@pytest.mark.parametrize("folder", [BASE, OVERLAY], ids=["base", "overlay"])
def test_kustomizations_list_only_existing_files(folder: Path) -> None:
    kustomization = load(folder / KUSTOMIZATION)
    for resource in kustomization.get("resources", []):
        target = (folder / resource).resolve()
        assert target.is_file() or (target / KUSTOMIZATION).is_file(), resource
    for patch in kustomization.get("patches", []):
        assert (folder / patch["path"]).is_file(), patch["path"]


def test_every_base_file_is_in_the_kustomization() -> None:
    listed = set(load(BASE / KUSTOMIZATION)["resources"])
    assert listed == {p.name for p in BASE_FILES}


# --- what the schemas miss --------------------------------------------------------------


def check_pod_security(workload: Manifest) -> None:
    pod = pod_template(workload)["spec"]
    where = label(workload)
    assert pod["securityContext"]["runAsNonRoot"] is True, where
    assert pod["securityContext"]["runAsUser"] == IMAGE_UID, where
    assert pod["automountServiceAccountToken"] is False, where
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
    for container in containers(workload):
        where = f"{label(workload)}: {container['name']}"
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["runAsNonRoot"] is True, where
        assert security["capabilities"]["drop"] == ["ALL"], where
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) >= {"cpu", "memory"}, f"{where} {kind}"
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{where}: /tmp must be an emptyDir"
        for name in mounts.values():
            assert name in volumes or name in claims, f"{where}: no volume {name}"
        tag = image_tag(container["image"])
        assert tag not in {None, "latest"}, f"{where}: pin the image, not {container['image']}"


@pytest.mark.parametrize("workload", workloads(everything), ids=label)
def test_every_container_is_locked_down_and_sized(workload: Manifest) -> None:
    check_pod_security(workload)


@pytest.mark.parametrize(
    "workload", [w for w in base if w["kind"] in LONG_RUNNING_KINDS], ids=label
)
def test_services_probe_health_and_readiness_on_their_status_port(workload: Manifest) -> None:
    [main] = pod_template(workload)["spec"]["containers"]
    role = main["args"][0]
    port = port_option(main["args"])
    assert port == PORTS[role]
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        check = main[probe]["httpGet"]
        assert check["path"] == path, f"{role} {probe}"
        assert ports.get(check["port"], check["port"]) == port, f"{role} {probe}"
    if "startupProbe" in main:
        assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    annotations = pod_template(workload)["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)


def test_env_references_name_defined_configmaps_and_documented_secrets() -> None:
    config_maps = named("ConfigMap")
    secrets = documented_secrets()
    assert secrets, "docs/operations.md creates no secret"
    for workload in workloads(everything):
        for container in containers(workload):
            where = f"{label(workload)}: {container['name']}"
            for key, ref in walk(container):
                if key in {"configMapRef", "configMapKeyRef"}:
                    assert ref["name"] in config_maps, f"{where}: no ConfigMap {ref['name']}"  # type: ignore[index]
                    if key == "configMapKeyRef":
                        assert ref["key"] in config_maps[ref["name"]]["data"], where  # type: ignore[index]
                if key in {"secretRef", "secretKeyRef"}:
                    name = ref["name"]  # type: ignore[index]
                    assert name in secrets, f"{where}: Secret {name} is not documented"
                    if key == "secretKeyRef":
                        assert ref["key"] in secrets[name], f"{where}: {name}/{ref['key']}"  # type: ignore[index]


@pytest.mark.parametrize(
    "workload", [w for w in base if w["kind"] in LONG_RUNNING_KINDS], ids=label
)
def test_status_apis_listen_in_the_pod_and_read_the_token_from_its_secret(
    workload: Manifest,
) -> None:
    config = named("ConfigMap")["oec-sync-config"]["data"]
    assert config["OEC_SYNC_STATUS_HOST"] == "0.0.0.0"  # probes reach the pod's address
    pod = pod_template(workload)["spec"]
    [main] = pod["containers"]
    env = {e["name"]: e.get("value") for e in main["env"]}
    token_file = Path(env["OEC_SYNC_STATUS_TOKEN_FILE"])
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    mount = mounts[str(token_file.parent)]
    assert mount["readOnly"] is True
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert "optional" not in secret, "no token, no start: the API listens on the pod's address"
    assert token_file.name in documented_secrets()[secret["secretName"]]


def test_environment_names_real_settings() -> None:
    names = [n for n in named("ConfigMap")["oec-sync-config"]["data"] if n.startswith("OEC_")]
    for workload in workloads(everything):
        for container in containers(workload):
            names += [e["name"] for e in container.get("env", [])]
    names += [n for n in load(OVERLAY / "config.yaml")["data"] if n.startswith("OEC_")]
    for name in names:
        if name.startswith("OEC_SYNC_"):
            assert settings_field(name), f"{name} is no setting of runtime/config.py"
        else:
            assert name == "OEC_GIT_URL", f"{name}: an OEC_SYNC_ typo?"


def test_no_secret_value_is_committed() -> None:
    assert not [d for d in everything if d["kind"] == "Secret"]
    config = named("ConfigMap")["oec-sync-config"]["data"]
    for name in config:
        assert not any(s in name for s in ("TOKEN", "PASSWORD", "AMQP_URL", "WEBHOOK")), name


def test_the_fetcher_cronjob_is_bounded() -> None:
    cron = named("CronJob")["oec-sync-fetcher"]["spec"]
    assert cron["schedule"].split()[2:] == ["*", "*", "*"], "daily"
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["timeZone"]
    assert 0 < cron["startingDeadlineSeconds"] <= 6 * 3600
    assert cron["successfulJobsHistoryLimit"] >= 1
    assert cron["failedJobsHistoryLimit"] >= 1
    job = cron["jobTemplate"]["spec"]
    assert 0 <= job["backoffLimit"] <= 5
    assert 0 < job["activeDeadlineSeconds"] <= 24 * 3600
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["args"] == ["fetcher", "--once"]


def test_the_replay_job_runs_once() -> None:
    [job] = jobs
    assert job["metadata"]["generateName"] == "oec-sync-replay-"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] > 0
    assert pod_template(job)["spec"]["containers"][0]["args"][0] == "replay"


def test_mergers_scale_with_an_autoscaler_that_owns_the_replicas() -> None:
    hpa = named("HorizontalPodAutoscaler")["oec-sync-merger"]["spec"]
    target = hpa["scaleTargetRef"]
    assert named(target["kind"])[target["name"]]["metadata"]["name"] == "oec-sync-merger"
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert "replicas" not in named("Deployment")["oec-sync-merger"]["spec"]


def test_the_publisher_is_one_statefulset_with_its_volumes() -> None:
    publisher = named("StatefulSet")["oec-sync-publisher"]
    assert publisher["spec"]["replicas"] == 1
    claims = {c["metadata"]["name"] for c in publisher["spec"]["volumeClaimTemplates"]}
    assert claims == {"data", "snapshots"}
    [main] = publisher["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    assert mounts["data"] == "/var/lib/oec-sync"
    assert mounts["snapshots"] == "/var/lib/oec-sync/snapshots"
    headless = named("Service")[publisher["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"


def check_selectors(docs: list[Manifest]) -> None:
    """Selectors match pod labels; every Service reaches a named port of its pods."""
    pods: list[tuple[Manifest, dict[str, str]]] = []
    for workload in workloads(docs):
        labels = pod_template(workload)["metadata"]["labels"]
        if workload["kind"] in LONG_RUNNING_KINDS:
            selector = workload["spec"]["selector"]["matchLabels"]
            assert selector.items() <= labels.items(), label(workload)
        pods.append((workload, labels))

    def selected(selector: dict[str, str]) -> list[Manifest]:
        return [w for w, labels in pods if selector.items() <= labels.items()]

    for service in named("Service", docs).values():
        [workload] = selected(service["spec"]["selector"])
        ports = {
            p["name"]: p["containerPort"]
            for c in pod_template(workload)["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports or port["targetPort"] in ports.values()
    for pdb in named("PodDisruptionBudget", docs).values():
        assert selected(pdb["spec"]["selector"]["matchLabels"]), pdb["metadata"]["name"]


def test_labels_and_selectors_match() -> None:
    check_selectors(base)


def test_the_example_configuration_is_accepted_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clear_settings_environment(monkeypatch)
    environment = {
        **named("ConfigMap")["oec-sync-config"]["data"],
        **load(OVERLAY / "config.yaml")["data"],
        # What the Secrets provide.
        "OEC_SYNC_AMQP_URL": "amqp://oec-sync:pw@rabbitmq.oec-sync.svc:5672/%2F",
        "OEC_SYNC_GITHUB_TOKEN": "github_pat_x",
        "OEC_SYNC_ALERTS__SMTP_PASSWORD": "smtp-pw",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.alerts.email_enabled
    assert settings.alerts.smtp_to == ["exoplanets-ops@example.org"]
    assert settings.broker_configured
    publisher = named("StatefulSet")["oec-sync-publisher"]
    [main] = publisher["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: Path(m["mountPath"]) for m in main["volumeMounts"]}
    assert settings.data_dir == mounts["data"]
    assert settings.archive_dir == mounts["snapshots"]
    assert settings.oec_repo.parent == mounts["data"]
