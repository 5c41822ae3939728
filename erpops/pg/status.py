"""Replication state and lag, database sizes: the read-only questions an
operator asks a PostgreSQL server before touching it."""

from __future__ import annotations

from typing import Any


def is_in_recovery(conn) -> bool:
    return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])


def senders(conn) -> list[dict[str, Any]]:
    """On a primary: one entry per connected standby (pg_stat_replication),
    with the replay lag in bytes."""
    rows = conn.execute(
        """SELECT application_name, client_addr::text, state, sync_state,
                  sent_lsn::text, replay_lsn::text,
                  COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint
             FROM pg_stat_replication ORDER BY application_name"""
    ).fetchall()
    keys = ("application_name", "client_addr", "state", "sync_state", "sent_lsn", "replay_lsn", "lag_bytes")
    return [dict(zip(keys, r)) for r in rows]


def receiver(conn) -> dict[str, Any]:
    """On a standby: the WAL receiver's state and how far replay trails receipt."""
    row = conn.execute(
        """SELECT r.status, r.sender_host, r.sender_port, r.slot_name,
                  pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
                  COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint
             FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true"""
    ).fetchone()
    keys = ("status", "sender_host", "sender_port", "slot_name", "receive_lsn", "replay_lsn", "replay_lag_bytes")
    return dict(zip(keys, row))


def current_lsn(conn) -> str:
    if is_in_recovery(conn):
        return conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()[0]
    return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]


def database_sizes(conn) -> dict[str, int]:
    rows = conn.execute(
        "SELECT datname, pg_database_size(datname) FROM pg_database "
        "WHERE datallowconn AND NOT datistemplate ORDER BY datname"
    ).fetchall()
    return {name: int(size) for name, size in rows}


def server_version(conn) -> str:
    return conn.execute("SHOW server_version").fetchone()[0].split()[0]
