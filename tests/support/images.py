"""A tiny container image built from Debian's busybox-static, loaded without any registry.

`build_busybox_image(cli)` makes a root filesystem (busybox and its applet links, /etc/passwd
with root and nobody, /tmp), packs it as a tarball and `import`s it (podman import / docker
import, the air-gapped path). It is built once per test session; a missing CLI or busybox is
a test FAILURE with the command that installs them, never a skip.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

IMAGE = "localhost/shoal-test/busybox:1"
BUSYBOX = Path("/bin/busybox")
INSTALL_HINT = "run scripts/test (or scripts/bootstrap as root): it installs podman, runc and busybox-static"


def require_cli(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        raise AssertionError(f"{name} is not installed; {INSTALL_HINT}")
    return binary


def build_busybox_image(cli: str, workdir: Path, image: str = IMAGE) -> str:
    """Build and import the image with `cli` (podman or docker); returns its name."""
    binary = require_cli(cli)
    if not BUSYBOX.exists():
        raise AssertionError(f"{BUSYBOX} is missing (Debian package busybox-static); {INSTALL_HINT}")
    listing = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    root = workdir / "rootfs.tar"
    with tarfile.open(root, "w") as tar:
        for directory in ("bin", "etc", "tmp", "root", "work"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in listing:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"),
                           ("etc/group", "root:x:0:\nnogroup:x:65534:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            import io

            tar.addfile(info, io.BytesIO(data))
    done = subprocess.run(
        [binary, "import", "--change", 'CMD ["/bin/sh"]', "--change", "ENV PATH=/bin", str(root), image],
        capture_output=True, text=True, timeout=120,
    )
    if done.returncode != 0:
        raise AssertionError(f"{cli} import failed: {done.stderr.strip()}")
    return image
