"""For setuptools releases that build through setup.py (EL9's 53): metadata is in setup.cfg."""

from setuptools import setup

setup()
