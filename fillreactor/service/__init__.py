"""The service: ``fillreactor run`` and what it needs to run on a cluster master (settings, signals,
systemd notify, logs, trace, metrics)."""
