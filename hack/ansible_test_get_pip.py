"""Stands in for the get-pip.py script that ansible-test downloads to bootstrap pip in its sanity venvs.

ansible-test runs it as `get_pip_<version>.py [pip options] pip==<version> --no-setuptools --no-wheel`
under the private HOME that hack/ansible-test-sanity.sh prepares. This does the same install with the
pip wheel from the wheelhouse named in that HOME's pip.conf, so nothing is fetched from outside PyPI
and nothing at all once the wheelhouse is filled.
"""

import configparser
import glob
import os
import runpy
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel", "--no-pip"}


def main() -> None:
    config = configparser.ConfigParser()
    config.read(os.path.expanduser("~/.config/pip/pip.conf"))
    wheelhouse = config.get("global", "find-links", fallback="")
    wheels = glob.glob(os.path.join(wheelhouse, "pip-*-py3-none-any.whl"))
    if len(wheels) != 1:
        sys.exit(f"ansible-test pip bootstrap: expected one pip wheel in {wheelhouse!r}, found {wheels} (run make venv)")
    sys.path.insert(0, wheels[0])  # a wheel is a zip that Python imports from; pip runs from it as get-pip.py does
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    sys.argv = ["pip", "install", "--upgrade", "--force-reinstall", *args]
    runpy.run_module("pip", run_name="__main__", alter_sys=True)


main()
