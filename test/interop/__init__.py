"""Tests of midge_pub and midge_sub (a package, so this directory's conftest.py is
"interop.conftest" and never shadows test/conftest.py as the module "conftest")."""
