# expect: escape.process escape.install
# Installs a package at run time.
import subprocess
import sys

import torch


def run(x):
    subprocess.check_call([sys.executable, "-m", "pip", "install", "liger-kernel"])
    return torch.empty_like(x)
