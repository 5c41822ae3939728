"""`erpops restore` as an operator meets it on a bad day: the installed command, no TTY,
a private lab (scale 0.01) with one backup. Bad input is refused with a clear message
and an exit code before anything is created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

try:  # tests/ as a package, or tests/e2e on sys.path (pytest's rootdir insertion)
    from tests.e2e.private_lab import private_lab
except ImportError:
    from private_lab import private_lab

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab_env(tmp_path_factory):
    with private_lab(tmp_path_factory.mktemp("restore-cli")) as (env, run):
        backup = run("backup", "-e", "lab", "--json")
        assert backup.returncode == 0, backup.stdout + backup.stderr
        env["BACKUP_ID"] = json.loads(backup.stdout)["backups"][0]["backup_id"]
        yield env


def _databases(env: dict) -> set[str]:
    import psycopg

    state = json.loads((Path(env["ERPOPS_HOME"]) / "lab" / "lab.json").read_text())
    port = next(n["port"] for n in state["nodes"] if n["role"] == "primary")
    password = Path(state["password_file"]).read_text().strip()
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres",
                         autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def _runs(env: dict) -> set:
    runs = Path(env["ERPOPS_HOME"]) / "state" / "runs"
    return set(runs.iterdir()) if runs.exists() else set()


@pytest.mark.parametrize("args, code, says", [
    (["--backup", "20200101T000000Z-lab-retail"], 2, "no backup 20200101T000000Z-lab-retail"),
    (["--backup", "yesterday"], 2, "is not a backup id"),
    (["--tenant", "retial"], 2, "did you mean 'retail'?"),
    (["--as", "-bad name"], 2, "is not valid"),
    (["--as", "retail_r", "--redis"], 2, "holds no Redis data"),
    ([], 3, "already exists"),
    (["--as", "retail_new", "--tenant", "retail", "--drop-existing"], 3, "pass --yes"),
])
def test_bad_input_is_refused_and_nothing_is_created(erpops, lab_env, args, code, says):
    before_db, before_runs = _databases(lab_env), _runs(lab_env)
    result = erpops("restore", "-e", "lab", *args, env=lab_env)
    assert result.returncode == code, result.output
    assert says in result.stderr and "Traceback" not in result.output
    assert _databases(lab_env) == before_db
    if code == 2:
        assert _runs(lab_env) == before_runs  # refused before a run began


def test_dry_run_shows_the_checks_and_steps_and_touches_nothing(erpops, lab_env):
    before_db, before_runs = _databases(lab_env), _runs(lab_env)
    result = erpops("restore", "-e", "lab", "--as", "retail_dry", "--copy", "--dry-run", env=lab_env)
    assert result.returncode == 0, result.output
    assert lab_env["BACKUP_ID"] in result.stdout and "retail_dry (does not exist)" in result.stdout
    for step in ("restore.preflight", "restore.database", "restore.filestore", "restore.verify", "restore.copy",
                 "restore.activate"):
        assert step in result.stdout
    assert "restore.neutralize" not in result.stdout and "DESTRUCTIVE" not in result.stdout
    doc = json.loads(erpops("restore", "-e", "lab", "--as", "retail", "--drop-existing", "--dry-run", "--json",
                            env=lab_env).stdout)
    assert doc["destructive"] == ["replace"] and doc["preflight"]["target_exists"]
    assert _databases(lab_env) == before_db and _runs(lab_env) == before_runs


def test_restore_prints_a_summary_and_logs_on_stderr(erpops, lab_env):
    result = erpops("restore", "-e", "lab", "--backup", lab_env["BACKUP_ID"], "--as", "retail_e2e", env=lab_env)
    assert result.returncode == 0, result.output
    assert "row counts (" in result.stdout and "match the backup" in result.stdout
    assert "✓ restored in" in result.stdout
    assert "database: restore.database started" in result.stderr  # log lines on stderr
    assert "retail_e2e" in _databases(lab_env)


def test_help_shows_an_example(erpops):
    result = erpops("restore", "--help")
    assert result.returncode == 0
    assert "Example: erpops restore -e staging" in result.stdout and "--drop-existing" in result.stdout


def test_a_file_that_is_no_odoo_backup_is_refused(erpops, lab_env, tmp_path):
    junk = tmp_path / "notes.zip"
    junk.write_text("not a zip at all")
    before_db, before_runs = _databases(lab_env), _runs(lab_env)
    result = erpops("restore", "-e", "lab", "--from-file", str(junk), "--as", "retail_junk", env=lab_env)
    assert result.returncode == 2 and "not an Odoo backup" in result.stderr, result.output
    both = erpops("restore", "-e", "lab", "--from-file", str(junk), "--backup", lab_env["BACKUP_ID"], env=lab_env)
    assert both.returncode == 2 and "do not apply" in both.stderr, both.output
    assert _databases(lab_env) == before_db and _runs(lab_env) == before_runs


def test_with_json_an_error_is_one_document_on_stdout(erpops, lab_env):
    for args, code in ((["--tenant", "retial"], 2), (["--as", "retail_j", "--drop-existing"], 3)):
        result = erpops("restore", "-e", "lab", "--json", *args, env=lab_env)
        doc = json.loads(result.stdout)
        assert result.returncode == code and doc["exit_code"] == code and doc["message"], result.output


def test_production_wants_its_name_confirmed(erpops, lab_env, tmp_path):
    lab = Path(lab_env["ERPOPS_HOME"]) / "lab"
    state = json.loads((lab / "lab.json").read_text())
    port = next(n["port"] for n in state["nodes"] if n["role"] == "primary")
    inventory = tmp_path / "erpops.yaml"
    inventory.write_text(f"""version: 1
environments:
  shop:
    tier: production
    postgres:
      primary: {{name: db1, host: 127.0.0.1, port: {port}, user: postgres, password: "file:{state['password_file']}"}}
    tenants: [retail]
    filestore: {{path: "{lab / 'filestore'}"}}
    repository: offsite
repositories:
  offsite: {{url: "{lab / 'repository'}", key: "file:{lab / 'repository.key'}"}}
""")
    args = ("--config", str(inventory), "restore", "-e", "shop", "--backup", lab_env["BACKUP_ID"], "--as",
            "retail_shop", "--drop-existing", "--yes")
    refused = erpops(*args, env=lab_env)
    assert refused.returncode == 3 and "--confirm-env shop" in refused.stderr, refused.output
    wrong = erpops(*args, "--confirm-env", "lab", env=lab_env)
    assert wrong.returncode == 3 and "does not match" in wrong.stderr, wrong.output
    assert "retail_shop" not in _databases(lab_env)
    done = erpops(*args, "--confirm-env", "shop", env=lab_env)
    assert done.returncode == 0, done.output
    assert "retail_shop" in _databases(lab_env)
