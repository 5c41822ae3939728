"""The step library. The registry is explicit: the modules below are every
action module there is, imported by ``erpops.actions.registry.load_actions``."""

ACTION_MODULES = [
    "erpops.actions.control",
    "erpops.actions.shell",
    "erpops.actions.http",
    "erpops.actions.repo",
    "erpops.actions.postgres",
    "erpops.actions.filestore",
    "erpops.actions.redis",
    "erpops.actions.restore_db",
    "erpops.actions.restore_files",
    "erpops.actions.restore_redis",
]
