"""The layering is a check: the import contracts hold, they catch what they forbid, and the
dependency diagram in docs/domains.md agrees with both the contracts and the real imports."""

from __future__ import annotations

import configparser
import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / ".importlinter"
DOMAINS = ROOT / "docs" / "domains.md"
DIAGRAM_HEADING = "## Context map and the direction of dependencies"


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]


def _config() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    assert config.read(CONTRACTS), f"{CONTRACTS} is missing"
    return config


def _contracts(config: configparser.ConfigParser) -> dict[str, configparser.SectionProxy]:
    prefix = "importlinter:contract:"
    return {name[len(prefix) :]: config[name] for name in config.sections() if name.startswith(prefix)}


def _apps(config: configparser.ConfigParser) -> list[str]:
    return _lines(config["importlinter"]["root_packages"])


def _forbidden_pairs(config: configparser.ConfigParser) -> dict[tuple[str, str], str]:
    """(importer app, imported app) -> the contract that forbids it, for every app-level rule."""
    apps = set(_apps(config))
    forbidden: dict[tuple[str, str], str] = {}
    for contract_id, contract in _contracts(config).items():
        kind = contract["type"]
        if kind == "layers":
            layers = [[name.strip() for name in layer.split("|")] for layer in _lines(contract["layers"])]
            for i, higher in enumerate(layers):
                for lower in layers[i + 1 :]:
                    for low in lower:
                        for high in higher:
                            forbidden[(low, high)] = contract_id
                for one in higher:  # siblings separated by "|" are independent
                    for other in higher:
                        if one != other:
                            forbidden[(one, other)] = contract_id
        elif kind == "forbidden":
            for source in _lines(contract["source_modules"]):
                for target in _lines(contract["forbidden_modules"]):
                    if source in apps and target in apps:
                        forbidden[(source, target)] = contract_id
        elif kind == "independence":
            modules = _lines(contract["modules"])
            for one in modules:
                for other in modules:
                    if one != other:
                        forbidden[(one, other)] = contract_id
        else:
            pytest.fail(f"contract {contract_id}: type {kind!r} is not read by this test; teach it")
    return forbidden


def _diagram() -> tuple[set[str], set[tuple[str, str]]]:
    """The node ids and the (from, to) edges of the mermaid diagram under the context map heading."""
    text = DOMAINS.read_text()
    section = text[text.index(DIAGRAM_HEADING) :]
    block = re.search(r"```mermaid\n(.*?)```", section, re.DOTALL)
    assert block, "no mermaid diagram under the context map heading"
    nodes: set[str] = set()
    edges: set[tuple[str, str]] = set()
    arrow = re.compile(r"\s*(?:-->|-\.->|==>)\s*")
    for raw in block.group(1).splitlines():
        line = raw.strip()
        if not line or line.startswith(("flowchart", "%%", "subgraph", "end", "classDef", "class ", "style ")):
            continue
        line = re.sub(r'-->\|"[^"]*"\|', "-->", line)  # -->|"label"|
        line = re.sub(r"-->\|[^|]*\|", "-->", line)  # -->|label|
        line = re.sub(r'-\.\s*"[^"]*"\s*\.->', "-.->", line)  # -. "label" .->
        line = re.sub(r'==\s*"[^"]*"\s*==>', "==>", line)  # == "label" ==>
        parts = arrow.split(line)
        if len(parts) == 1:
            node = re.match(r"(\w+)\s*[\[(]", line)
            assert node, f"diagram line not understood: {raw!r}"
            nodes.add(node.group(1))
            continue
        groups = [[name.strip() for name in part.split("&")] for part in parts]
        for names in groups:
            for name in names:
                assert re.fullmatch(r"\w+", name), f"diagram line not understood: {raw!r}"
                nodes.add(name)
        for sources, targets in itertools.pairwise(groups):
            edges.update((source, target) for source in sources for target in targets)
    return nodes, edges


def _imports_between_apps(apps: list[str]) -> dict[tuple[str, str], list[str]]:
    """(importer app, imported app) -> examples of the module imports behind it, lazy ones included."""
    graph = grimp.build_graph(*apps, cache_dir=None)
    found: dict[tuple[str, str], list[str]] = {}
    for importer in apps:
        for imported in apps:
            if importer == imported:
                continue
            if graph.direct_import_exists(importer=importer, imported=imported, as_packages=True):
                lines = graph.find_matching_direct_imports(import_expression=f"{importer}.** -> {imported}.**")
                found[(importer, imported)] = sorted({f"{i['importer']} -> {i['imported']}" for i in lines})
    return found


def test_the_contracts_say_what_the_layering_promises():
    config = _config()
    forbidden = _forbidden_pairs(config)
    domain = ["accounts", "catalog", "webhooks", "entitlements", "deals", "pricing"]
    expected = [("core", app) for app in [*domain, "demo"]]
    expected += [("catalog", app) for app in ["webhooks", "entitlements", "deals", "pricing", "demo"]]
    expected += [("webhooks", app) for app in ["catalog", "entitlements", "deals", "pricing", "demo"]]
    expected += [("entitlements", "deals"), ("deals", "entitlements"), ("deals", "pricing"), ("pricing", "deals")]
    expected += [(app, "demo") for app in domain]
    missing = [pair for pair in expected if pair not in forbidden]
    assert not missing, f"no contract forbids {missing}"

    services_tasks = [
        c
        for c in _contracts(config).values()
        if c["type"] == "forbidden"
        and _lines(c["source_modules"]) == ["*.services"]
        and _lines(c["forbidden_modules"]) == ["*.tasks"]
    ]
    assert len(services_tasks) == 1, "one contract forbids *.services (and what is under it) to import *.tasks"
    assert services_tasks[0].get("as_packages", "true").lower() == "true"
    assert services_tasks[0].get("allow_indirect_imports", "false").lower() == "false"
    for contract in _contracts(config).values():
        assert not contract.get("ignore_imports", "").strip(), "no contract carries exceptions"


def test_the_diagram_draws_every_app_and_no_arrow_a_contract_forbids():
    config = _config()
    apps = _apps(config)
    nodes, edges = _diagram()
    assert set(apps) <= nodes, f"apps missing from the diagram: {sorted(set(apps) - nodes)}"
    forbidden = _forbidden_pairs(config)
    drawn_forbidden = {edge: forbidden[edge] for edge in edges if edge in forbidden}
    assert not drawn_forbidden, f"the diagram draws arrows the contracts forbid: {drawn_forbidden}"


def test_the_diagram_draws_exactly_the_imports_between_apps():
    config = _config()
    apps = _apps(config)
    _, edges = _diagram()
    drawn = {edge for edge in edges if edge[0] in apps and edge[1] in apps}
    real = _imports_between_apps(apps)
    undrawn = {edge: real[edge][:3] for edge in sorted(set(real) - drawn)}
    unreal = sorted(drawn - set(real))
    assert not undrawn, f"imports between apps the diagram does not draw: {undrawn}"
    assert not unreal, f"arrows in the diagram with no import behind them: {unreal}"


def _lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("lint-imports")
    command = [str(executable)] if executable.exists() else [shutil.which("lint-imports") or "lint-imports"]
    return subprocess.run(
        [*command, "--no-logo", "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_lint_imports_keeps_every_contract():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(_contracts(_config()))
    assert f"Contracts: {count} kept, 0 broken." in result.stdout, result.stdout


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The apps' Python modules and the contract file, copied where a test may break them."""
    for app in _apps(_config()):
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONTRACTS, tmp_path / ".importlinter")
    return tmp_path


def _services_submodule(root: Path, app: str) -> Path:
    """A new module under ``app``'s services package; a services module becomes a package first."""
    module = root / app / "services.py"
    package = root / app / "services"
    if module.exists():
        package.mkdir()
        module.rename(package / "__init__.py")
    return package / "probe.py"


@pytest.mark.parametrize(
    ("contract", "where", "lazy_import"),
    [
        ("core", "core/actors.py", "from accounts.models import Account"),
        ("catalog", "catalog/selectors.py", "from pricing.selectors import market_cap_latest_annotations"),
        ("webhooks", "webhooks/registry.py", "from deals.models import Deal"),
        ("entitlements-deals", "deals/selectors.py", "from entitlements.selectors import grant_require"),
        ("pricing-deals", "pricing/selectors.py", "from deals.models import Deal"),
        ("layers", "accounts/selectors.py", "from demo.seed import catalog_seed"),
        ("services-tasks", "deals/services.py", "from webhooks.tasks import fanout"),
        ("services-tasks", "entitlements/services/probe.py", "from entitlements import tasks"),
    ],
)
def test_each_contract_breaks_on_an_import_inside_a_function(project_copy, contract, where, lazy_import):
    if where.endswith("services/probe.py"):
        path = _services_submodule(project_copy, where.split("/")[0])
    else:
        path = project_copy / where
    existing = path.read_text() if path.exists() else ""
    path.write_text(f"{existing}\n\ndef _probe():\n    {lazy_import}  # noqa\n")

    result = _lint_imports(project_copy, "--contract", contract)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken." in result.stdout, result.stdout
    importer = where.removesuffix(".py").replace("/", ".")
    assert importer in result.stdout, result.stdout
