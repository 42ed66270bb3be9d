"""Authentication and the other security tests of issue 6."""
