"""Reading docker-compose.yaml, the Dockerfile and .dockerignore the way Docker does, without Docker.

Shared by the static checks (test_compose.py) and the native run of the same services
(test_native_stack.py), so the native run uses the compose file's own settings.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.fixtures import REPO

COMPOSE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
AIRFLOW_COMPONENTS = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")

# ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR, and $$ (a literal $), as compose interpolates them.
_INTERP = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution, applied to every string in ``value``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        if m.group(2) == ":-":
            return env.get(name) or m.group(3)
        if m.group(2) == "-":
            return env.get(name, m.group(3))
        if name not in env:
            raise KeyError(f"docker-compose.yaml uses ${{{name}}} with no default")
        return env[name]

    return _INTERP.sub(sub, value)


def load_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    import yaml

    raw = yaml.safe_load(COMPOSE.read_text())  # resolves the << merge keys
    return interpolate(raw, env or {})


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# ---- Dockerfile ---------------------------------------------------------------------------------


@dataclass
class Copy:
    sources: list[str]
    dest: str


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def dockerfile_copies() -> list[Copy]:
    copies = []
    for word, rest in dockerfile_instructions():
        if word not in ("COPY", "ADD"):
            continue
        parts = [p for p in shlex.split(rest) if not p.startswith("--")]
        copies.append(Copy(sources=parts[:-1], dest=parts[-1]))
    return copies


# ---- .dockerignore ------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern:
    # Go filepath.Match semantics plus "**" for any number of directories, as Docker uses them.
    parts = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            parts.append(".*")
            i += 2
            if pattern.startswith("/", i):
                parts[-1] = "(?:.*/)?"
                i += 1
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts) + "(?:/.*)?$")  # a matched directory excludes what it holds


def dockerignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = re.sub(r"/+", "/", pattern.strip("/"))
        rules.append((negate, _pattern_regex(pattern)))
    return rules


def is_ignored(rel_path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    ignored = False
    for negate, regex in rules:  # the last matching rule wins
        if regex.match(rel_path):
            ignored = not negate
    return ignored


def build_context_files(sources: list[str]) -> list[str]:
    """The files under ``sources`` (relative to the repo) that Docker would send for a COPY."""
    rules = dockerignore_rules()
    files = []
    for source in sources:
        root = REPO / source
        candidates = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in candidates:
            rel = path.relative_to(REPO).as_posix()
            if not is_ignored(rel, rules):
                files.append(rel)
    return sorted(files)


# ---- what the DAGs read -------------------------------------------------------------------------

_VAR_TEMPLATE = re.compile(r"var\.(?:value|json)\.([A-Za-z_][A-Za-z0-9_]*)")


def dag_requirements(dags_dir: Path) -> tuple[set[str], set[str]]:
    """Connection ids and Variable keys the DAG files name (keyword ``*conn_id=``, defaults of
    ``*conn_id`` parameters, ``Variable.get("x")``, ``{{ var.value.x }}``)."""
    conns: set[str] = set()
    variables: set[str] = set()
    for path in sorted(dags_dir.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg and node.arg.endswith("conn_id"):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    conns.add(node.value.value)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if (node.func.attr == "get" and isinstance(owner, ast.Name) and owner.id == "Variable"
                        and node.args and isinstance(node.args[0], ast.Constant)):  # fmt: skip
                    variables.add(str(node.args[0].value))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                variables.update(_VAR_TEMPLATE.findall(node.value))
    return conns, variables


def conn_env_name(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


def var_env_name(key: str) -> str:
    return "AIRFLOW_VAR_" + key.upper()
