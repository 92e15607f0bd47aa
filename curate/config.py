"""--config FILE.toml: option defaults per command, below the command line and the environment.

    [defaults]          # every command
    workers = 4
    [ingest]
    shard_size = "128MB"
"""

from __future__ import annotations

import sys

import click

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_default_map(path: str, group: click.Group) -> dict:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise click.BadParameter(f"{path}: no such file", param_hint="--config") from None
    except tomllib.TOMLDecodeError as e:
        raise click.BadParameter(f"{path}: not valid TOML ({e})", param_hint="--config") from None
    common = data.pop("defaults", {})
    out: dict[str, dict] = {}
    commands = {name: group.get_command(None, name) for name in group.list_commands(None)}
    for name, cmd in commands.items():
        known = {p.name for p in cmd.params}
        section = {k.replace("-", "_"): v for k, v in {**common, **data.get(name, {})}.items()}
        unknown = [k for k in data.get(name, {}) if k.replace("-", "_") not in known]
        if unknown:
            raise click.BadParameter(f"{path}: [{name}] has unknown option(s): {', '.join(unknown)}", param_hint="--config")
        out[name] = {k: v for k, v in section.items() if k in known}
    stray = [k for k in data if k not in commands]
    if stray:
        raise click.BadParameter(f"{path}: unknown section(s): {', '.join(stray)}; sections are [defaults] and command names",
                                 param_hint="--config")
    return out
