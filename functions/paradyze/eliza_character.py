"""The character an agent runs: a stored 0.x, 1.x or mixed file made into what ElizaOS 1.7.2 accepts.

ElizaOS 1.7.2 validates characters with a strict zod schema (@elizaos/core, schemas/character.ts):
only the keys in SCHEMA_KEYS, `messageExamples` as arrays of `{name, content}`, `plugins` as
package names, `settings` values that are not null. What a user uploads is mapped onto that where
ElizaOS 1.x has an equivalent (0.x `user` -> `name`, 1.x `{"examples": [...]}` unwrapped, `lore`
-> `bio`, `{{user1}}` -> `{{name1}}`), dropped where it has none (`clients`, `modelProvider` once
it chose the model plugin, unknown keys), and a 422 naming each field where it cannot be made valid.
Secrets never appear in it: they reach the agent as environment variables (agent_env.py).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from . import agent_env
from . import eliza_fields as fields
from .eliza_fields import Errors
from .errors import ValidationFailed
from .settings import get_settings

SCHEMA_KEYS = ("id", "name", "username", "system", "templates", "bio", "messageExamples", "postExamples",
               "topics", "adjectives", "knowledge", "plugins", "settings", "style")
ALWAYS = ("@elizaos/plugin-sql", "@elizaos/plugin-bootstrap")
# Plugins that give ElizaOS a text model; without one, every message fails inside ElizaOS.
MODEL_PLUGINS = frozenset({*(p.plugin for p in agent_env.PROVIDERS), "@elizaos/plugin-ollama"})
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
# npm's rule for a package name (scoped or not), which a plugin name must follow to be looked up at all.
_PACKAGE_NAME = re.compile(r"^(@[a-z0-9-~][a-z0-9-._~]*/)?[a-z0-9-~][a-z0-9-._~]*$")


def installed_plugins(app_dir: Path | None = None) -> frozenset[str]:
    """The ElizaOS plugins in the pinned install (`@elizaos/plugin-*` with a package.json)."""
    return _plugins_in((app_dir or get_settings().elizaos_dir / "app") / "node_modules" / "@elizaos")


@functools.lru_cache(maxsize=8)
def _plugins_in(scope: Path) -> frozenset[str]:
    # Read once per process: every create and update asks several times, and the pinned install
    # only changes when local_emulator/elizaos.sh runs again, before the functions start.
    if not scope.is_dir():
        return frozenset()
    return frozenset(f"@elizaos/{p.name}" for p in scope.iterdir()
                     if p.name.startswith("plugin-") and (p / "package.json").is_file())


def plugin_package(name: str) -> str:
    """A package name for what a character names: "openai" and "plugin-openai" are @elizaos/plugin-openai."""
    if name.startswith("@"):
        return name
    return f"@elizaos/{name if name.startswith('plugin-') else 'plugin-' + name}"


def check(config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
    """Raise ValidationFailed (a 422) naming every field that keeps a character from running.

    config: the character as stored (secrets split off); secrets: every secret it would set.
    """
    errors = Errors()
    _normalise(config, frozenset(), errors)
    errors.details += agent_env.check_secrets(secrets, ["character", "settings", "secrets"])
    _raise(errors)


def for_runtime(config: Mapping[str, Any], available_keys: Collection[str]) -> dict[str, Any]:
    """The runtime character: what ElizaOS 1.7.2's schema accepts, plugins resolved, no secrets.

    available_keys: the model keys the agent's environment holds (agent_env.AgentEnv.model_keys);
    they choose the model plugin. Raises ValidationFailed when the character cannot be made valid.
    """
    errors = Errors()
    character = _normalise(config, frozenset(available_keys), errors)
    _raise(errors)
    return character


def write_runtime(agent_id: str, character: Mapping[str, Any]) -> Path:
    """Write the runtime character into the agent's own folder (0700) and return its path."""
    path = runtime_path(agent_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    path.write_text(json.dumps(character, ensure_ascii=False, indent=2))
    return path


def runtime_path(agent_id: str) -> Path:
    return get_settings().agent_home(agent_id) / "character.json"


def started_without_model(agent_id: str) -> bool:
    """Whether the agent's last start gave it no model plugin (False when this host has no record)."""
    try:
        plugins = json.loads(runtime_path(agent_id).read_text()).get("plugins") or []
    except (OSError, ValueError):
        return False
    return not MODEL_PLUGINS.intersection(plugins)


def _raise(errors: Errors) -> None:
    if errors.details:
        fields = ", ".join(".".join(str(p) for p in d["loc"][1:]) for d in errors.details[:5])
        raise ValidationFailed(f"the character cannot run on ElizaOS: {fields}", details=errors.details)


def _normalise(config: Mapping[str, Any], keys: frozenset[str], errors: Errors) -> dict[str, Any]:
    out: dict[str, Any] = {}
    name = config.get("name")
    if isinstance(name, str) and name.strip():
        out["name"] = name
    else:
        errors.add(["name"], "a name is required")
    if isinstance(config.get("id"), str) and _UUID.match(config["id"]):
        out["id"] = config["id"]  # anything else is dropped: ElizaOS derives the id from the name
    for key in ("username", "system"):
        if isinstance(config.get(key), str):
            out[key] = config[key]
        elif config.get(key) is not None:
            errors.add([key], "must be a string")
    bio = fields.bio(config, errors)
    if bio is not None:
        out["bio"] = bio
    for key in ("postExamples", "topics", "adjectives"):
        if config.get(key) is not None:
            out[key] = fields.strings(config[key], [key], errors)
    if config.get("templates") is not None:
        out["templates"] = fields.templates(config["templates"], errors)
    if config.get("messageExamples") is not None:
        out["messageExamples"] = fields.examples(config["messageExamples"], errors)
    if config.get("knowledge") is not None:
        out["knowledge"] = fields.knowledge(config["knowledge"], errors)
    if config.get("style") is not None:
        out["style"] = fields.style(config["style"], errors)
    settings = fields.settings(config.get("settings"), errors)
    if settings:
        out["settings"] = settings
    out["plugins"] = _plugins(config, keys, errors)
    return out


def unavailable_plugins(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The plugins a character names that the pinned ElizaOS does not have, each with where and why.

    Real character files name plugins of their authors' own installs (`web-search`,
    `@elizaos/plugin-dkg`): the agent runs without them, nothing is ever installed at run time, and
    create_agent and update_character name each one in their answer's `warnings`.
    """
    raw = config.get("plugins")
    installed = installed_plugins()
    out = []
    for i, name in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(name, str) or not name.strip():
            continue
        package = plugin_package(name.strip())
        if agent_env.provider_named(package) is None and package not in installed:
            out.append({"loc": ["character", "plugins", i],
                        "msg": f"{name} is not installed here, so the agent runs without it (nothing is installed"
                               f" at run time); installed: {', '.join(sorted(installed)) or 'none'}"})
    return out


def _plugins(config: Mapping[str, Any], keys: frozenset[str], errors: Errors) -> list[str]:
    """sql and bootstrap, the model plugin the keys allow, and the character's own installed plugins."""
    installed = installed_plugins()
    wanted: list[str] = []
    preferred = []
    if isinstance(config.get("modelProvider"), str) and (p := agent_env.provider_named(config["modelProvider"])):
        preferred.append(p)
    raw = config.get("plugins")
    if raw is not None and not isinstance(raw, list):
        errors.add(["plugins"], "must be a list of plugin names")
        raw = []
    for i, name in enumerate(raw or []):
        if not isinstance(name, str) or not _PACKAGE_NAME.fullmatch(name.strip()) or len(name) > 214:
            errors.add(["plugins", i], "a plugin is named by its package, e.g. @elizaos/plugin-openai")
            continue
        package = plugin_package(name.strip())
        provider = agent_env.provider_named(package)
        if provider is not None:
            preferred.append(provider)  # a model plugin runs only when its key is there: chosen below
        elif package not in installed:
            continue  # left out, never installed: unavailable_plugins() tells the user
        elif package not in ALWAYS:
            wanted.append(package)
    usable = agent_env.providers_with_keys(keys)
    model = next((p for p in preferred if p in usable), usable[0] if usable else None)
    plugins = [ALWAYS[0], *([model.plugin] if model else []), *wanted, ALWAYS[1]]
    return list(dict.fromkeys(plugins))
