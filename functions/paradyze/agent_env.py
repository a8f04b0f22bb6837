"""The agent's environment, built from an allow-list: platform model variables and safe user secrets.

An agent's environment is read by its shell, bun, node, glibc's loader and every tool they may
run. A user's secret becomes an environment variable only when its name matches SAFE_NAME and no
interpreter, loader or runtime reads it (DENIED, DENIED_PREFIXES, DENIED_SUFFIXES). The runtimes
add their own operational variables (PORT, HOME, PATH, ELIZA_SERVER_AUTH_TOKEN, ...) afterwards;
every one of those names is denied here too, so a user value never competes with them.

Model providers: the platform's variables for a provider (its key, base URL, model names) reach an
agent as a bundle. A user who brings their own key or their own URL for a provider takes that
provider over: the platform's bundle for it is left out, so a user's URL never receives the
platform's key. Otherwise, where the user and the platform both set a variable, the platform wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationFailed

SAFE_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
MAX_VALUE_BYTES = 32 * 1024


@dataclass(frozen=True)
class Provider:
    name: str  # as in a 0.x character's modelProvider
    prefix: str
    key: str
    plugin: str


PROVIDERS = (
    Provider("openai", "OPENAI_", "OPENAI_API_KEY", "@elizaos/plugin-openai"),
    Provider("anthropic", "ANTHROPIC_", "ANTHROPIC_API_KEY", "@elizaos/plugin-anthropic"),
    Provider("openrouter", "OPENROUTER_", "OPENROUTER_API_KEY", "@elizaos/plugin-openrouter"),
)

# What the platform may hand to agents from its own environment (settings.py reads them).
PLATFORM_MODEL_VARS = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_SMALL_MODEL", "OPENAI_LARGE_MODEL", "OPENAI_EMBEDDING_MODEL",
    "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_SMALL_MODEL", "ANTHROPIC_LARGE_MODEL",
    "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "OPENROUTER_SMALL_MODEL", "OPENROUTER_LARGE_MODEL",
    "OPENROUTER_EMBEDDING_MODEL",
)

# Names an interpreter, the loader, a common tool or the agent's own runtime reads. Sources: bash(1)
# and dash(1) ENVIRONMENT, glibc's unsecvars.h and ld.so(8), node's and bun's CLI documentation,
# python(1), perlrun(1), git(1), curl(1), OpenSSL, libpq, and the variables ElizaOS 1.7.2's server,
# CLI and plugins read (grepped from the pinned install).
DENIED = frozenset({
    # shells (bash, dash, sh) and login basics
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "IFS", "ENV", "CDPATH", "FPATH",
    "GLOBIGNORE", "EXECIGNORE", "SHELLOPTS", "BASHOPTS", "POSIXLY_CORRECT", "PROMPT_COMMAND",
    "PS0", "PS1", "PS2", "PS3", "PS4", "HISTFILE", "HISTFILESIZE", "HISTSIZE", "HISTCONTROL", "HISTIGNORE",
    "HISTTIMEFORMAT", "INPUTRC", "MAIL", "MAILPATH", "MAILCHECK", "SHLVL", "TERM", "TERMINFO",
    "TERMINFO_DIRS", "TERMCAP", "COLUMNS", "LINES", "ZDOTDIR", "TIMEFORMAT", "OPTERR", "OPTIND",
    # programs that start other programs
    "BROWSER", "EDITOR", "VISUAL", "PAGER", "MANPAGER", "MANOPT", "MANPATH", "SUDO_ASKPASS", "DISPLAY",
    "WAYLAND_DISPLAY", "LESS", "LESSOPEN", "LESSCLOSE", "LESSKEY", "LESSSECURE", "MORE", "GZIP", "BZIP",
    "BZIP2", "ZIPOPT", "UNZIP", "UNZIPOPT",
    # glibc's loader and libc (unsecvars.h, ld.so(8), locale, resolver)
    "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "NLSPATH", "NIS_PATH",
    "RES_OPTIONS", "RESOLV_HOST_CONF", "TMPDIR", "TMP", "TEMP", "TEMPDIR", "TZ", "TZDIR", "LANG", "LANGUAGE",
    "MEMUSAGE_OUTPUT", "PCPROFILE_OUTPUT", "SEGFAULT_OUTPUT_NAME", "SEGFAULT_SIGNALS", "SEGFAULT_USE_ALTSTACK",
    "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
    # compilers and build tools (an install step would run them)
    "CC", "CXX", "CPP", "LD", "AR", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LIBS", "MAKEFLAGS", "MFLAGS",
    "MAKEFILES", "GCC_EXEC_PREFIX", "COMPILER_PATH", "LIBRARY_PATH", "CPATH", "C_INCLUDE_PATH",
    "CPLUS_INCLUDE_PATH", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR",
    # interpreters and their package managers
    "PERLLIB", "PERLIO", "PERLDB_OPTS", "RUBYOPT", "RUBYLIB", "CLASSPATH", "JAVA_TOOL_OPTIONS",
    "JDK_JAVA_OPTIONS", "VIRTUAL_ENV", "CONDA_PREFIX", "TS_NODE_PROJECT", "TS_NODE_BASEURL",
    "ELECTRON_RUN_AS_NODE", "TSC_WATCHFILE", "TSC_WATCHDIRECTORY", "TSC_NONPOLLING_WATCHER",
    # TLS, proxies and credentials files: each redirects or reads what the agent sends
    "SSLKEYLOGFILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "CURL_HOME", "WGETRC", "NETRC", "NO_PROXY",
    "GOOGLE_APPLICATION_CREDENTIALS", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "KRB5CCNAME", "KRB5_CONFIG", "GNUPGHOME", "GPG_AGENT_INFO",
    # the agent's runtime: ElizaOS's server and CLI, its database, and the platform's own names
    "PORT", "HOST", "DATABASE_URL", "DEBUG", "SECRET_SALT", "CENTRAL_MESSAGE_SERVER_URL", "AGENT_RUNTIME_URL",
    "REMOTE_CHARACTER_URLS", "USE_CHARACTER_STORAGE", "CORS_ORIGIN", "API_CORS_ORIGIN", "EXPRESS_MAX_PAYLOAD",
    "ENABLE_DATA_ISOLATION", "WORLD_ID", "CHARACTER_PATH", "CONTAINER", "DOCKER_CONTAINER", "QUIET_MODE",
})
DENIED_PREFIXES = (
    "LD_", "BASH", "KSH_", "ZSH_", "LC_", "XDG_", "MALLOC_", "GLIBC_", "GCONV_", "DBUS_", "SSH_",
    "SUDO_", "SYSTEMD_",
    "NODE_", "NPM_", "YARN_", "PNPM_", "COREPACK_", "BUN_", "UV_", "V8_", "DOTENV_",
    "PYTHON", "PIP_", "CONDA_", "PERL5", "PERL_", "RUBY", "GEM_", "BUNDLE_", "JAVA_",
    "GIT_", "SSL_", "OPENSSL_", "CURL_", "GNUTLS_", "NSS_",
    "ELIZA_", "ELIZAOS_", "SERVER_", "PGLITE_", "POSTGRES_", "PG", "SESSION_", "LOG_", "SENTRY_", "OTEL_",
    "PUPPETEER_", "CHROME_", "PLAYWRIGHT_", "PARADYZE_", "SUPABASE_", "CLOUDSDK_", "K_",
)
DENIED_SUFFIXES = ("_PROXY", "_DEBUG", "_OPTIONS", "_OPTS", "_OPT")
# A name ending so, under a provider's prefix, points that provider somewhere else.
_URL_MARKS = ("_URL", "_ENDPOINT", "_HOST", "_BASE", "_PROXY")


def rejected(name: str) -> str | None:
    """Why a user may not set this variable, or None when they may."""
    if not SAFE_NAME.match(name):
        return "secret names are 1-64 characters: A-Z first, then A-Z, 0-9 and _"
    if name in DENIED or name.startswith(DENIED_PREFIXES) or name.endswith(DENIED_SUFFIXES):
        return f"{name} is reserved: a shell, an interpreter, the loader or the agent's runtime reads it"
    return None


def rejected_value(value: str) -> str | None:
    if "\0" in value:
        return "a secret value cannot contain a NUL character"
    if len(value.encode()) > MAX_VALUE_BYTES:
        return f"a secret value is at most {MAX_VALUE_BYTES} bytes"
    return None


def check_secrets(secrets: Mapping[str, Any], loc: list[str | int]) -> list[dict[str, Any]]:
    """One detail per secret a user may not set, each at loc + [name]."""
    details = []
    for name, value in secrets.items():
        why = rejected(name) or (rejected_value(value) if isinstance(value, str) else None)
        if why:
            details.append({"loc": [*loc, name], "msg": why})
    return details


def _points_elsewhere(provider: Provider, name: str) -> bool:
    # Anywhere in the name, not only at its start: ElizaOS strips a character-name prefix
    # (EVE_OPENAI_BASE_URL), and a name this matches by mistake only withholds the platform's key.
    at = f"_{name}".find(f"_{provider.prefix}")
    return at >= 0 and any(mark in name[at + len(provider.prefix) - 1:] for mark in _URL_MARKS)


def takes_over(provider: Provider, user_values: Mapping[str, Any]) -> bool:
    """Whether the user brings their own key or their own address for this provider."""
    return any((name == provider.key and value) or _points_elsewhere(provider, name)
               for name, value in user_values.items())


@dataclass(frozen=True)
class AgentEnv:
    env: dict[str, str]
    model_keys: frozenset[str] = field(default_factory=frozenset)  # e.g. {"OPENAI_API_KEY"}

    def __repr__(self) -> str:  # values are secrets: names only
        return f"AgentEnv(names={sorted(self.env)}, model_keys={sorted(self.model_keys)})"


def build(platform: Mapping[str, str], secrets: Mapping[str, str],
          character_settings: Mapping[str, Any] | None = None, character_name: str = "") -> AgentEnv:
    """The agent's environment: platform model variables plus the user's secrets.

    platform: the platform's model variables (Settings.model_env()); anything else in it is ignored.
    character_settings: the character's plain settings, which ElizaOS reads like secrets, so a
    URL or key set there takes a provider over just as a secret does.
    character_name: ElizaOS also reads `<NAME>_X` from the environment as the character's secret
    `X`, ahead of the environment's own `X`: such a secret counts as `X` here.
    Raises ValidationFailed naming each secret that may not be set (stored before the rules were).
    """
    bad = check_secrets(secrets, ["character", "settings", "secrets"])
    if bad:
        raise ValidationFailed(f"secrets that cannot be set: {', '.join(str(d['loc'][-1]) for d in bad)}",
                               details=bad)
    prefix = re.sub(r"[^A-Z0-9]", "_", character_name.upper()) + "_" if character_name else ""
    aliased = {k[len(prefix):]: v for k, v in secrets.items() if prefix and k.startswith(prefix)}
    user_values: dict[str, Any] = {**dict(character_settings or {}), **secrets, **aliased}
    env: dict[str, str] = {}
    for provider in PROVIDERS:
        # Through the alias a user's value would win over the platform's inside ElizaOS: any of them
        # for a provider means the user configures that provider themselves.
        if takes_over(provider, user_values) or any(k.startswith(provider.prefix) for k in aliased):
            continue
        env.update({k: v for k, v in platform.items()
                    if k in PLATFORM_MODEL_VARS and k.startswith(provider.prefix) and v})
    for name, value in secrets.items():
        if value and name not in env:  # the platform's value wins
            env[name] = value
    keys = {p.key for p in PROVIDERS if env.get(p.key) or _nonempty_str(user_values.get(p.key))}
    return AgentEnv(env=env, model_keys=frozenset(keys))


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def provider_named(name: str) -> Provider | None:
    """A provider from a 0.x modelProvider ("anthropic") or a plugin name."""
    lowered = name.lower()
    return next((p for p in PROVIDERS if lowered in (p.name, p.plugin, f"plugin-{p.name}")), None)


def providers_with_keys(model_keys: Iterable[str]) -> list[Provider]:
    keys = set(model_keys)
    return [p for p in PROVIDERS if p.key in keys]
