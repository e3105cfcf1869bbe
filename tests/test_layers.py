"""The house rules of edge/, written once: which package may import which (docs/architecture.md draws
them). Every import statement counts, at the top of a module or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# edge/'s packages, lowest first. A package may import itself and anything in a lower layer; never a
# higher layer, nor a sibling in its own layer. "edge" is the root: __init__ (version), ids, durable.
LAYERS = (
    ("edge",),
    ("edge.features",),
    ("edge.model",),
    ("edge.decisions",),
    ("edge.records",),
    ("edge.image", "edge.audio", "edge.delivery"),
    ("edge.sources", "edge.survey"),
    ("edge.config",),
    ("edge.service", "edge.doctor"),
    ("edge.cli",),
)
# The faces of edge/ that the workstation and the base station may use (module prefixes).
FACES = {
    "converter": ("edge", "edge.features", "edge.model", "edge.image.decode", "edge.image.classify",
                  # training tiles of an ortho read as `nv-edge scan` reads it, of frames at the GSD the unit finds
                  "edge.survey.raster", "edge.image.gsd",
                  # the device's own decisions and audio path, to choose operating points as a unit decides
                  "edge.decisions", "edge.audio.listen", "edge.audio.score_log", "edge.audio.audiofile"),
    "basestation": ("edge", "edge.delivery.connection", "edge.delivery.link", "edge.delivery.topics",
                    "edge.records.schemas"),
}
# Only the interpreter shim may fall back to TensorFlow's own interpreter.
TENSORFLOW_ALLOWED = {"edge.model.interpreter"}
MAX_LINES = 350
PROJECT = ("edge", "converter", "basestation")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(top: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / top).rglob("*.py"))}


ALL = {name: path for top in PROJECT for name, path in modules(top).items()}


def imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports, as absolute dotted names (`from a import b` counts `a.b` when that
    is a module of ours, else `a`)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in ALL else base)
    return found


def package_of(module: str) -> str:
    """edge.image.decode -> edge.image; edge.ids (a root module) -> edge."""
    parts = module.split(".")
    if len(parts) >= 2 and (ROOT / parts[0] / parts[1] / "__init__.py").exists():
        return ".".join(parts[:2])
    return parts[0]


LAYER_OF = {package: i for i, layer in enumerate(LAYERS) for package in layer}
GRAPH = {name: {m for m in imports(name, path) if m in ALL} for name, path in ALL.items()}
EXTERNAL = {name: imports(name, path) for name, path in ALL.items()}


def test_every_edge_package_has_a_layer():
    packages = {package_of(m) for m in modules("edge")}
    assert packages - set(LAYER_OF) == set(), "add the new package to LAYERS (and to docs/architecture.md)"
    assert set(LAYER_OF) - packages == set(), "LAYERS names a package that no longer exists"


def test_edge_imports_flow_down():
    wrong = []
    for name in sorted(modules("edge")):
        mine = package_of(name)
        for target in sorted(GRAPH[name]):
            theirs = package_of(target)
            if not target.startswith("edge"):
                wrong.append(f"{name} imports {target}: edge/ never imports the converter or the base station")
            elif theirs != mine and LAYER_OF[theirs] >= LAYER_OF[mine]:
                wrong.append(f"{name} (layer {LAYER_OF[mine]}, {mine}) imports {target} (layer {LAYER_OF[theirs]}, "
                             f"{theirs}): a package imports only lower layers; move the shared piece down")
    assert wrong == []


def test_edge_never_imports_tensorflow_but_the_interpreter_shim():
    wrong = [name for name in sorted(modules("edge")) if name not in TENSORFLOW_ALLOWED
             and any(m.split(".")[0] in ("tensorflow", "keras") for m in EXTERNAL[name])]
    assert wrong == [], "these modules import TensorFlow"


@pytest.mark.parametrize("top", sorted(FACES))
def test_converter_and_basestation_use_only_the_stable_faces(top):
    faces = FACES[top]
    wrong = sorted(f"{name} -> {target}" for name in modules(top) for target in GRAPH[name]
                   if target.startswith("edge") and not any(target == f or target.startswith(f + ".") for f in faces
                                                           if f != "edge") and package_of(target) != "edge")
    assert wrong == [], f"{top}/ may import only {', '.join(faces)} of edge/"


def test_no_import_circles():
    """Tarjan's strongly connected components over every module of the project: each must be alone."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert circles == []


def test_the_import_walk_sees_real_edges():
    """The checks above are only as good as the walk: it must see top-level, function-level and package
    imports, or every rule would pass vacuously."""
    assert "edge.features.pixels" in GRAPH["edge.image.decode"]  # top level
    assert "edge.service.run" in GRAPH["edge.cli.run"]  # inside a function (`from edge.service import run`)
    assert "edge.service.sdnotify" in GRAPH["edge.service.run"]  # `from edge.service import journal, sdnotify`
    assert "edge.config" in GRAPH["edge.cli.config"]  # a package's __init__


def test_modules_stay_small():
    sizes = {ALL[name].relative_to(ROOT): len(ALL[name].read_text().splitlines()) for name in sorted(ALL)}
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}, "split one concept out of each"
