"""Sources registered at runtime: the persisted registry, its validation, and the admin
operations that apply it to a running hub."""
