"""Which binary wheels PyPI has for the field unit's CPUs: one `pip download --only-binary=:all:` per
package and platform (CPython 3.11, no dependencies), with the requirement the `edge` / `edge-legacy`
extras and constraints.txt give. Prints a Markdown table (the one in systemd/README.md).

    python scripts/wheel_table.py            # needs PyPI; downloads each wheel once into pip's cache
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

# The unit's interpreter and what its OS accepts: Debian 12 / Pi OS 12 have glibc 2.36, so every
# manylinux tag up to 2_36 installs there. pip does not widen a given tag by itself.
PLATFORMS = {
    "aarch64": ["linux_aarch64", "manylinux2014_aarch64"] + [f"manylinux_2_{n}_aarch64" for n in range(17, 37)],
    "armv7l": ["linux_armv7l", "manylinux2014_armv7l"] + [f"manylinux_2_{n}_armv7l" for n in range(17, 37)],
}
# Requirement as the extras (pyproject.toml) and constraints.txt make it.
PACKAGES = {
    "ai-edge-litert": "ai-edge-litert>=1.2",
    "tflite-runtime": "tflite-runtime==2.14.*",
    "numpy": "numpy==1.26.4",
    "pillow": "pillow>=10.0",
    "paho-mqtt": "paho-mqtt>=2.1,<3",
    "soundfile": "soundfile>=0.12",
    "sounddevice": "sounddevice>=0.4",
}


def newest_wheel(requirement: str, platforms: list[str]) -> str:
    with tempfile.TemporaryDirectory() as folder:
        argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
                "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "-d", folder]
        for platform in platforms:
            argv += ["--platform", platform]
        proc = subprocess.run([*argv, requirement], capture_output=True, text=True)
        wheels = sorted(p.name for p in Path(folder).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            if "No matching distribution" in proc.stderr or "from versions: none" in proc.stderr or proc.returncode:
                return "none"
        return wheels[0]


def main() -> int:
    print("| package (requirement) | " + " | ".join(PLATFORMS) + " |")
    print("|---|" + "---|" * len(PLATFORMS))
    for name, requirement in PACKAGES.items():
        cells = [f"`{newest_wheel(requirement, platforms)}`" for platforms in PLATFORMS.values()]
        print(f"| {name} (`{requirement}`) | " + " | ".join(cells).replace("`none`", "**none**") + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
