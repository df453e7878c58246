"""The audit trail: who did what to whom, recorded with the change, read by admins."""
