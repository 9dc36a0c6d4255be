"""<midge/midge.h> is usable from the C and C++ dialects a user may compile with, warning-free
under -pedantic -Werror (issue 8: trailing commas in enums broke C++98 and C89)."""

import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "include")

PROGRAM = """#include <midge/midge.h>
int main(void)
{
	bool r = false;
	midge_client *c = midge_client_new("x", true, 0, MIDGE_PROTOCOL_V311, MIDGE_TRANSPORT_TCP);
	midge_client_free(c);
	return midge_topic_matches_sub("a/+", "a/b", &r) == MIDGE_OK && r ? 0 : MIDGE_ERR_INVAL;
}
"""


@pytest.mark.parametrize("compiler,std", [
    ("g++", "c++98"), ("g++", "c++11"), ("clang++", "c++98"),
    ("gcc", "c99"), ("clang", "c99"), ("gcc", "c11"),
])
def test_header_compiles_pedantic(tmp_path, compiler, std):
    if not shutil.which(compiler):  # scripts/install-deps installs all four
        pytest.fail("%s not installed (make test runs scripts/install-deps)" % compiler)
    src = tmp_path / ("h.cpp" if "++" in compiler else "h.c")
    src.write_text(PROGRAM)
    r = subprocess.run([compiler, "-std=" + std, "-pedantic", "-Wall", "-Wextra", "-Werror",
                        "-fsyntax-only", "-I", INCLUDE, str(src)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
