"""HTTP face of the hub: GraphQL and REST."""
