"""KenLM plumbing: where lmplz and build_binary live, model manifests, and loading a binary model
once per process with errors that say what to do."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from curate.errors import InputError, UsageError

BINARY_MAGIC = b"mmap lm http://kheafield.com/code"  # the header of every KenLM binary model
MANIFEST_SUFFIX = ".json"
_models: dict[tuple, object] = {}  # one loaded model per file and process


def kenlm_tool(name: str) -> str:
    """Path of a KenLM program: $CURATE_KENLM_BIN/name, else this environment's bin/ (where
    scripts/build_kenlm.sh puts it), else the PATH."""
    env = os.environ.get("CURATE_KENLM_BIN")
    places = [Path(env)] if env else [Path(sys.prefix) / "bin"]
    for d in places:
        p = d / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    found = None if env else shutil.which(name)
    if found:
        return found
    where = f"CURATE_KENLM_BIN={env}" if env else f"{places[0]} or the PATH"
    raise UsageError(f"KenLM's {name} not found in {where}",
                     hint="run scripts/build_kenlm.sh (make setup does), or point CURATE_KENLM_BIN at the bin/ "
                          "folder of your KenLM build")


def manifest_path(model: str | Path) -> Path:
    return Path(str(model) + MANIFEST_SUFFIX)


def read_model_manifest(model: str | Path) -> dict | None:
    p = manifest_path(model)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except ValueError:
        raise InputError("model manifest is not valid JSON", where=str(p),
                         hint="retrain the model with curate ngram train, or delete the manifest to skip its checks") from None


def check_model_file(path: str | Path) -> Path:
    """A KenLM binary model, or a clean error (missing, ARPA text, something else)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("model file not found", where=str(p), hint="train one with: curate ngram train IN MODEL")
    with open(p, "rb") as f:
        head = f.read(4096)
    if head.startswith(BINARY_MAGIC):
        return p
    if head.lstrip(b" \t\r\n").startswith(b"\\data\\"):
        raise InputError("this is an ARPA text model, not a binary one", where=str(p),
                         hint=f"convert it once: {kenlm_tool_name('build_binary')} {p} {p.with_suffix('.bin')} "
                              "(loading ARPA text takes minutes and memory in every worker)")
    raise InputError("not a KenLM binary model (no KenLM header)", where=str(p),
                     hint="pass the binary file written by curate ngram train or KenLM's build_binary")


def kenlm_tool_name(name: str) -> str:
    try:
        return kenlm_tool(name)
    except UsageError:
        return name


def load_model(path: str | Path):
    """The kenlm.Model for a binary file, loaded (memory-mapped) once per process."""
    p = check_model_file(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    m = _models.get(key)
    if m is None:
        import kenlm

        try:
            m = kenlm.Model(str(p))
        except (OSError, RuntimeError) as e:
            raise InputError(f"KenLM cannot load this model: {str(e).splitlines()[0][:300]}", where=str(p),
                             hint="the file is truncated or corrupt: rebuild it with curate ngram train") from None
        _models[key] = m
    return m
