"""The agent's environment: an allow-list, a deny-list, and the platform's keys kept from user URLs."""

from __future__ import annotations

import pytest

from paradyze.agent_env import build, rejected
from paradyze.errors import ValidationFailed

PLATFORM = {
    "OPENAI_API_KEY": "sk-platform-openai",
    "OPENAI_BASE_URL": "https://models.platform.example/v1",
    "ANTHROPIC_API_KEY": "sk-platform-anthropic",
    "OPENROUTER_API_KEY": "sk-platform-openrouter",
    "OPENROUTER_SMALL_MODEL": "platform/small",
    "SUPABASE_JWT_SECRET": "not for agents",  # not a model variable: never passed on
}

DENIED = [
    # the issue's attack, and the rest of what interpreters, the loader and the runtime read
    "PYTHONWARNINGS", "BROWSER", "PERL5OPT",
    "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GCONV_PATH", "GLIBC_TUNABLES", "MALLOC_TRACE", "LOCPATH",
    "HOSTALIASES", "RES_OPTIONS", "NLSPATH", "TZDIR",
    "NODE_OPTIONS", "NODE_PATH", "NODE_EXTRA_CA_CERTS", "NODE_TLS_REJECT_UNAUTHORIZED", "BUN_OPTIONS",
    "BUN_INSTALL", "NPM_CONFIG_REGISTRY", "UV_THREADPOOL_SIZE",
    "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PERL5LIB", "PERLLIB", "PERL5DB", "RUBYOPT", "JAVA_TOOL_OPTIONS",
    "BASH_ENV", "BASH_FUNC_X", "ENV", "IFS", "PS4", "SHELLOPTS", "BASHOPTS", "CDPATH", "PROMPT_COMMAND",
    "PATH", "HOME", "SHELL", "TMPDIR", "TERMINFO", "EDITOR", "PAGER", "LESSOPEN",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "SSLKEYLOGFILE", "OPENSSL_CONF", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
    "NO_PROXY", "CURL_CA_BUNDLE", "GIT_SSH_COMMAND", "GIT_CONFIG_GLOBAL", "GOOGLE_APPLICATION_CREDENTIALS",
    "PORT", "SERVER_PORT", "SERVER_HOST", "ELIZA_SERVER_AUTH_TOKEN", "ELIZA_NO_AUTO_INSTALL", "PGLITE_DATA_DIR",
    "POSTGRES_URL", "PGPASSWORD", "DATABASE_URL", "SECRET_SALT", "CENTRAL_MESSAGE_SERVER_URL",
    "REMOTE_CHARACTER_URLS", "SENTRY_DSN", "LOG_LEVEL", "DEBUG", "PARADYZE_AGENT_ID", "PARADYZE_INSTANCE_KEY",
    "LANG", "LC_ALL", "TZ",
    # names that are not safe at all
    "http_proxy", "lower", "A.B", "BASH_FUNC_f%%", "1ABC", "_X", "X" * 65, "", "A B", "A=B",
]
ALLOWED = ["DISCORD_API_TOKEN", "TWITTER_USERNAME", "SMALL_ANTHROPIC_MODEL", "OPENAI_API_KEY",
           "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY", "OPENAI_SMALL_MODEL", "MY_SERVICE_TOKEN"]


@pytest.mark.parametrize("name", DENIED)
def test_names_an_interpreter_loader_or_runtime_reads_are_refused(name: str) -> None:
    assert rejected(name)
    with pytest.raises(ValidationFailed) as info:
        build(PLATFORM, {name: "x"})
    assert info.value.details[0]["loc"] == ["character", "settings", "secrets", name]


@pytest.mark.parametrize("name", ALLOWED)
def test_ordinary_secret_names_are_allowed(name: str) -> None:
    assert rejected(name) is None


def test_the_issues_attack_is_refused_naming_each_variable() -> None:
    attack = {"PYTHONWARNINGS": "all:0:antigravity.x:0:0", "BROWSER": "perlthanks",
              "PERL5OPT": "-Mbase;system('id > /tmp/pwned');exit;"}
    with pytest.raises(ValidationFailed) as info:
        build(PLATFORM, attack)
    assert sorted(d["loc"][-1] for d in info.value.details) == sorted(attack)


def test_only_model_variables_of_the_platform_reach_the_agent() -> None:
    agent = build(PLATFORM, {"DISCORD_API_TOKEN": "d"})
    assert agent.env == {**{k: v for k, v in PLATFORM.items() if k != "SUPABASE_JWT_SECRET"},
                         "DISCORD_API_TOKEN": "d"}
    assert agent.model_keys == {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY"}


@pytest.mark.parametrize("url_name", ["OPENROUTER_BASE_URL", "OPENROUTER_BROWSER_BASE_URL"])
def test_a_user_url_never_receives_the_platform_key(url_name: str) -> None:
    agent = build(PLATFORM, {url_name: "https://attacker.example/v1"})
    assert "OPENROUTER_API_KEY" not in agent.env
    assert "OPENROUTER_SMALL_MODEL" not in agent.env  # the platform's bundle for the provider, all of it
    assert agent.env[url_name] == "https://attacker.example/v1"
    assert agent.env["OPENAI_API_KEY"] == PLATFORM["OPENAI_API_KEY"]  # other providers are not affected
    assert "OPENROUTER_API_KEY" not in agent.model_keys
    assert "sk-platform-openrouter" not in repr(agent) and "sk-platform-openrouter" not in agent.env.values()


def test_a_url_in_the_characters_plain_settings_takes_the_provider_over_too() -> None:
    # ElizaOS reads character settings before the environment: OPENAI_EMBEDDING_URL there would
    # otherwise send the platform's key to the user's server.
    agent = build(PLATFORM, {}, {"OPENAI_EMBEDDING_URL": "https://attacker.example", "temperature": 0.7})
    assert "OPENAI_API_KEY" not in agent.env and "OPENAI_BASE_URL" not in agent.env
    assert agent.env["ANTHROPIC_API_KEY"] == PLATFORM["ANTHROPIC_API_KEY"]


def test_a_users_own_key_wins_for_their_agent() -> None:
    agent = build(PLATFORM, {"OPENAI_API_KEY": "sk-user"})
    assert agent.env["OPENAI_API_KEY"] == "sk-user"
    assert "OPENAI_BASE_URL" not in agent.env  # the platform's address is for the platform's key
    assert "OPENAI_API_KEY" in agent.model_keys


def test_no_user_value_overrides_a_platform_value() -> None:
    agent = build(PLATFORM, {"OPENROUTER_SMALL_MODEL": "user/model", "OPENAI_LARGE_MODEL": "user-large"})
    assert agent.env["OPENROUTER_SMALL_MODEL"] == "platform/small"
    assert agent.env["OPENAI_LARGE_MODEL"] == "user-large"  # the platform does not set it


def test_no_keys_anywhere_means_no_model_keys() -> None:
    agent = build({}, {"ANTHROPIC_API_KEY": ""})
    assert agent.env == {} and agent.model_keys == frozenset()


ALIASES = [("Eve", "EVE_OPENAI_BASE_URL"), ("Sam Altman", "SAM_ALTMAN_OPENAI_API_KEY"),
           ("r2-d2", "R2_D2_OPENAI_SMALL_MODEL")]


@pytest.mark.parametrize(("name", "secret"), ALIASES)
def test_elizaos_character_prefixed_variables_count_as_what_they_alias(name: str, secret: str) -> None:
    # ElizaOS 1.7.2 (jsonToCharacter) makes EVE_OPENAI_BASE_URL the character Eve's secret
    # OPENAI_BASE_URL, which it reads before the environment's: the platform's key must not go along.
    agent = build(PLATFORM, {secret: "https://attacker.example"}, {}, name)
    assert "OPENAI_API_KEY" not in agent.env and "OPENAI_BASE_URL" not in agent.env


def test_a_provider_url_anywhere_in_a_name_withholds_the_key_whatever_the_character_is_called() -> None:
    assert "OPENAI_API_KEY" not in build(PLATFORM, {"EVE_OPENAI_BASE_URL": "x"}, {}, "Somebody").env
    other = build(PLATFORM, {"SAM_ALTMAN_OPENAI_API_KEY": "x"}, {}, "Somebody")
    assert other.env["OPENAI_API_KEY"] == PLATFORM["OPENAI_API_KEY"]
