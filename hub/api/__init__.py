"""The hub's HTTP face: GraphQL for cohort questions, REST probes for operators."""

from hub.api.app import create_app

__all__ = ["create_app"]
