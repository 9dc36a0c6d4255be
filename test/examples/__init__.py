"""Tests of the lecture's programs (a package, so this directory's conftest.py never
shadows test/conftest.py as the module "conftest")."""
