"""Platform: settings, extensions, errors, logs, metrics, rate limits, mail, password hashing."""
