"""Named rules from --where, --rule NAME=EXPR and --preset FILE.toml, compiled together against a
schema. A row is kept when every rule is true; a rule that is false or null (a missing value)
removes it, as a SQL WHERE clause does."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import UsageError
from curate.filter.compiler import BOOL, FUNCTIONS, Compiled, Env, QuantileRef, compile_expr
from curate.filter.errors import ExprError
from curate.filter.nodes import columns, unparse
from curate.filter.parser import parse

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_NAME = re.compile(r"[A-Za-z0-9_][\w.\-]*")
_NAME_HINT = "a name is letters, digits, '_', '-' and '.' (no spaces), starting with a letter, digit or '_'"


@dataclass(frozen=True)
class Rule:
    name: str
    expr: str
    source: str  # where it came from, for errors: "--where", "--rule short", "preset p.toml, rule short"


def where_rule(expr: str) -> Rule:
    """A --where is named by its own text, so rejects say exactly which condition removed them."""
    return Rule(" ".join(expr.split()), expr, "--where")


def rule_option(value: str) -> Rule:
    m = re.fullmatch(r"\s*([^=\s]+)\s*=(?!=)(.*)", value, re.S)
    if not m or not _NAME.fullmatch(m.group(1)):
        raise UsageError(f"--rule {value!r}: expected NAME=EXPR, e.g. --rule short='len(text) >= 200'",
                         hint=_NAME_HINT)
    return Rule(m.group(1), m.group(2).strip(), f"--rule {m.group(1)}")


def load_preset(path: str) -> list[Rule]:
    """[rules] NAME = "EXPR", or [rules.NAME] where = "EXPR" (and an optional description)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"--preset {path}: no such file") from None
    except UnicodeDecodeError as e:  # tomllib decodes the bytes itself
        raise UsageError(f"--preset {path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})",
                         hint="a TOML file is UTF-8: re-save it as UTF-8 (e.g. iconv -t UTF-8)") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"--preset {path}: not a readable TOML file ({e})") from None
    stray = [k for k in data if k not in ("rules", "description")]
    rules = data.get("rules")
    if stray or not isinstance(rules, dict) or not rules:
        raise UsageError(f"--preset {path}: expected a [rules] table of NAME = \"EXPR\""
                         + (f"; unknown key(s): {', '.join(stray)}" if stray else ""),
                         hint='[rules]\nshort = "len(text) >= 200"')
    out = []
    for name, v in rules.items():
        if not _NAME.fullmatch(name):
            raise UsageError(f"--preset {path}: {name!r} is not a rule name", hint=_NAME_HINT)
        where = v.get("where") if isinstance(v, dict) else v
        extra = [k for k in v if k not in ("where", "description")] if isinstance(v, dict) else []
        if not isinstance(where, str) or extra:
            raise UsageError(f"--preset {path}: rule {name!r} must be a string expression, or a table with "
                             "`where` (and optionally `description`)" + (f"; unknown key(s): {', '.join(extra)}"
                                                                         if extra else ""))
        out.append(Rule(name, where, f"preset {path}, rule {name}"))
    return out


def gather(presets=(), rules=(), wheres=()) -> list[Rule]:
    """Rules in order: presets, then --rule, then --where (the first failing one is reject_rule)."""
    out: list[Rule] = []
    for p in presets:
        out += load_preset(p)
    out += [rule_option(r) for r in rules]
    out += [where_rule(w) for w in wheres]
    if not out:
        raise UsageError("no rules: give --where EXPR, --rule NAME=EXPR or --preset FILE.toml")
    seen: dict[str, Rule] = {}
    for r in out:
        if r.name in seen and seen[r.name].expr.split() != r.expr.split():
            raise UsageError(f"rule {r.name!r} is defined twice ({seen[r.name].source}; {r.source})")
        if not r.expr.strip():
            raise UsageError(f"{r.source}: empty expression")
        seen.setdefault(r.name, r)  # the same rule given twice (a --config and the command line) is one rule
    return list(seen.values())


def schema_context(schema: pa.Schema, limit: int = 60) -> list[str]:
    cols = ", ".join(f"{f.name} ({f.type})" for f in list(schema)[:limit])
    if len(schema) > limit:
        cols += f", ... and {len(schema) - limit} more (curate info IN lists them all)"
    return [f"columns: {cols or '(none)'}", f"functions: {', '.join(FUNCTIONS)}"]


def parse_rule(rule: Rule):
    try:
        return parse(rule.expr)
    except ExprError as e:
        raise e.locate(rule.expr, rule.source) from None


class Program:
    """Every rule compiled against one schema; evaluates a batch into a (rules x rows) matrix."""

    def __init__(self, rules: list[Rule], schema: pa.Schema):
        self.rules = rules
        self.schema = schema
        self.names = [r.name for r in rules]
        self.trees = []
        self.compiled: list[Compiled] = []
        self.quantile_refs: dict[str, QuantileRef] = {}  # by key: one summary per distinct argument
        self.quantile_pairs: list[tuple[str, str]] = []  # (key, q) that the rules read
        for r in rules:
            try:
                tree = parse_rule(r)
                c, qs = compile_expr(tree, schema)
                if c.kind != BOOL:
                    raise ExprError(f"a rule must be a condition (true or false), but this is a {c.kind}",
                                    0, len(r.expr), hint="compare it with something, e.g. `x > 0`")
            except ExprError as e:
                e.locate(r.expr, r.source)
                e.context = schema_context(schema)
                raise
            self.trees.append(tree)
            self.compiled.append(c)
            for q in qs:
                self.quantile_refs.setdefault(q.key, q)
                if (q.key, q.q) not in self.quantile_pairs:
                    self.quantile_pairs.append((q.key, q.q))

    def columns(self) -> list[str]:
        return list(dict.fromkeys(c for t in self.trees for c in columns(t)))

    def evaluate(self, batch: pa.RecordBatch, quantiles=None) -> tuple[np.ndarray, np.ndarray]:
        """(fails, nulls): bool arrays of shape (rules, rows). A null result fails its rule."""
        env = Env(batch, quantiles)
        n = batch.num_rows
        fails = np.zeros((len(self.compiled), n), bool)
        nulls = np.zeros((len(self.compiled), n), bool)
        for i, c in enumerate(self.compiled):
            v = c.fn(env)
            if isinstance(v, pa.Scalar):  # a rule without columns: the same for every row
                fails[i] = not v.as_py()
                nulls[i] = not v.is_valid
                continue
            fails[i] = ~pc.fill_null(v, False).to_numpy(zero_copy_only=False)
            if v.null_count:
                nulls[i] = v.is_null().to_numpy(zero_copy_only=False)
        return fails, nulls


def display_values(tree) -> list:
    """The sub-expressions worth showing for a removed row: the operands a condition tested."""
    from curate.filter.nodes import Binary, Bool, Call, In, IsNull, Logic, Num, Str, Unary

    out: dict[str, object] = {}

    def visit(node):
        if isinstance(node, Logic):
            for o in node.operands:
                visit(o)
        elif isinstance(node, Unary) and node.op == "not":
            visit(node.operand)
        elif isinstance(node, Binary):
            for side in (node.left, node.right):
                if not isinstance(side, Num | Str | Bool) and not (isinstance(side, Call) and side.name == "quantile"):
                    out.setdefault(unparse(side), side)
        elif isinstance(node, IsNull | In):
            out.setdefault(unparse(node.operand), node.operand)
        elif isinstance(node, Call) and node.name != "quantile":
            if node.args:
                out.setdefault(unparse(node.args[0]), node.args[0])
        else:
            out.setdefault(unparse(node), node)
    visit(tree)
    return list(out.values())
