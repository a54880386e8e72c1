# Shared wiring: validate the config once, resolve paths, hand each step the config.
import sys

from dance import config as dance_config
from dance.errors import ConfigError
from dance.paths import Paths

try:
    config.update(dance_config.validate(config))
except ConfigError as exc:
    sys.exit(f"DANCE: {exc}")

PATHS = Paths(config)
# Every `python -m dance` step reads the exact validated config of this run.
RESOLVED_CONFIG = dance_config.write_resolved(config, PATHS.work / "config")
DANCE = f"python -m dance {{cmd}} --config {RESOLVED_CONFIG}"
LOGS = PATHS.work / "logs"


def fp(*sections):
    """Params trigger: a rule re-runs when (only) the config sections it depends on change."""
    return dance_config.fingerprint(config, sections)


def dance(cmd, *args):
    """Shell line of one step; its stderr (progress, messages) goes to the terminal and log."""
    return " ".join([DANCE.format(cmd=cmd), *args, "2>&1 | tee {log}"])
