"""Names: safe components and systemd's instance-name escaping, checked against systemd-escape."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpdup.config.names import name_problem, safe_component, systemd_escape, systemd_unescape

SAMPLES = ["transmet_fac", "lane-1:sub.2", "a+b", ".dot", "sp ace", "é/ü", "x\\y", "web@1"]


@pytest.mark.parametrize("text", SAMPLES)
def test_escape_matches_systemd_escape(text):
    expected = subprocess.run(["systemd-escape", text], capture_output=True, text=True, check=True)
    assert systemd_escape(text) == expected.stdout.strip()


@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
        min_size=1,
        max_size=40,
    )
)
def test_unescape_reverses_escape(text):
    assert systemd_unescape(systemd_escape(text)) == text


@given(st.text(max_size=150))
def test_safe_component_is_always_a_valid_name(text):
    assert name_problem(safe_component(text)) is None


def test_safe_component_keeps_valid_names_and_separates_others():
    assert safe_component("web-1") == "web-1"
    assert safe_component("a/b") != safe_component("a:b")
