"""The inventory as the rest of erpops uses it: load_inventory, environments,
repositories, defaults, freeze windows, the lab's environment and the digest."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from erpops.config import Inventory, load_inventory, parse_via, read_inventory_file
from erpops.config.loader import _merge_lab, lab_registration
from erpops.errors import InvalidFile, UsageError

DATA = Path(__file__).resolve().parents[1] / "data" / "inventories"
GOOD = DATA / "good.yaml"
MINIMAL = "version: 1\nenvironments:\n  dev:\n    tier: development\n    postgres: {primary: {host: 127.0.0.1}}\n"

LAB_REGISTRATION = {
    "environments": {"lab": {
        "tier": "development", "rpo": "1m", "rto": "10m",
        "postgres": {"primary": {"name": "lab-primary", "host": "127.0.0.1", "port": 54321, "user": "postgres"},
                     "replicas": [{"name": "lab-replica", "host": "127.0.0.1", "port": 54322}]},
        "tenants": ["retail"],
        "repository": "lab",
    }},
    "repositories": {"lab": {"url": "/tmp/lab-repo", "key": "file:/tmp/lab-repo.key"}},
}


def test_good_inventory_loads_with_every_section():
    inv = load_inventory(GOOD, lab=False)
    prod = inv.environment("prod")
    assert prod.name == "prod" and prod.is_production
    assert float(prod.rpo) == 300 and str(prod.rto) == "1h"
    assert prod.postgres.primary.password == "env:PGPASS"
    assert [r.name for r in prod.postgres.replicas] == ["db2"]
    assert prod.tenants == ["store_nord", "store_sud"]
    assert prod.redis.role == "sessions"
    assert prod.odoo.version == "17.0"  # written as a YAML float
    assert prod.backup_repository is inv.repositories["offsite"]
    assert inv.repositories["offsite"].part_size == 16_000_000
    assert inv.repositories["offsite"].bucket == "acme-erp-backups"
    assert inv.repositories["offsite"].prefix == "prod"
    assert inv.repositories["local"].kind == "local" and inv.repositories["local"].path == "/srv/erpops/backups"
    assert inv.audit.signing_key.startswith("file:")
    assert inv.trusted_key_paths == [GOOD.parent / "keys" / "alice.pub"]
    assert inv.runbooks_dir_path == Path("~/runbooks").expanduser()


def test_defaults_fill_what_is_not_written():
    inv = load_inventory(GOOD, lab=False)
    staging = inv.environment("staging")
    node = staging.postgres.primary
    assert (node.port, node.user, node.dbname, node.via) == (5432, "postgres", "postgres", "local://")
    assert node.label == "10.0.0.5:5432"
    assert staging.tenants is None  # None: discover the Odoo databases
    assert staging.freeze == []
    assert staging.rpo is None


def test_source_and_digest_identify_the_file():
    inv = load_inventory(GOOD, lab=False)
    assert inv.source == GOOD
    assert inv.digest == hashlib.sha256(GOOD.read_bytes()).hexdigest()


def test_unknown_environment_suggests_the_nearest():
    inv = load_inventory(GOOD, lab=False)
    with pytest.raises(UsageError) as err:
        inv.environment("prd")
    assert err.value.hint == "did you mean 'prod'?"
    with pytest.raises(UsageError) as err:
        inv.environment("zzz")
    assert "prod" in err.value.hint and "staging" in err.value.hint


def test_lab_without_a_running_lab():
    inv = load_inventory(GOOD)
    with pytest.raises(UsageError) as err:
        inv.environment("lab")
    assert err.value.message == "the lab is not running"
    assert err.value.hint == "run: erpops lab up"


def test_no_lab_registration_in_a_fresh_home():
    assert lab_registration() is None


def test_lab_registration_is_merged_and_bound_to_its_repository():
    inv = load_inventory(GOOD, lab=False)
    file_digest = inv.digest
    _merge_lab(inv, LAB_REGISTRATION)
    lab = inv.environment("lab")
    assert lab.from_lab and lab.name == "lab"
    assert lab.postgres.node("lab-replica").port == 54322
    assert lab.backup_repository.url == "/tmp/lab-repo"
    assert inv.lab_merged and inv.digest != file_digest
    assert "prod" in inv.environments  # the file's environments stay


def test_lab_alone_gives_an_inventory_and_a_digest_of_the_registration():
    inv = Inventory.empty()
    _merge_lab(inv, LAB_REGISTRATION)
    assert inv.source is None and sorted(inv.environments) == ["lab"]
    again = Inventory.empty()
    _merge_lab(again, dict(reversed(list(LAB_REGISTRATION.items()))))
    assert inv.digest == again.digest  # canonical: key order does not matter


def test_the_files_own_lab_wins(tmp_path):
    path = tmp_path / "erpops.yaml"
    path.write_text(MINIMAL.replace("dev:", "lab:"))
    inv = load_inventory(path, lab=False)
    _merge_lab(inv, LAB_REGISTRATION)
    assert not inv.environment("lab").from_lab
    assert inv.environment("lab").postgres.primary.port == 5432


def test_an_invalid_lab_registration_is_reported_not_crashed():
    broken = {"environments": {"lab": {"tier": "lab", "postgres": {"primary": {"host": "127.0.0.1"}}}}}
    with pytest.raises(InvalidFile) as err:
        _merge_lab(Inventory.empty(), broken)
    assert "lab registration" in err.value.render()
    assert "environments.lab.tier" in err.value.render()


def test_discovery_order(tmp_path, monkeypatch, isolated_home):
    assert load_inventory(lab=False).source is None  # nothing anywhere: empty inventory
    xdg = isolated_home / "config" / "erpops" / "erpops.yaml"
    xdg.parent.mkdir(parents=True)
    xdg.write_text(MINIMAL.replace("dev:", "from_xdg:"))
    assert list(load_inventory(lab=False).environments) == ["from_xdg"]
    (tmp_path / "erpops.yaml").write_text(MINIMAL.replace("dev:", "from_cwd:"))
    assert list(load_inventory(lab=False).environments) == ["from_cwd"]
    other = tmp_path / "other.yaml"
    other.write_text(MINIMAL.replace("dev:", "from_env:"))
    monkeypatch.setenv("ERPOPS_CONFIG", str(other))
    assert list(load_inventory(lab=False).environments) == ["from_env"]
    assert list(load_inventory(xdg, lab=False).environments) == ["from_xdg"]  # explicit path first


def test_an_explicit_path_must_exist(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="inventory file not found"):
        load_inventory(tmp_path / "missing.yaml")
    monkeypatch.setenv("ERPOPS_CONFIG", str(tmp_path / "gone.yaml"))
    with pytest.raises(UsageError, match="gone.yaml"):
        load_inventory()


def test_duplicate_environment_key_is_an_error(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(MINIMAL + "  dev:\n    tier: staging\n    postgres: {primary: {host: x}}\n")
    with pytest.raises(InvalidFile) as err:
        read_inventory_file(path)
    assert err.value.diagnostics[0].line == 6


def test_freeze_windows_fixed_and_recurring():
    prod = load_inventory(GOOD, lab=False).environment("prod")
    at = lambda *a: datetime(*a, tzinfo=timezone.utc)  # noqa: E731
    window, start, end = prod.active_freeze(at(2026, 11, 27, 12, 0))
    assert window.name == "Black Friday" and end.isoformat() == "2026-12-01T06:00:00+01:00"
    black_friday = prod.freeze[0]
    assert black_friday.active_span(at(2026, 12, 1, 4, 59))
    assert black_friday.active_span(at(2026, 12, 1, 5, 0)) is None  # 06:00+01:00 is 05:00Z: over
    # month-end close: 18:00 Europe/Paris on the last day of the month, for 30h
    window, start, end = prod.active_freeze(at(2027, 1, 31, 17, 0))  # 18:00 in Paris (CET)
    assert window.name == "month-end close" and start.isoformat() == "2027-01-31T18:00:00+01:00"
    assert prod.active_freeze(at(2027, 1, 31, 16, 59)) is None
    assert prod.active_freeze(at(2027, 2, 1, 22, 59))[0].name == "month-end close"
    assert prod.active_freeze(at(2027, 2, 1, 23, 0)) is None  # 30h later


def test_a_recurring_freeze_lasts_elapsed_time_across_a_dst_change():
    from erpops.config import FreezeWindow

    # 18:00 in Paris on 27 March 2027 (CET, +01:00) for 30h; summer time starts on the 28th
    window = FreezeWindow.model_validate({"name": "stock take", "cron": "0 18 27 3 *", "duration": "30h",
                                          "timezone": "Europe/Paris"})
    start, end = window.active_span(datetime(2027, 3, 28, 22, 30, tzinfo=timezone.utc))
    assert start.isoformat() == "2027-03-27T18:00:00+01:00"
    assert end.isoformat() == "2027-03-29T01:00:00+02:00"
    assert window.active_span(datetime(2027, 3, 28, 23, 0, tzinfo=timezone.utc)) is None


@pytest.mark.parametrize("url, expected", [
    ("local://", ("local", None, None, None)),
    ("ssh://postgres@db1.internal", ("ssh", "postgres", "db1.internal", None)),
    ("ssh://odoo@10.0.0.7:2222", ("ssh", "odoo", "10.0.0.7", 2222)),
])
def test_via_urls(url, expected):
    via = parse_via(url)
    assert (via.scheme, via.user, via.host, via.port) == expected


def test_via_container_and_kubernetes():
    assert parse_via("docker://odoo-web").container == "odoo-web"
    k = parse_via("k8s://erp/statefulset/postgres")
    assert (k.namespace, k.kind, k.name) == ("erp", "statefulset", "postgres")


@pytest.mark.parametrize("bad", ["local://x", "ssh://host", "ssh://u@h:99999", "docker://", "k8s://erp/odoo",
                                 "k8s://ERP/pod/x", "ftp://h", "db1.internal"])
def test_bad_via_urls(bad):
    with pytest.raises(ValueError):
        parse_via(bad)


def test_the_real_lab_registration_shape_validates(tmp_path):
    """What erpops.lab.registration builds for a lab must pass the inventory's checks."""
    registration = pytest.importorskip("erpops.lab.registration")
    from erpops.lab.state import LabState, Node, RedisNode

    st = LabState(root=str(tmp_path), bin_dir="/usr/lib/postgresql/15/bin", socket_dir=str(tmp_path),
                  password_file=str(tmp_path / "pw"),
                  nodes=[Node("lab-primary", "primary", 54321, str(tmp_path / "p"), "p.log"),
                         Node("lab-replica", "replica", 54322, str(tmp_path / "r"), "r.log")],
                  redis=RedisNode(6390, str(tmp_path), "r.pid", "r.log"))
    raw = {"environments": {"lab": registration.environment_dict(st)},
           "repositories": {"lab": registration.repository_dict(st)}}
    inv = Inventory.empty()
    _merge_lab(inv, raw)
    lab = inv.environment("lab")
    assert lab.postgres.primary.port == 54321 and lab.postgres.node("lab-replica").priority == 1
    assert lab.backup_repository.path == str(tmp_path / "repository")
    assert lab.redis.role == "sessions"


def test_yaml_anchors_under_x_keys_are_shared(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("version: 1\nx-pg: &pg {port: 5433, user: erpops}\nenvironments:\n"
                    "  prod:\n    tier: production\n    postgres:\n      primary: {<<: *pg, host: db1}\n"
                    "      replicas: [{<<: *pg, host: db2, name: db2}]\n")
    prod = read_inventory_file(path).environment("prod")
    assert (prod.postgres.primary.port, prod.postgres.primary.user) == (5433, "erpops")
    assert prod.postgres.replicas[0].port == 5433
