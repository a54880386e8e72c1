"""The CLI's commands, one module per stage (data, train, measure, aap, sota, devices,
report); each registers its commands in :mod:`.registry` when imported by :mod:`dance.cli`."""
