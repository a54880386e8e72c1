# Shared wiring: validate the config once, resolve paths, hand each step the config.
import os
import sys

from dance import config as dance_config
from dance.errors import ConfigError
from dance.paths import Paths

try:
    config.update(dance_config.validate(config))
except ConfigError as exc:
    sys.exit(f"DANCE: {exc}")

PATHS = Paths(config)
# Every `python -m dance` step reads the exact validated config of this run. Its path
# (content-addressed) reaches the steps through the environment, not the command text:
# Snakemake re-runs a rule whose command text changed, so a path in the text would re-run
# every rule after any config edit; which sections a rule depends on is its `fp` param.
RESOLVED_CONFIG = dance_config.write_resolved(config, PATHS.work / "config")
os.environ["DANCE_CONFIG"] = str(RESOLVED_CONFIG)
DANCE = 'python -m dance {cmd} --config "$DANCE_CONFIG"'
LOGS = PATHS.work / "logs"


def fp(*sections):
    """Params trigger: a rule re-runs when (only) the config sections it depends on change."""
    return dance_config.fingerprint(config, sections)


def dance(cmd, *args):
    """Shell line of one step; its stderr (progress, messages) goes to the terminal and log."""
    return " ".join([DANCE.format(cmd=cmd), *args, "2>&1 | tee {log}"])
