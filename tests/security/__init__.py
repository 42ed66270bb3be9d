"""Authentication, access, suppression, limits, secrets and the audit log."""
