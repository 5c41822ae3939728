"""The shared lab as a user finds it: status, idempotent up, the Odoo-shaped data
and filestore, and the `lab` environment it registers."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_status_shows_primary_and_streaming_replica(lab):
    result = lab.erpops("lab", "status", "--json")
    assert result.returncode == 0, result.output
    doc = json.loads(result.stdout)
    roles = {n["name"]: n for n in doc["nodes"]}
    assert roles["lab-primary"]["role"] == "primary" and roles["lab-primary"]["state"] == "running"
    replica = roles["lab-replica"]
    assert replica["role"] == "replica" and replica["replication"] == "streaming"
    assert isinstance(replica["lag_bytes"], int) and replica["pid"] > 0
    assert roles["lab-primary"]["port"] != replica["port"]
    assert doc["databases"]["retail"] > 1_000_000
    assert doc["filestore"]["files"] == doc["attachments"] > 0


def test_human_status_and_up_output(lab):
    status = lab.erpops("lab", "status")
    assert status.returncode == 0, status.output
    assert "lab-primary" in status.stdout and "streaming" in status.stdout
    assert f"127.0.0.1:{lab.node('lab-replica')['port']}" in status.stdout


def test_up_again_is_idempotent(lab):
    pids = {n["name"]: n["pid"] for n in lab.state()["nodes"]}
    result = lab.erpops("lab", "up", "--scale", "0.02")
    assert result.returncode == 0, result.output
    assert "already running" in result.stderr
    assert "✓ PostgreSQL 15 primary" in result.stdout and "streaming replica" in result.stdout
    assert 'environment "lab" ready — try: erpops lab status' in result.stdout
    assert {n["name"]: n["pid"] for n in lab.state()["nodes"]} == pids


def test_every_account_move_balances(lab):
    with lab.connect() as conn:
        moves = conn.execute("SELECT count(*) FROM account_move").fetchone()[0]
        unbalanced = conn.execute(
            "SELECT m.id FROM account_move m LEFT JOIN account_move_line l ON l.move_id = m.id "
            "GROUP BY m.id HAVING count(l.id) < 2 OR sum(l.debit) <> sum(l.credit)").fetchall()
    assert moves > 0
    assert unbalanced == []


def test_odoo_shaped_tables_hold_rows(lab):
    tables = ["res_company", "res_partner", "res_users", "product_template", "product_product",
              "stock_location", "stock_quant", "stock_move", "sale_order", "sale_order_line", "pos_session",
              "pos_order", "pos_order_line", "account_move", "account_move_line", "ir_attachment",
              "ir_module_module", "ir_config_parameter", "ir_cron"]
    with lab.connect() as conn:
        for table in tables:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
        params = dict(conn.execute("SELECT key, value FROM ir_config_parameter").fetchall())
        base = conn.execute("SELECT state, latest_version FROM ir_module_module WHERE name = 'base'").fetchone()
        totals_ok = conn.execute(
            "SELECT bool_and(o.amount_untaxed = s.untaxed) FROM sale_order o "
            "JOIN (SELECT order_id, sum(price_subtotal) AS untaxed FROM sale_order_line GROUP BY 1) s "
            "ON s.order_id = o.id").fetchone()[0]
    assert {"database.uuid", "database.secret", "database.create_date", "web.base.url"} <= set(params)
    assert base[0] == "installed" and base[1].startswith("17.0")
    assert totals_ok


def test_filestore_matches_ir_attachment_one_row_per_file(lab):
    store = lab.root / "filestore" / "retail"
    with lab.connect() as conn:
        rows = conn.execute("SELECT id, store_fname, checksum, file_size FROM ir_attachment").fetchall()
    on_disk = {str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()}
    fnames = [r[1] for r in rows]
    assert len(fnames) == len(set(fnames)), "two attachment rows share a file"
    assert set(fnames) == on_disk, "files without a row, or rows without a file"
    sizes = []
    for _id, fname, checksum, size in rows:
        content = (store / fname).read_bytes()
        sha = hashlib.sha1(content).hexdigest()
        assert sha == checksum and fname == f"{sha[:2]}/{sha}" and len(content) == size
        sizes.append(size)
    assert max(sizes) >= 300_000 and min(sizes) < 100_000  # a big file among many small ones


def test_filestore_is_mostly_incompressible(lab):
    import zlib

    store = lab.root / "filestore" / "retail"
    raw = packed = 0
    for path in (p for p in store.rglob("*") if p.is_file()):
        data = path.read_bytes()
        raw += len(data)
        packed += len(zlib.compress(data, 1))
    assert packed > 0.8 * raw


def test_replica_receives_writes(lab):
    marker = f"replication-probe-{time.time_ns()}"
    with lab.connect() as primary:
        primary.execute("INSERT INTO ir_config_parameter (key, value) VALUES (%s, 'x')", (marker,))
    try:
        deadline = time.monotonic() + 20
        with lab.connect("lab-replica") as replica:
            while time.monotonic() < deadline:
                if replica.execute("SELECT 1 FROM ir_config_parameter WHERE key = %s", (marker,)).fetchone():
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the replica never received the write")
            assert replica.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    finally:
        with lab.connect() as primary:
            primary.execute("DELETE FROM ir_config_parameter WHERE key = %s", (marker,))


def test_registers_environment_lab_with_a_real_password_reference(lab_home):
    import psycopg

    from erpops.config import load_inventory
    from erpops.pg.connect import NodeTarget, connect

    env = load_inventory().environment("lab")
    assert env.tier == "development" and env.tenants == ["retail"]
    assert env.postgres.primary.host == "127.0.0.1" and len(env.postgres.replicas) == 1
    assert env.filestore.path == str(lab_home.root / "filestore")
    ref = env.postgres.primary.password
    assert ref.startswith("file:")
    password_file = Path(ref[len("file:"):])
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    with connect(NodeTarget.from_node(env.postgres.primary)) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "postgres"
    # The reference is real: SCRAM on 127.0.0.1 refuses a wrong password.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=env.postgres.primary.port, user="postgres",
                        password="wrong", dbname="postgres", connect_timeout=5)


def test_commands_see_the_lab_without_a_config_file(lab):
    result = lab.erpops("config", "show", "-e", "lab")
    assert result.returncode == 0, result.output
    assert "lab-primary" in result.stdout and lab.password not in result.output


def test_server_settings(lab):
    with lab.connect(dbname="postgres") as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('wal_level', 'wal_log_hints', 'hot_standby', 'listen_addresses', 'shared_buffers')").fetchall())
        slots = conn.execute("SELECT slot_name, active FROM pg_replication_slots").fetchall()
    assert settings["wal_level"] == "replica" and settings["wal_log_hints"] == "on"
    assert settings["listen_addresses"] == "127.0.0.1"
    assert slots == [("erpops_lab_replica", True)]
    if os.geteuid() == 0:
        assert Path(lab.node("lab-primary")["data_dir"]).owner() == "postgres"
