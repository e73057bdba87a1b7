"""Packaging is declared in pyproject.toml; this file adds one thing setuptools has no
declaration for: train_resume/bootstrap/train-resume.pth, installed at the top of
site-packages, so that every interpreter of the environment installs the hand-off
(train_resume.hook) while a decision is in force, whatever PYTHONPATH the job sets.
Python runs the lines of a site-packages ``*.pth`` that start with ``import`` at start-up
(the mechanism coverage and pytest-cov used for subprocesses); ours only reads two
environment variables when no decision is in force.

A wheel (pip install ., pipx, uv tool install) gets the file from build_lib; an editable
install (pip install -e ., PEP 660) builds into a directory it then ignores, and puts in
the wheel what the ``install`` command's install_lib holds: the file is written there.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = os.path.join("train_resume", "bootstrap", "train-resume.pth")


class BuildPyWithPth(build_py):
    """build_py, plus train-resume.pth at the top of what is installed."""

    def run(self):
        super().run()
        target = self.build_lib
        if getattr(self, "editable_mode", False):
            target = self.get_finalized_command("install").install_lib
        self.copy_file(PTH, os.path.join(target, os.path.basename(PTH)), preserve_mode=False)


setup(cmdclass={"build_py": BuildPyWithPth})
