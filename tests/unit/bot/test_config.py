from pathlib import Path

import pytest

from bot.config import check_settings, load_settings
from engine.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_the_example_configuration_is_valid(tmp_path: Path) -> None:
    env = {"BREAKGLASS_HOME": str(tmp_path), "BREAKGLASS_GRAPH_CLIENT_SECRET": "s3cret"}
    settings = load_settings(env, REPO / "breakglass.example.toml")
    assert settings.tenant.mode == "graph"
    assert len(settings.approvers) == 2
    assert settings.identities["slack:U012AB3CD"] == ("00000000-0000-0000-0000-00000000000b",)
    assert settings.replication_settle_seconds == 180
    assert "s3cret" not in repr(settings)


def test_no_file_is_the_embedded_default(tmp_path: Path) -> None:
    settings = load_settings({"BREAKGLASS_HOME": str(tmp_path)})
    assert settings.simulated
    assert settings.executor == "runbook"


def test_the_step_up_secret_comes_from_the_environment(tmp_path: Path) -> None:
    env = {
        "BREAKGLASS_HOME": str(tmp_path),
        "BREAKGLASS_GRAPH_CLIENT_SECRET": "graph-secret",
        "BREAKGLASS_STEPUP_CLIENT_SECRET": "step-up-secret",
    }
    settings = load_settings(env, REPO / "breakglass.example.toml")
    assert settings.step_up_client_secret == "step-up-secret"
    assert settings.step_up == {"authentication_context": "c1", "max_age_seconds": 300}
    assert settings.access is not None
    assert settings.access.step_up.max_age_seconds == 300
    assert "step-up-secret" not in repr(settings)


def test_only_breakglass_variables_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Variables named like a setting (HOME, MODEL, TENANT) are the process's, not ours.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("TENANT", '{"mode": "graph"}')
    settings = load_settings({})
    assert settings.home == Path(".breakglass")
    assert settings.simulated


def test_secret_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-file\n")
    env = {
        "BREAKGLASS_HOME": str(tmp_path),
        "BREAKGLASS_GRAPH_CLIENT_SECRET_FILE": str(tmp_path / "secret"),
    }
    settings = load_settings(env, REPO / "breakglass.example.toml")
    assert settings.tenant.client_secret == "from-file"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[policy]\nmax_minutes = 0\n", "policy.max_minutes: Input should be greater than"),
        ('[policy]\napprovers = "bob"\n', "policy.approvers: Input should be a valid list"),
        ('[tenant]\nmode = "graph"\n', "tenant.tenant_id (or BREAKGLASS_TENANT_ID) and"),
        ('[tenant]\nmode = "cloud"\n', "tenant.mode: Input should be 'simulated' or 'graph'"),
        ("[wat]\n", "wat: unknown section"),
        ("[policy\n", "is not valid TOML"),
        ("[clock]\nscale = 0\n", "clock.scale"),
        (  # longer than the rollback's budget could wait out
            "[policy]\nreplication_settle_seconds = 301\n",
            "policy.replication_settle_seconds: Input should be less than or equal to 300",
        ),
        ("[step_up]\nmax_age_secnds = 60\n", "step_up.max_age_secnds: unknown setting"),
        (  # it would start, and every tenant call would fail with 401 invalid_client
            '[tenant]\nsimulated_url = "http://127.0.0.1:9"\n',
            "tenant: BREAKGLASS_SIMULATED_CLIENT_SECRET (or _FILE) required with",
        ),
        (
            '[policy]\napprovers = ["a", "b"]\n[tenant]\nmode = "graph"\ntenant_id = "t"\n'
            'client_id = "c"\ncertificate_path = "/nonexistent/graph.pem"\n'
            f'certificate_thumbprint = "{"ab" * 20}"\n',
            "tenant: tenant.certificate_path: no file at /nonexistent/graph.pem",
        ),
        (
            '[teams]\napp_id = "a"\ntenant_id = "t"\ncert_path = "/nonexistent/teams.pfx"\n',
            "teams: teams.cert_path (or BREAKGLASS_TEAMS_CERT_PATH): no file at",
        ),
        ('[step_up]\nprompt_login = "no"\n', "step_up.prompt_login: Input should be a valid"),
    ],
)
def test_each_mistake_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "breakglass.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings({"BREAKGLASS_HOME": str(tmp_path)}, path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a = \xff\n", "is not UTF-8 text"),
        (b"a = " + b"[" * 100_000 + b"\n", "nests too deeply"),
        (b"[service]\nport = " + b"9" * 5000 + b"\n", "Exceeds the limit (4300 digits)"),
    ],
)
def test_an_unusable_file_is_a_problem_not_a_crash(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "breakglass.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings({"BREAKGLASS_HOME": str(tmp_path)}, path)


def test_a_secret_file_that_is_not_text_is_named(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"\xff\xfe")
    env = {
        "BREAKGLASS_HOME": str(tmp_path),
        "BREAKGLASS_SLACK_SIGNING_SECRET_FILE": str(tmp_path / "secret"),
    }
    with pytest.raises(ConfigError, match=r"BREAKGLASS_SLACK_SIGNING_SECRET_FILE: .* not UTF-8"):
        load_settings(env)


def test_config_check_lists_every_problem_of_the_access_rules(tmp_path: Path) -> None:
    path = tmp_path / "breakglass.toml"
    path.write_text(
        '[templates.entra-role]\nroles = [1]\nstep_up = "maybe"\n'
        '[step_up]\nauthentication_context = "x"\n'
    )
    settings, problems = check_settings({"BREAKGLASS_HOME": str(tmp_path)}, path)
    assert settings is None
    assert problems == [
        "templates.entra-role.roles must be a list of ids",
        'templates.entra-role.step_up must be "required" or "off"',
        "step_up.authentication_context must be an id c1..c99",
    ]


STEP_UP_ONLY = '[step_up]\nauthentication_context = "c1"\nmax_age_seconds = 300\n'
NO_TEMPLATE_TABLE = (
    "step_up: with [step_up] set, each template that may be requested needs its "
    "[templates.<name>] table (entra-role, ca-exclusion); there is none, so every request "
    "would be refused (docs/stepup.md)"
)


def test_step_up_without_a_template_table_is_a_problem(tmp_path: Path) -> None:
    """The engine refuses a template without a table once any access table exists: with
    [step_up] alone every request is refused ("not enabled here"), so say so at the start."""
    path = tmp_path / "breakglass.toml"
    path.write_text(STEP_UP_ONLY)
    settings, problems = check_settings({"BREAKGLASS_HOME": str(tmp_path)}, path)
    assert (settings, problems) == (None, [NO_TEMPLATE_TABLE])
    with pytest.raises(ConfigError, match=r"each template that may be requested"):
        load_settings({"BREAKGLASS_HOME": str(tmp_path)}, path)  # what serve starts with


@pytest.mark.parametrize(
    ("text", "environ"),
    [
        (STEP_UP_ONLY + '[templates.entra-role]\nroles = ["*"]\nprincipals = ["*"]\n', {}),
        ("[step_up]\n", {}),  # an empty table turns nothing on
        ("", {"BREAKGLASS_STEPUP_CLIENT_SECRET": "s"}),  # nor does the secret alone
    ],
    ids=["with a template table", "empty step_up", "secret only"],
)
def test_step_up_with_a_template_table_or_off_is_no_problem(
    tmp_path: Path, text: str, environ: dict[str, str]
) -> None:
    path = tmp_path / "breakglass.toml"
    path.write_text(text)
    settings, problems = check_settings({"BREAKGLASS_HOME": str(tmp_path), **environ}, path)
    assert problems == []
    assert settings is not None


def test_graph_mode_without_a_credential_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BREAKGLASS_GRAPH_CLIENT_SECRET"):
        load_settings({"BREAKGLASS_HOME": str(tmp_path)}, REPO / "breakglass.example.toml")


def test_json_logs_carry_the_job_id_and_drop_secretish_fields() -> None:
    import json
    import logging

    from bot.logs import JsonFormatter

    record = logging.LogRecord(
        "breakglass.test", logging.INFO, __file__, 1, "refused %s", ("x",), None
    )
    record.job_id = "bg-1"
    record.client_secret = "hunter2"
    line = json.loads(JsonFormatter().format(record))
    assert (line["msg"], line["job_id"]) == ("refused x", "bg-1")
    assert "hunter2" not in json.dumps(line)
